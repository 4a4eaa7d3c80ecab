"""CoCoOp: the CoOp context shifted by a bias computed from each image.

Reproduces ``PromptLearner``/``CustomCLIP`` of ``KaiyangZhou/CoOp/trainers/cocoop.py`` (Zhou et al.,
"Conditional Prompt Learning for Vision-Language Models", CVPR 2022):

* ``meta_net = Linear(vis_dim → vis_dim // 16) → ReLU → Linear(vis_dim // 16 → ctx_dim)`` applied to
  the **L2-normalised** image feature (``vis_dim`` = CLIP embedding size, ``ctx_dim`` = text width);
* the bias ``π(x)`` is added to every context token, ``ctx_i = ctx + π(x_i)``, and the class prompts
  are rebuilt for each image (``vit_b16_c4_ep10_batch1_ctxv1``: ``n_ctx=4`` from ``"a photo of a"``);
* the class name is at the end (CoCoOp's ``construct_prompts``);
* with ``ctx_init``, ``n_ctx`` is its number of **words** (``n_ctx = len(ctx_init.split(" "))`` in
  ``cocoop.py``); an explicit different ``n_ctx`` is ignored with a warning.

Parameter names (``ctx``, ``meta_net.linear1``, ``meta_net.linear2``) match the original, so its
checkpoints load with :meth:`load_context`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from ..bundle import CLIPBundle
from .base import PromptLearner

__all__ = ["CoCoOpPromptLearner"]


def _embed_dim(model: nn.Module) -> int:
    visual = model.visual
    dim = getattr(visual, "output_dim", None)
    if dim:
        return int(dim)
    proj = getattr(visual, "proj", None)
    if isinstance(proj, torch.Tensor):
        return int(proj.shape[-1])
    raise ValueError(f"cannot infer the image feature size of {type(visual).__name__}")


class CoCoOpPromptLearner(PromptLearner):
    """CoCoOp prompt learner (see module docstring).

    Parameters
    ----------
    bundle:
        CLIP model and tokenizer.
    classnames:
        Class names in label order.
    n_ctx:
        Context length for random initialisation (default 4). With ``ctx_init`` it is the number of
        words of ``ctx_init`` (CoCoOp's rule); a different explicit value is ignored with a warning.
    ctx_init:
        Initialisation words (default ``"a photo of a"``, CoCoOp's config); ``None`` for random.
    generator:
        Random generator for the random context initialisation.
    """

    conditional = True
    method = "cocoop"
    n_ctx_from_words = True

    def __init__(
        self,
        bundle: CLIPBundle,
        classnames: Sequence[str],
        *,
        n_ctx: int | None = None,
        ctx_init: str | None = "a photo of a",
        generator: torch.Generator | None = None,
    ):
        if not ctx_init and n_ctx is None:
            n_ctx = 4
        super().__init__(bundle, classnames, n_ctx=n_ctx, ctx_init=ctx_init, generator=generator)
        vis_dim = _embed_dim(bundle.model)
        hidden = max(1, vis_dim // 16)
        self.meta_net = nn.Sequential(
            OrderedDict(
                [
                    ("linear1", nn.Linear(vis_dim, hidden)),
                    ("relu", nn.ReLU(inplace=True)),
                    ("linear2", nn.Linear(hidden, self.backbone.width)),
                ]
            )
        ).to(device=self.backbone.device, dtype=self.backbone.dtype)
        self._config = dict(n_ctx=self.n_ctx, ctx_init=ctx_init)

    def text_prompts(self, image_features: torch.Tensor | None = None) -> torch.Tensor:
        """Per-image prompts ``(B, n_cls, L, D)`` from normalised image features ``(B, vis_dim)``."""
        if image_features is None:
            raise ValueError("CoCoOp prompts are conditioned on image features; pass image_features")
        bias = self.meta_net(image_features.to(self.ctx.dtype))  # (B, D)
        ctx = self.ctx.unsqueeze(0) + bias.unsqueeze(1)  # (B, n_ctx, D)
        ctx = ctx.unsqueeze(1).expand(-1, self.n_cls, -1, -1)  # (B, n_cls, n_ctx, D)
        return self.assemble(ctx)
