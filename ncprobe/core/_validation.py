"""Input checks shared by the diagnostics core.

Every public entry point converts its inputs here, so a bad input fails early with an error that
names the problem (shape mismatch, NaN/inf, bad labels, too few classes) instead of a crash deep in
torch or a silent wrong number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "as_tensor",
    "check_features",
    "check_count",
    "check_nonnegative",
    "encode_labels",
    "EncodedLabels",
    "resolve_device",
]

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def resolve_device(device: Any, *tensors: torch.Tensor) -> torch.device:
    """The device to compute on: ``device`` if given, else that of the first tensor, else CPU."""
    if device is not None:
        return torch.device(device)
    for t in tensors:
        if isinstance(t, torch.Tensor):
            return t.device
    return torch.device("cpu")


def as_tensor(x: Any, *, name: str, device: torch.device | None = None) -> torch.Tensor:
    """Convert a numpy array, torch tensor or nested sequence to a tensor without copying when possible."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    elif isinstance(x, np.ndarray):
        if x.dtype == object:
            raise TypeError(f"{name} has dtype object; pass a numeric array")
        t = torch.from_numpy(np.ascontiguousarray(x))
    else:
        try:
            t = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be an array or tensor, got {type(x).__name__}") from err
    if device is not None and t.device != device:
        t = t.to(device)
    return t


def check_count(value: Any, *, name: str, minimum: int = 0) -> int:
    """``value`` as an int ≥ ``minimum``; floats, strings and booleans are rejected with a clear message.

    >>> check_count(3, name="num_classes")
    3
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if int(value) < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {int(value)}")
    return int(value)


def check_nonnegative(value: Any, *, name: str) -> float:
    """``value`` as a finite float ≥ 0 (tolerances, noise levels)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(out) or out < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return out


def check_features(
    x: Any,
    *,
    name: str = "features",
    device: torch.device | None = None,
    ndim: int = 2,
    check_finite: bool = True,
    shape_hint: str | None = None,
) -> torch.Tensor:
    """Return ``x`` as a floating tensor of ``ndim`` dimensions, checked for NaN/inf.

    Integer inputs are rejected (features are never integer); float16/bfloat16/float32/float64 pass
    through unchanged (the caller decides the compute precision). ``shape_hint`` names the expected
    shape in messages (default ``"(n_samples, dim)"`` for 2-D input).
    """
    t = as_tensor(x, name=name, device=device)
    if t.dtype not in _FLOAT_DTYPES:
        raise TypeError(
            f"{name} must be a floating-point array (float16/bfloat16/float32/float64), got dtype {t.dtype}"
        )
    if t.ndim != ndim:
        shape = shape_hint or ("(n_samples, dim)" if ndim == 2 else f"{ndim}-dimensional")
        raise ValueError(f"{name} must have shape {shape}, got shape {tuple(t.shape)}")
    if t.shape[-1] == 0:
        raise ValueError(f"{name} has zero feature dimensions")
    if check_finite and t.numel() and not bool(torch.isfinite(t).all()):
        bad = (~torch.isfinite(t)).any(dim=-1).nonzero().flatten()[:5].tolist() if t.ndim == 2 else []
        raise ValueError(f"{name} contains NaN or inf values" + (f" (rows {bad}…)" if bad else ""))
    return t


@dataclass(frozen=True)
class EncodedLabels:
    """Labels mapped to contiguous codes ``0..C-1``.

    Attributes
    ----------
    codes:
        int64 tensor of shape (n,), values in ``[0, C)``.
    class_ids:
        numpy array of the original label values, ``class_ids[code] == original label``.
    """

    codes: torch.Tensor
    class_ids: np.ndarray

    @property
    def num_classes(self) -> int:
        return len(self.class_ids)


def _labels_to_numpy(labels: Any) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        arr = labels.detach().cpu().numpy()
    else:
        arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise TypeError("labels must be integers; got non-integer floating-point values")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    elif arr.dtype.kind == "u" and arr.dtype.itemsize == 8:
        if arr.size and arr.max() > np.iinfo(np.int64).max:
            raise ValueError(f"labels must be below 2**63 (int64), found {int(arr.max())}")
    elif arr.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"labels must be non-negative, found {int(arr.min())}")
    return arr.astype(np.int64, copy=False)


def encode_labels(
    labels: Any,
    *,
    n_samples: int,
    num_classes: int | None = None,
    device: torch.device | None = None,
    min_classes: int = 2,
) -> EncodedLabels:
    """Check labels and map them to contiguous codes.

    Parameters
    ----------
    labels:
        Integer class labels of shape (n_samples,).
    n_samples:
        The number of feature rows; a different label count is an error.
    num_classes:
        If given, labels must lie in ``[0, num_classes)`` and are used as codes directly (classes
        without samples are allowed and keep their place). If ``None``, the sorted unique labels
        are mapped to ``0..C-1`` and the original values are kept as ``class_ids``.
    min_classes:
        The fewest classes the caller accepts.
    """
    arr = _labels_to_numpy(labels)
    if num_classes is not None:
        num_classes = check_count(num_classes, name="num_classes", minimum=1)
    if arr.shape[0] != n_samples:
        raise ValueError(f"features and labels disagree in length: {n_samples} feature rows, {arr.shape[0]} labels")
    if num_classes is not None:
        if arr.size and arr.max() >= num_classes:
            raise ValueError(f"labels out of range: found label {int(arr.max())} but num_classes={num_classes}")
        class_ids = np.arange(num_classes)
        codes = arr
    else:
        class_ids, codes = np.unique(arr, return_inverse=True)
    if len(class_ids) < min_classes:
        raise ValueError(f"need at least {min_classes} classes, got {len(class_ids)}")
    codes_t = torch.from_numpy(np.ascontiguousarray(codes.astype(np.int64)))
    if device is not None:
        codes_t = codes_t.to(device)
    return EncodedLabels(codes=codes_t, class_ids=class_ids)
