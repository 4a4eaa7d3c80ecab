"""Generalised neural-collapse metrics beyond NC1–NC4.

* **GNC2, hyperspherical uniformity** of the class means (Liu et al., "Generalizing and decoupling neural
  collapse via hyperspherical uniformity gap", ICLR 2023; Wu & Papyan, "Linguistic collapse", NeurIPS 2024).
  With μ̂_k = μ̃_k/‖μ̃_k‖ the normalised centred means and d_kk' = ‖μ̂_k − μ̂_k'‖ over pairs k < k':

  - ``gnc2_log_energy`` = mean log(1/d_kk'), the logarithmic energy (lower = more uniform);
  - ``gnc2_log_variance`` = var log(1/d_kk') (ddof 0), what rhubarbwu/neural-collapse reports as
    ``kernel_stats(M, m_G, kernel=log_kernel)[1]`` (0 when all pairs are equidistant);
  - ``gnc2_riesz_energy`` = (mean d_kk'^{−s})^{1/s} with s = D − 2 (the Riesz kernel of the peer library;
    s = 1 when D ≤ 3). The peer library reports the mean of d^{−s} itself, which overflows float64 for the
    s ≈ 500 of CLIP features; the power mean is a monotone function of it, finite, and computed in the log
    domain. For a simplex ETF every d² = 2C/(C−1), so each energy has a closed form (the tests use it).

  "GNC2" here is hyperspherical uniformity, not the "generalised NC" of C > D + 1 class counts.
* **UNC3, uniform duality** (Wu & Papyan 2024): the coefficient of variation over classes of the
  classifier–mean alignment, ``std_k cos(w_k, μ̃_k) / |mean_k cos(w_k, μ̃_k)|`` (ddof 0). The peer library
  reports the variance of the dot products ⟨w_k, μ̃_k⟩; ncprobe takes cosines and the coefficient of
  variation so that the value does not change when W or the features are rescaled.
* **NC5, ID/OOD orthogonality** (Ammar et al., "NECO", ICLR 2024): ``mean_k |cos(μ_k − μ_G, μ_OOD − μ_G)|``
  with μ_OOD the mean of out-of-distribution features; → 0 as the OOD mean becomes orthogonal to the ID
  class means. ``center=False`` gives the peer library's ``orthogonality_deviation(M, m_G_ood)``, the
  uncentred ``mean_k |cos(μ_k, μ_OOD)|``. "NC5" here is this orthogonality, not neural regression collapse.
* **Minority collapse** (Fang et al., "Exploring deep neural networks via layer-peeled model", PNAS 2021):
  under imbalance the classifiers (and means) of minority classes collapse onto each other; per group of
  classes, the mean pairwise cosine of centred class means and of classifier rows (→ 1 under collapse).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ._validation import check_features
from .geometry import center_rows, normalize_rows, paired_cosines
from .inmemory import as_geometry
from .prepared import ClassGeometry, as_embeddings

__all__ = [
    "gnc2_values",
    "gnc2_log_energy",
    "gnc2_log_variance",
    "gnc2_riesz_energy",
    "unc3_uniform_duality",
    "nc5_ood_orthogonality",
    "group_cosines",
]


def riesz_exponent(dim: int) -> float:
    """The Riesz exponent s = D − 2 of the peer library (1 when D ≤ 3)."""
    return float(max(int(dim) - 2, 1))


def gnc2_values(features: Any, labels: Any = None, **kw) -> dict[str, float]:
    """``gnc2_log_energy``, ``gnc2_log_variance`` and ``gnc2_riesz_energy`` from one set of pairwise
    distances (see the module docstring)."""
    geom = as_geometry(features, labels, **kw)
    unit = normalize_rows(geom.centered_means)
    c = unit.shape[0]
    iu = torch.triu_indices(c, c, offset=1, device=unit.device)
    sq = (2.0 - 2.0 * (unit @ unit.T)).clamp_min(0.0)[iu[0], iu[1]]
    log_inv = -0.5 * torch.log(sq)  # log(1/d); +inf for coinciding directions
    s = riesz_exponent(geom.dim)
    log_mean = torch.logsumexp(s * log_inv, 0) - math.log(log_inv.numel())
    return {
        "gnc2_log_energy": float(log_inv.mean()),
        "gnc2_log_variance": float(log_inv.var(correction=0)) if bool(torch.isfinite(log_inv).all()) else math.inf,
        "gnc2_riesz_energy": float(torch.exp(log_mean / s)),
    }


def gnc2_log_energy(features: Any, labels: Any = None, **kw) -> float:
    """Mean logarithmic energy ``mean_{k<k'} log(1/‖μ̂_k − μ̂_k'‖)`` of the normalised centred class means
    (GNC2; Liu et al. 2023). A simplex ETF gives −½·log(2C/(C−1)).

    >>> from ncprobe.core.synthetic import make_collapse
    >>> d = make_collapse(num_classes=4, dim=8, noise=0.0)
    >>> round(gnc2_log_energy(d.features, d.labels), 6) == round(-0.5 * math.log(8 / 3), 6)
    True
    """
    return gnc2_values(features, labels, **kw)["gnc2_log_energy"]


def gnc2_log_variance(features: Any, labels: Any = None, **kw) -> float:
    """Variance over pairs of ``log(1/‖μ̂_k − μ̂_k'‖)`` (GNC2 as reported by Wu & Papyan 2024); 0 for equidistant
    normalised means, e.g. a simplex ETF."""
    return gnc2_values(features, labels, **kw)["gnc2_log_variance"]


def gnc2_riesz_energy(features: Any, labels: Any = None, **kw) -> float:
    """Riesz s-energy of the normalised centred means as a power mean ``(mean d^{−s})^{1/s}``, s = D − 2
    (GNC2; Liu et al. 2023). A simplex ETF gives √((C−1)/(2C))."""
    return gnc2_values(features, labels, **kw)["gnc2_riesz_energy"]


def unc3_uniform_duality(classifier: Any, features: Any, labels: Any = None, **kw) -> float:
    """UNC3: coefficient of variation of ``cos(w_k, μ̃_k)`` over the present classes (ddof 0); 0 when every
    classifier row is equally aligned with its class mean (Wu & Papyan 2024). ``classifier`` as for
    :func:`ncprobe.nc3_self_duality`."""
    geom = as_geometry(features, labels, **kw)
    w = as_embeddings(classifier, geom, role="classifier").weights[geom.present]
    cos = paired_cosines(w, geom.centered_means)
    mean = float(cos.mean())
    if mean == 0.0:
        return math.inf
    return float(cos.std(correction=0)) / abs(mean)


def ood_mean(ood_features: Any, *, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """Float64 mean of out-of-distribution features (N_ood × D), accumulated in chunks."""
    x = check_features(ood_features, name="ood_features", device=device)
    if x.shape[1] != dim:
        raise ValueError(f"ood_features have dimension {x.shape[1]} but the features have {dim}")
    if x.shape[0] == 0:
        raise ValueError("ood_features is empty")
    total = torch.zeros(dim, dtype=torch.float64, device=x.device)
    step = max(1, (1 << 22) // dim)
    for lo in range(0, x.shape[0], step):
        total += x[lo : lo + step].double().sum(0)
    return total / x.shape[0]


def nc5_ood_orthogonality(ood_features: Any, features: Any, labels: Any = None, *, center: bool = True, **kw) -> float:
    """NC5: ``mean_k |cos(μ_k − μ_G, μ_OOD − μ_G)|`` over present ID classes (Ammar et al. 2024); ``center=False``
    gives the uncentred ``mean_k |cos(μ_k, μ_OOD)|`` of rhubarbwu/neural-collapse. In [0, 1]; → 0 as ID class
    means and the OOD mean become orthogonal.

    ``ood_features`` is an (N_ood, D) array, or an already computed (D,) OOD mean.
    """
    geom = as_geometry(features, labels, **kw)
    st = geom.stats
    raw = torch.as_tensor(ood_features) if not isinstance(ood_features, np.ndarray) else torch.from_numpy(ood_features)
    if raw.ndim == 1:
        mu_ood = check_features(raw[None, :], name="ood mean", device=st.device)[0].double()
        if mu_ood.shape[0] != st.dim:
            raise ValueError(f"the OOD mean has dimension {mu_ood.shape[0]} but the features have {st.dim}")
    else:
        mu_ood = ood_mean(ood_features, dim=st.dim, device=st.device)
    means = st.means[geom.present]
    if center:
        mu_g = means.mean(0)
        means, mu_ood = means - mu_g, mu_ood - mu_g
    return float(paired_cosines(means, mu_ood.expand_as(means)).abs().mean())


def _mean_pairwise_cosine(rows: torch.Tensor) -> float:
    c = rows.shape[0]
    if c < 2:
        return math.nan
    unit = normalize_rows(rows)
    iu = torch.triu_indices(c, c, offset=1, device=rows.device)
    return float((unit @ unit.T)[iu[0], iu[1]].mean())


def group_cosines(
    geom: ClassGeometry, group_labels: np.ndarray, names: list[str], *, classifier: Any = None
) -> dict[str, list[float]]:
    """Minority collapse per group: ``group_mean_cosine`` (mean pairwise cosine of the group's centred class
    means) and, with a classifier, ``group_classifier_cosine`` (of its rows, centred on the mean row of all
    classes); NaN for a group with fewer than 2 present classes. ``group_labels`` has one entry per class."""
    present = geom.present.cpu().numpy()
    labels_present = np.asarray(group_labels)[present]
    out: dict[str, list[float]] = {"group_mean_cosine": []}
    w = None
    if classifier is not None:
        out["group_classifier_cosine"] = []
        w = center_rows(as_embeddings(classifier, geom, role="classifier").weights[geom.present])
    for g in names:
        mask = torch.as_tensor(labels_present == g, device=geom.centered_means.device)
        out["group_mean_cosine"].append(_mean_pairwise_cosine(geom.centered_means[mask]))
        if w is not None:
            out["group_classifier_cosine"].append(_mean_pairwise_cosine(w[mask]))
    return out
