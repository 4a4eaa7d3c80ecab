"""KgCoOp (Yao, Zhang & Xu, CVPR 2023): keep the learned class text features near the hand-written ones.

Source: ``htyao89/KgCoOp/trainers/kgcoop.py``. With t_k the normalised text feature of the learned prompt and
t_k^clip that of the frozen hand-written prompt (the dataset template filled with the class name; under the
testbed's description protocol the mean of the class's descriptions),

    L_kg = 1 − (1/C) Σ_k cos(t_k, t_k^clip),

added with weight w (``TRAINER.COOP.W = 8.0`` in ``scripts/base2new_train.sh``). The frozen features come
from the unprompted CLIP text tower, computed once in :meth:`KgCoOpRegularizer.setup`.
"""

from __future__ import annotations

import torch

from ncprobe.core.geometry import paired_cosines

from ..class_text import handwritten_class_features
from .base import Regularizer, SetupContext, StepOutput, register_regularizer

__all__ = ["KgCoOpRegularizer"]


@register_regularizer
class KgCoOpRegularizer(Regularizer):
    """KgCoOp's knowledge-guided term (see the module docstring); applies to any text-prompting method."""

    name = "kgcoop"

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("clip_text", torch.empty(0), persistent=False)

    def setup(self, ctx: SetupContext) -> None:
        model = ctx.model
        feats = handwritten_class_features(ctx.task, model.bundle, device=ctx.device)
        self.clip_text = feats.to(ctx.device)

    def forward(self, out: StepOutput) -> dict[str, torch.Tensor]:
        t = out.text_features
        if t.dim() == 3:  # CoCoOp: one set of class features per image
            t = t.mean(0)
        ref = self.clip_text.to(t.dtype)
        return {"distance": 1.0 - paired_cosines(t, ref).mean()}
