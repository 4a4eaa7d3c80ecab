"""Prepared inputs that every metric starts from, built once and handed down.

* :class:`ClassGeometry` — a :class:`~ncprobe.core.statistics.ClassStatistics` plus what the NC metrics
  derive from it: which classes are present, which have ≥ 2 samples, the centred class means
  M̃ (rows μ_k − μ_G over present classes, μ_G the unweighted mean of class means), their norms and
  pairwise cosines. Cached, so :func:`ncprobe.measure` computes each once.
* :class:`ClassEmbeddings` — one row per class (a linear classifier W with optional bias, or the class
  text embeddings T of a V-L model), checked against the statistics once: shape, finiteness, and for
  text the CLIP convention of L2-normalised rows. It lives in :mod:`.embeddings` (below the statistics,
  which the certified decision tables need) and is re-exported here.

The metric functions accept raw ``(features, labels)``, a ``ClassStatistics`` or a ``ClassGeometry``
and classifiers as arrays or ``ClassEmbeddings``; :func:`ncprobe.core.inmemory.as_geometry` and
:func:`as_embeddings` pass prepared objects through unchanged, so data flows one way: ``measure`` →
prepared objects → metrics.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Literal

import numpy as np
import torch

from .embeddings import ClassEmbeddings, prepare_classifier, prepare_classifiers, prepare_text
from .geometry import center_rows, normalize_rows
from .statistics import ClassStatistics

__all__ = [
    "SingletonClassWarning",
    "ClassGeometry",
    "ClassEmbeddings",
    "as_embeddings",
    "prepare_classifier",
    "prepare_text",
    "prepare_classifiers",
]


class SingletonClassWarning(UserWarning):
    """A class has one sample, so it is left out of a within-class variability metric."""


class ClassGeometry:
    """Class statistics with the derived quantities the NC metrics share (see module docstring).

    Parameters
    ----------
    stats:
        Non-empty :class:`ClassStatistics` (from :func:`ncprobe.compute_statistics` or a stream).

    Raises
    ------
    ValueError
        Fewer than 2 classes with samples; squared feature norms that overflow float64; class means that
        coincide (Σ_B = 0 to rounding), where every metric relative to Σ_B is undefined.
    """

    def __init__(self, stats: ClassStatistics):
        if not isinstance(stats, ClassStatistics):
            raise TypeError(f"expected ClassStatistics, got {type(stats).__name__}")
        stats.require_data()
        stats.require_variances()
        self.stats = stats
        self.present = stats.counts > 0
        self.num_present = int(self.present.sum())
        if self.num_present < 2:
            raise ValueError(f"need at least 2 classes with samples, got {self.num_present}")
        self.valid = self.present & (stats.counts >= 2)
        self.singleton_ids = stats.class_ids[(stats.counts == 1).cpu().numpy()].tolist()
        if not (bool(torch.isfinite(stats.class_ss).all()) and bool(torch.isfinite(stats.means).all())):
            raise ValueError(
                "features are too large for float64 statistics (squared norms overflow); rescale them, "
                "e.g. divide by their largest absolute value"
            )
        self.centered_means = self._centre(self.present)

    # ------------------------------------------------------------------ derived
    @property
    def dim(self) -> int:
        return self.stats.dim

    @property
    def device(self) -> torch.device:
        return self.stats.device

    def _centre(self, mask: torch.Tensor) -> torch.Tensor:
        m = self.stats.means[mask]
        mt = center_rows(m)
        spread = float(torch.linalg.matrix_norm(mt))
        within = float(self.stats.class_ss[mask].sum() / self.stats.counts[mask].sum()) ** 0.5
        scale = float(m.norm(dim=1).max()) + within
        if not np.isfinite(spread) or not np.isfinite(scale):
            raise ValueError(
                "features are too large for float64 statistics (norms overflow); rescale them, "
                "e.g. divide by their largest absolute value"
            )
        if spread <= 1e-10 * max(scale, 1e-300) * len(m) ** 0.5:
            raise ValueError(
                f"the class means coincide (between-class spread {spread:.3g} against a feature scale "
                f"of {scale:.3g}): NC metrics relative to Σ_B are undefined"
            )
        return mt

    def variability_classes(self, metric: str) -> torch.Tensor:
        """Mask of classes with ≥ 2 samples (within-class variability needs two); warns about and drops
        singletons with :class:`SingletonClassWarning`; an error when fewer than 2 such classes remain."""
        if self.singleton_ids:
            warnings.warn(
                f"{metric}: classes {self.singleton_ids} have a single sample and are excluded",
                SingletonClassWarning,
                stacklevel=3,
            )
        n_valid = int(self.valid.sum())
        if n_valid < 2:
            raise ValueError(f"{metric} needs at least 2 classes with 2 or more samples each, got {n_valid}")
        return self.valid

    def centered_means_of(self, mask: torch.Tensor) -> torch.Tensor:
        """M̃ over the classes of ``mask`` (re-centred on their own mean)."""
        if bool((mask == self.present).all()):
            return self.centered_means
        return self._centre(mask)

    @functools.cached_property
    def mean_norms(self) -> torch.Tensor:
        """‖μ̃_k‖ of the present classes."""
        return self.centered_means.norm(dim=1)

    @functools.cached_property
    def mean_cosines(self) -> torch.Tensor:
        """(C_p, C_p) cosines between centred class means of present classes."""
        unit = normalize_rows(self.centered_means)
        return unit @ unit.T

    @functools.cached_property
    def off_diagonal_cosines(self) -> torch.Tensor:
        c = self.num_present
        off = ~torch.eye(c, dtype=torch.bool, device=self.mean_cosines.device)
        return self.mean_cosines[off]

    def scatter_per_present(self, values: torch.Tensor) -> np.ndarray:
        """Place values of the present classes into a length-C numpy array (NaN for absent classes)."""
        out = np.full(self.stats.num_classes, np.nan)
        out[self.present.cpu().numpy()] = values.detach().cpu().numpy()
        return out

    def __repr__(self) -> str:
        return f"ClassGeometry({self.num_present} present classes, dim {self.dim})"


def as_embeddings(spec: Any, geometry: ClassGeometry, *, role: Literal["classifier", "text"]) -> ClassEmbeddings:
    """Prepare ``spec`` as a classifier or as text embeddings against ``geometry``'s classes and dimension."""
    st = geometry.stats
    if role == "text":
        return prepare_text(spec, num_classes=st.num_classes, dim=st.dim, device=st.device)
    return prepare_classifier(spec, num_classes=st.num_classes, dim=st.dim, device=st.device)
