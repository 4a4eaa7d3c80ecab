"""Text-to-image (cross-modal) neural-collapse metrics for CLIP-like models.

In a vision-language model the classifier is the matrix T ∈ R^{C×D} of class text embeddings
(one prompt, or a prompt ensemble, per class) and the features are image embeddings. Following
the V-L reading of NC in NPT (Zhu et al., KDD 2024; see ``docs/metrics.md``), the metrics compare
the class text embeddings with a simplex ETF and with the image class means.

Conventions (``center`` option):

* text rows are always L2-normalised first, t̂_k = t_k/‖t_k‖ (CLIP scores by cosine);
* ``center=True`` (default): text rows are then centred on their mean, t̃_k = t̂_k − (1/C)Σ_j t̂_j, and
  image class means on μ_G, μ̃_k = μ_k − μ_G. CLIP embeddings of both modalities sit in narrow cones
  (Liang et al. 2022), so uncentred cosines between classes are all large and positive, and raw
  ETF errors mostly measure the cone;
* ``center=False``: raw t̂_k and raw class means μ_k.

Every function takes ``text_features`` (C×D) and either ``(features, labels)`` or a
:class:`~ncprobe.ClassStatistics`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._validation import check_features
from .etf import etf_structure_error
from .metrics import _present, _stats
from .statistics import ClassStatistics

__all__ = [
    "normalize_rows", "prepare_text", "text_etf_error", "text_self_duality", "cross_etf_error", "class_alignment",
    "modality_gap",
]


def normalize_rows(text_features: Any) -> torch.Tensor:
    """Check and L2-normalise class text embeddings (float64); an all-zero row is an error."""
    t = check_features(text_features, name="text_features").double()
    norms = t.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        raise ValueError("text_features has an all-zero row")
    return t / norms


def prepare_text(text_features: Any, stats: ClassStatistics) -> torch.Tensor:
    """Check shape against the statistics and L2-normalise rows (float64, on the statistics' device)."""
    t = normalize_rows(text_features).to(stats.device)
    if t.shape[0] != stats.num_classes:
        raise ValueError(f"text_features has {t.shape[0]} rows but there are {stats.num_classes} classes "
                         "(one text embedding per class, in class order)")
    if t.shape[1] != stats.dim:
        raise ValueError(f"text_features has dimension {t.shape[1]} but image features have {stats.dim}")
    return t


def _pair(text_features: Any, features: Any, labels: Any, center: bool, kw: dict):
    stats = _stats(features, labels, **kw)
    present = _present(stats)
    t = prepare_text(text_features, stats)[present]
    m = stats.means[present]
    if center:
        t = t - t.mean(0)
        m = m - m.mean(0)
    return t, m


def text_etf_error(text_features: Any, *, center: bool = True) -> float:
    r"""ETF error of the class text embeddings: ``‖ G/‖G‖_F − (I − 11ᵀ/C)/√(C−1) ‖_F``, G = T̃T̃ᵀ.

    The NC2 ETF error (:func:`ncprobe.metrics.nc2_etf_error`) with the text embeddings as class means —
    the "language-modality collapse" that NPT regularises. 0 iff the (centred, normalised) text
    embeddings form a simplex ETF.

    >>> from ncprobe.etf import simplex_etf
    >>> text_etf_error(simplex_etf(5, 16, seed=0)) < 1e-12
    True
    """
    t = check_features(text_features, name="text_features").double()
    if t.shape[0] < 2:
        raise ValueError(f"need at least 2 class text embeddings, got {t.shape[0]}")
    t = t / t.norm(dim=1, keepdim=True)
    if center:
        t = t - t.mean(0)
    return etf_structure_error(t @ t.T)


def text_self_duality(text_features: Any, features: Any, labels: Any = None, *, center: bool = True,
                      **kw) -> float:
    r"""Text-to-image self-duality ``‖ T̃/‖T̃‖_F − M̃/‖M̃‖_F ‖_F²`` (NC3 with the text classifier).

    0 when the class text embeddings are a positive multiple of the image class means (after the
    ``center`` convention); at most 4.
    """
    t, m = _pair(text_features, features, labels, center, kw)
    return float((t / t.norm() - m / m.norm()).pow(2).sum())


def cross_etf_error(text_features: Any, features: Any, labels: Any = None, *, center: bool = True,
                    **kw) -> float:
    r"""Cross Gram against the ETF Gram: ``‖ P/‖P‖_F − (I − 11ᵀ/C)/√(C−1) ‖_F`` with P = M̂ T̂ᵀ,
    the cosines between row-normalised image class means and text embeddings ("multi-modality
    isomorphism": both modalities on the same simplex ETF). 0 iff P is a multiple of the ETF Gram.
    """
    t, m = _pair(text_features, features, labels, center, kw)
    t = t / t.norm(dim=1, keepdim=True).clamp_min(1e-300)
    m = m / m.norm(dim=1, keepdim=True).clamp_min(1e-300)
    return etf_structure_error(m @ t.T)


def class_alignment(text_features: Any, features: Any, labels: Any = None, *, center: bool = True,
                    **kw) -> np.ndarray:
    """Per-class cosine between the class's text embedding and its image class mean (NaN for classes
    without samples), under the ``center`` convention."""
    stats = _stats(features, labels, **kw)
    present = _present(stats)
    t, m = _pair(text_features, stats, None, center, {})
    cos = (t * m).sum(1) / (t.norm(dim=1) * m.norm(dim=1)).clamp_min(1e-300)
    out = np.full(stats.num_classes, np.nan)
    out[present.cpu().numpy()] = cos.cpu().numpy()
    return out


def modality_gap(text_features: Any, features: Any, labels: Any = None, **kw) -> float:
    r"""Modality gap ``‖ (1/N) Σ_i x̂_i − (1/C) Σ_k t̂_k ‖``: distance between the centroids of the
    L2-normalised image embeddings and class text embeddings (Liang et al., NeurIPS 2022, "Mind the
    Gap"). Independent of ``center``."""
    stats = _stats(features, labels, **kw)
    t = prepare_text(text_features, stats)[_present(stats)]
    image_centroid = stats.normalized_sum / stats.counts.sum()
    return float((image_centroid - t.mean(0)).norm())
