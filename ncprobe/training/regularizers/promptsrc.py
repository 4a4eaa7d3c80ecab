"""PromptSRC (Khattak et al., ICCV 2023): self-regulating consistency terms and Gaussian prompt aggregation.

Source: ``muzairkhattak/PromptSRC/trainers/promptsrc.py`` (``CustomCLIP.forward``,
``PromptSRC.forward_backward``; the copy in ``Jingchensun/Craft`` is identical in form). With T̂ the prompted
class text features, T̂_zs the frozen CLIP text features averaged over a template ensemble (raw features
averaged, then normalised, as ``fixed_embeddings``), x̂ the prompted and x̂_zs the frozen image features,
s = ``logit_scale.exp()``:

    text   L = mean |T̂ − T̂_zs|                                   (``F.l1_loss``, weight 25)
    image  L = mean |x̂ − x̂_zs|                                   (weight 10)
    kl     L = KL(softmax(s x̂_zs T̂_zsᵀ) ‖ softmax(logits)) / (B·C)  (``F.kl_div(..., reduction="sum",
                                                                    log_target=True) / numel``, weight 1)

The ensemble (``templates="auto"``) is the code's: the 60 templates of PromptSRC's ``trainers/imagenet_templates.py``
(lines 3–64, read by ``trainers/promptsrc.py`` lines 121–128; :data:`ncprobe.data.templates.PROMPTSRC_TEMPLATES`)
on the CoOp datasets, and the testbed's caption templates (``ncprobe.testbed.pretraining.TRAIN_TEMPLATES``) on the
embedded testbed. ``"imagenet"`` chooses CLIP's full 80 (``IMAGENET_TEMPLATES``).

Gaussian prompt aggregation (GPA): after epoch e the trainable prompt parameters θ_e enter a running
weighted mean with weight w_e ∝ N(e; μ, σ²) (``gpa_mean``, ``gpa_std``; the base-to-novel config: 15 and 1),
normalised over the epochs run; after the last epoch the prompts are replaced by the mean (the code's
"Using GPA model for final inference"), so the final evaluation and the last checkpoint hold it.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from ncprobe.core.geometry import normalize_rows
from ncprobe.data.templates import IMAGENET_TEMPLATES, PROMPTSRC_TEMPLATES
from ncprobe.models.features import text_features

from ._shared import TRAINABLE_METHODS, check_weight, full, image_tower_trains, run_dtype
from .base import Regularizer, SetupContext, StepOutput, register_regularizer

__all__ = ["PromptSRCRegularizer", "gpa_weights"]

_TEMPLATE_CHOICES = ("auto", "promptsrc", "imagenet", "task")


def gpa_weights(epochs: int, mean: float, std: float) -> list[float]:
    """The normalised GPA weights of epochs 1..``epochs`` (PromptSRC's ``get_gauss`` over ``range(1, N+1)``)."""
    logw = [-0.5 * ((e - mean) / std) ** 2 for e in range(1, int(epochs) + 1)]
    top = max(logw)
    w = [math.exp(v - top) for v in logw]
    return [v / sum(w) for v in w]


@register_regularizer
class PromptSRCRegularizer(Regularizer):
    """PromptSRC's consistency terms and prompt aggregation (module docstring).

    Parameters
    ----------
    text_weight, image_weight, kl_weight:
        Weights of the three terms (the code: ``TEXT_LOSS_WEIGHT`` 25, ``IMAGE_LOSS_WEIGHT`` 10, KL 1).
    templates:
        The frozen text ensemble: ``"auto"`` (default: ``"promptsrc"``, except the testbed's captions on the
        testbed), ``"promptsrc"`` (the code's 60 templates), ``"imagenet"`` (CLIP's 80), ``"task"`` (the task's
        own template(s)) or a list of templates with one ``{}`` each.
    gpa:
        Gaussian prompt aggregation on (default) or off.
    gpa_mean, gpa_std:
        μ and σ of the epoch weights (the code: 15, 1 for base-to-novel; 6, 10 cross-dataset; 30/30 or 45/5
        few-shot).
    """

    name = "promptsrc"
    methods = TRAINABLE_METHODS

    def __init__(
        self,
        text_weight: float = 25.0,
        image_weight: float = 10.0,
        kl_weight: float = 1.0,
        templates: str | Sequence[str] = "auto",
        gpa: bool = True,
        gpa_mean: float = 15.0,
        gpa_std: float = 1.0,
    ) -> None:
        super().__init__()
        self.weights = {
            "text": check_weight(text_weight, "text_weight"),
            "image": check_weight(image_weight, "image_weight"),
            "kl": check_weight(kl_weight, "kl_weight"),
        }
        if not any(self.weights.values()) and not gpa:
            raise ValueError("every weight is 0 and gpa is off: the regularizer would do nothing")
        if isinstance(templates, str):
            if templates not in _TEMPLATE_CHOICES:
                raise ValueError(
                    f"templates must be one of {_TEMPLATE_CHOICES} or a list of templates, got {templates!r}"
                )
        else:
            templates = list(templates)
            bad = [t for t in templates if not isinstance(t, str) or t.count("{}") != 1]
            if not templates or bad:
                raise ValueError(f"templates must be strings with one '{{}}' each, got {bad or templates!r}")
        self.templates = templates
        if not isinstance(gpa, bool):
            raise ValueError(f"gpa must be true or false, got {gpa!r}")
        if not (math.isfinite(float(gpa_mean)) and float(gpa_std) > 0):
            raise ValueError(f"gpa_mean must be finite and gpa_std > 0, got {gpa_mean!r}, {gpa_std!r}")
        self.gpa, self.gpa_mean, self.gpa_std = gpa, float(gpa_mean), float(gpa_std)
        self.register_buffer("zs_text", torch.empty(0), persistent=False)
        self.register_buffer("gpa_log_weight", torch.tensor(-math.inf, dtype=torch.float64))
        self.register_buffer("gpa_epochs", torch.tensor(0))
        self._names: list[str] = []
        self._template_list: list[str] = []

    # ------------------------------------------------------------------ setup
    def _resolve_templates(self, task: Any) -> list[str]:
        if not isinstance(self.templates, str):
            return list(self.templates)
        if self.templates == "task":
            return [task.templates] if isinstance(task.templates, str) else list(task.templates)
        if self.templates == "auto" and task.dataset == "testbed":
            from ncprobe.testbed.pretraining import TRAIN_TEMPLATES

            return list(TRAIN_TEMPLATES)
        if self.templates == "auto" and str(task.dataset).startswith("testbed-"):
            from ncprobe.testbed.benchmark import TEMPLATE
            from ncprobe.testbed.benchmark_v3 import PRETRAIN_TEMPLATES

            return [TEMPLATE, *PRETRAIN_TEMPLATES]
        if self.templates == "imagenet":
            return list(IMAGENET_TEMPLATES)
        return list(PROMPTSRC_TEMPLATES)

    def setup(self, ctx: SetupContext) -> None:
        names = list(ctx.task.train_classnames)
        self._template_list = self._resolve_templates(ctx.task)
        raw = [
            text_features(ctx.model.bundle, names, t, normalize=False, device=ctx.device) for t in self._template_list
        ]
        dtype = run_dtype(ctx.model)
        self.zs_text = normalize_rows(torch.stack(raw).to(dtype).mean(0)).to(ctx.device)
        self.frozen_images = not image_tower_trains(ctx.method)
        self._names = [n for n, p in ctx.model.prompt_learner.named_parameters() if p.requires_grad]
        params = dict(ctx.model.prompt_learner.named_parameters())
        for i, n in enumerate(self._names):
            self.register_buffer(f"gpa_mean_{i}", torch.zeros_like(params[n].detach()))

    # ------------------------------------------------------------------ the terms
    def term_weight(self, term: str) -> float:
        return self.weights.get(term, 1.0)

    def forward(self, out: StepOutput) -> dict[str, torch.Tensor]:
        with torch.autocast(out.image_features.device.type, enabled=False):
            return self._terms(out)

    def _frozen_image_features(self, out: StepOutput, x: torch.Tensor) -> torch.Tensor:
        if self.frozen_images or out.images is None:  # the image tower is frozen and unprompted: x̂ is x̂_zs
            return x.detach()
        with torch.no_grad():
            return normalize_rows(full(out.model.clip.encode_image(out.images)))

    def _terms(self, out: StepOutput) -> dict[str, torch.Tensor]:
        zs_text = self.zs_text.to(full(out.image_features).dtype)
        terms: dict[str, torch.Tensor] = {}
        if self.weights["text"] > 0:
            t = normalize_rows(full(out.text_features))
            terms["text"] = F.l1_loss(t, zs_text.expand_as(t))
        x = normalize_rows(full(out.image_features))
        x_zs = self._frozen_image_features(out, x)
        if self.weights["image"] > 0:
            terms["image"] = F.l1_loss(x, x_zs)
        if self.weights["kl"] > 0:
            logits = full(out.logits)
            zs_logits = full(out.logit_scale) * x_zs @ zs_text.T
            kl = F.kl_div(F.log_softmax(logits, 1), F.log_softmax(zs_logits, 1), reduction="sum", log_target=True)
            terms["kl"] = kl / logits.numel()
        return terms

    # ------------------------------------------------------------------ Gaussian prompt aggregation
    def _params(self, model: Any) -> list[torch.nn.Parameter]:
        params = dict(model.prompt_learner.named_parameters())
        return [params[n] for n in self._names]

    @torch.no_grad()
    def on_epoch_end(self, epoch: int, model: Any) -> None:
        if not self.gpa:
            return
        logw = -0.5 * ((float(epoch) - self.gpa_mean) / self.gpa_std) ** 2
        total = float(torch.logaddexp(self.gpa_log_weight, torch.tensor(logw, dtype=torch.float64)))
        share = math.exp(logw - total)  # this epoch's weight among the epochs so far: a running weighted mean
        for i, p in enumerate(self._params(model)):
            mean = getattr(self, f"gpa_mean_{i}")
            mean.add_(share * (p.detach().to(mean.dtype) - mean))
        self.gpa_log_weight.fill_(total)
        self.gpa_epochs.add_(1)

    @torch.no_grad()
    def on_train_end(self, model: Any) -> None:
        if not self.gpa or int(self.gpa_epochs) == 0:
            return
        for i, p in enumerate(self._params(model)):
            p.copy_(getattr(self, f"gpa_mean_{i}").to(p.dtype))

    def info(self) -> dict:
        epochs = int(self.gpa_epochs)
        return {
            "weights": dict(self.weights),
            "templates": len(self._template_list),
            "template_source": self.templates if isinstance(self.templates, str) else "given",
            "gpa": self.gpa,
            "gpa_mean": self.gpa_mean,
            "gpa_std": self.gpa_std,
            "gpa_epochs": epochs,
            "gpa_weights": gpa_weights(epochs, self.gpa_mean, self.gpa_std) if self.gpa and epochs else [],
        }
