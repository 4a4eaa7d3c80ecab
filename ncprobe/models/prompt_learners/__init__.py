"""Prompt learners for ``open_clip`` models: CoOp, CoCoOp, MaPLe and IVLP.

All learners share :class:`PromptLearner` (tokenized layout, fixed token buffers, learnable context,
base-to-novel transfer) and plug into :class:`~ncprobe.models.PromptedCLIP`.
"""

from __future__ import annotations

from typing import Sequence

from ..bundle import CLIPBundle
from .base import CLASS_TOKEN_POSITIONS, PromptLearner
from .cocoop import CoCoOpPromptLearner
from .coop import CoOpPromptLearner
from .ivlp import IVLPPromptLearner
from .layout import PromptLayout, PromptTooLongError, TokenizerLayout, build_layout, tokenizer_layout
from .maple import MaPLePromptLearner

__all__ = [
    "CLASS_TOKEN_POSITIONS",
    "PROMPT_LEARNERS",
    "CoCoOpPromptLearner",
    "CoOpPromptLearner",
    "IVLPPromptLearner",
    "MaPLePromptLearner",
    "PromptLayout",
    "PromptLearner",
    "PromptTooLongError",
    "TokenizerLayout",
    "build_layout",
    "build_prompt_learner",
    "tokenizer_layout",
]

#: Method name → learner class.
PROMPT_LEARNERS: dict[str, type[PromptLearner]] = {
    "coop": CoOpPromptLearner,
    "cocoop": CoCoOpPromptLearner,
    "maple": MaPLePromptLearner,
    "ivlp": IVLPPromptLearner,
}


def build_prompt_learner(method: str, bundle: CLIPBundle, classnames: Sequence[str], **options) -> PromptLearner:
    """Create a prompt learner by method name (``"coop"``, ``"cocoop"``, ``"maple"``, ``"ivlp"``).

    ``options`` are the keyword arguments of the learner class (e.g. ``n_ctx``, ``ctx_init``,
    ``prompt_depth``).
    """
    try:
        cls = PROMPT_LEARNERS[method.lower()]
    except KeyError:
        raise ValueError(f"unknown prompt method {method!r}; known: {sorted(PROMPT_LEARNERS)}") from None
    return cls(bundle, classnames, **options)
