"""IVLP: independent deep text and vision prompts (the prompt structure of PromptSRC).

Reproduces ``VLPromptLearner`` of ``muzairkhattak/multimodal-prompt-learning/trainers/independentVL.py``
with ``ResidualAttentionBlock_IVLP`` and ``VisionTransformer`` (``VPT``) of its ``clip/model.py``
(the "Independent V-L prompting" baseline of MaPLe, and the prompts of PromptSRC):

* text: context ``ctx`` (``N_CTX_TEXT``, from the first tokens of ``"a photo of a"``) in the input
  sequence, and ``text_depth − 1`` deep prompts (``N(0, 0.02²)``) replacing text tokens
  ``1 : 1 + n_ctx_text`` at the input of layers 2..``text_depth``;
* vision (when ``vision_depth >= 1``): ``n_ctx_vision`` prompts (``N(0, 0.02²)``) appended after the
  positional embedding and before ``ln_pre``, and ``vision_depth − 1`` deep prompts replacing the
  last ``n_ctx_vision`` tokens of layers 2..``vision_depth``. Text and vision prompts are not coupled.

The original keeps the deep prompts inside the CLIP blocks (``VPT_shallow``) and the shallow visual
prompt as ``image_encoder.VPT``; here all live in the learner (``deep_text_ctx``, ``vision_ctx``,
``deep_vision_ctx``), so the CLIP model stays unmodified. :meth:`load_context` maps the original's
checkpoint keys onto these names. Defaults follow the PromptSRC/IVLP config
``vit_b16_c2_ep20_batch4_4+4ctx`` (4+4 tokens, depth 9/9).

``n_ctx_text`` counts **tokens** of ``ctx_init`` (the first ``n_ctx_text`` are learned, the rest stay
fixed text), as in the original; it is not set from the number of words.

Parameter dtypes follow the original: ``vision_ctx``, ``deep_vision_ctx`` and ``deep_text_ctx`` are
created with ``torch.empty`` there, left out of CLIP's fp16 conversion, so they are **float32** and
cast (``.half()``) where used; here likewise (cast in ``replace_tokens`` and
``encode_image_with_prompts``), which keeps small updates from being rounded away under fp16. ``ctx``
(from the token embeddings) follows the model's dtype, as there.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..bundle import CLIPBundle
from ..vision_prompts import vision_num_layers, vision_width
from .base import PromptLearner

__all__ = ["IVLPPromptLearner"]


class IVLPPromptLearner(PromptLearner):
    """Independent vision-language prompt learner (see module docstring).

    Parameters
    ----------
    bundle:
        CLIP model (``VisionTransformer`` image tower when ``vision_depth >= 1``) and tokenizer.
    classnames:
        Class names in label order.
    n_ctx_text, n_ctx_vision:
        Number of text / vision prompt tokens (default 4 each).
    ctx_init:
        Text context initialisation words (default ``"a photo of a"``); ``None`` for random.
    text_depth:
        Text layers with prompts, >= 1 (default 9).
    vision_depth:
        Vision layers with prompts, >= 0 (0: no visual prompts; default 9).
    generator:
        Random generator for the ``N(0, 0.02²)`` initialisations.
    """

    method = "ivlp"

    def __init__(
        self,
        bundle: CLIPBundle,
        classnames: Sequence[str],
        *,
        n_ctx_text: int = 4,
        n_ctx_vision: int = 4,
        ctx_init: str | None = "a photo of a",
        text_depth: int = 9,
        vision_depth: int = 9,
        generator: torch.Generator | None = None,
    ):
        if text_depth < 1:
            raise ValueError("IVLP needs text_depth >= 1 (use vision-only prompting otherwise)")
        if vision_depth < 0:
            raise ValueError("vision_depth must be >= 0")
        super().__init__(bundle, classnames, n_ctx=n_ctx_text, ctx_init=ctx_init, generator=generator)
        if text_depth > self.backbone.num_layers:
            raise ValueError(f"text_depth={text_depth} exceeds the {self.backbone.num_layers} text layers")
        width = self.backbone.width
        self.text_depth, self.vision_depth = text_depth, vision_depth
        f32 = torch.float32  # the original's VPT parameters stay float32 (module docstring)
        self.deep_text_ctx = nn.ParameterList(
            [
                nn.Parameter(self.normal_init((self.n_ctx, width), generator=generator, dtype=f32))
                for _ in range(text_depth - 1)
            ]
        )
        self.vision_ctx: nn.Parameter | None = None
        self.deep_vision_ctx = nn.ParameterList()
        if vision_depth >= 1:
            if n_ctx_vision < 1:
                raise ValueError("n_ctx_vision must be >= 1 when vision_depth >= 1")
            visual = bundle.model.visual
            v_width = vision_width(visual)
            if vision_depth > vision_num_layers(visual):
                raise ValueError(f"vision_depth={vision_depth} exceeds the {vision_num_layers(visual)} vision layers")
            self.vision_ctx = nn.Parameter(self.normal_init((n_ctx_vision, v_width), generator=generator, dtype=f32))
            self.deep_vision_ctx.extend(
                nn.Parameter(self.normal_init((n_ctx_vision, v_width), generator=generator, dtype=f32))
                for _ in range(vision_depth - 1)
            )
        self._config = dict(
            n_ctx_text=n_ctx_text,
            n_ctx_vision=n_ctx_vision,
            ctx_init=ctx_init,
            text_depth=text_depth,
            vision_depth=vision_depth,
        )

    @property
    def uses_vision_prompts(self) -> bool:
        return self.vision_ctx is not None

    def _map_original_key(self, key: str) -> str | None:
        """Original IVLP checkpoint keys (prompts inside the CLIP blocks) → this learner's names."""
        if key == "image_encoder.VPT":
            return "vision_ctx"
        for tower, name in (("image_encoder", "deep_vision_ctx"), ("text_encoder", "deep_text_ctx")):
            head = f"{tower}.transformer.resblocks."
            if key.startswith(head) and key.endswith(".VPT_shallow"):
                layer = key[len(head) : -len(".VPT_shallow")]
                if layer.isdigit() and int(layer) >= 1:
                    return f"{name}.{int(layer) - 1}"
        return None

    def deep_text_prompts(self) -> list[torch.Tensor]:
        return list(self.deep_text_ctx)

    def vision_prompts(self) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
        if self.vision_ctx is None:
            return None, []
        return self.vision_ctx, list(self.deep_vision_ctx)
