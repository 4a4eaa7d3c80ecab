"""The prompt-tuning methods: a registry (``METHODS``) of how each builds its model from a CLIP bundle.

* ``zeroshot`` — CLIP with hand-written prompts (the dataset's template); nothing trains (Radford et al.
  2021; CoOp's ``ZeroshotCLIP``), evaluated under every protocol, base-to-novel included.
* ``coop`` — learned context tokens (Zhou et al., IJCV 2022).
* ``cocoop`` — context conditioned on each image by a small meta-net (Zhou et al., CVPR 2022).
* ``maple`` — coupled deep text and vision prompts (Khattak et al., CVPR 2023).
* ``ivlp`` — independent deep text and vision prompts (PromptSRC's IVLP baseline).

Each entry says whether the image features depend on trainable parameters: when they don't
(``zeroshot``, ``coop``, ``cocoop``: a frozen, unprompted image tower), the engine precomputes them once
(:mod:`.feature_bank`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from ncprobe.models import CLIPBundle, PromptedCLIP, build_prompt_learner

from .class_text import ClassTextEnsemble, SentenceZeroShot, flatten_sentences
from .config import MethodConfig
from .zeroshot import ZeroShotCLIP

__all__ = ["MethodSpec", "METHODS", "ZeroShotCLIP", "build_model", "get_method"]


@dataclass(frozen=True)
class MethodSpec:
    """A method of the registry.

    Attributes
    ----------
    name:
        Registry key.
    learner:
        The ``ncprobe.models.PROMPT_LEARNERS`` key, or ``None`` (zero-shot).
    frozen_image_features:
        Image features do not depend on trainable parameters (a frozen, unprompted image tower).
    defaults:
        Learner options when the config leaves them ``None`` (the published settings of the original code).
    """

    name: str
    learner: str | None
    frozen_image_features: bool
    defaults: dict = field(default_factory=dict)

    @property
    def trains(self) -> bool:
        return self.learner is not None


METHODS: dict[str, MethodSpec] = {
    "zeroshot": MethodSpec("zeroshot", None, True),
    "coop": MethodSpec("coop", "coop", True, {"n_ctx": 4, "ctx_init": "a photo of a"}),
    "cocoop": MethodSpec("cocoop", "cocoop", True, {"n_ctx": 4, "ctx_init": "a photo of a"}),
    "maple": MethodSpec("maple", "maple", False, {"n_ctx": 2, "ctx_init": "a photo of a", "prompt_depth": 9}),
    "ivlp": MethodSpec(
        "ivlp", "ivlp", False, {"n_ctx": 4, "n_ctx_vision": 4, "ctx_init": "a photo of a", "prompt_depth": 9}
    ),
}


def get_method(name: str) -> MethodSpec:
    """The registry entry of ``name``; an unknown name lists the valid ones."""
    try:
        return METHODS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}") from None


def learner_options(spec: MethodSpec, cfg: MethodConfig) -> dict[str, Any]:
    """The learner keyword arguments: the config's values, else the method's published defaults."""
    given = {
        "n_ctx": cfg.n_ctx,
        "ctx_init": cfg.ctx_init,
        "prompt_depth": cfg.prompt_depth,
        "n_ctx_vision": cfg.n_ctx_vision,
    }
    opts = {k: (v if v is not None else spec.defaults.get(k)) for k, v in given.items()}
    if spec.name == "coop":
        out = {
            "n_ctx": opts["n_ctx"],
            "ctx_init": opts["ctx_init"] or None,
            "class_specific": cfg.class_specific,
            "class_token_position": cfg.class_token_position,
        }
        if out["ctx_init"]:
            out["n_ctx"] = None  # CoOp: the number of init words decides (its config's N_CTX is ignored)
        return out
    if spec.name == "cocoop":
        return {"n_ctx": None if opts["ctx_init"] else opts["n_ctx"], "ctx_init": opts["ctx_init"] or None}
    if spec.name == "maple":
        return {"n_ctx": opts["n_ctx"], "ctx_init": opts["ctx_init"] or None, "prompt_depth": opts["prompt_depth"]}
    if spec.name == "ivlp":
        return {
            "n_ctx_text": opts["n_ctx"],
            "n_ctx_vision": opts["n_ctx_vision"],
            "ctx_init": opts["ctx_init"] or None,
            "text_depth": opts["prompt_depth"],
            "vision_depth": opts["prompt_depth"],
        }
    return {}


def build_model(
    spec: MethodSpec,
    cfg: MethodConfig,
    bundle: CLIPBundle,
    classnames: Sequence[str],
    *,
    templates: str | Sequence[str],
    seed: int,
    class_texts: Sequence[Sequence[str]] | None = None,
) -> nn.Module:
    """The method's model over ``classnames``: a :class:`PromptedCLIP` (learner initialised with a generator
    seeded by ``seed``) or, for ``zeroshot``, a :class:`ZeroShotCLIP` with ``templates``. With ``class_texts``
    (several sentences per class) the class text is the mean over each class's sentences
    (:mod:`.class_text`)."""
    if class_texts is not None:
        if spec.learner is None:
            return SentenceZeroShot(bundle, class_texts)
        sentences, _ = flatten_sentences(class_texts, for_prompts=True)
        inner = build_model(spec, cfg, bundle, sentences, templates=templates, seed=seed)
        return ClassTextEnsemble(inner, class_texts)
    if spec.learner is None:
        return ZeroShotCLIP(bundle, classnames, templates)
    generator = torch.Generator().manual_seed(int(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))  # nn.Linear initialisations (MaPLe projections, CoCoOp meta-net)
        learner = build_prompt_learner(
            spec.learner, bundle, classnames, generator=generator, **learner_options(spec, cfg)
        )
    return PromptedCLIP(bundle, learner, trim_padding=cfg.trim_padding)
