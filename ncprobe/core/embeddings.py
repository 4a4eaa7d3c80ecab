"""Class embeddings: one checked float64 row per class, a linear classifier W (with bias b) or the class
text embeddings T of a vision-language model.

Checked once against the statistics' class count C and dimension D: shape (C, D), finiteness, and for text
the CLIP convention of L2-normalised rows (CLIP scores a class by cos(h, t_k) = h·t_k / (‖h‖‖t_k‖); Radford
et al., 2021). The module stands on the input validator and the row normaliser only, so the certified
decision tables (:mod:`.certified`) and the prepared geometry (:mod:`.prepared`) can both build on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping

import torch

from ._validation import check_features
from .geometry import normalize_rows

__all__ = ["ClassEmbeddings", "prepare_classifier", "prepare_text", "prepare_classifiers"]


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
