"""A frozen CLIP model plus a prompt learner, producing CLIP logits and normalised features.

Mirrors ``CustomCLIP`` of the CoOp/CoCoOp/MaPLe code bases (``KaiyangZhou/CoOp/trainers/coop.py``,
``cocoop.py``, ``muzairkhattak/multimodal-prompt-learning/trainers/maple.py``):
``logits = logit_scale.exp() · normalize(image) @ normalize(text)ᵀ`` (CoCoOp: one set of class text
features per image). The normalised features are returned too, for losses that act on them (NPT's
ETF regularisers, Craft's anchor alignment), and :meth:`PromptedCLIP.encode_sentences` encodes
arbitrary sentences through the same prompted text encoder with plain token embeddings, deep prompts
still replacing tokens in layers 2..J (Craft's ``text_encoder(prompts=None, ...)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ncprobe.core.geometry import normalize_rows

from .bundle import CLIPBundle
from .prompt_learners.base import PromptLearner
from .prompt_learners.layout import tokenize_ids, tokenizer_layout
from .text_backbones import TextBackbone
from .vision_prompts import check_promptable_visual, encode_image_with_prompts

__all__ = ["PromptedCLIP", "PromptedCLIPOutput"]


def _input_dtype(visual: nn.Module) -> torch.dtype:
    """Dtype images must have: that of the tower's first conv/linear weight (fp16 under ``precision="fp16"``,
    where class/positional embeddings stay float32)."""
    for module in visual.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            return module.weight.dtype
    return next(visual.parameters()).dtype


@dataclass
class PromptedCLIPOutput:
    """Result of :meth:`PromptedCLIP.forward`.

    Attributes
    ----------
    logits:
        ``(B, n_cls)`` scaled cosine similarities (plus ``logit_bias`` for SigLIP-style models).
    image_features:
        ``(B, d)`` L2-normalised (prompted) image features.
    text_features:
        ``(n_cls, d)`` L2-normalised class text features, ``(B, n_cls, d)`` for conditional learners.
    logit_scale:
        ``logit_scale.exp()`` (100 for OpenAI CLIP).
    """

    logits: torch.Tensor
    image_features: torch.Tensor
    text_features: torch.Tensor
    logit_scale: torch.Tensor


class PromptedCLIP(nn.Module):
    """Frozen ``open_clip`` model driven by a :class:`PromptLearner`.

    Construction freezes every CLIP parameter (``requires_grad=False``, shared with ``bundle.model``)
    and keeps the CLIP model in eval mode even when ``.train()`` is called (dropout of Hugging Face
    towers stays off; OpenAI CLIP has none), so only the prompt learner trains. Save and load
    ``prompted.prompt_learner.state_dict()``; it excludes the per-class token buffers.

    Parameters
    ----------
    bundle:
        The CLIP model and tokenizer the learner was built on.
    prompt_learner:
        A CoOp/CoCoOp/MaPLe/IVLP learner built on ``bundle``.
    max_prompts_per_pass:
        For conditional learners (CoCoOp): at most this many (image, class) prompts go through the
        text encoder at once (images are processed in chunks); results do not depend on it.
    trim_padding:
        Cut class prompts after their last non-padding token when the text tower cannot see padding
        (see :meth:`_encode_prompts`): mathematically the same features, computed on a fraction of the
        sequence. Float rounding may differ slightly (sums reordered); ``False`` reproduces
        ``model.encode_text`` bit for bit.
    """

    def __init__(
        self,
        bundle: CLIPBundle,
        prompt_learner: PromptLearner,
        *,
        max_prompts_per_pass: int = 4096,
        trim_padding: bool = True,
    ):
        super().__init__()
        if prompt_learner.bundle.model is not bundle.model:
            raise ValueError("the prompt learner was built on a different CLIP model")
        if prompt_learner.uses_vision_prompts:
            check_promptable_visual(bundle.model.visual)
        self._bundle = bundle
        self.clip = bundle.model
        self.clip.requires_grad_(False)
        self.clip.eval()
        self.prompt_learner = prompt_learner
        self.max_prompts_per_pass = int(max_prompts_per_pass)
        self.trim_padding = bool(trim_padding)
        self._length: int | None = None

    # ------------------------------------------------------------------ properties
    @property
    def bundle(self) -> CLIPBundle:
        return self._bundle

    @property
    def backbone(self) -> TextBackbone:
        return self.prompt_learner.backbone

    @property
    def classnames(self) -> tuple[str, ...]:
        return self.prompt_learner.classnames

    @property
    def logit_scale(self) -> torch.Tensor:
        """``logit_scale.exp()`` of the frozen model."""
        return self.clip.logit_scale.exp()

    def train(self, mode: bool = True) -> "PromptedCLIP":
        """Set the prompt learner's mode; the frozen CLIP model always stays in eval mode."""
        self.training = mode
        self.prompt_learner.train(mode)
        self.clip.eval()
        return self

    # ------------------------------------------------------------------ encoders
    def encode_image(self, images: torch.Tensor, *, normalize: bool = True) -> torch.Tensor:
        """Image features ``(B, d)`` with the learner's visual prompts (if any)."""
        shallow, deep = self.prompt_learner.vision_prompts()
        visual = self.clip.visual
        if shallow is None:
            feats = self.clip.encode_image(images.to(_input_dtype(visual)))
        else:
            feats = encode_image_with_prompts(visual, images, shallow=shallow, deep=deep)
        return normalize_rows(feats) if normalize else feats

    def encode_text(self, image_features: torch.Tensor | None = None, *, normalize: bool = True) -> torch.Tensor:
        """Class text features from the learned prompts.

        Parameters
        ----------
        image_features:
            Normalised image features ``(B, d)``; required by conditional learners (CoCoOp).

        Returns
        -------
        torch.Tensor
            ``(n_cls, d)``, or ``(B, n_cls, d)`` for conditional learners.
        """
        learner = self.prompt_learner
        if not learner.conditional:
            feats = self._encode_prompts(learner.text_prompts())
        else:
            if image_features is None:
                raise ValueError("conditional prompts (CoCoOp) need image_features; pass encode_image(...)")
            # CoCoOp's CustomCLIP loops over images; chunks of images bound the (B, n_cls, L, D) prompts
            step = max(1, self.max_prompts_per_pass // learner.n_cls)
            chunks = [
                self._encode_prompts(learner.text_prompts(image_features[i : i + step]))
                for i in range(0, image_features.shape[0], step)
            ]
            feats = torch.cat(chunks, dim=0)
        return normalize_rows(feats) if normalize else feats

    def _active_length(self) -> int:
        """Sequence length the class prompts need: up to their last non-padding token, when the text tower
        cannot see what follows (:attr:`TextBackbone.padding_invisible`); the full context otherwise."""
        ids = self.prompt_learner.token_ids
        if not (self.trim_padding and self.backbone.padding_invisible):
            return ids.shape[1]
        pad = tokenizer_layout(self.bundle.tokenizer).pad_id
        used = (ids != pad).any(0).nonzero()
        return int(used.max()) + 1 if len(used) else ids.shape[1]

    def _encode_prompts(self, prompts: torch.Tensor) -> torch.Tensor:
        """Encode prompt embeddings ``(n_cls, L, D)`` or ``(B, n_cls, L, D)`` (unnormalised).

        Prompts are cut to :meth:`_active_length` first: the padding CoOp-style prompts carry up to the
        context length (77 for CLIP) is invisible to the pooled feature, so cutting it changes nothing but
        the cost (several times less work per step for typical prompts).
        """
        learner = self.prompt_learner
        deep, start = learner.deep_text_prompts(), learner.ctx_start
        if self._length is None:
            self._length = self._active_length()
        n = self._length
        prompts = prompts[..., :n, :]
        if prompts.dim() == 3:
            return self.backbone.encode(prompts, learner.token_ids[:, :n], deep_prompts=deep, deep_start=start)
        b, c = prompts.shape[:2]
        ids = learner.token_ids[:, :n].repeat(b, 1)
        flat = self.backbone.encode(prompts.flatten(0, 1), ids, deep_prompts=deep, deep_start=start)
        return flat.view(b, c, -1)

    def encode_sentences(self, texts: Sequence[str] | torch.Tensor, *, normalize: bool = True) -> torch.Tensor:
        """Encode arbitrary sentences through the prompted text encoder (Craft's ``prompts=None`` path).

        The sentences enter as plain token embeddings (no learnable context in the input), but deep
        text prompts (MaPLe, IVLP) still replace tokens ``ctx_start : ctx_start + n_ctx`` in layers
        2..J, so gradients reach them. Without deep prompts this equals ``model.encode_text``.

        Parameters
        ----------
        texts:
            Sentences, or their token ids ``(N, L)`` from the bundle's tokenizer.

        Returns
        -------
        torch.Tensor
            ``(N, d)`` text features.
        """
        ids = texts if isinstance(texts, torch.Tensor) else tokenize_ids(self.bundle.tokenizer, texts)
        learner = self.prompt_learner
        feats = self.backbone.encode_ids(
            ids.to(self.backbone.device),
            deep_prompts=learner.deep_text_prompts(),
            deep_start=learner.ctx_start,
        )
        return normalize_rows(feats) if normalize else feats

    def compute_logits(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """``logit_scale · image @ textᵀ`` (+ ``logit_bias`` if the model has one); per image for 3-D text."""
        scale = self.logit_scale
        if text_features.dim() == 3:
            logits = scale * torch.einsum("bd,bcd->bc", image_features, text_features.to(image_features.dtype))
        else:
            logits = scale * image_features @ text_features.to(image_features.dtype).t()
        bias = getattr(self.clip, "logit_bias", None)
        if bias is not None:  # SigLIP: a constant shift, softmax/CE and argmax are unchanged
            logits = logits + bias
        return logits

    def forward(self, images: torch.Tensor, *, text_features: torch.Tensor | None = None) -> PromptedCLIPOutput:
        """Logits and normalised features for a batch of images.

        Parameters
        ----------
        images:
            ``(B, 3, H, W)`` preprocessed images.
        text_features:
            Precomputed normalised class text features (``encode_text()``) to reuse at evaluation;
            not allowed for conditional learners.
        """
        image_features = self.encode_image(images)
        if text_features is None:
            cond = image_features if self.prompt_learner.conditional else None
            text_features = self.encode_text(cond)
        elif self.prompt_learner.conditional:
            raise ValueError("conditional prompt learners compute text features per image; omit text_features")
        logits = self.compute_logits(image_features, text_features)
        return PromptedCLIPOutput(
            logits=logits,
            image_features=image_features,
            text_features=text_features,
            logit_scale=self.logit_scale,
        )

    def with_classnames(self, classnames: Sequence[str]) -> "PromptedCLIP":
        """A wrapper for other class names sharing the CLIP model and the learned prompts (base → novel)."""
        learner = self.prompt_learner.with_classnames(classnames)
        model = PromptedCLIP(
            self.bundle, learner, max_prompts_per_pass=self.max_prompts_per_pass, trim_padding=self.trim_padding
        )
        return model.train(self.training)
