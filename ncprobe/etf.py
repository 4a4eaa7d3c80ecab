"""Simplex equiangular tight frame (ETF) geometry.

A simplex ETF of C unit vectors in R^D has pairwise inner products −1/(C−1), the most separated
configuration of C equal-norm vectors; it exists iff C ≤ D + 1. Its Gram matrix is

    E = (C/(C−1)) I − (1/(C−1)) 11ᵀ,     ‖E‖_F = C/√(C−1).

Construction (Papyan et al. 2020; Yang et al. NeurIPS 2022 use the equivalent
√(C/(C−1)) P (I − 11ᵀ/C) with PᵀP = I, which needs D ≥ C): take an orthonormal basis V ∈ R^{C×(C−1)}
of the complement of 1 (so VVᵀ = I − 11ᵀ/C); the rows of √(C/(C−1)) V are a simplex ETF in R^{C−1},
embedded in R^D by any Q ∈ R^{(C−1)×D} with orthonormal rows. This works up to C = D + 1.
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["simplex_etf", "etf_gram", "etf_structure_error", "nearest_etf", "near_etf"]


def _canonical(c: int, dtype: torch.dtype, device: Any) -> torch.Tensor:
    """Rows of √(C/(C−1)) V, V an orthonormal basis of 1^⊥ ⊂ R^C (Helmert basis via QR)."""
    centering = torch.eye(c, dtype=torch.float64) - 1.0 / c
    q, _ = torch.linalg.qr(centering[:, : c - 1])
    return (math.sqrt(c / (c - 1)) * q).to(dtype=dtype, device=device)


def _orthonormal_rows(rows: int, dim: int, seed: int | None, dtype: torch.dtype, device: Any) -> torch.Tensor:
    if seed is None:
        return torch.eye(rows, dim, dtype=dtype, device=device)
    g = torch.Generator().manual_seed(int(seed))
    q, r = torch.linalg.qr(torch.randn(dim, rows, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))[None, :]  # unique, uniformly distributed (Haar) frame
    return q.T.to(dtype=dtype, device=device)


def simplex_etf(num_classes: int, dim: int, *, seed: int | None = None, approximate: bool = False,
                dtype: torch.dtype = torch.float64, device: Any = None) -> torch.Tensor:
    """A (C, D) matrix whose rows are a simplex ETF: unit norm, pairwise inner products −1/(C−1).

    Parameters
    ----------
    num_classes:
        C ≥ 2.
    dim:
        D; a simplex ETF needs C ≤ D + 1.
    seed:
        ``None``: the canonical ETF in the first C−1 coordinates. An int: a uniformly random rotation of
        it (seeded, reproducible).
    approximate:
        When C > D + 1 no simplex ETF exists; ``True`` returns :func:`near_etf` (a documented
        approximation minimising the largest pairwise cosine) instead of raising.

    Examples
    --------
    >>> e = simplex_etf(4, 8, seed=0)
    >>> torch.allclose(e @ e.T, etf_gram(4))
    True
    """
    c, d = int(num_classes), int(dim)
    if c < 2:
        raise ValueError(f"a simplex ETF needs at least 2 vectors, got num_classes={c}")
    if c > d + 1:
        if approximate:
            return near_etf(c, d, seed=0 if seed is None else seed, dtype=dtype, device=device)
        raise ValueError(f"a simplex ETF of {c} vectors needs dim >= {c - 1}, got dim={d}; "
                         "pass approximate=True for a near-ETF (minimal maximal coherence)")
    return _canonical(c, torch.float64, None).mm(_orthonormal_rows(c - 1, d, seed, torch.float64, None)).to(
        dtype=dtype, device=device)


def etf_gram(num_classes: int, *, dtype: torch.dtype = torch.float64, device: Any = None) -> torch.Tensor:
    """The simplex-ETF Gram matrix E = (C/(C−1)) I − (1/(C−1)) 11ᵀ (unit diagonal, −1/(C−1) elsewhere)."""
    c = int(num_classes)
    if c < 2:
        raise ValueError(f"an ETF Gram needs at least 2 classes, got {c}")
    return (torch.eye(c, dtype=dtype, device=device) * (c / (c - 1)) - 1.0 / (c - 1)).to(dtype)


def etf_structure_error(product: torch.Tensor) -> float:
    r"""``‖ P/‖P‖_F − (I − 11ᵀ/C)/√(C−1) ‖_F`` for a C×C product P (e.g. a Gram M̃M̃ᵀ or W M̃ᵀ).

    The subtracted matrix is the ETF Gram scaled to unit Frobenius norm, so the error is
    scale-invariant, 0 iff P is a positive multiple of the ETF Gram, and at most 2.
    """
    p = product.double()
    c = p.shape[0]
    if p.shape != (c, c) or c < 2:
        raise ValueError(f"expected a square C×C matrix with C ≥ 2, got shape {tuple(p.shape)}")
    norm = torch.linalg.matrix_norm(p)
    if not bool(norm > 0):
        raise ValueError("the product matrix is zero (all class means coincide): the ETF error is undefined")
    ideal = (torch.eye(c, dtype=torch.float64, device=p.device) - 1.0 / c) / math.sqrt(c - 1)
    return float(torch.linalg.matrix_norm(p / norm - ideal))


def nearest_etf(vectors: Any, *, center: bool = True, seed: int | None = None) -> torch.Tensor:
    r"""The simplex ETF closest to C given vectors, by orthogonal Procrustes.

    Solves ``min_R ‖ S R − V̂ ‖_F`` over R ∈ R^{(C−1)×D} with orthonormal rows, where S is the canonical
    ETF (C×(C−1)) and V̂ the (optionally centred) vectors scaled to unit root-mean-square row norm:
    with SᵀV̂ = UΣWᵀ (thin SVD), R = UWᵀ (Schönemann 1966). Row k of the result is the ETF vertex
    assigned to vector k; e.g. NPT-style regularisers can anchor class text features to it.

    Parameters
    ----------
    vectors:
        (C, D) array or tensor, C ≤ D + 1.
    center:
        Subtract the mean vector first (an ETF is centred; CLIP features sit in a narrow cone).

    Returns
    -------
    (C, D) float64 tensor with unit-norm rows forming a simplex ETF.
    """
    from ._validation import check_features

    v = check_features(vectors, name="vectors").double()
    c, d = v.shape
    if c < 2 or c > d + 1:
        raise ValueError(f"nearest_etf needs 2 <= C <= D + 1, got C={c}, D={d}")
    if center:
        v = v - v.mean(0)
    v = v / v.norm(dim=1).pow(2).mean().sqrt().clamp_min(1e-300)
    s = _canonical(c, torch.float64, v.device)
    u, _, wh = torch.linalg.svd(s.T @ v, full_matrices=False)
    return s @ (u @ wh)


def near_etf(num_classes: int, dim: int, *, seed: int = 0, steps: int = 2000, temperature: float = 0.02,
             dtype: torch.dtype = torch.float64, device: Any = None) -> torch.Tensor:
    """An approximate simplex ETF for C > D + 1, where no exact one exists.

    Minimises a soft maximum (log-sum-exp at ``temperature``) of the pairwise cosines of C unit vectors
    in R^D by Adam on the sphere, from a seeded random start: a near-minimal-coherence frame (the
    Welch bound √((C−D)/(D(C−1))) bounds how low the largest cosine can go). This is an approximation,
    not an ETF: check the attained ``max cos`` if it matters.
    """
    c, d = int(num_classes), int(dim)
    if c <= d + 1:
        return simplex_etf(c, d, seed=seed, dtype=dtype, device=device)
    g = torch.Generator().manual_seed(int(seed))
    x = torch.randn(c, d, generator=g, dtype=torch.float64)
    x = torch.nn.Parameter(x / x.norm(dim=1, keepdim=True))
    opt = torch.optim.Adam([x], lr=0.01)
    off = ~torch.eye(c, dtype=torch.bool)
    for _ in range(int(steps)):
        u = x / x.norm(dim=1, keepdim=True)
        cos = (u @ u.T)[off]
        loss = temperature * torch.logsumexp(cos / temperature, 0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = x / x.norm(dim=1, keepdim=True)
    return out.detach().to(dtype=dtype, device=device)
