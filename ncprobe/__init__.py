"""ncprobe: neural-collapse diagnostics for vision-language models.

The diagnostics core (this package's top level) knows nothing of models or training:

* :func:`measure` — every NC metric of a set of features in one call, as an :class:`NCReport`;
* :class:`ClassStatistics` / :class:`DecisionStatistics` — streaming, mergeable accumulators;
* :mod:`ncprobe.metrics` — one function per NC metric (NC1–NC4, CDNV);
* :mod:`ncprobe.crossmodal` — text-to-image metrics for CLIP-like models;
* :mod:`ncprobe.etf` — simplex-ETF geometry;
* :mod:`ncprobe.anchors`, :mod:`ncprobe.mmd` — relative representations, anchors, MMD (Craft).
"""

from . import anchors, crossmodal, etf, metrics, mmd
from .anchors import relative_representation, select_anchors
from .compute import compute_statistics
from .crossmodal import class_alignment, cross_etf_error, modality_gap, text_etf_error, text_self_duality
from .decisions import DecisionStatistics
from .etf import etf_gram, etf_structure_error, near_etf, nearest_etf, simplex_etf
from .measure import count_groups, measure
from .metrics import (
    SingletonClassWarning,
    cdnv,
    cdnv_pairs,
    class_mean_norms,
    class_variances,
    nc1,
    nc1_quotient,
    nc2_equiangularity,
    nc2_equinorm,
    nc2_etf_error,
    nc2_max_angle,
    nc2_max_cosine,
    nc3_duality_gram,
    nc3_self_duality,
    nc4_ncc_agreement,
    ncc_accuracy,
)
from .mmd import gaussian_kernel, mmd2
from .report import NCReport, stack_reports
from .statistics import ClassStatistics

__version__ = "0.1.0"

__all__ = [
    "measure", "NCReport", "stack_reports", "count_groups", "ClassStatistics", "DecisionStatistics",
    "compute_statistics", "nc1", "nc1_quotient", "cdnv", "cdnv_pairs", "class_variances", "class_mean_norms",
    "nc2_equinorm", "nc2_equiangularity", "nc2_max_angle", "nc2_max_cosine", "nc2_etf_error",
    "nc3_self_duality", "nc3_duality_gram", "nc4_ncc_agreement", "ncc_accuracy", "SingletonClassWarning",
    "text_etf_error", "text_self_duality", "cross_etf_error", "class_alignment", "modality_gap",
    "simplex_etf", "etf_gram", "etf_structure_error", "nearest_etf", "near_etf",
    "relative_representation", "select_anchors", "mmd2", "gaussian_kernel",
    "anchors", "crossmodal", "etf", "metrics", "mmd",
]
