"""Differentiable geometry kernels: the one normaliser, centring, and simplex-ETF distances.

Every kernel here is plain torch code that keeps gradients, so the NC metrics (float64 wrappers in
:mod:`ncprobe.core.metrics` and :mod:`ncprobe.core.crossmodal`) and the training losses (NPT and
Craft regularisers in :mod:`ncprobe.training`) share one copy of each formula.

Simplex ETF. C unit vectors with pairwise inner products −1/(C−1): the most separated
configuration of C equal-norm vectors; it exists iff C ≤ D + 1. Its Gram matrix is

    E = (C/(C−1)) I − (1/(C−1)) 11ᵀ,     ‖E‖_F = C/√(C−1).

Construction (Papyan et al. 2020; Yang et al. NeurIPS 2022 use the equivalent
√(C/(C−1)) P (I − 11ᵀ/C) with PᵀP = I, which needs D ≥ C): take an orthonormal basis V ∈ R^{C×(C−1)}
of the complement of 1 (so VVᵀ = I − 11ᵀ/C); the rows of √(C/(C−1)) V are a simplex ETF in R^{C−1},
embedded in R^D by any Q ∈ R^{(C−1)×D} with orthonormal rows. This works up to C = D + 1.

ETF structure distance (rhubarbwu/neural-collapse ``structure_error``): for a C×C product P,

    d(P) = ‖ P/‖P‖_F − Ê ‖_F,   Ê = (I − 11ᵀ/C)/√(C−1) = E/‖E‖_F,

scale-invariant, 0 iff P is a positive multiple of E, at most 2. When P has rank at most r < C−1
(C > D + 1, no simplex ETF exists) d(P) ≥ √(2 − 2√(r/(C−1))) (:func:`etf_error_floor`).
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = [
    "normalize_rows",
    "center_rows",
    "etf_gram",
    "etf_gram_distance",
    "etf_gram_deviation",
    "etf_structure_error",
    "etf_error_floor",
    "self_duality_distance",
    "paired_cosines",
    "simplex_etf",
    "nearest_etf",
    "near_etf",
    "align_frame",
]


# ------------------------------------------------------------------------------------- rows
def normalize_rows(x: torch.Tensor) -> torch.Tensor:
    """L2-normalise the last dimension: ``x / ‖x‖``. The one normaliser of ncprobe.

    A zero row stays zero (its norm is clamped at the dtype's smallest normal number, so the
    division is exact for every non-zero row and the gradient stays finite). Where a zero row is
    an *input error* (a class text embedding), the input checks reject it before this runs.

    >>> normalize_rows(torch.tensor([[3., 4.], [0., 0.]]))
    tensor([[0.6000, 0.8000],
            [0.0000, 0.0000]])
    """
    norms = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    return x / norms.clamp_min(torch.finfo(x.dtype).tiny)


def center_rows(x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Subtract the (optionally ``weights``-weighted) mean row: ``x − Σ_k w_k x_k / Σ_k w_k``.

    >>> center_rows(torch.tensor([[1., 0.], [3., 2.]]))
    tensor([[-1., -1.],
            [ 1.,  1.]])
    """
    if weights is None:
        return x - x.mean(dim=-2, keepdim=True)
    w = weights.to(x.dtype)
    return x - (w[:, None] * x).sum(-2, keepdim=True) / w.sum()


