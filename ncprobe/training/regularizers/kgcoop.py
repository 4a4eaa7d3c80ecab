"""KgCoOp (Yao, Zhang & Xu, CVPR 2023): keep the learned class text features near the hand-written ones.

Source: ``htyao89/KgCoOp/KgCoOp/trainers/kgcoop.py``. With t_k the normalised text feature of the learned prompt
and t_k^clip that of the frozen hand-written prompt,

    L_kg = 1 − (1/C) Σ_k cos(t_k, t_k^clip)                       (lines 229–241: ``1.0 - torch.mean(score)``)

added with weight w (``TRAINER.COOP.W = 8.0`` in ``scripts/base2new_train.sh``). The frozen features come
from the unprompted CLIP text tower, computed once in :meth:`KgCoOpRegularizer.setup`.

The hand-written prompt (option ``templates``): ``"kgcoop"`` (default) fills KgCoOp's own template table
(``CUSTOM_TEMPLATES`` of ``trainers/kgcoop.py`` lines 37–54, :data:`ncprobe.data.templates.KGCOOP_TEMPLATES`)
with the class name — for DescribableTextures ``'a photo of a {}, a type of texture.'``, not CoOp's
``'{} texture.'``; ``"task"`` uses the task's own template (CoOp's table). A dataset outside the table (the
testbed) uses the task's template, and under the testbed's description protocol the class text is the mean of
the class's descriptions (:func:`~ncprobe.training.class_text.handwritten_class_features`).

Under CoCoOp the text features are conditioned on each image, (B, C, d). KgCoOp publishes no CoCoOp variant;
here the per-image features are averaged over the batch first and the cosine is taken between that mean and
t_k^clip: L = 1 − (1/C) Σ_k cos((1/B) Σ_i t_{i,k}, t_k^clip) (one pull per class, as for CoOp), not the mean of
the B·C per-image cosines.
"""

from __future__ import annotations

import torch

from ncprobe.core.geometry import paired_cosines
from ncprobe.data.templates import KGCOOP_TEMPLATES
from ncprobe.models.features import text_features

from ..class_text import handwritten_class_features
from ._shared import run_dtype
from .base import Regularizer, SetupContext, StepOutput, register_regularizer

__all__ = ["KgCoOpRegularizer", "TEMPLATE_SOURCES"]

#: Where the hand-written prompts come from (module docstring).
TEMPLATE_SOURCES = ("kgcoop", "task")


@register_regularizer
class KgCoOpRegularizer(Regularizer):
    """KgCoOp's knowledge-guided term (see the module docstring); applies to any text-prompting method.

    Parameters
    ----------
    templates:
        ``"kgcoop"`` (default: KgCoOp's own template table) or ``"task"`` (the task's template).
    """

    name = "kgcoop"

    def __init__(self, templates: str = "kgcoop") -> None:
        super().__init__()
        if templates not in TEMPLATE_SOURCES:
            raise ValueError(f"templates must be one of {TEMPLATE_SOURCES}, got {templates!r}")
        self.templates = templates
        self.template: str | None = None
        self.register_buffer("clip_text", torch.empty(0), persistent=False)

    def setup(self, ctx: SetupContext) -> None:
        task, model = ctx.task, ctx.model
        own = self.templates == "kgcoop" and task.train_class_texts is None and task.dataset in KGCOOP_TEMPLATES
        if own:
            self.template = KGCOOP_TEMPLATES[task.dataset]
            feats = text_features(model.bundle, task.train_classnames, self.template, normalize=True, device=ctx.device)
        else:
            self.template = None if task.train_class_texts is not None else task.templates
            feats = handwritten_class_features(task, model.bundle, device=ctx.device)
        self.clip_text = feats.to(device=ctx.device, dtype=run_dtype(model))

    def forward(self, out: StepOutput) -> dict[str, torch.Tensor]:
        t = out.text_features
        if t.dim() == 3:  # CoCoOp: the mean of the per-image class features, then the cosine (module docstring)
            t = t.mean(0)
        ref = self.clip_text.to(t.dtype)
        return {"distance": 1.0 - paired_cosines(t, ref).mean()}

    def info(self) -> dict:
        return {"templates": self.templates, "template": self.template}
