"""Neural-collapse metrics NC1–NC4, one function per metric.

Notation (Papyan, Han & Donoho, PNAS 2020; Kothapalli, TMLR 2023). Features h_i ∈ R^D with labels
y_i ∈ {1..C}; n_k samples in class k, N = Σ n_k.

* class means μ_k = (1/n_k) Σ_{y_i=k} h_i; global mean μ_G = (1/C) Σ_k μ_k — the **unweighted** mean
  of class means (it does not move when classes are imbalanced); M̃ ∈ R^{C×D} has rows μ̃_k = μ_k − μ_G;
* Σ_W = (1/N) Σ_i (h_i − μ_{y_i})(h_i − μ_{y_i})ᵀ — **sample-weighted** within-class covariance;
* Σ_B = (1/C) Σ_k μ̃_k μ̃_kᵀ = M̃ᵀM̃ / C;
* standard deviations use ddof = 0.

Every function takes either ``(features, labels)`` (any float array or tensor, integer labels) or
a :class:`~ncprobe.ClassStatistics` as the first argument, and returns a Python float (scalar
metrics) or a numpy array (per-class / per-pair values). All arithmetic is float64.

Classes with a single sample have no within-class spread: metrics of within-class variability
(NC1, NC1 quotient, CDNV) warn and exclude them (:class:`SingletonClassWarning` names them).
Classes without samples (possible in a streamed :class:`ClassStatistics`) are left out everywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._validation import check_nonnegative
from .geometry import etf_gram_distance, etf_structure_error, self_duality_distance
from .inmemory import as_geometry, compute_statistics
from .prepared import SingletonClassWarning, as_embeddings
from .statistics import ClassStatistics

__all__ = [
    "SingletonClassWarning",
    "nc1",
    "nc1_quotient",
    "cdnv",
    "cdnv_pairs",
    "class_variances",
    "nc2_equinorm",
    "nc2_equiangularity",
    "nc2_max_angle",
    "nc2_max_cosine",
    "nc2_etf_error",
    "nc2_values",
    "mean_over_pairs",
    "class_mean_norms",
    "nc3_self_duality",
    "nc3_duality_gram",
    "nc4_ncc_agreement",
    "ncc_accuracy",
    "default_pinv_rtol",
    "vci",
]


def default_pinv_rtol(num_classes: int, dim: int) -> float:
    """Default relative eigenvalue cut-off of the pseudo-inverse: ``max(C, D) · eps(float64)``
    (the convention of ``torch.linalg.pinv`` and ``numpy.linalg.matrix_rank``)."""
    return max(num_classes, dim) * float(np.finfo(np.float64).eps)


# ------------------------------------------------------------------------------------------- NC1
def nc1(features: Any, labels: Any = None, *, pinv_rtol: float | None = None, **kw) -> float:
    r"""NC1, within-class variability collapse: ``tr(Σ_W Σ_B^†) / C``.

    Source: Papyan, Han & Donoho (2020), eq. for NC1 (Fig. 6). Σ_B^† is the eigen-decomposition
    pseudo-inverse: eigenvalues λ_j of Σ_B with λ_j ≤ ``pinv_rtol``·λ_max are treated as zero. The
    default ``pinv_rtol`` is ``max(C, D)·eps(float64)`` (:func:`default_pinv_rtol`).

    Computation: with G = M̃M̃ᵀ (C×C) and K = M̃ S_W M̃ᵀ (S_W = N Σ_W), the identity
    Σ_B^† = C M̃ᵀ G^{†2} M̃ gives ``tr(Σ_W Σ_B^†)/C = tr(G^{†2} K)/N``, so only C×C matrices are needed
    (when C ≥ D the D×D form ``Σ_j u_jᵀΣ_W u_j/λ_j`` over the eigenpairs of Σ_B is used instead).

    Parameters
    ----------
    features, labels:
        (N, D) features and (N,) labels, or a :class:`ClassStatistics` (with its scatter) or a
        :class:`~ncprobe.core.prepared.ClassGeometry`.
    pinv_rtol:
        Relative eigenvalue tolerance of the pseudo-inverse.

    Returns
    -------
    float — 0 for perfectly collapsed classes; grows as within-class spread grows.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> means = 10 * np.eye(3, 4); y = np.repeat(np.arange(3), 200)
    >>> x = means[y] + rng.normal(size=(600, 4))
    >>> nc1(x, y) < 0.05      # unit noise against well separated means
    True
    """
    geom = as_geometry(features, labels, **kw)
    stats = geom.stats
    if stats.scatter is None and stats.projected_scatter is None:
        raise ValueError("nc1 needs the within-class scatter: use ClassStatistics(track_scatter=True)")
    valid = geom.variability_classes("nc1")
    c, d = int(valid.sum()), stats.dim
    n = stats.counts[valid].sum()
    mt = geom.centered_means_of(valid)
    rtol = default_pinv_rtol(c, d) if pinv_rtol is None else check_nonnegative(pinv_rtol, name="pinv_rtol")
    if stats.scatter is not None and d < c:
        sigma_b = mt.T @ mt / c
        evals, evecs = torch.linalg.eigh(sigma_b)
        keep = evals > rtol * evals.max()
        u = evecs[:, keep]
        quad = ((u.T @ stats.scatter) * u.T).sum(1) / n
        return float((quad / evals[keep]).sum() / c)
    if stats.scatter is not None:
        k = mt @ stats.scatter @ mt.T
    else:
        k = _restrict_projected(stats, valid)
    g = mt @ mt.T
    evals, evecs = torch.linalg.eigh(g)
    keep = evals > rtol * evals.max()
    v = evecs[:, keep]
    quad = ((v.T @ k) * v.T).sum(1)
    return float((quad / evals[keep] ** 2).sum() / n)


def _restrict_projected(stats: ClassStatistics, valid: torch.Tensor) -> torch.Tensor:
    """K for a subset S of the classes from K over all present classes: M̃_S = P M̃ with
    P = E_S − (1/|S|) 1 1_Sᵀ E_S, so K_S = P K Pᵀ (rows of M̃ span the re-centring shift)."""
    present = stats.counts > 0
    k_all = stats.projected_scatter
    idx_present = present.nonzero().flatten()
    if bool((valid == present).all()):
        return k_all[idx_present][:, idx_present]
    sel = valid[idx_present].double()
    p = torch.diag(sel)[sel > 0] - sel[None, :] / sel.sum()
    k_p = k_all[idx_present][:, idx_present]
    return p @ k_p @ p.T


def nc1_quotient(features: Any, labels: Any = None, **kw) -> float:
    r"""NC1 quotient variant ``tr Σ_W / tr Σ_B`` (e.g. Tirer, Huang & Niles-Weed 2023).

    Returns a float; 0 for collapsed classes. Needs no pseudo-inverse and no D×D scatter.

    >>> import numpy as np
    >>> x = np.array([[0., 1], [0, -1], [4, 1], [4, -1]]); y = np.array([0, 0, 1, 1])
    >>> nc1_quotient(x, y)   # tr Σ_W = 1, tr Σ_B = 4
    0.25
    """
    geom = as_geometry(features, labels, **kw)
    stats = geom.stats
    valid = geom.variability_classes("nc1_quotient")
    tr_w = stats.class_ss[valid].sum() / stats.counts[valid].sum()
    mt = geom.centered_means_of(valid)
    tr_b = (mt * mt).sum() / int(valid.sum())
    return float(tr_w / tr_b)


def class_variances(features: Any, labels: Any = None, **kw) -> np.ndarray:
    """Per-class total variance Var_k = (1/n_k) Σ_{i∈k} ‖h_i − μ_k‖² (NaN for classes with < 2 samples)."""
    stats = as_geometry(features, labels, **kw).stats
    var = stats.class_variances.cpu().numpy().copy()
    var[(stats.counts < 2).cpu().numpy()] = np.nan
    return var


def cdnv_pairs(features: Any, labels: Any = None, **kw) -> np.ndarray:
    r"""Class-distance normalised variance per pair (Galanti, György & Hutter, ICLR 2022):

    ``CDNV(k, k') = (Var_k + Var_k') / (2 ‖μ_k − μ_k'‖²)``, Var_k as in :func:`class_variances`.

    Returns a (C, C) symmetric array with NaN on the diagonal and for classes with < 2 samples.
    """
    geom = as_geometry(features, labels, **kw)
    stats = geom.stats
    valid = geom.variability_classes("cdnv")
    var = stats.class_variances
    diff = torch.cdist(stats.means, stats.means).pow(2)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = ((var[:, None] + var[None, :]) / (2 * diff)).cpu().numpy()
    mask = valid.cpu().numpy()
    out[~mask, :] = np.nan
    out[:, ~mask] = np.nan
    np.fill_diagonal(out, np.nan)
    return out


def cdnv(features: Any, labels: Any = None, **kw) -> float:
    """Mean CDNV over unordered pairs of distinct classes (see :func:`cdnv_pairs`); → 0 under collapse.

    >>> import numpy as np
    >>> x = np.array([[0., 1], [0, -1], [4, 1], [4, -1]]); y = np.array([0, 0, 1, 1])
    >>> cdnv(x, y)   # (1 + 1) / (2 · 16)
    0.0625
    """
    return mean_over_pairs(cdnv_pairs(features, labels, **kw))


def mean_over_pairs(pairs: np.ndarray) -> float:
    """Mean of a symmetric per-pair array over unordered pairs k < k', ignoring NaN (excluded classes)."""
    iu = np.triu_indices_from(pairs, k=1)
    return float(np.nanmean(pairs[iu]))


def vci(features: Any, labels: Any = None, *, pinv_rtol: float | None = None, **kw) -> float:
    r"""Variability collapse index ``1 − tr(Σ_T^† Σ_B^n) / rank(Σ_B^n)`` (Xu & Liu, ICML 2023).

    Σ_B^n = Σ_k (n_k/N)(μ_k − μ̄)(μ_k − μ̄)ᵀ is the *sample-weighted* between-class covariance (μ̄ the sample
    mean) and Σ_T = Σ_W + Σ_B^n the total covariance, as in the paper, so that the index is invariant to any
    invertible linear map of the features (on balanced data Σ_B^n equals the Σ_B of :func:`nc1`). In [0, 1]:
    0 when Σ_W = 0. Pseudo-inverse and rank use eigenvalue cut-offs ``pinv_rtol``·λ_max (default
    ``max(C, D)·eps``). Needs the full D×D scatter (``measure(..., scatter="full")`` or streamed statistics).

    With isotropic Σ_W = σ²I and Σ_B^n eigenvalues λ_j (rank r): ``1 − (1/r) Σ_j λ_j/(σ² + λ_j)``.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(np.arange(3), 500); x = 10 * np.eye(3, 4)[y] + rng.normal(size=(1500, 4))
    >>> 0 < vci(x, y, scatter="full") < 0.05
    True
    """
    geom = as_geometry(features, labels, **kw)
    stats = geom.stats
    if stats.scatter is None:
        raise ValueError(
            "vci needs the full within-class scatter: pass scatter='full' (in-memory) or stream "
            "with ClassStatistics(track_scatter=True)"
        )
    present = geom.present
    counts = stats.counts[present]
    n = counts.sum()
    means = stats.means[present]
    centred = means - (counts[:, None] * means).sum(0) / n
    b = centred * (counts / n).sqrt()[:, None]
    sigma_b = b.T @ b
    sigma_t = stats.scatter / n + sigma_b
    d = stats.dim
    rtol = default_pinv_rtol(len(counts), d) if pinv_rtol is None else check_nonnegative(pinv_rtol, name="pinv_rtol")
    evals_b = torch.linalg.eigvalsh(b @ b.T)
    rank = int((evals_b > rtol * evals_b.max()).sum())
    evals, evecs = torch.linalg.eigh(sigma_t)
    keep = evals > rtol * evals.max()
    u = evecs[:, keep]
    bu = b @ u
    return float(1.0 - ((bu * bu).sum(0) / evals[keep]).sum() / rank)


# ------------------------------------------------------------------------------------------- NC2
def nc2_values(features: Any, labels: Any = None, **kw) -> dict[str, float]:
    """All NC2 scalars from one computation of the centred means' norms and cosines:
    ``nc2_equinorm``, ``nc2_equiangularity``, ``nc2_max_angle``, ``nc2_max_cosine``, ``nc2_etf_error``
    (each defined in the function of that name)."""
    geom = as_geometry(features, labels, **kw)
    norms, cos, c = geom.mean_norms, geom.off_diagonal_cosines, geom.num_present
    mt = geom.centered_means
    return {
        "nc2_equinorm": float(norms.std(correction=0) / norms.mean()),
        "nc2_equiangularity": float(cos.std(correction=0)),
        "nc2_max_angle": float((cos + 1.0 / (c - 1)).abs().mean()),
        "nc2_max_cosine": float(cos.max()),
        "nc2_etf_error": float(etf_gram_distance(mt @ mt.T)),
    }


def class_mean_norms(features: Any, labels: Any = None, **kw) -> np.ndarray:
    """Per-class norms ‖μ_k − μ_G‖ of the centred class means (NaN for classes without samples)."""
    geom = as_geometry(features, labels, **kw)
    return geom.scatter_per_present(geom.mean_norms)


def nc2_equinorm(features: Any, labels: Any = None, **kw) -> float:
    """NC2 equinorm: coefficient of variation ``std_k ‖μ̃_k‖ / mean_k ‖μ̃_k‖`` (ddof = 0).

    Source: Papyan et al. (2020), Fig. 2. 0 when all centred class means have equal length.
    """
    return nc2_values(features, labels, **kw)["nc2_equinorm"]


def nc2_equiangularity(features: Any, labels: Any = None, **kw) -> float:
    """NC2 equiangularity: ``std_{k≠k'} cos(μ̃_k, μ̃_k')`` (ddof = 0; Papyan et al. 2020, Fig. 3)."""
    return nc2_values(features, labels, **kw)["nc2_equiangularity"]


def nc2_max_angle(features: Any, labels: Any = None, **kw) -> float:
    """NC2 maximal-angle equiangularity: ``mean_{k≠k'} |cos(μ̃_k, μ̃_k') + 1/(C−1)|``
    (Papyan et al. 2020, Fig. 4). 0 exactly when the centred means are a simplex ETF's directions."""
    return nc2_values(features, labels, **kw)["nc2_max_angle"]


def nc2_max_cosine(features: Any, labels: Any = None, **kw) -> float:
    """Largest pairwise cosine ``max_{k≠k'} cos(μ̃_k, μ̃_k')`` — the closest pair of classes.
    A simplex ETF attains the minimum possible value, −1/(C−1)."""
    return nc2_values(features, labels, **kw)["nc2_max_cosine"]


def nc2_etf_error(features: Any, labels: Any = None, **kw) -> float:
    r"""NC2 distance to a simplex ETF: ``‖ G/‖G‖_F − (I − 11ᵀ/C)/√(C−1) ‖_F`` with G = M̃M̃ᵀ.

    Source: the ``simplex_etf_error`` of rhubarbwu/neural-collapse (``measure.py``); the target is
    the ETF Gram (C/(C−1))(I − 11ᵀ/C) normalised to unit Frobenius norm. Scale-invariant, 0 for an
    exact (scaled, rotated) simplex ETF, at most 2.
    """
    return nc2_values(features, labels, **kw)["nc2_etf_error"]


# ------------------------------------------------------------------------------------------- NC3
def _classifier_and_means(classifier: Any, features: Any, labels: Any, kw: dict) -> tuple[torch.Tensor, torch.Tensor]:
    geom = as_geometry(features, labels, **kw)
    w = as_embeddings(classifier, geom, role="classifier").weights[geom.present]
    return w, geom.centered_means


def nc3_self_duality(classifier: Any, features: Any, labels: Any = None, **kw) -> float:
    r"""NC3 self-duality ``‖ W/‖W‖_F − M̃/‖M̃‖_F ‖_F²`` (Papyan et al. 2020, Fig. 5).

    ``classifier`` is W (C×D), ``(W, b)`` or an ``nn.Linear``, one row per class (for a CLIP model: the
    class text embeddings). 0 when the classifier is a positive multiple of the centred class means; at
    most 4. Kernel: :func:`ncprobe.core.geometry.self_duality_distance`.
    """
    w, mt = _classifier_and_means(classifier, features, labels, kw)
    return float(self_duality_distance(w, mt))


def nc3_duality_gram(classifier: Any, features: Any, labels: Any = None, **kw) -> float:
    r"""NC3 in Gram form: ``‖ W M̃ᵀ/‖W M̃ᵀ‖_F − (I − 11ᵀ/C)/√(C−1) ‖_F``.

    Source: ``alignment_error`` / ``self_duality_error`` of rhubarbwu/neural-collapse. Invariant to a
    rotation applied to both W and the features, and to scaling either; 0 when W ∝ M̃ and M̃ is an ETF.
    """
    w, mt = _classifier_and_means(classifier, features, labels, kw)
    return etf_structure_error(w @ mt.T)


# ------------------------------------------------------------------------------------------- NC4
def _decisions(features: Any, labels: Any, classifier: Any, kw: dict):
    if isinstance(features, ClassStatistics):
        raise TypeError(
            "NC4 needs the samples (a second pass): pass features and labels, or use "
            "DecisionStatistics for streamed data"
        )
    classifiers = {"classifier": classifier} if classifier is not None else None
    _, dec = compute_statistics(features, labels, classifiers=classifiers, **kw)
    return dec


def nc4_ncc_agreement(classifier: Any, features: Any, labels: Any, **kw) -> float:
    """NC4: fraction of samples where the classifier's decision ``argmax_k h·w_k (+ b_k)`` equals the
    nearest-class-centre decision ``argmin_k ‖h − μ_k‖`` (Papyan et al. 2020, Fig. 7, as agreement).

    ``classifier`` is W (C×D) or ``(W, b)``. Returns a float in [0, 1]; 1 under full collapse.
    """
    dec = _decisions(features, labels, classifier, kw)
    return float(dec.classifier_ncc_agree.sum() / dec.counts.sum())


def ncc_accuracy(features: Any, labels: Any, **kw) -> float:
    """Accuracy of the nearest-class-centre rule ``argmin_k ‖h − μ_k‖`` with the class means of the
    same data (Papyan et al. 2020). Returns a float in [0, 1]."""
    dec = _decisions(features, labels, None, kw)
    return float(dec.ncc_correct.sum() / dec.counts.sum())
