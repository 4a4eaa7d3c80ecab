"""Zero-shot CLIP as a model of the engine: fixed hand-written class prompts, nothing trains.

A class's text feature is t_k = normalize(f_T(template(class_k))), or for several templates the normalised
mean of the normalised features over templates (CLIP's prompt ensemble; Radford et al., 2021, §3.1.4); the
logits are exp(τ)·cos(h, t_k) (+ the model's logit bias, SigLIP). :mod:`.methods` builds it for ``zeroshot``
and :mod:`.class_text` extends it to several sentences per class.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ncprobe.core.geometry import normalize_rows
from ncprobe.models import CLIPBundle
from ncprobe.models.features import text_features

__all__ = ["ZeroShotCLIP"]


class ZeroShotCLIP(nn.Module):
    """CLIP with fixed hand-written class prompts, with the interface of :class:`~ncprobe.models.PromptedCLIP`.

    Text features are the dataset template filled with each class name (or, for a list of templates, the
    normalised mean over templates, as CLIP's prompt ensembles), computed once per class set.
    """

    prompt_learner = None

    def __init__(self, bundle: CLIPBundle, classnames: Sequence[str], templates: str | Sequence[str]):
        super().__init__()
        self.classnames = tuple(classnames)
        self.templates = templates
        self._freeze(bundle, text_features(bundle, self.classnames, templates, normalize=True, device=bundle.device))

    def _freeze(self, bundle: CLIPBundle, class_text: torch.Tensor) -> None:
        """Hold the frozen model and the fixed ``(C, d)`` class text (a non-persistent buffer)."""
        self._bundle = bundle
        self.clip = bundle.model
        self.clip.requires_grad_(False)
        self.clip.eval()
        self.register_buffer("class_text", class_text.to(bundle.device), persistent=False)

    @property
    def bundle(self) -> CLIPBundle:
        return self._bundle

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.clip.logit_scale.exp()

    def train(self, mode: bool = True) -> ZeroShotCLIP:
        self.training = mode
        self.clip.eval()
        return self

    def encode_image(self, images: torch.Tensor, *, normalize: bool = True) -> torch.Tensor:
        feats = self.clip.encode_image(images)
        return normalize_rows(feats) if normalize else feats

    def encode_text(self, image_features: torch.Tensor | None = None, *, normalize: bool = True) -> torch.Tensor:
        return self.class_text

    def encode_sentences(self, texts: Sequence[str], *, normalize: bool = True) -> torch.Tensor:
        ids = self.bundle.tokenizer(list(texts)).to(self.bundle.device)
        feats = self.clip.encode_text(ids)
        return normalize_rows(feats) if normalize else feats

    def compute_logits(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        logits = self.logit_scale * image_features @ text_features.to(image_features.dtype).T
        bias = getattr(self.clip, "logit_bias", None)
        return logits if bias is None else logits + bias

    def with_classnames(self, classnames: Sequence[str]) -> ZeroShotCLIP:
        return ZeroShotCLIP(self.bundle, classnames, self.templates)
