"""Evaluation and per-epoch neural-collapse tracking of one evaluation set.

For a set with k classes the engine has image features X (the current, possibly prompted, image tower; L2-
normalised, as CLIP compares them) and the current prompts' class text features T (k × d). Then

* accuracy is ``argmax_c x·t_c`` against the labels (each set classified among its own classes, CoOp's
  protocol); for CoCoOp, whose text depends on the image, T is per image and the class text used for NC is
  the normalised mean over the set's images of the per-image class features;
* the NC report is :func:`ncprobe.measure` of ``(X, labels)`` with ``text_features=T`` through the streaming
  accumulators (``ClassStatistics`` + ``DecisionStatistics``, ``all_reduce``-d over ranks), so a 2-process run
  reports what a 1-process run does. Catalog names throughout; per class and, when the training classes are
  imbalanced, per head/medium/tail group (the core's one rule on the training counts).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ncprobe.core.decisions import DecisionStatistics
from ncprobe.core.geometry import normalize_rows
from ncprobe.core.measure import measure
from ncprobe.core.report import NCReport
from ncprobe.core.statistics import ClassStatistics

from .distributed import DistInfo, all_sum

__all__ = ["SetEvaluation", "evaluate_set"]


@dataclass
class SetEvaluation:
    """Accuracy and NC report of one evaluation set."""

    name: str
    accuracy: float
    report: NCReport | None


def _text_per_image(model, feats: torch.Tensor, batch: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """CoCoOp: logits from per-image class text, and the normalised mean class text over the images."""
    logits, total = [], None
    for i in range(0, feats.shape[0], batch):
        f = feats[i : i + batch]
        t = model.encode_text(f)
        logits.append(model.compute_logits(f, t))
        s = t.sum(0)
        total = s if total is None else total + s
    return torch.cat(logits), normalize_rows(total)


def evaluate_set(
    model,
    name: str,
    feats: torch.Tensor,
    labels: torch.Tensor,
    *,
    info: DistInfo,
    track: bool,
    groups: np.ndarray | None,
    center: bool,
    class_names: list[str],
    conditional: bool,
) -> SetEvaluation:
    """Accuracy and (when ``track``) the NC report of one set; ``feats`` are this rank's normalised features."""
    k = len(class_names)
    with torch.no_grad():
        if conditional:
            logits, text = _text_per_image(model, feats)
            text = normalize_rows(all_sum(text, info))
        else:
            text = model.encode_text()
            logits = model.compute_logits(feats, text)
        correct = all_sum(
            torch.tensor(
                [(logits.argmax(1) == labels).sum().item(), labels.numel()], dtype=torch.float64, device=feats.device
            ),
            info,
        )
    accuracy = float(correct[0] / correct[1]) if correct[1] > 0 else float("nan")
    report = None
    if track:
        x = feats.double()
        stats = ClassStatistics(k, device=feats.device).update(x, labels)
        stats.all_reduce()
        dec = DecisionStatistics(stats, text_features=text.double()).update(x, labels)
        dec.all_reduce()
        try:
            report = measure(stats, decisions=dec, text_features=text.double(), groups=groups, class_names=class_names)
        except ValueError as err:  # e.g. coinciding class means: the metrics are undefined, training goes on
            warnings.warn(
                f"NC metrics of evaluation set {name!r} are undefined and recorded as missing: {err}", stacklevel=2
            )
    return SetEvaluation(name, accuracy, report)
