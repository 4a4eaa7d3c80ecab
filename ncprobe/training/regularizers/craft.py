"""Craft (Sun et al., WACV 2025, arXiv 2407.15894): cross-modal anchor alignment and MMD.

Read from the public code (``Jingchensun/Craft`` @ ``0cd4b4f``: ``trainers/maple.py``, ``maple_ood.py``,
``lpclip/static_anchor.py``). With s = CLIP's ``logit_scale.exp()``, x̂_i the (prompted) image features of
the batch, ŝ_i the text feature of sample i's class sentence (its *stochastic anchor*) and Â the static
anchors (class means of frozen, unprompted image features of the training set), every relative
representation is the core's ``relative_representation`` (scaled cosines to an anchor set of the other
modality):

    xeimage      L = CE(s · Ŝ Âᵀ, y)            text → static image anchors     (``loss_xeimage``)
    contrastive  L = CE(s · X̂ Ŝᵀ, arange(B))    image → stochastic text anchors (``loss_contrastive``,
                                                 one direction, same-class pairs counted as negatives)
    mmd          L = MMD²(s · X̂ T̂ᵀ, s · X̂_tgt T̂ᵀ)  source vs unlabelled target images, both expressed
                                                 relative to the class text features (``maple_ood.py``)

The MMD is the core's ``mmd2``: multi-bandwidth Gaussian kernel (σ² ∈ {10, 15, 20, 50}), per-column min–max
normalisation of each side, biased V-statistic — the code's ``MMD(x, y, kernel="rbf")`` — with the
bandwidths, the normalisation and the estimator as options, and unequal batch sizes allowed.

Sentences (``sentences``): ``"template"`` encodes the dataset template filled with each sample's class name
through the *prompted* text encoder (Craft's ``text_encoder(None, text, deep_prompts)``: plain token
embeddings, the deep text prompts of MaPLe/IVLP still replace tokens in layers 2..J); ``"prompts"`` takes
the method's learned class prompt of each sample's class. Without deep text prompts (CoOp, CoCoOp) the
template path has no trainable parameter, so ``"auto"`` (default) picks ``"template"`` for deep-prompt
methods and ``"prompts"`` otherwise.

Fixes of the public code (each in ``docs/methods.md``): the anchors are computed from the run's own
few-shot training set, base classes only, once, on the run's device (the code reads a file of up to 200
images per class, novel classes included on 6 of 11 datasets, from a hard-coded path on every step);
every term has a weight and every computed term enters the loss (the code computes ``loss_xeimage`` against
random anchors and discards it in the OOD trainer, and PromptSRC's Craft term never reaches the loss); no
device is hard-coded; and the engine evaluates the last trained epoch (the code's test script loads epoch 20
of a 5-epoch run). ``anchor_classes="all"``, ``anchor_shots=200`` and ``anchor_average="raw"`` reproduce the
original anchors (``lpclip/static_anchor.py`` lines 24–29: ``KMeans(n_clusters=1)`` — the mean — of the raw
``clip_model.visual`` features; ``trainers/maple.py`` lines 217–218 normalise the centres in the loss); the
default ``anchor_average="normalized"`` averages L2-normalised features instead. The run's ``result.json`` says
when the anchors saw novel classes or images outside the few-shot set. The anchors are kept in the model's dtype.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from ncprobe.core.anchors import relative_representation, select_anchors
from ncprobe.core.geometry import normalize_rows
from ncprobe.core.mmd import CRAFT_BANDWIDTHS, mmd2

from ._shared import TRAINABLE_METHODS, check_weight, frozen_training_features, full, run_dtype
from .base import Regularizer, SetupContext, StepOutput, register_regularizer

__all__ = ["CraftRegularizer", "SENTENCES", "ANCHOR_CLASSES", "ANCHOR_AVERAGES"]

SENTENCES = ("auto", "template", "prompts")
ANCHOR_CLASSES = ("train", "all")
#: What the static anchors average: L2-normalised frozen features (default) or the raw ones (the code).
ANCHOR_AVERAGES = ("normalized", "raw")
_DEEP_TEXT_METHODS = ("maple", "ivlp")


@register_regularizer
class CraftRegularizer(Regularizer):
    """Craft's anchor-alignment terms and its MMD term (module docstring).

    Parameters
    ----------
    xeimage_weight, contrastive_weight, mmd_weight:
        Weights of the three terms inside the regularizer (the code adds ``loss_xeimage`` and
        ``loss_contrastive`` with weight 1 in-distribution and uses only the MMD out of distribution). A
        term with weight 0 is not computed. ``mmd_weight > 0`` needs an unlabelled target set
        (``data.ood_target``).
    anchor_classes:
        ``"train"`` (default: the run's training classes, base classes in base-to-novel) or ``"all"``
        (every class of the dataset, as the code does on DTD, EuroSAT, Flowers, Pets, SUN397 and Cars;
        the result is marked as having seen novel classes).
    anchor_shots:
        Images per class for the anchors (``None``: the run's few-shot set; the code: up to 200).
    anchor_average:
        ``"normalized"`` (default: the class means of L2-normalised frozen features) or ``"raw"`` (of the raw
        frozen image-tower output, as ``static_anchor.py``; the loss normalises the means either way).
    anchors_per_class:
        k static anchors per class (k-means, core ``select_anchors``; k = 1 is the class mean, the code's
        ``KMeans(n_clusters=1)``). With k > 1 a class's probability is the sum of its anchors' softmax
        probabilities.
    sentences:
        ``"auto"``, ``"template"`` or ``"prompts"`` (module docstring).
    mmd_normalize:
        ``"minmax"`` (the code) or ``None``.
    mmd_bandwidths:
        Kernel variances σ² (the code: 10, 15, 20, 50).
    mmd_estimator:
        ``"biased"`` (the code's V-statistic) or ``"unbiased"``.
    """

    name = "craft"
    methods = TRAINABLE_METHODS

    def __init__(
        self,
        xeimage_weight: float = 1.0,
        contrastive_weight: float = 1.0,
        mmd_weight: float = 0.0,
        anchor_classes: str = "train",
        anchor_shots: int | None = None,
        anchor_average: str = "normalized",
        anchors_per_class: int = 1,
        sentences: str = "auto",
        mmd_normalize: str | None = "minmax",
        mmd_bandwidths: Sequence[float] = CRAFT_BANDWIDTHS,
        mmd_estimator: str = "biased",
    ) -> None:
        super().__init__()
        self.weights = {
            "xeimage": check_weight(xeimage_weight, "xeimage_weight"),
            "contrastive": check_weight(contrastive_weight, "contrastive_weight"),
            "mmd": check_weight(mmd_weight, "mmd_weight"),
        }
        if not any(self.weights.values()):
            raise ValueError("xeimage_weight, contrastive_weight and mmd_weight are all 0: nothing to compute")
        self.needs = frozenset({"target"}) if self.weights["mmd"] > 0 else frozenset()
        if anchor_classes not in ANCHOR_CLASSES:
            raise ValueError(f"anchor_classes must be one of {ANCHOR_CLASSES}, got {anchor_classes!r}")
        if anchor_shots is not None and (not isinstance(anchor_shots, int) or anchor_shots < 1):
            raise ValueError(f"anchor_shots must be a positive integer or None, got {anchor_shots!r}")
        if anchor_average not in ANCHOR_AVERAGES:
            raise ValueError(f"anchor_average must be one of {ANCHOR_AVERAGES}, got {anchor_average!r}")
        if not isinstance(anchors_per_class, int) or anchors_per_class < 1:
            raise ValueError(f"anchors_per_class must be a positive integer, got {anchors_per_class!r}")
        if sentences not in SENTENCES:
            raise ValueError(f"sentences must be one of {SENTENCES}, got {sentences!r}")
        if mmd_normalize not in ("minmax", None):
            raise ValueError(f"mmd_normalize must be 'minmax' or None, got {mmd_normalize!r}")
        if mmd_estimator not in ("biased", "unbiased"):
            raise ValueError(f"mmd_estimator must be 'biased' or 'unbiased', got {mmd_estimator!r}")
        try:
            bandwidths = tuple(float(b) for b in mmd_bandwidths)
        except (TypeError, ValueError):
            raise ValueError(f"mmd_bandwidths must be a list of positive numbers, got {mmd_bandwidths!r}") from None
        if not bandwidths or any(not b > 0 for b in bandwidths):
            raise ValueError(f"mmd_bandwidths must be a list of positive numbers, got {mmd_bandwidths!r}")
        self.anchor_classes = anchor_classes
        self.anchor_shots = anchor_shots
        self.anchor_average = anchor_average
        self.anchors_per_class = anchors_per_class
        self.sentences = sentences
        self.mmd_normalize = mmd_normalize
        self.mmd_bandwidths = bandwidths
        self.mmd_estimator = mmd_estimator
        self.register_buffer("anchors", torch.empty(0), persistent=False)
        self._facts: dict[str, Any] = {}

    # ------------------------------------------------------------------ checks and setup
    def check(self, config: Any) -> None:
        method, depth = config.method.name, config.method.prompt_depth
        if self.sentences == "template" and (method not in _DEEP_TEXT_METHODS or depth == 1):
            raise ValueError(
                f"craft sentences='template' encodes hand-written sentences, which have no trainable part under "
                f"method {method!r} without deep text prompts: the Craft terms would be constants; use "
                "sentences='prompts' (or 'auto')"
            )
        shots = self.anchor_shots or config.data.num_shots
        if self.anchor_shots is None and config.data.imbalance_ratio > 1:  # the tail classes have the fewest
            shots = max(1, math.floor(config.data.num_shots / config.data.imbalance_ratio + 1e-9))
        if self.weights["xeimage"] > 0 and self.anchors_per_class > shots:
            raise ValueError(
                f"anchors_per_class={self.anchors_per_class} exceeds the {shots} images per class the anchors "
                "are computed from (the smallest class)"
            )

    def setup(self, ctx: SetupContext) -> None:
        task, device = ctx.task, ctx.device
        self.classnames = list(task.train_classnames)
        templates = task.templates
        self.template = templates if isinstance(templates, str) else list(templates)[0]
        # the hand-written sentence of each class: its first description under the testbed's description
        # protocol, the dataset template filled with its name otherwise (Craft's dataset.template)
        texts = getattr(task, "train_class_texts", None)
        self.class_sentences = (
            [t[0] for t in texts] if texts is not None else [self.template.format(n) for n in self.classnames]
        )
        learner = getattr(ctx.model, "prompt_learner", None)
        deep = learner is not None and len(learner.deep_text_prompts()) > 0
        mode = self.sentences if self.sentences != "auto" else ("template" if deep else "prompts")
        if mode == "template" and not deep:
            raise ValueError(
                "craft sentences='template' needs deep text prompts (MaPLe/IVLP with prompt_depth > 1); use 'prompts'"
            )
        self.mode = mode
        facts: dict[str, Any] = {"sentences": mode}
        if self.weights["xeimage"] > 0:
            facts.update(self._setup_anchors(ctx))
        if self.weights["mmd"] > 0 and task.ood is None:
            raise ValueError("craft's MMD term needs an unlabelled target set: set data.ood_target")
        self.anchors = self.anchors.to(device)
        self._facts = facts

    def _setup_anchors(self, ctx: SetupContext) -> dict[str, Any]:
        task = ctx.task
        c_train = len(task.train_classnames)
        dtype = run_dtype(ctx.model)
        raw = self.anchor_average == "raw"
        if self.anchor_classes == "train" and self.anchor_shots is None and not raw:
            feats, labels = frozen_training_features(ctx)
        else:
            if self.anchor_classes == "train" and self.anchor_shots is None:
                images, labels = task.train, task.train_labels
            elif task.draw_train is None:
                raise ValueError("this task cannot redraw its training split for anchor_classes/anchor_shots")
            else:
                images, labels = task.draw_train(self.anchor_shots, self.anchor_classes)
            feats, _ = ctx.encode_frozen_images(images, normalize=not raw)
            feats = full(feats).to(dtype)
            feats, labels = (feats if raw else normalize_rows(feats)).to(ctx.device), labels.to(ctx.device)
        k = self.anchors_per_class
        anchors, owners = select_anchors(
            feats, labels, method="class_mean" if k == 1 else "kmeans", per_class=k, seed=ctx.seed
        )
        order = torch.as_tensor(owners).argsort(stable=True)
        owners = torch.as_tensor(owners)[order]
        num_anchor_classes = len(owners) // k
        expected = torch.arange(num_anchor_classes).repeat_interleave(k)
        if len(owners) % k or not torch.equal(owners, expected) or num_anchor_classes < c_train:
            raise ValueError(f"the anchor images do not cover classes 0..{c_train - 1} with {k} anchors each")
        self.anchors = anchors[order.to(anchors.device)].to(dtype)
        counts = torch.bincount(labels.cpu(), minlength=num_anchor_classes)
        novel = self.anchor_classes == "all" and task.protocol == "base_to_novel" and num_anchor_classes > c_train
        return {
            "anchor_average": self.anchor_average,
            "anchor_classes": self.anchor_classes,
            "anchor_class_count": int(num_anchor_classes),
            "anchors_per_class": k,
            "anchor_images": int(len(labels)),
            "anchor_images_per_class_max": int(counts.max()),
            "anchor_shots": self.anchor_shots,
            "saw_novel_classes": bool(novel),
            "saw_images_outside_few_shot_set": self.anchor_shots is not None,
        }

    # ------------------------------------------------------------------ the terms
    def term_weight(self, term: str) -> float:
        return self.weights.get(term, 1.0)

    def _sentence_features(self, out: StepOutput) -> torch.Tensor:
        labels = out.labels
        if self.mode == "prompts":
            t = out.text_features
            rows = t[torch.arange(len(labels), device=labels.device), labels] if t.dim() == 3 else t[labels]
            return normalize_rows(full(rows))
        classes, inverse = torch.unique(labels, return_inverse=True)
        sentences = [self.class_sentences[int(k)] for k in classes.tolist()]
        # one pass per distinct sentence: equal sentences have equal features (the code encodes B sentences)
        return normalize_rows(full(out.model.encode_sentences(sentences)))[inverse]

    def forward(self, out: StepOutput) -> dict[str, torch.Tensor]:
        with torch.autocast(out.image_features.device.type, enabled=False):
            return self._terms(out)

    def _terms(self, out: StepOutput) -> dict[str, torch.Tensor]:
        scale = full(out.logit_scale)
        labels = out.labels
        terms: dict[str, torch.Tensor] = {}
        if self.weights["xeimage"] > 0 or self.weights["contrastive"] > 0:
            s = self._sentence_features(out)
            if self.weights["xeimage"] > 0:
                z = relative_representation(s, self.anchors.to(s.dtype), scale=scale)
                if self.anchors_per_class > 1:  # a class's probability: the sum over its anchors
                    z = z.view(len(z), -1, self.anchors_per_class).logsumexp(-1)
                terms["xeimage"] = F.cross_entropy(z, labels)
            if self.weights["contrastive"] > 0:
                z = relative_representation(full(out.image_features), s, scale=scale)
                terms["contrastive"] = F.cross_entropy(z, torch.arange(len(z), device=z.device))
        if self.weights["mmd"] > 0:
            target = out.target_features
            if target is None:
                raise RuntimeError("craft's MMD term got no target batch (data.ood_target is not set)")
            target = normalize_rows(full(target))
            text = out.text_features
            if text.dim() == 3:  # CoCoOp: the target images' own conditional prompts
                text = out.model.encode_text(target)
            source = full(out.logits)
            shifted = full(out.model.compute_logits(target, full(text)))
            terms["mmd"] = mmd2(
                source,
                shifted,
                bandwidths=self.mmd_bandwidths,
                estimator=self.mmd_estimator,
                normalize=self.mmd_normalize,
            )
        return terms

    def info(self) -> dict:
        return {
            "weights": dict(self.weights),
            "mmd_normalize": self.mmd_normalize,
            "mmd_bandwidths": list(self.mmd_bandwidths),
            "mmd_estimator": self.mmd_estimator,
            "saw_novel_classes": False,
            **self._facts,
        }