def paired_cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosines ``cos(a_k, b_k)`` of two (C, D) matrices (0 for a zero row)."""
    return (normalize_rows(a) * normalize_rows(b)).sum(-1)


# ------------------------------------------------------------------------------------- ETF Gram
def etf_gram(num_classes: int, *, dtype: torch.dtype = torch.float64, device: Any = None) -> torch.Tensor:
    """The simplex-ETF Gram matrix E = (C/(C−1)) I − (1/(C−1)) 11ᵀ (unit diagonal, −1/(C−1) elsewhere).

    >>> etf_gram(3)
    tensor([[ 1.0000, -0.5000, -0.5000],
            [-0.5000,  1.0000, -0.5000],
            [-0.5000, -0.5000,  1.0000]], dtype=torch.float64)
    """
    c = int(num_classes)
    if c < 2:
        raise ValueError(f"an ETF Gram needs at least 2 classes, got {c}")
    return torch.eye(c, dtype=dtype, device=device) * (c / (c - 1)) - 1.0 / (c - 1)


def _check_square(p: torch.Tensor) -> int:
    c = p.shape[-1]
    if p.ndim != 2 or p.shape[0] != c or c < 2:
        raise ValueError(f"expected a square C×C matrix with C ≥ 2, got shape {tuple(p.shape)}")
    return c


def etf_gram_distance(product: torch.Tensor) -> torch.Tensor:
    r"""Differentiable ETF structure distance ``‖ P/‖P‖_F − (I − 11ᵀ/C)/√(C−1) ‖_F`` (a 0-d tensor).

    Source: rhubarbwu/neural-collapse ``structure_error`` (the NC2 ``simplex_etf_error`` and the NC3
    ``self_duality_error`` are this distance of M̃M̃ᵀ and W M̃ᵀ). Scale-invariant, 0 iff P is a positive
    multiple of the ETF Gram, at most 2. A zero P gives 1 here (the float wrapper
    :func:`etf_structure_error` raises instead).

    >>> e = simplex_etf(4, 6, seed=0)
    >>> float(etf_gram_distance(e @ e.T)) < 1e-12
    True
    """
    c = _check_square(product)
    norm = torch.linalg.matrix_norm(product)
    ideal = (torch.eye(c, dtype=product.dtype, device=product.device) - 1.0 / c) / math.sqrt(c - 1)
    return torch.linalg.matrix_norm(product / norm.clamp_min(torch.finfo(product.dtype).tiny) - ideal)


def etf_gram_deviation(gram: torch.Tensor) -> torch.Tensor:
    r"""Mean squared deviation of a Gram matrix from the ETF Gram: ``‖ G − E ‖_F² / C²`` (0-d tensor).

    Not scale-invariant: meant for Gram matrices of unit vectors (cosines), where E is the target
    itself. This is the "structural" NPT candidate loss (``L = ‖T̂T̂ᵀ − E‖_F²/K²``; see
    ``docs/methods.md``). 0 iff G = E.

    >>> float(etf_gram_deviation(etf_gram(5)))
    0.0
    """
    c = _check_square(gram)
    return (gram - etf_gram(c, dtype=gram.dtype, device=gram.device)).pow(2).mean()


def etf_structure_error(product: Any) -> float:
    r"""Float64 ETF structure distance of a C×C product (a Python float; see :func:`etf_gram_distance`).

    Raises ``ValueError`` when the product is zero (all class means coincide): the distance is
    undefined then.

    >>> etf_structure_error(etf_gram(3)) < 1e-15
    True
    """
    p = torch.as_tensor(product).detach().double()
    _check_square(p)
    if not bool(torch.linalg.matrix_norm(p) > 0):
        raise ValueError("the product matrix is zero (all class means coincide): the ETF error is undefined")
    return float(etf_gram_distance(p))


def etf_error_floor(num_classes: int, rank: int) -> float:
    r"""The smallest ETF structure distance a C×C product of rank at most ``rank`` can have.

    ``√(2 − 2√(r/(C−1)))`` with r = min(rank, C−1); 0 when r = C − 1 (a simplex ETF exists).

    Derivation: Ê has C−1 equal eigenvalues 1/√(C−1) on 1^⊥. The closest unit-Frobenius matrix of rank
    r to it is Π_S/√r, Π_S the projector on an r-dimensional subspace S ⊂ 1^⊥ (Eckart–Young), at squared
    distance 1 + 1 − 2·r/√(r(C−1)). It is attained by class means M̃ with orthonormal columns spanning S
    (a tight frame, centred because S ⊥ 1), so for C > D + 1 features in R^D (r = D) this is the best
    achievable NC2 ETF error, the "near-ETF" target of ``nc2_etf_error_floor``.

    >>> etf_error_floor(10, 9)
    0.0
    >>> round(etf_error_floor(1000, 512), 4)
    0.7538
    """
    c = int(num_classes)
    if c < 2:
        raise ValueError(f"need at least 2 classes, got {c}")
    r = min(int(rank), c - 1)
    if r < 1:
        raise ValueError(f"rank must be at least 1, got {rank}")
    return math.sqrt(max(0.0, 2.0 - 2.0 * math.sqrt(r / (c - 1))))


def self_duality_distance(classifier: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    r"""Differentiable NC3 self-duality ``‖ W/‖W‖_F − M/‖M‖_F ‖_F²`` (0-d tensor; Papyan et al. 2020, Fig. 5).

    0 when W is a positive multiple of M; at most 4.
    """
    if classifier.shape != means.shape:
        raise ValueError(f"classifier and means differ in shape: {tuple(classifier.shape)} vs {tuple(means.shape)}")
    tiny = torch.finfo(classifier.dtype).tiny
    w = classifier / torch.linalg.matrix_norm(classifier).clamp_min(tiny)
    m = means / torch.linalg.matrix_norm(means).clamp_min(tiny)
    return (w - m).pow(2).sum()


# ------------------------------------------------------------------------------------- ETF frames
def _canonical(c: int, dtype: torch.dtype, device: Any) -> torch.Tensor:
    """Rows of √(C/(C−1)) V, V an orthonormal basis of 1^⊥ ⊂ R^C (Helmert basis via QR)."""
    centering = torch.eye(c, dtype=torch.float64) - 1.0 / c
    q, _ = torch.linalg.qr(centering[:, : c - 1])
    return (math.sqrt(c / (c - 1)) * q).to(dtype=dtype, device=device)


def _orthonormal_rows(rows: int, dim: int, seed: int | None) -> torch.Tensor:
    if seed is None:
        return torch.eye(rows, dim, dtype=torch.float64)
    g = torch.Generator().manual_seed(int(seed))
    q, r = torch.linalg.qr(torch.randn(dim, rows, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))[None, :]  # unique, uniformly distributed (Haar) frame
    return q.T


def simplex_etf(
    num_classes: int,
    dim: int,
    *,
    seed: int | None = None,
    approximate: bool = False,
    dtype: torch.dtype = torch.float64,
    device: Any = None,
) -> torch.Tensor:
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
        raise ValueError(
            f"a simplex ETF of {c} vectors needs dim >= {c - 1}, got dim={d}; "
            "pass approximate=True for a near-ETF (minimal maximal coherence)"
        )
    frame = _canonical(c, torch.float64, None) @ _orthonormal_rows(c - 1, d, seed)
    return frame.to(dtype=dtype, device=device)


def nearest_etf(vectors: torch.Tensor, *, center: bool = True) -> torch.Tensor:
    r"""The simplex ETF closest to C given vectors, by orthogonal Procrustes.

    Solves ``min_R ‖ S R − V̂ ‖_F`` over R ∈ R^{(C−1)×D} with orthonormal rows, where S is the canonical
    ETF (C×(C−1)) and V̂ the (optionally centred) vectors scaled to unit root-mean-square row norm:
    with SᵀV̂ = UΣWᵀ (thin SVD), R = UWᵀ (Schönemann 1966). Row k of the result is the ETF vertex
    assigned to vector k; e.g. NPT-style regularisers anchor class text features to it.

    Parameters
    ----------
    vectors:
        (C, D) tensor, C ≤ D + 1 (checked by the caller's input validation).
    center:
        Subtract the mean vector first (an ETF is centred; CLIP features sit in a narrow cone).

    Returns
    -------
    (C, D) float64 tensor with unit-norm rows forming a simplex ETF.
    """
    v = torch.as_tensor(vectors).detach().double()
    if v.ndim != 2:
        raise ValueError(f"vectors must have shape (n_classes, dim), got {tuple(v.shape)}")
    c, d = v.shape
    if c < 2 or c > d + 1:
        raise ValueError(f"nearest_etf needs 2 <= n_classes <= dim + 1, got n_classes={c}, dim={d}")
    if not bool(torch.isfinite(v).all()):
        raise ValueError("vectors contain NaN or inf values")
    if center:
        v = center_rows(v)
    v = v / v.norm(dim=1).pow(2).mean().sqrt().clamp_min(1e-300)
    s = _canonical(c, torch.float64, v.device)
    u, _, wh = torch.linalg.svd(s.T @ v, full_matrices=False)
    return s @ (u @ wh)


def align_frame(frame: torch.Tensor, vectors: torch.Tensor, *, center: bool = True) -> torch.Tensor:
    r"""Rotate a fixed frame toward C given vectors by orthogonal Procrustes, keeping its Gram matrix.

    Solves ``min_R ‖ F R − V̂ ‖_F`` over orthogonal R ∈ R^{D×D}, F the (C, D) frame and V̂ the (optionally
    centred) vectors: with FᵀV̂ = UΣWᵀ (SVD), R = UWᵀ (Schönemann 1966). Row k of the result is the frame's
    vertex assigned to vector k. This is how a :func:`near_etf` (C > D + 1, no exact ETF exists) is aligned to
    features, as :func:`nearest_etf` aligns an exact ETF; the rotation leaves every pairwise cosine unchanged.

    Returns
    -------
    (C, D) float64 tensor ``F R``.
    """
    f = torch.as_tensor(frame).detach().double()
    v = torch.as_tensor(vectors).detach().double().to(f.device)
    if f.ndim != 2 or f.shape != v.shape:
        raise ValueError(f"frame and vectors must both be (n_classes, dim), got {tuple(f.shape)} and {tuple(v.shape)}")
    if not bool(torch.isfinite(v).all()):
        raise ValueError("vectors contain NaN or inf values")
    if center:
        v = center_rows(v)
    u, _, wh = torch.linalg.svd(f.T @ v)
    return f @ (u @ wh)


def near_etf(
    num_classes: int,
    dim: int,
    *,
    seed: int = 0,
    steps: int = 2000,
    temperature: float = 0.02,
    dtype: torch.dtype = torch.float64,
    device: Any = None,
) -> torch.Tensor:
    """An approximate simplex ETF for C > D + 1, where no exact one exists.

    Minimises a soft maximum (log-sum-exp at ``temperature``) of the pairwise cosines of C unit vectors
    in R^D by Adam on the sphere, from a seeded random start: a near-minimal-coherence frame (the
    Welch bound √((C−D)/(D(C−1))) bounds how low the largest cosine can go). This is an approximation,
    not an ETF: check the attained ``max cos`` if it matters. For C ≤ D + 1 it returns the exact
    :func:`simplex_etf`. Runs on ``device`` (a GPU makes C = 1000 take well under a second).
    """
    c, d = int(num_classes), int(dim)
    if c <= d + 1:
        return simplex_etf(c, d, seed=seed, dtype=dtype, device=device)
    g = torch.Generator().manual_seed(int(seed))
    x = torch.randn(c, d, generator=g, dtype=torch.float64).to(device)
    x = torch.nn.Parameter(normalize_rows(x))
    opt = torch.optim.Adam([x], lr=0.01)
    off = ~torch.eye(c, dtype=torch.bool, device=x.device)
    with torch.enable_grad():
        for _ in range(int(steps)):
            u = normalize_rows(x)
            cos = (u @ u.T)[off]
            loss = temperature * torch.logsumexp(cos / temperature, 0)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return normalize_rows(x.detach()).to(dtype=dtype, device=device)
