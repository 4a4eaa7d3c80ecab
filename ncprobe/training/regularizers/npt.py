"""NPT (Zhu et al., KDD 2024, arXiv 2306.15955): text and image representations on the same simplex ETF.

NPT adds two terms to a prompt-tuning method (its abstract; no code is public):

* ``text`` — *language-modality collapse*: the class text features T̂ (C×d) form a simplex ETF;
* ``image`` — *multi-modality isomorphism*: the image features satisfy the same ETF.

The exact loss forms are not public, so both documented candidate families are implemented (option
``family``; ``docs/methods.md`` gives the sources, the default and why):

``family="gram"`` (default) — rotation-free Gram matching. With T̃ the (optionally centred, then
re-normalised) text rows and E = (C/(C−1))I − (1/(C−1))11ᵀ,

    L_text = ‖T̃T̃ᵀ − E‖_F² / C²                      (core ``etf_gram_deviation``)

and, with H̃ the (centred, normalised) image class means (``image_means``: a running memory over the
training batches, or the batch's own classes), ``image_target`` chooses

    "cross": ‖H̃T̃ᵀ − E‖_F² / C²   (both modalities on one ETF, vertex k shared by class k; default)
    "etf":   ‖H̃H̃ᵀ − E‖_F² / C²   (image class means an ETF of their own)
    "text":  ‖H̃H̃ᵀ − T̃T̃ᵀ‖_F² / C²  (image structure equal to the text structure)

``family="anchored"`` — point-anchored to a fixed ETF M (rows m_k; ``etf``: the ETF nearest the zero-shot
text features by orthogonal Procrustes, core ``nearest_etf``; or a seeded random one, core ``simplex_etf``;
or the nearest to the frozen image class means; or a given matrix). heyhey24/OpenPT's ``ETFhead``
(``trainers/etf_coop.py`` lines 50–65, 131–135) builds its random ETF for ``TOTAL_NUM_CLASSES`` (default 200)
vertices and uses the first C, so its vertices meet at cosine −1/199, not −1/(C−1): ``etf="random",
etf_total_classes=200`` reproduces that (the first C rows of a seeded 200-vertex ETF). Text and image are
pulled to the same vertex with the dot-regression loss of Yang et al. (NeurIPS 2022; ``DRLoss`` in OpenPT) or a
cosine loss:

    DR:     L_text = (1/C) Σ_k ½ (cos(t̃_k, m_k) − 1)²,   L_image = (1/B) Σ_i ½ (cos(x̃_i, m_{y_i}) − 1)²
    cosine: L_text = (1/C) Σ_k (1 − cos(t̃_k, m_k)),     L_image = (1/B) Σ_i (1 − cos(x̃_i, m_{y_i}))

``center=True`` (default) centres each modality on its own class-balanced mean first (text: the mean of the
normalised class rows; images: the mean of the memory's class means), as the tracked ``t2i_*`` metrics do:
CLIP's modalities sit in two narrow cones, and an ETF is centred.

When C > D + 1 (ImageNet-1k in 512 dimensions) no simplex ETF exists: the anchored family uses the core's
``near_etf`` (minimal coherence), rotated to the zero-shot text features (``etf="text"``) or the frozen image
class means (``"image"``) by orthogonal Procrustes (core ``align_frame``), as the exact ETF is; the Gram family
keeps E, whose best attainable distance is the core's ``etf_error_floor``; :meth:`NPTRegularizer.info` records
either in ``result.json``.

Buffers (the ETF, the image class-mean memory) are kept in the model's dtype (float64 for a float64 model).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from ncprobe.core.geometry import (
    align_frame,
    center_rows,
    etf_error_floor,
    etf_gram,
    etf_gram_deviation,
    etf_gram_distance,
    near_etf,
    nearest_etf,
    normalize_rows,
    paired_cosines,
    simplex_etf,
)

from ..class_text import handwritten_class_features
from ._shared import (
    TRAINABLE_METHODS,
    batch_class_means,
    check_weight,
    class_means,
    expected_classes_and_dim,
    frozen_training_features,
    full,
    image_tower_trains,
    load_matrix,
    run_dtype,
)
from .base import Regularizer, SetupContext, StepOutput, register_regularizer

__all__ = ["NPTRegularizer", "FAMILIES", "ETF_SOURCES", "IMAGE_TARGETS"]

FAMILIES = ("gram", "anchored")
#: Where the anchored family's fixed ETF comes from (or a matrix / file path).
ETF_SOURCES = ("text", "random", "image")
IMAGE_TARGETS = ("cross", "etf", "text")
_LOSSES = ("dr", "cosine")
_IMAGE_MEANS = ("memory", "batch")


@register_regularizer
class NPTRegularizer(Regularizer):
    """NPT's language-modality-collapse and multi-modality-isomorphism terms (module docstring).

    Parameters
    ----------
    family:
        ``"gram"`` (default: rotation-free Gram matching) or ``"anchored"`` (a fixed ETF).
    loss:
        Anchored family: ``"dr"`` (default, dot regression) or ``"cosine"``.
    etf:
        Anchored family: ``"text"`` (default: the ETF nearest the zero-shot text features), ``"random"``
        (seeded), ``"image"`` (nearest the frozen image class means), or a (C, D) matrix / ``.npy`` / ``.pt``
        path.
    etf_seed:
        Anchored family: seed of the random ETF and of the near-ETF (default: the run seed).
    etf_total_classes:
        Anchored family, ``etf="random"``: build the ETF for this many vertices K ≥ C (K ≤ D + 1) and use its
        first C, so vertices meet at −1/(K−1) (OpenPT's ``ETFhead``: K = ``TOTAL_NUM_CLASSES`` = 200). Default
        ``None``: K = C, the exact ETF of the training classes.
    image_target:
        Gram family: ``"cross"`` (default), ``"etf"`` or ``"text"``.
    image_means:
        Gram family: ``"memory"`` (default: a running memory of every class's mean, the batch's classes
        replaced by their batch means) or ``"batch"`` (only the batch's classes).
    center:
        Centre each modality on its class-balanced mean before comparing with the ETF (default ``True``).
    text_weight, image_weight:
        Weights of the two terms inside the regularizer (the regularizer's own ``weight`` is the overall λ).
    memory_momentum:
        Momentum of the image class-mean memory (``m ← β m + (1 − β) batch mean``).
    """

    name = "npt"
    methods = TRAINABLE_METHODS

    def __init__(
        self,
        family: str = "gram",
        loss: str | None = None,
        etf: Any = None,
        etf_seed: int | None = None,
        etf_total_classes: int | None = None,
        image_target: str | None = None,
        image_means: str | None = None,
        center: bool = True,
        text_weight: float = 1.0,
        image_weight: float = 1.0,
        memory_momentum: float = 0.9,
    ) -> None:
        super().__init__()
        if family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
        anchored = family == "anchored"
        anchored_only = (("loss", loss), ("etf", etf), ("etf_seed", etf_seed), ("etf_total_classes", etf_total_classes))
        for option, value in anchored_only:
            if value is not None and not anchored:
                raise ValueError(f"{option}={value!r} applies to family='anchored' only (the gram family has no ETF)")
        for option, value in (("image_target", image_target), ("image_means", image_means)):
            if value is not None and anchored:
                raise ValueError(f"{option}={value!r} applies to family='gram' only")
        self.family = family
        self.loss = loss or ("dr" if anchored else None)
        if anchored and self.loss not in _LOSSES:
            raise ValueError(f"loss must be one of {_LOSSES}, got {loss!r}")
        self.image_target = image_target or (None if anchored else "cross")
        if not anchored and self.image_target not in IMAGE_TARGETS:
            raise ValueError(f"image_target must be one of {IMAGE_TARGETS}, got {image_target!r}")
        self.image_means = image_means or (None if anchored else "memory")
        if not anchored and self.image_means not in _IMAGE_MEANS:
            raise ValueError(f"image_means must be one of {_IMAGE_MEANS}, got {image_means!r}")
        self.fixed_etf: torch.Tensor | None = None
        self.etf_source = None
        if anchored:
            if etf is None or (isinstance(etf, str) and etf in ETF_SOURCES):
                self.etf_source = etf or "text"
            else:
                self.fixed_etf = normalize_rows(load_matrix(etf, "etf"))
                self.etf_source = "given"
                if self.fixed_etf.shape[0] < 2:
                    raise ValueError(f"etf needs at least 2 rows, got shape {tuple(self.fixed_etf.shape)}")
        if etf_seed is not None and not isinstance(etf_seed, int):
            raise ValueError(f"etf_seed must be an integer, got {etf_seed!r}")
        self.etf_seed = etf_seed
        if etf_total_classes is not None:
            if isinstance(etf_total_classes, bool) or not isinstance(etf_total_classes, int) or etf_total_classes < 2:
                raise ValueError(f"etf_total_classes must be an integer >= 2, got {etf_total_classes!r}")
            if self.etf_source != "random":
                raise ValueError(
                    f"etf_total_classes applies to etf='random' only (OpenPT's ETFhead), got etf={self.etf_source!r}"
                )
        self.etf_total_classes = etf_total_classes
        if not isinstance(center, bool):
            raise ValueError(f"center must be true or false, got {center!r}")
        self.center = center
        self.text_weight = check_weight(text_weight, "text_weight")
        self.image_weight = check_weight(image_weight, "image_weight")
        if self.text_weight == 0 and self.image_weight == 0:
            raise ValueError("text_weight and image_weight are both 0: the regularizer would do nothing")
        if not 0 <= float(memory_momentum) < 1:
            raise ValueError(f"memory_momentum must be in [0, 1), got {memory_momentum!r}")
        self.memory_momentum = float(memory_momentum)
        self.register_buffer("etf", torch.empty(0), persistent=False)
        self.register_buffer("memory", torch.empty(0))
        self._facts: dict[str, Any] = {}

    # ------------------------------------------------------------------ checks and setup
    def check(self, config: Any) -> None:
        if self.fixed_etf is None and self.etf_total_classes is None:
            return
        classes, dim = expected_classes_and_dim(config)
        if self.fixed_etf is not None:
            self._check_fixed(classes, dim, where="the config")
        else:
            self._check_total(classes, dim, where="the config")

    def _check_total(self, classes: int | None, dim: int | None, *, where: str) -> None:
        k = self.etf_total_classes
        if classes is not None and k < classes:
            raise ValueError(f"etf_total_classes={k} is smaller than the {classes} classes {where} trains")
        if dim is not None and k > dim + 1:
            raise ValueError(
                f"etf_total_classes={k} needs embeddings of dimension >= {k - 1} for a simplex ETF, "
                f"the model's have {dim}"
            )

    def _check_fixed(self, classes: int | None, dim: int | None, *, where: str) -> None:
        c, d = self.fixed_etf.shape
        if classes is not None and c != classes:
            raise ValueError(f"etf has {c} rows but {where} trains {classes} classes")
        if dim is not None and d != dim:
            raise ValueError(f"etf has dimension {d} but the model's embeddings have dimension {dim}")
        if c <= d + 1:
            error = float(etf_gram_distance(self.fixed_etf @ self.fixed_etf.T))
            if error > 1e-3:
                raise ValueError(f"etf is not a simplex ETF: its Gram matrix is {error:.3g} from the ETF Gram")

    def setup(self, ctx: SetupContext) -> None:
        task, device = ctx.task, ctx.device
        names = list(task.train_classnames)
        c = len(names)
        zero_shot = handwritten_class_features(task, ctx.model.bundle, device=device)
        d = zero_shot.shape[1]
        self.num_classes, self.dim = c, d
        dtype = run_dtype(ctx.model)
        feats, labels = frozen_training_features(ctx)
        self.memory = class_means(feats, labels, c).to(device=device, dtype=dtype)
        exact = c <= d + 1
        facts: dict[str, Any] = {"num_classes": c, "dim": d, "etf_exists": exact}
        if not exact:
            facts["etf_error_floor"] = etf_error_floor(c, d)
        if self.family == "anchored":
            seed = ctx.seed if self.etf_seed is None else self.etf_seed
            if self.fixed_etf is not None:
                self._check_fixed(c, d, where="the task")
                etf = self.fixed_etf
            elif self.etf_total_classes is not None:  # OpenPT's ETFhead: the first C of K vertices
                k = self.etf_total_classes
                self._check_total(c, d, where="the task")
                etf = simplex_etf(k, d, seed=seed)[:c]
            elif not exact:
                etf = near_etf(c, d, seed=seed, device=device)
                facts["near_etf"] = True
                if self.etf_source != "random":  # rotated to the features, as nearest_etf rotates an exact ETF
                    etf = align_frame(etf, zero_shot if self.etf_source == "text" else self.memory, center=self.center)
                    facts["etf_aligned"] = True
            elif self.etf_source == "random":
                etf = simplex_etf(c, d, seed=seed)
            elif self.etf_source == "text":
                etf = nearest_etf(zero_shot, center=self.center)
            else:
                etf = nearest_etf(self.memory, center=self.center)
            facts["etf_seed"] = seed if self.etf_source == "random" or not exact else None
            self.etf = etf.to(device=device, dtype=dtype)
        elif not exact:
            facts["near_etf"] = True  # E is unattainable; the Gram loss's minimisers are near-ETF frames
        facts["image_term_has_gradient"] = image_tower_trains(ctx.method) or (
            self.family == "gram" and self.image_target != "etf"
        )
        self._facts = facts

    # ------------------------------------------------------------------ the terms
    def term_weight(self, term: str) -> float:
        return {"text": self.text_weight, "image": self.image_weight}.get(term, 1.0)

    def _text_rows(self, text: torch.Tensor) -> torch.Tensor:
        t = full(text)
        if t.dim() == 3:  # CoCoOp: one set of class features per image
            t = t.mean(0)
        t = normalize_rows(t)
        return normalize_rows(center_rows(t)) if self.center else t

    def _anchor_distance(self, rows: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        cos = paired_cosines(rows, anchors)
        return (0.5 * (cos - 1.0).pow(2)).mean() if self.loss == "dr" else (1.0 - cos).mean()

    def forward(self, out: StepOutput) -> dict[str, torch.Tensor]:
        with torch.autocast(out.image_features.device.type, enabled=False):
            return self._terms(out)

    def _terms(self, out: StepOutput) -> dict[str, torch.Tensor]:
        t = self._text_rows(out.text_features)
        x = normalize_rows(full(out.image_features))
        labels = out.labels
        memory = self.memory.to(x.dtype)
        present, batch_means = batch_class_means(x, labels, self.num_classes)
        terms: dict[str, torch.Tensor] = {}
        if self.family == "anchored":
            etf = self.etf.to(x.dtype)
            if self.text_weight > 0:
                terms["text"] = self._anchor_distance(t, etf)
            if self.image_weight > 0:
                xr = normalize_rows(x - memory.mean(0, keepdim=True)) if self.center else x
                terms["image"] = self._anchor_distance(xr, etf[labels])
        else:
            if self.text_weight > 0:
                terms["text"] = etf_gram_deviation(t @ t.T)
            if self.image_weight > 0:
                terms["image"] = self._gram_image(t, memory, present, batch_means)
        self._update_memory(present, batch_means.detach())
        return terms

    def _gram_image(
        self, t: torch.Tensor, memory: torch.Tensor, present: torch.Tensor, batch_means: torch.Tensor
    ) -> torch.Tensor:
        if self.image_means == "memory":
            h = memory.index_copy(0, present, batch_means)
            h = normalize_rows(center_rows(h) if self.center else h)
            if self.image_target == "cross":
                return etf_gram_deviation(h @ t.T)
            if self.image_target == "etf":
                return etf_gram_deviation(h @ h.T)
            return F.mse_loss(h @ h.T, t @ t.T)
        # only the batch's classes: sub-blocks of the C×C targets, centred on the memory's mean
        h = normalize_rows(batch_means - memory.mean(0, keepdim=True) if self.center else batch_means)
        target = etf_gram(self.num_classes, dtype=h.dtype, device=h.device)[present][:, present]
        tp = t[present]
        if self.image_target == "cross":
            return F.mse_loss(h @ tp.T, target)
        if self.image_target == "etf":
            return F.mse_loss(h @ h.T, target)
        return F.mse_loss(h @ h.T, tp @ tp.T)

    @torch.no_grad()
    def _update_memory(self, present: torch.Tensor, batch_means: torch.Tensor) -> None:
        if not self.training:
            return
        beta = self.memory_momentum
        old = self.memory[present]
        self.memory[present] = beta * old + (1.0 - beta) * batch_means.to(self.memory.dtype)

    def info(self) -> dict:
        return {
            "family": self.family,
            "loss": self.loss,
            "etf": self.etf_source,
            "etf_total_classes": self.etf_total_classes,
            "image_target": self.image_target,
            "image_means": self.image_means,
            "center": self.center,
            "text_weight": self.text_weight,
            "image_weight": self.image_weight,
            "memory_momentum": self.memory_momentum,
            **{k: (float(v) if isinstance(v, float) and math.isfinite(v) else v) for k, v in self._facts.items()},
        }
