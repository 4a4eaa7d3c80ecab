"""MaPLe: multi-modal prompt learning with text prompts coupled to vision prompts.

Reproduces ``MultiModalPromptLearner``/``CustomCLIP`` of
``muzairkhattak/multimodal-prompt-learning/trainers/maple.py`` and the prompt handling of
``VisionTransformer_MaPLe``/``ResidualAttentionBlock_MaPLe`` in its ``clip/model.py`` (Khattak et al.,
"MaPLe: Multi-modal Prompt Learning", CVPR 2023):

* text context ``ctx`` (``N_CTX=2``) initialised from the first ``n_ctx`` tokens of ``"a photo of a"``;
  the prompt is ``"a photo of a {class}."`` with only ``"a photo"`` learnable;
* the shallow visual prompts are ``proj(ctx)`` with ``proj = Linear(text_width → vision_width)``,
  appended after the positional embedding and before ``ln_pre``;
* ``prompt_depth`` J (9 for base-to-novel, 3 cross-dataset): J−1 deep text prompts
  ``compound_prompts_text[k]`` (``N(0, 0.02²)``) **replace** text tokens ``1 : 1 + n_ctx`` at the
  input of layers 2..J, and ``compound_prompt_projections[k](compound_prompts_text[k])`` replace the
  last ``n_ctx`` vision tokens there. As in the original (``_get_clones`` deep-copies one layer), all
  deep projections start from the same initial weights.

Parameter names match the original (``ctx``, ``proj``, ``compound_prompts_text``,
``compound_prompt_projections``), so its checkpoints load with :meth:`load_context`.
``vision_prompts=False`` turns the image side off (deep text prompts only; with ``prompt_depth=1``
this is CoOp with a partly fixed prompt).

``n_ctx`` counts **tokens**: the original learns ``embedding[0, 1 : 1 + n_ctx]`` of ``"a photo of a"``
(``N_CTX=2``: "a photo") and keeps the rest as fixed text; this is kept (unlike CoOp/CoCoOp, MaPLe
never sets ``n_ctx`` from the number of words).

Parameter dtypes follow the original (``maple.py``, under ``PREC: fp16``): the deep prompts
``compound_prompts_text`` and their projections ``compound_prompt_projections`` are created
(``torch.empty`` / ``nn.Linear``) and kept in **float32**, and cast to the activations' dtype where
they are used (``.half()`` in ``ResidualAttentionBlock_MaPLe``; here ``replace_tokens``), which keeps
small optimizer updates from being rounded away under fp16. ``ctx`` (taken from the fp16 token
embeddings) and ``proj`` follow the model's dtype, as there. Differences: the original forces
``proj`` to fp16 even for a float32 model and falls back to random initialisation when ``n_ctx > 4``;
here ``proj`` follows the model and an ``n_ctx`` larger than the init text is an error.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

from ..bundle import CLIPBundle
from ..vision_prompts import vision_num_layers, vision_width
from .base import PromptLearner

__all__ = ["MaPLePromptLearner"]


class MaPLePromptLearner(PromptLearner):
    """MaPLe prompt learner (see module docstring).

    Parameters
    ----------
    bundle:
        CLIP model (``VisionTransformer`` image tower when ``vision_prompts``) and tokenizer.
    classnames:
        Class names in label order.
    n_ctx:
        Learnable text tokens (default 2).
    ctx_init:
        Initialisation words (default ``"a photo of a"``); ``None`` for random ``N(0, 0.02²)``.
    prompt_depth:
        J >= 1: layers receiving prompts (1 = shallow only); at most the number of layers.
    vision_prompts:
        Couple visual prompts to the text prompts (MaPLe); ``False`` for text-only prompting.
    generator:
        Random generator for the ``N(0, 0.02²)`` initialisations (Linear layers use the global one).
    """

    method = "maple"

    def __init__(
        self,
        bundle: CLIPBundle,
        classnames: Sequence[str],
        *,
        n_ctx: int = 2,
        ctx_init: str | None = "a photo of a",
        prompt_depth: int = 9,
        vision_prompts: bool = True,
        generator: torch.Generator | None = None,
    ):
        if prompt_depth < 1:
            raise ValueError("MaPLe needs prompt_depth >= 1")
        super().__init__(bundle, classnames, n_ctx=n_ctx, ctx_init=ctx_init, generator=generator)
        if prompt_depth > self.backbone.num_layers:
            raise ValueError(f"prompt_depth={prompt_depth} exceeds the {self.backbone.num_layers} text layers")
        self.prompt_depth = prompt_depth
        width, device, dtype = self.backbone.width, self.backbone.device, self.backbone.dtype
        self.compound_prompts_text = nn.ParameterList(  # float32, as in the original (module docstring)
            [
                nn.Parameter(self.normal_init((self.n_ctx, width), generator=generator, dtype=torch.float32))
                for _ in range(prompt_depth - 1)
            ]
        )
        self.proj: nn.Linear | None = None
        self.compound_prompt_projections: nn.ModuleList | None = None
        if vision_prompts:
            visual = bundle.model.visual
            v_width = vision_width(visual)
            if prompt_depth > vision_num_layers(visual):
                raise ValueError(f"prompt_depth={prompt_depth} exceeds the {vision_num_layers(visual)} vision layers")
            self.proj = nn.Linear(width, v_width).to(device=device, dtype=dtype)
            single = nn.Linear(width, v_width)
            self.compound_prompt_projections = nn.ModuleList(  # float32, as in the original
                [copy.deepcopy(single) for _ in range(prompt_depth - 1)]
            ).to(device=device)
        self._config = dict(n_ctx=n_ctx, ctx_init=ctx_init, prompt_depth=prompt_depth, vision_prompts=vision_prompts)

    @property
    def uses_vision_prompts(self) -> bool:
        return self.proj is not None

    def deep_text_prompts(self) -> list[torch.Tensor]:
        """The float32 deep text prompts (cast to the activations' dtype where they replace tokens)."""
        return list(self.compound_prompts_text)

    def vision_prompts(self) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
        """``(proj(ctx), [projection_k(compound_prompts_text[k])])``; the deep ones in float32."""
        if self.proj is None:
            return None, []
        deep = [layer(p) for layer, p in zip(self.compound_prompt_projections, self.compound_prompts_text)]
        return self.proj(self.ctx.to(self.proj.weight.dtype)), deep
