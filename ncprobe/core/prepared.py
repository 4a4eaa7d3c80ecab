"""Prepared inputs that every metric starts from, built once and handed down.

* :class:`ClassGeometry` — a :class:`~ncprobe.core.statistics.ClassStatistics` plus what the NC metrics
  derive from it: which classes are present, which have ≥ 2 samples, the centred class means
  M̃ (rows μ_k − μ_G over present classes, μ_G the unweighted mean of class means), their norms and
  pairwise cosines. Cached, so :func:`ncprobe.measure` computes each once.
* :class:`ClassEmbeddings` — one row per class (a linear classifier W with optional bias, or the class
  text embeddings T of a V-L model), checked against the statistics once: shape, finiteness, and for
  text the CLIP convention of L2-normalised rows.

The metric functions accept raw ``(features, labels)``, a ``ClassStatistics`` or a ``ClassGeometry``
and classifiers as arrays or ``ClassEmbeddings``; :func:`ncprobe.core.inmemory.as_geometry` and
:func:`as_embeddings` pass prepared objects through unchanged, so data flows one way: ``measure`` →
prepared objects → metrics.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any, Literal, Mapping

import numpy as np
import torch

from ._validation import check_features
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


@dataclass(frozen=True)
class ClassEmbeddings:
    """One checked float64 row per class: a classifier W (and bias b) or class text embeddings T.

    Attributes
    ----------
    weights:
        (C, D) float64 on the statistics' device; for ``role="text"`` the rows are L2-normalised
        (CLIP scores by cosine).
    bias:
        (C,) float64 (zeros when none was given).
    role:
        ``"classifier"`` or ``"text"``.
    """

    weights: torch.Tensor
    bias: torch.Tensor
    role: Literal["classifier", "text"] = "classifier"

    @property
    def num_classes(self) -> int:
        return self.weights.shape[0]

    def same_as(self, other: ClassEmbeddings) -> bool:
        """Whether two prepared embeddings hold the same rule (role, weights and bias, exactly)."""
        return (
            self.role == other.role
            and self.weights.shape == other.weights.shape
            and bool(torch.equal(self.weights, other.weights.to(self.weights.device)))
            and bool(torch.equal(self.bias, other.bias.to(self.bias.device)))
        )


def _as_weight_tensor(spec: Any, name: str) -> Any:
    """A ``torch.nn.Linear`` gives its weight and bias; anything else is taken as it is."""
    if isinstance(spec, torch.nn.Linear):
        return (spec.weight, spec.bias) if spec.bias is not None else spec.weight
    return spec


def prepare_classifier(
    spec: Any, *, num_classes: int, dim: int, device: torch.device | None = None, name: str = "classifier"
) -> ClassEmbeddings:
    """Check a classifier given as W (C×D), a tuple ``(W, b)`` or a ``torch.nn.Linear``.

    A list is always read as W, so a two-class W given as nested lists is not mistaken for weights and
    bias.
    """
    if isinstance(spec, ClassEmbeddings):
        return spec
    spec = _as_weight_tensor(spec, name)
    w, b = spec if isinstance(spec, tuple) and len(spec) == 2 else (spec, None)
    w = check_features(w, name=name, device=device, shape_hint="(n_classes, dim)").double()
    _check_rows(w, name, num_classes, dim)
    if b is None:
        b = torch.zeros(num_classes, dtype=torch.float64, device=w.device)
    else:
        b = check_features(b, name=f"{name} bias", device=device, ndim=1, shape_hint="(n_classes,)").double()
        if b.shape != (num_classes,):
            raise ValueError(f"{name} bias must have shape ({num_classes},), got {tuple(b.shape)}")
    return ClassEmbeddings(weights=w, bias=b, role="classifier")


def prepare_text(
    text_features: Any, *, num_classes: int, dim: int, device: torch.device | None = None
) -> ClassEmbeddings:
    """Check class text embeddings (C×D, class order) and L2-normalise their rows; a zero row is an error."""
    if isinstance(text_features, ClassEmbeddings):
        if text_features.role != "text":
            raise ValueError("expected text embeddings, got a prepared classifier")
        return text_features
    t = check_features(text_features, name="text_features", device=device, shape_hint="(n_classes, dim)").double()
    _check_rows(t, "text_features", num_classes, dim)
    zero = (t.norm(dim=1) == 0).nonzero().flatten().tolist()
    if zero:
        raise ValueError(f"text_features has all-zero rows {zero[:10]}: a class text embedding needs a direction")
    bias = torch.zeros(num_classes, dtype=torch.float64, device=t.device)
    return ClassEmbeddings(weights=normalize_rows(t), bias=bias, role="text")


def _check_rows(w: torch.Tensor, name: str, num_classes: int, dim: int) -> None:
    if w.shape[0] != num_classes:
        raise ValueError(
            f"{name} has {w.shape[0]} rows but there are {num_classes} classes "
            "(one row per class, in sorted label order)"
        )
    if w.shape[1] != dim:
        raise ValueError(f"{name} has dimension {w.shape[1]} but the features have {dim}")


def as_embeddings(spec: Any, geometry: ClassGeometry, *, role: Literal["classifier", "text"]) -> ClassEmbeddings:
    """Prepare ``spec`` as a classifier or as text embeddings against ``geometry``'s classes and dimension."""
    st = geometry.stats
    if role == "text":
        return prepare_text(spec, num_classes=st.num_classes, dim=st.dim, device=st.device)
    return prepare_classifier(spec, num_classes=st.num_classes, dim=st.dim, device=st.device)


def prepare_classifiers(
    classifiers: Mapping[str, Any] | None,
    *,
    num_classes: int,
    dim: int,
    device: torch.device,
    text_features: Any = None,
) -> dict[str, ClassEmbeddings]:
    """Check ``{name: W | (W, b) | nn.Linear}`` and optional text embeddings; return prepared rules.

    The name ``"text"`` marks class text embeddings (rows L2-normalised, the CLIP zero-shot rule), as does
    ``text_features``; any other name is a linear classifier.
    """
    if classifiers is not None and not isinstance(classifiers, Mapping):
        raise TypeError(f"classifiers must be a mapping {{name: W}}, got {type(classifiers).__name__}")
    out: dict[str, ClassEmbeddings] = {}
    shape = dict(num_classes=num_classes, dim=dim, device=device)
    for name, spec in (classifiers or {}).items():
        if not isinstance(name, str):
            raise TypeError(f"classifier names must be strings, got {name!r}")
        if name == "text":
            out[name] = prepare_text(spec, **shape)
        else:
            out[name] = prepare_classifier(spec, name=f"classifier {name!r}", **shape)
    if text_features is not None:
        if "text" in out:
            raise ValueError("text embeddings given twice: as classifiers['text'] and as text_features")
        out["text"] = prepare_text(text_features, **shape)
    return out
