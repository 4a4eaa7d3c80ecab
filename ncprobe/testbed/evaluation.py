"""Zero-shot evaluation of a testbed model: CoOp's base-to-novel protocol under both class-text protocols.

Split from :mod:`.pretraining` (training and presets) to keep each module readable; the build
(:mod:`.build`) calls :func:`evaluate_zero_shot` once and stores its result in the metadata.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ncprobe.models.bundle import CLIPBundle
from ncprobe.models.features import extract_features
from ncprobe.testbed.benchmark import PROTOCOLS, EmbeddedBenchmark, base_novel_labels
from ncprobe.testbed.texts import class_text_features

__all__ = ["zero_shot_accuracy", "evaluate_zero_shot"]


def zero_shot_accuracy(
    bundle: CLIPBundle,
    dataset: EmbeddedBenchmark,
    *,
    protocol: str | None = None,
    batch_size: int = 512,
    progress: bool = False,
) -> float:
    """Top-1 zero-shot accuracy on ``dataset`` among its own classes, with their text under ``protocol``.

    ``protocol`` defaults to the benchmark's primary one (``dataset.protocol``, ``"descriptions"``);
    ``"names"`` uses the class names in ``dataset.template``.

    Returns
    -------
    float
        Fraction of images whose nearest class text (cosine) is their own class's.
    """
    feats, labels = extract_features(bundle, dataset, batch_size=batch_size, cache=False, progress=progress)
    weights = class_text_features(bundle, dataset, protocol=protocol or dataset.protocol)
    pred = (F.normalize(feats, dim=-1) @ weights.T).argmax(dim=1)
    return float((pred == labels).float().mean().item())


def _protocol_scores(feats: torch.Tensor, labels: torch.Tensor, text: torch.Tensor, test: EmbeddedBenchmark) -> dict:
    """CoOp base-to-novel accuracies of one class text, from precomputed test features."""
    base, novel = base_novel_labels(len(test.classnames))
    sims = F.normalize(feats, dim=-1) @ text.T
    domains = [test.domains[int(k)] for k in labels]
    out: dict = {}
    for half, keep in (("base", base), ("novel", novel)):
        mask = (labels >= keep[0]) & (labels <= keep[-1])
        pred = sims[mask][:, keep].argmax(dim=1) + keep[0]
        right = pred == labels[mask]
        out[half] = float(right.float().mean())
        half_domains = [d for d, m in zip(domains, mask.tolist()) if m]
        for domain in sorted(set(test.domains)):
            sel = torch.tensor([d == domain for d in half_domains])
            if sel.any():
                out[f"{half}_{domain}"] = float(right[sel].float().mean())
    out["hm"] = (
        0.0 if out["base"] + out["novel"] == 0 else 2 * out["base"] * out["novel"] / (out["base"] + out["novel"])
    )
    out["all"] = float((sims.argmax(dim=1) == labels).float().mean())
    return {k: round(v, 4) for k, v in out.items()}


def evaluate_zero_shot(bundle: CLIPBundle, *, fallback: bool = False, progress: bool = False) -> dict:
    """CoOp's base-to-novel zero-shot protocol on the test split, under both class-text protocols.

    Base images are classified among the base classes only, novel images among the novel classes
    only; ``"all"`` is the accuracy among all classes; ``"hm"`` the harmonic mean of base and novel;
    ``"<half>_<domain>"`` (e.g. ``"novel_digits"``) the same half's accuracy over that domain's images
    (still classified among all classes of the half).

    Returns
    -------
    dict
        The primary protocol's scores at the top level (``"protocol": "descriptions"``, ``"base"``,
        ``"novel"``, ``"hm"``, ``"all"``, per-domain keys), the chance levels, and
        ``"protocols"``: ``{"descriptions": {...}, "names": {...}}`` with every protocol's scores.
    """
    test = EmbeddedBenchmark("test", subset="all", fallback=fallback)
    feats, labels = extract_features(bundle, test, batch_size=512, cache=False, progress=progress)
    scores = {
        p: _protocol_scores(feats, labels, class_text_features(bundle, test, protocol=p), test) for p in PROTOCOLS
    }
    n_base = len(test.subset("base").classnames)
    n_novel = len(test.classnames) - n_base
    return {
        "protocol": test.protocol,
        **scores[test.protocol],
        "chance_base": round(1 / n_base, 4),
        "chance_novel": round(1 / n_novel, 4),
        "chance_all": round(1 / len(test.classnames), 4),
        "protocols": scores,
    }
