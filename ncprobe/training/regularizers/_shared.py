"""Helpers shared by the regularizers (public names in a private module, see ``docs/architecture.md``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ncprobe.core.anchors import select_anchors
from ncprobe.core.geometry import normalize_rows

from ..task_spec import training_class_count

__all__ = [
    "TRAINABLE_METHODS",
    "expected_classes_and_dim",
    "frozen_training_features",
    "class_means",
    "batch_class_means",
    "load_matrix",
    "check_weight",
    "image_tower_trains",
    "full",
    "run_dtype",
]

#: Methods with trainable prompts (zero-shot CLIP has nothing a loss term could move).
TRAINABLE_METHODS = frozenset({"coop", "cocoop", "maple", "ivlp"})


def check_weight(value: Any, name: str) -> float:
    """A finite weight ≥ 0, else ``ValueError`` naming the option."""
    try:
        w = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number >= 0, got {value!r}") from None
    if not (math.isfinite(w) and w >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return w


def expected_classes_and_dim(config: Any) -> tuple[int | None, int | None]:
    """The training class count and the embedding dimension a run of ``config`` will have, when they are known
    without loading the model or the data (``None`` otherwise)."""
    classes = training_class_count(config.data)
    dim: int | None = None
    if config.model.name == "testbed":
        from ncprobe.testbed.model import EMBED_DIM

        dim = EMBED_DIM
    else:
        try:
            import open_clip

            model_cfg = open_clip.get_model_config(config.model.name)
            dim = None if model_cfg is None else int(model_cfg["embed_dim"])
        except Exception:  # an unknown or local model: checked again in setup
            dim = None
    return classes, dim


def run_dtype(model: Any) -> torch.dtype:
    """The dtype a regularizer keeps its buffers in: float64 when the model's weights are float64, else float32
    (half-precision weights promote, as :func:`full`). The dtype is read once, in ``setup``: regularizers are not
    submodules of the model (the loop keeps them in a list beside it), so a later ``model.to(torch.float64)`` leaves
    their buffers as they were; ``reg.to(torch.float64)`` moves them (they are registered buffers)."""
    parameters = getattr(model, "parameters", None)
    for p in parameters() if callable(parameters) else ():
        if p.is_floating_point():
            return torch.float64 if p.dtype == torch.float64 else torch.float32
    return torch.float32


def frozen_training_features(ctx: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised frozen (unprompted) image features of the run's training set and their labels, in the
    model's :func:`run_dtype`."""
    if ctx.train_features is not None:
        feats, labels = ctx.train_features
    else:
        feats, labels = ctx.encode_frozen_images(ctx.task.train)
    return normalize_rows(feats.to(run_dtype(ctx.model))).to(ctx.device), labels.to(ctx.device)


def class_means(features: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(C, d) class means of ``features`` (core ``select_anchors(method="class_mean")``), every class present."""
    means, owners = select_anchors(features, labels, method="class_mean")
    if sorted(owners.tolist()) != list(range(num_classes)):
        missing = sorted(set(range(num_classes)) - set(owners.tolist()))
        raise ValueError(f"classes {missing[:10]} have no training images")
    out = torch.empty(num_classes, features.shape[1], dtype=features.dtype, device=features.device)
    out[torch.as_tensor(owners, device=features.device)] = means
    return out


def batch_class_means(x: torch.Tensor, labels: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(present class ids, their means in the batch) — differentiable in ``x``."""
    sums = torch.zeros(num_classes, x.shape[1], dtype=x.dtype, device=x.device).index_add(0, labels, x)
    counts = torch.bincount(labels, minlength=num_classes)
    present = torch.nonzero(counts > 0).flatten()
    return present, sums[present] / counts[present, None].to(x.dtype)


def load_matrix(value: Any, name: str) -> torch.Tensor:
    """A 2-D float64 tensor from a nested list or a ``.npy`` / ``.pt`` / ``.pth`` file path."""
    if isinstance(value, (str, Path)):
        path = Path(value)
        if not path.is_file():
            raise ValueError(f"{name}: no such file {str(path)!r}")
        if path.suffix == ".npy":
            data = np.load(path, allow_pickle=False)
        elif path.suffix in (".pt", ".pth"):
            data = torch.load(path, map_location="cpu", weights_only=True)
        else:
            raise ValueError(f"{name}: read .npy, .pt or .pth files, got {path.name!r}")
    else:
        data = value
    try:
        m = torch.as_tensor(np.asarray(data, dtype=np.float64) if not isinstance(data, torch.Tensor) else data)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (classes, dim) matrix, got {type(value).__name__}") from None
    m = m.detach().to(torch.float64)
    if m.ndim != 2:
        raise ValueError(f"{name} must be a (classes, dim) matrix, got shape {tuple(m.shape)}")
    if not bool(torch.isfinite(m).all()):
        raise ValueError(f"{name} contains NaN or inf values")
    return m


def image_tower_trains(method: str) -> bool:
    """Whether the image features depend on trainable parameters under ``method`` (MaPLe, IVLP)."""
    from ncprobe.training.methods import get_method

    return not get_method(method).frozen_image_features


def full(x: torch.Tensor) -> torch.Tensor:
    """``x`` in at least float32 (half precision from autocast is promoted; float64 stays float64)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
