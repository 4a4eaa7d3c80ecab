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

from typing import Literal, Sequence

import torch

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


def mmd2(x: torch.Tensor, y: torch.Tensor, *, bandwidths: Sequence[float] = CRAFT_BANDWIDTHS,
         estimator: Literal["biased", "unbiased"] = "biased",
         normalize: Literal["minmax"] | None = None) -> torch.Tensor:
    r"""Squared MMD between samples ``x`` (n×d) and ``y`` (m×d); differentiable scalar tensor.

    Parameters
    ----------
    bandwidths:
        Kernel variances σ² (Craft: 10, 15, 20, 50, meant for min–max-normalised logits).
    estimator:
        ``"biased"`` (V-statistic, Craft) or ``"unbiased"`` (U-statistic; allows n ≠ m).
    normalize:
        ``"minmax"`` scales each input per column to [0, 1] first (Craft), or ``None``.

    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(200, 3, generator=g)
    >>> float(mmd2(x, x)) == 0.0
    True
    """
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must be 2-D with equal column counts, got {tuple(x.shape)} and {tuple(y.shape)}")
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
