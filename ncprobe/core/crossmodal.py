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

Image features enter as given: pass L2-normalised image features (``measure(...,
normalize_images=True)``) to measure what CLIP compares. Only classes with samples take part.

Every function takes ``text_features`` (C×D array, or prepared
:class:`~ncprobe.core.prepared.ClassEmbeddings`) and ``(features, labels)``, a
:class:`~ncprobe.ClassStatistics` or a :class:`~ncprobe.core.prepared.ClassGeometry`. The formulas are
the kernels of :mod:`ncprobe.core.geometry`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from ._validation import check_features
from .geometry import center_rows, etf_gram_distance, normalize_rows, paired_cosines, self_duality_distance
from .inmemory import as_geometry
from .prepared import ClassEmbeddings, ClassGeometry, as_embeddings

__all__ = [
    "GAP_WEIGHTINGS",
    "text_etf_error",
    "text_self_duality",
    "cross_etf_error",
    "class_alignment",
    "modality_gap",
]

#: ``modality_gap`` weightings of the text centroid: ``"paired"`` (default; Liang et al.) or ``"class"``.
GAP_WEIGHTINGS = ("paired", "class")


def _pair(text_features: Any, geom: ClassGeometry, center: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(text rows, image class means) of the present classes under the ``center`` convention."""
    t = as_embeddings(text_features, geom, role="text").weights[geom.present]
    if center:
        return center_rows(t), geom.centered_means
    return t, geom.stats.means[geom.present]


def text_etf_error(text_features: Any, *, center: bool = True) -> float:
    r"""ETF error of the class text embeddings: ``‖ G/‖G‖_F − (I − 11ᵀ/C)/√(C−1) ‖_F``, G = T̃T̃ᵀ.

    The NC2 ETF error (:func:`ncprobe.metrics.nc2_etf_error`) with the text embeddings as class means —
    the "language-modality collapse" that NPT regularises. 0 iff the (centred, normalised) text
    embeddings form a simplex ETF. Kernel: :func:`ncprobe.core.geometry.etf_gram_distance`.

    >>> from ncprobe.core.geometry import simplex_etf
    >>> text_etf_error(simplex_etf(5, 16, seed=0)) < 1e-12
    True
    """
    if isinstance(text_features, ClassEmbeddings):
        t = text_features.weights
    else:
        t = check_features(text_features, name="text_features", shape_hint="(n_classes, dim)").double()
        zero = (t.norm(dim=1) == 0).nonzero().flatten().tolist()
        if zero:
            raise ValueError(f"text_features has all-zero rows {zero[:10]}")
        t = normalize_rows(t)
    if t.shape[0] < 2:
        raise ValueError(f"need at least 2 class text embeddings, got {t.shape[0]}")
    if center:
        t = center_rows(t)
    return float(etf_gram_distance(t @ t.T))


def text_self_duality(text_features: Any, features: Any, labels: Any = None, *, center: bool = True, **kw) -> float:
    r"""Text-to-image self-duality ``‖ T̃/‖T̃‖_F − M̃/‖M̃‖_F ‖_F²`` (NC3 with the text classifier).

    0 when the class text embeddings are a positive multiple of the image class means (after the
    ``center`` convention); at most 4. Kernel: :func:`ncprobe.core.geometry.self_duality_distance`.
    """
    t, m = _pair(text_features, as_geometry(features, labels, **kw), center)
    return float(self_duality_distance(t, m))


def cross_etf_error(text_features: Any, features: Any, labels: Any = None, *, center: bool = True, **kw) -> float:
    r"""Cross Gram against the ETF Gram: ``‖ P/‖P‖_F − (I − 11ᵀ/C)/√(C−1) ‖_F`` with P = M̂ T̂ᵀ,
    the cosines between row-normalised image class means and text embeddings ("multi-modality
    isomorphism": both modalities on the same simplex ETF). 0 iff P is a multiple of the ETF Gram.
    """
    t, m = _pair(text_features, as_geometry(features, labels, **kw), center)
    return float(etf_gram_distance(normalize_rows(m) @ normalize_rows(t).T))


def class_alignment(text_features: Any, features: Any, labels: Any = None, *, center: bool = True, **kw) -> np.ndarray:
    """Per-class cosine between the class's text embedding and its image class mean (NaN for classes
    without samples), under the ``center`` convention. Kernel: :func:`~ncprobe.core.geometry.paired_cosines`."""
    geom = as_geometry(features, labels, **kw)
    t, m = _pair(text_features, geom, center)
    return geom.scatter_per_present(paired_cosines(t, m))


def modality_gap(
    text_features: Any, features: Any, labels: Any = None, *, weighting: Literal["paired", "class"] = "paired", **kw
) -> float:
    r"""Modality gap: the distance between the centroids of L2-normalised image and text embeddings.

    ``‖ (1/N) Σ_i x̂_i − Σ_k w_k t̂_k ‖`` over the present classes, with

    * ``weighting="paired"`` (default): w_k = n_k/N, each class's text counted once per image, as in the
      paired definition of Liang et al. (NeurIPS 2022, "Mind the Gap", eq. for ‖Δ_gap‖ over n image-text
      pairs). Both centroids then weight the classes alike, so class imbalance does not masquerade as a gap;
    * ``weighting="class"``: w_k = 1/C, one weight per class.

    The two agree on balanced data. Image rows are normalised per sample (the statistics' running sum of
    x̂_i), whatever the ``normalize_images`` setting of :func:`ncprobe.measure`.
    """
    if weighting not in GAP_WEIGHTINGS:
        raise ValueError(f"weighting must be one of {GAP_WEIGHTINGS}, got {weighting!r}")
    geom = as_geometry(features, labels, **kw)
    stats = geom.stats
    t = as_embeddings(text_features, geom, role="text").weights[geom.present]
    counts = stats.counts[geom.present]
    text_centroid = (counts[:, None] * t).sum(0) / counts.sum() if weighting == "paired" else t.mean(0)
    image_centroid = stats.normalized_sum / stats.counts.sum()
    return float((image_centroid - text_centroid).norm())
