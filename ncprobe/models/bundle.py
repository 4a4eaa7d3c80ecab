"""The one object every model-facing function takes: a CLIP-like model with its tokenizer and transform."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .digest import weights_digest

__all__ = ["CLIPBundle"]


@dataclass
class CLIPBundle:
    """A loaded CLIP-like model and what is needed to feed it.

    Attributes
    ----------
    model:
        An ``open_clip`` model: ``open_clip.CLIP`` (native text transformer) or
        ``open_clip.CustomTextCLIP`` (e.g. a Hugging Face text tower). It exposes ``encode_image``,
        ``encode_text`` and ``logit_scale``.
    tokenizer:
        Callable mapping a list of strings to a ``LongTensor`` of token ids, as ``encode_text`` expects.
    preprocess:
        Evaluation transform (PIL image → tensor), or ``None`` when inputs are already tensors.
    name:
        Model configuration name (an ``open_clip`` model name or ``"ncprobe-testbed"``).
    pretrained:
        The weights: an ``open_clip`` pretrained tag, a local checkpoint path, or ``None`` (random init).
    extra:
        Free-form provenance (e.g. the testbed's build settings); part of the cache key.

    Cache keys
    ----------
    ``name``, ``pretrained`` and ``extra`` describe where the weights came from, not what they are:
    two random initialisations, a model fine-tuned in place and a checkpoint rewritten at the same
    path all keep them. :meth:`cache_key` therefore adds :meth:`weights_digest`, a hash of the
    current bytes of every parameter and buffer (see :mod:`ncprobe.models.digest`).
    """

    model: torch.nn.Module
    tokenizer: Callable[[list[str]], torch.Tensor]
    preprocess: Callable[[Any], torch.Tensor] | None
    name: str
    pretrained: str | None = None
    extra: dict = field(default_factory=dict)

    def cache_key(self, *, weights: bool = True) -> dict:
        """A JSON-serialisable description of the model, used to key on-disk caches.

        Parameters
        ----------
        weights:
            Include ``"weights_digest"``, :meth:`weights_digest` of the whole model (it changes
            whenever any weight changes). ``False`` gives the provenance only (name, ``pretrained``,
            ``extra``), for callers that digest a part of the model themselves (feature caches digest
            the image tower only).
        """
        key = {"name": self.name, "pretrained": str(self.pretrained), **{k: str(v) for k, v in self.extra.items()}}
        if weights:
            key["weights_digest"] = self.weights_digest()
        return key

    def weights_digest(self) -> str:
        """SHA-256 of the model's current parameters and buffers (:func:`ncprobe.models.weights_digest`)."""
        return weights_digest(self.model)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device
