"""Maximum mean discrepancy with a multi-bandwidth Gaussian kernel (Gretton et al., JMLR 2012),
as used by Craft over anchor-aligned feature spaces.

Kernel (Craft ``trainers/maple_ood.py``: ``MMD(x, y, kernel="rbf")``): for squared distance d,

    k(d) = Σ_{a ∈ bandwidths} exp(−d / (2a)),     a = σ² (Craft: {10, 15, 20, 50}).

Estimators of MMD²(P, Q) from x ~ P (n rows) and y ~ Q (m rows):

* biased V-statistic: mean(K_xx) + mean(K_yy) − 2 mean(K_xy) (diagonals included; what Craft
  computes; needs no equal sizes here, although Craft's code does);
* unbiased U-statistic: off-diagonal means of K_xx and K_yy, minus 2 mean(K_xy) (Gretton et al.,
  Lemma 6); may be negative; needs n, m ≥ 2.

Craft min–max normalises each matrix per column over its rows before the kernel
((v − min)/(max − min + 1e-8)); ``normalize="minmax"`` reproduces that.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

import torch

from ._validation import check_features

__all__ = ["mmd2", "gaussian_kernel", "minmax_normalize", "CRAFT_BANDWIDTHS"]

CRAFT_BANDWIDTHS = (10.0, 15.0, 20.0, 50.0)


def minmax_normalize(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-column min–max scaling over rows: ``(x − min) / (max − min + eps)`` (Craft's normalisation)."""
    lo = x.min(dim=0, keepdim=True).values
    hi = x.max(dim=0, keepdim=True).values
    return (x - lo) / (hi - lo + eps)


def _sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    aa = (a * a).sum(1, keepdim=True)
    bb = (b * b).sum(1, keepdim=True)
    return (aa + bb.T - 2.0 * a @ b.T).clamp_min(0.0)


def gaussian_kernel(a: torch.Tensor, b: torch.Tensor, bandwidths: Sequence[float] = CRAFT_BANDWIDTHS) -> torch.Tensor:
    """Multi-bandwidth Gaussian kernel matrix ``Σ_σ² exp(−‖a_i − b_j‖² / (2σ²))``."""
    if len(bandwidths) == 0 or any(float(s) <= 0 for s in bandwidths):
        raise ValueError(f"bandwidths must be positive numbers, got {list(bandwidths)}")
    d = _sq_dists(a, b)
    return sum(torch.exp(-0.5 * d / float(s)) for s in bandwidths)


def _as_float(x: Any, name: str) -> torch.Tensor:
    """A 2-D floating tensor computed in at least float32 (half precision loses the kernel's small
    differences: bf16 gave 0.125 where float64 gives 0.0926 on the same data). Tensors keep their autograd
    graph; other inputs (numpy, lists) are converted and checked for NaN/inf."""
    t = x if isinstance(x, torch.Tensor) else check_features(x, name=name, shape_hint="(n_samples, dim)")
    if t.ndim != 2:
        raise ValueError(f"{name} must have shape (n_samples, dim), got {tuple(t.shape)}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {t.dtype}")
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def mmd2(
    x: Any,
    y: Any,
    *,
    bandwidths: Sequence[float] = CRAFT_BANDWIDTHS,
    estimator: Literal["biased", "unbiased"] = "biased",
    normalize: Literal["minmax"] | None = None,
) -> torch.Tensor:
    r"""Squared MMD between samples ``x`` (n×d) and ``y`` (m×d); differentiable scalar tensor.

    Parameters
    ----------
    bandwidths:
        Kernel variances σ² (Craft: 10, 15, 20, 50, meant for min–max-normalised logits).
    estimator:
        ``"biased"`` (V-statistic, Craft) or ``"unbiased"`` (U-statistic; allows n ≠ m).
    normalize:
        ``"minmax"`` scales each input per column to [0, 1] first (Craft), or ``None``.

    Inputs may be numpy arrays or tensors of any float dtype; float16/bfloat16 are computed in float32, and
    mixed inputs in the wider of the two dtypes. Gradients flow to tensor inputs.

    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(200, 3, generator=g)
    >>> float(mmd2(x, x)) == 0.0
    True
    """
    x, y = _as_float(x, "x"), _as_float(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have equal column counts, got {tuple(x.shape)} and {tuple(y.shape)}")
    dtype = torch.promote_types(x.dtype, y.dtype)
    x, y = x.to(dtype), y.to(device=x.device, dtype=dtype)
    if normalize == "minmax":
        x, y = minmax_normalize(x), minmax_normalize(y)
    elif normalize is not None:
        raise ValueError(f"normalize must be 'minmax' or None, got {normalize!r}")
    kxx = gaussian_kernel(x, x, bandwidths)
    kyy = gaussian_kernel(y, y, bandwidths)
    kxy = gaussian_kernel(x, y, bandwidths)
    if estimator == "biased":
        return kxx.mean() + kyy.mean() - 2.0 * kxy.mean()
    if estimator != "unbiased":
        raise ValueError(f"estimator must be 'biased' or 'unbiased', got {estimator!r}")
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError(f"the unbiased estimator needs at least 2 samples on each side, got {n} and {m}")
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return sxx + syy - 2.0 * kxy.mean()
