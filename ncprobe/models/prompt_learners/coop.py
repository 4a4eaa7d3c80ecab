"""CoOp: a learnable text context shared by all classes or specific to each class.

Reproduces ``PromptLearner``/``TextEncoder``/``CustomCLIP`` of ``KaiyangZhou/CoOp/trainers/coop.py``
(Zhou et al., "Learning to Prompt for Vision-Language Models", IJCV 2022):

* context ``ctx`` of ``n_ctx`` vectors (``N_CTX``, 16 in the few-shot configs, 4 from
  ``"a photo of a"`` in the base-to-novel ``vit_b16_ctxv1`` config), initialised from the word
  embeddings of ``ctx_init`` (``CTX_INIT``) or from ``N(0, 0.02²)``;
* ``class_specific`` (``CSC``) gives each class its own context, shape ``(n_cls, n_ctx, D)``;
* ``class_token_position`` (``CLASS_TOKEN_POSITION``) ``"end"``, ``"middle"`` (half of the context,
  the class name, the other half) or ``"front"``.

With ``ctx_init``, ``n_ctx`` is the number of **words** of ``ctx_init`` and an explicit ``n_ctx`` is
ignored with a warning, exactly as ``coop.py`` does (``n_ctx = len(ctx_init.split(" "))``); a word
that tokenizes into several tokens leaves its later tokens as fixed text, also as in CoOp.

Difference: CoOp ignores ``CSC`` when ``CTX_INIT`` is set (one shared context); here a class-specific
context is initialised from the words for every class.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..bundle import CLIPBundle
from .base import PromptLearner

__all__ = ["CoOpPromptLearner"]


class CoOpPromptLearner(PromptLearner):
    """CoOp prompt learner (see module docstring).

    Parameters
    ----------
    bundle:
        CLIP model and tokenizer.
    classnames:
        Class names in label order.
    n_ctx:
        Context length for random initialisation (default 16). With ``ctx_init`` it is the number of
        words of ``ctx_init`` (CoOp's rule); a different explicit value is ignored with a warning.
    ctx_init:
        Initialisation words, e.g. ``"a photo of a"``; ``None`` for random ``N(0, 0.02²)``.
    class_specific:
        Class-specific contexts (CoOp ``CSC=True``).
    class_token_position:
        ``"end"`` (default), ``"middle"`` or ``"front"``.
    generator:
        Random generator for the random initialisation.
    """

    method = "coop"
    n_ctx_from_words = True

    def __init__(
        self,
        bundle: CLIPBundle,
        classnames: Sequence[str],
        *,
        n_ctx: int | None = None,
        ctx_init: str | None = None,
        class_specific: bool = False,
        class_token_position: str = "end",
        generator: torch.Generator | None = None,
    ):
        if not ctx_init and n_ctx is None:
            n_ctx = 16
        super().__init__(
            bundle,
            classnames,
            n_ctx=n_ctx,
            ctx_init=ctx_init,
            class_specific=class_specific,
            class_token_position=class_token_position,
            generator=generator,
        )
        self._config = dict(
            n_ctx=self.n_ctx,
            ctx_init=ctx_init,
            class_specific=class_specific,
            class_token_position=class_token_position,
        )
