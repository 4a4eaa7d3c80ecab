"""ncprobe: neural-collapse diagnostics for vision-language models, and NC-guided prompt tuning.

The public surface (everything is imported on first use, so ``import ncprobe`` and
``ncprobe --help`` stay cheap and never load torch or the training stack):

* :func:`measure` — every NC metric of a set of features in one call, as an :class:`NCReport`;
* :class:`ClassStatistics` / :class:`DecisionStatistics` — streaming, mergeable accumulators;
* :func:`train` — prompt tuning with per-epoch NC tracking (:mod:`ncprobe.training`);
* ``sweep`` — a grid of training runs on Slurm, local GPUs or in this process (:mod:`ncprobe.sweep`, callable:
  ``ncprobe.sweep("sweep.yaml")``), and :mod:`ncprobe.tables` for the papers' tables;
* the metric functions (``nc1``, ``nc2_etf_error``, ``text_etf_error``, …), re-exported from
  :mod:`ncprobe.core`, and the metric modules as attributes (``ncprobe.metrics``,
  ``ncprobe.crossmodal``, ``ncprobe.geometry``, ``ncprobe.anchors``, ``ncprobe.mmd``, ``ncprobe.catalog``);

Layers (imports run one way): ``core`` ← ``data``, ``models`` ← ``training`` ← ``cli``;
``core`` ← ``plotting``; ``models``, ``data`` ← ``testbed``. See ``docs/architecture.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

#: Public name → the module that defines it.
_EXPORTS: dict[str, str] = {
    # front door and results
    "measure": "ncprobe.core.measure",
    "NCReport": "ncprobe.core.report",
    "stack_reports": "ncprobe.core.report",
    "assign_groups": "ncprobe.core.groups",
    # accumulators
    "ClassStatistics": "ncprobe.core.statistics",
    "DecisionStatistics": "ncprobe.core.decisions",
    "compute_statistics": "ncprobe.core.inmemory",
    # NC1-NC4 and CDNV
    "SingletonClassWarning": "ncprobe.core.metrics",
    "nc1": "ncprobe.core.metrics",
    "nc1_quotient": "ncprobe.core.metrics",
    "cdnv": "ncprobe.core.metrics",
    "cdnv_pairs": "ncprobe.core.metrics",
    "class_variances": "ncprobe.core.metrics",
    "class_mean_norms": "ncprobe.core.metrics",
    "nc2_equinorm": "ncprobe.core.metrics",
    "nc2_equiangularity": "ncprobe.core.metrics",
    "nc2_max_angle": "ncprobe.core.metrics",
    "nc2_max_cosine": "ncprobe.core.metrics",
    "nc2_etf_error": "ncprobe.core.metrics",
    "nc3_self_duality": "ncprobe.core.metrics",
    "nc3_duality_gram": "ncprobe.core.metrics",
    "nc4_ncc_agreement": "ncprobe.core.metrics",
    "ncc_accuracy": "ncprobe.core.metrics",
    "vci": "ncprobe.core.metrics",
    # generalised NC: hyperspherical uniformity, uniform duality, ID/OOD orthogonality
    "gnc2_log_energy": "ncprobe.core.generalized",
    "gnc2_log_variance": "ncprobe.core.generalized",
    "gnc2_riesz_energy": "ncprobe.core.generalized",
    "unc3_uniform_duality": "ncprobe.core.generalized",
    "nc5_ood_orthogonality": "ncprobe.core.generalized",
    # text-to-image
    "text_etf_error": "ncprobe.core.crossmodal",
    "text_self_duality": "ncprobe.core.crossmodal",
    "cross_etf_error": "ncprobe.core.crossmodal",
    "class_alignment": "ncprobe.core.crossmodal",
    "modality_gap": "ncprobe.core.crossmodal",
    # geometry
    "simplex_etf": "ncprobe.core.geometry",
    "etf_gram": "ncprobe.core.geometry",
    "etf_structure_error": "ncprobe.core.geometry",
    "nearest_etf": "ncprobe.core.geometry",
    "near_etf": "ncprobe.core.geometry",
    # anchors and MMD (Craft)
    "relative_representation": "ncprobe.core.anchors",
    "select_anchors": "ncprobe.core.anchors",
    "mmd2": "ncprobe.core.mmd",
    "gaussian_kernel": "ncprobe.core.mmd",
    # training (loaded only when touched)
    "train": "ncprobe.training",
}

#: Metric modules exposed as attributes (``ncprobe.metrics`` is ``ncprobe.core.metrics``).
_MODULES: dict[str, str] = {
    name: f"ncprobe.core.{name}"
    for name in ("metrics", "crossmodal", "generalized", "geometry", "anchors", "mmd", "catalog", "groups", "synthetic")
}
#: ``ncprobe.sweep`` is the sweep package, and calling it runs a sweep (``ncprobe.sweep("sweep.yaml")``).
_MODULES["sweep"] = "ncprobe.sweep"

__all__ = sorted(set(_EXPORTS) | set(_MODULES))


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    else:
        raise AttributeError(f"module 'ncprobe' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - static analysers see the real names
    from . import sweep
    from .core import anchors, catalog, crossmodal, generalized, geometry, groups, metrics, mmd, synthetic
    from .core.anchors import relative_representation, select_anchors
    from .core.crossmodal import class_alignment, cross_etf_error, modality_gap, text_etf_error, text_self_duality
    from .core.decisions import DecisionStatistics
    from .core.generalized import (
        gnc2_log_energy,
        gnc2_log_variance,
        gnc2_riesz_energy,
        nc5_ood_orthogonality,
        unc3_uniform_duality,
    )
    from .core.geometry import etf_gram, etf_structure_error, near_etf, nearest_etf, simplex_etf
    from .core.groups import assign_groups
    from .core.inmemory import compute_statistics
    from .core.measure import measure
    from .core.metrics import (
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
        vci,
    )
    from .core.mmd import gaussian_kernel, mmd2
    from .core.report import NCReport, stack_reports
    from .core.statistics import ClassStatistics
    from .training import train
