"""Shared machinery of the prompt learners: tokenized layout, fixed token buffers, context, transfer.

Follows ``PromptLearner`` of ``KaiyangZhou/CoOp/trainers/coop.py``: the prompt
``"<ctx> <class name>."`` is tokenized once; its token embeddings before the context
(``token_prefix``, the start token) and after it (``token_suffix``: class name, ``"."``, end token,
padding) are fixed buffers; the learnable context ``ctx`` is concatenated in between. Both buffers and
the token ids are **non-persistent**: ``state_dict()`` holds only learned parameters, so a learner
trained on base classes loads into a learner rebuilt for novel class names
(:meth:`PromptLearner.with_classnames`), as CoOp's ``load_model`` does by deleting ``token_prefix``
and ``token_suffix``.
"""

from __future__ import annotations

import copy
import warnings
from typing import ClassVar, Mapping, Sequence

import torch
from torch import nn

from ..bundle import CLIPBundle
from ..text_backbones import TextBackbone, text_backbone_for
from .layout import PromptLayout, build_layout, tokenize_ids, tokenizer_layout

__all__ = ["CLASS_TOKEN_POSITIONS", "PromptLearner"]

CLASS_TOKEN_POSITIONS = ("end", "middle", "front")
_PER_CLASS_KEYS = frozenset({"token_prefix", "token_suffix", "token_ids", "tokenized_prompts"})


class PromptLearner(nn.Module):
    """Base class: a learnable text context spliced into tokenized class prompts.

    Subclasses add deep/visual prompts or image conditioning. The interface used by
    :class:`~ncprobe.models.PromptedCLIP`:

    * :meth:`text_prompts` — prompt embeddings ``(n_cls, L, D)``, or ``(B, n_cls, L, D)`` when
      :attr:`conditional` (CoCoOp) and given image features;
    * :meth:`deep_text_prompts` — prompts replacing the context tokens in text layers 2..J;
    * :meth:`vision_prompts` — ``(shallow, deep)`` visual prompts, or ``(None, [])``;
    * :attr:`token_ids`, :attr:`ctx_start` — ids (for masks/pooling) and the context position.

    Parameters
    ----------
    bundle:
        The CLIP model and tokenizer (:func:`~ncprobe.models.load_clip`).
    classnames:
        Class names, in label order.
    n_ctx:
        Number of learnable context tokens. With ``ctx_init``: learners with
        :attr:`n_ctx_from_words` (CoOp, CoCoOp) use the number of **words** of ``ctx_init`` and ignore
        ``n_ctx`` (with a warning when it differs), as the originals do; the others (MaPLe, IVLP) learn
        the first ``n_ctx`` tokens (default: all) and keep the remaining ones as fixed text. Either
        way, tokens of ``ctx_init`` beyond ``n_ctx`` stay fixed text, as in the originals
        (``ctx_vectors = embedding[0, 1 : 1 + n_ctx]``).
    ctx_init:
        Initialisation words (``"a photo of a"``); ``None``/``""`` draws ``N(0, 0.02²)``. Underscores
        become spaces and runs of whitespace one space (the originals ``replace("_", " ")``).
    class_specific:
        One context per class (CoOp's ``CSC``); such a context cannot transfer to other classes.
    class_token_position:
        ``"end"``, ``"middle"`` or ``"front"`` (CoOp's ``CLASS_TOKEN_POSITION``).
    generator:
        Random generator for the random initialisation (default: the global one).
    """

    #: Whether :meth:`text_prompts` depends on image features (CoCoOp).
    conditional: ClassVar[bool] = False
    #: CoOp/CoCoOp rule: with ``ctx_init``, ``n_ctx = len(ctx_init.split(" "))`` (words, not tokens).
    n_ctx_from_words: ClassVar[bool] = False
    #: Short method name.
    method: ClassVar[str] = "prompt"

    def __init__(
        self,
        bundle: CLIPBundle,
        classnames: Sequence[str],
        *,
        n_ctx: int | None,
        ctx_init: str | None,
        class_specific: bool = False,
        class_token_position: str = "end",
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if len(classnames) == 0:
            raise ValueError("classnames is empty")
        if class_token_position not in CLASS_TOKEN_POSITIONS:
            raise ValueError(f"class_token_position must be one of {CLASS_TOKEN_POSITIONS}")
        self._bundle = bundle
        self.backbone: TextBackbone = text_backbone_for(bundle.model)
        self.classnames = tuple(classnames)
        self.class_specific = bool(class_specific)
        self.class_token_position = class_token_position
        self._config: dict = {}

        ctx_init = " ".join((ctx_init or "").replace("_", " ").split())
        if ctx_init and self.n_ctx_from_words:
            words = len(ctx_init.split(" "))
            if n_ctx is not None and n_ctx != words:
                warnings.warn(
                    f"n_ctx={n_ctx} is ignored: with ctx_init={ctx_init!r} {type(self).__name__} learns one context "
                    f"vector per word ({words}), as CoOp/CoCoOp do; omit n_ctx, or use ctx_init=None for "
                    f"{n_ctx} randomly initialised vectors",
                    UserWarning,
                    stacklevel=3,
                )
            n_ctx = words
        if ctx_init:
            prefix_text = ctx_init
        else:
            if not n_ctx or n_ctx < 1:
                raise ValueError("random context initialisation needs n_ctx >= 1")
            prefix_text = " ".join(["X"] * n_ctx)
        if n_ctx is None:
            special = tokenizer_layout(bundle.tokenizer)
            n_ctx = special.content_length(tokenize_ids(bundle.tokenizer, [prefix_text])[0])
        layout = build_layout(
            bundle.tokenizer,
            self.classnames,
            prefix_text=prefix_text,
            n_ctx=n_ctx,
            check_name_spans=class_token_position != "end",
        )
        if not ctx_init and layout.n_prefix_tokens != n_ctx:
            raise ValueError("the placeholder 'X' is not a single token for this tokenizer")
        self.layout: PromptLayout = layout
        self.n_ctx = layout.n_ctx
        self.ctx_start = layout.ctx_start
        self.name_lens = layout.name_lens

        device, dtype, s, n = self.backbone.device, self.backbone.dtype, self.ctx_start, self.n_ctx
        self.register_buffer("token_ids", layout.token_ids.to(device), persistent=False)
        with torch.no_grad():
            emb = self.backbone.embed_tokens(self.token_ids)
        self.register_buffer("token_prefix", emb[:, :s].clone(), persistent=False)
        self.register_buffer("token_suffix", emb[:, s + n :].clone(), persistent=False)
        order = self._class_token_order()
        self.register_buffer("token_order", order, persistent=False)

        shape = (self.n_cls, n, self.backbone.width) if self.class_specific else (n, self.backbone.width)
        if ctx_init:
            init = emb[0, s : s + n].detach().clone()
            if self.class_specific:
                init = init.unsqueeze(0).repeat(self.n_cls, 1, 1)
        else:
            init = self.normal_init(shape, generator=generator)
        self.ctx = nn.Parameter(init.to(device=device, dtype=dtype))

    def __deepcopy__(self, memo: dict) -> "PromptLearner":
        """Copy the learned parameters and buffers but share the (frozen) CLIP bundle and backbone.

        Lets trainers keep copies of a learner (e.g. PromptSRC's Gaussian-weighted prompt averaging)
        without duplicating the CLIP model.
        """
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            shared = key in ("_bundle", "backbone")
            new.__dict__[key] = value if shared else copy.deepcopy(value, memo)
        return new

    # ------------------------------------------------------------------ helpers
    @property
    def n_cls(self) -> int:
        return len(self.classnames)

    @property
    def bundle(self) -> CLIPBundle:
        return self._bundle

    def normal_init(
        self,
        shape: Sequence[int],
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """``N(0, 0.02²)`` tensor on the backbone's device (the CoOp/MaPLe/IVLP prompt init).

        Drawn in float32, then cast to ``dtype`` (default: the backbone's dtype).
        """
        out = torch.empty(tuple(shape), dtype=torch.float32)
        nn.init.normal_(out, std=0.02, generator=generator)
        return out.to(device=self.backbone.device, dtype=self.backbone.dtype if dtype is None else dtype)

    def _class_token_order(self) -> torch.Tensor | None:
        """Per-class gather index reordering ``[prefix, ctx, name, rest]`` for middle/front positions."""
        if self.class_token_position == "end":
            return None
        s, n = self.ctx_start, self.n_ctx
        length = self.token_ids.shape[1]
        rows = []
        for m in self.name_lens:
            ctx, name = list(range(s, s + n)), list(range(s + n, s + n + m))
            if self.class_token_position == "front":
                middle = name + ctx
            else:  # CoOp "middle": half of the context, the name, the other half
                half = n // 2
                middle = ctx[:half] + name + ctx[half:]
            rows.append(list(range(s)) + middle + list(range(s + n + m, length)))
        return torch.tensor(rows, dtype=torch.long, device=self.token_ids.device)

    def assemble(self, ctx: torch.Tensor) -> torch.Tensor:
        """Splice per-class context ``(..., n_cls, n_ctx, D)`` into the fixed token embeddings.

        Returns ``(..., n_cls, L, D)`` in the class-token order of this learner.
        """
        lead = ctx.shape[:-3]
        prefix = self.token_prefix.expand(*lead, *self.token_prefix.shape)
        suffix = self.token_suffix.expand(*lead, *self.token_suffix.shape)
        x = torch.cat([prefix, ctx.to(prefix.dtype), suffix], dim=-2)
        if self.token_order is not None:
            index = self.token_order.view(*([1] * len(lead)), *self.token_order.shape, 1).expand(x.shape)
            x = torch.gather(x, -2, index)
        return x

    def class_context(self) -> torch.Tensor:
        """The context broadcast to every class: ``(n_cls, n_ctx, D)``."""
        ctx = self.ctx
        return ctx.unsqueeze(0).expand(self.n_cls, -1, -1) if ctx.dim() == 2 else ctx

    # ------------------------------------------------------------------ interface
    def text_prompts(self, image_features: torch.Tensor | None = None) -> torch.Tensor:
        """Prompt token embeddings ``(n_cls, L, D)`` (CoOp's ``PromptLearner.forward``)."""
        return self.assemble(self.class_context())

    def deep_text_prompts(self) -> list[torch.Tensor]:
        """Prompts replacing the context tokens at the input of text layers 2, 3, ... (none here)."""
        return []

    def vision_prompts(self) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
        """``(shallow, deep)`` visual prompts, ``(None, [])`` when the image tower is not prompted."""
        return None, []

    @property
    def uses_vision_prompts(self) -> bool:
        return False

    def forward(self, image_features: torch.Tensor | None = None) -> torch.Tensor:
        return self.text_prompts(image_features)

    # ------------------------------------------------------------------ transfer
    def _map_original_key(self, key: str) -> str | None:
        """This learner's name for a key of the original code base's checkpoint, if it has another one."""
        return None

    def load_context(self, state_dict: Mapping[str, torch.Tensor], *, strict: bool = True):
        """Load learned parameters, ignoring per-class buffers (``token_prefix``/``token_suffix``...).

        Accepts, with default arguments:

        * this learner's ``state_dict()``;
        * a :class:`~ncprobe.models.PromptedCLIP`'s ``state_dict()`` (the learner's keys under
          ``prompt_learner.``; the frozen CLIP's ``clip.*`` keys are ignored);
        * a Dassl checkpoint (``{"state_dict": ..., "epoch": ...}``) or its ``state_dict``, as CoOp,
          CoCoOp, MaPLe and IVLP/PromptSRC save them: ``prompt_learner.*`` keys, plus for MaPLe and
          IVLP the whole frozen ``CustomCLIP`` (``image_encoder.*``, ``text_encoder.*``, ignored)
          and for IVLP its prompts inside the CLIP blocks (``*.VPT``, ``*.VPT_shallow``, mapped);
        * keys prefixed ``module.`` (``DataParallel``).

        Returns ``load_state_dict``'s result.

        Raises
        ------
        ValueError
            The checkpoint's prompts do not fit this learner (other classes for a class-specific
            context, another ``n_ctx``, ``prompt_depth`` or vision-prompt setting); the message lists
            the missing / unexpected / mis-shaped keys.
        """
        inner = state_dict.get("state_dict") if isinstance(state_dict, Mapping) else None
        if isinstance(inner, Mapping):
            state_dict = inner
        keys = [str(k).removeprefix("module.") for k in state_dict]
        wrapped = any(k.startswith("prompt_learner.") for k in keys)
        cleaned = {}
        for key, value in zip(keys, state_dict.values()):
            mapped = self._map_original_key(key)
            if mapped is not None:
                key = mapped
            elif key.startswith("prompt_learner."):
                key = key[len("prompt_learner.") :]
            elif wrapped:  # the frozen CLIP of a PromptedCLIP / Dassl CustomCLIP checkpoint
                continue
            if key.split(".")[-1] in _PER_CLASS_KEYS:
                continue
            cleaned[key] = value
        ctx = cleaned.get("ctx")
        if ctx is not None and ctx.shape != self.ctx.shape:
            raise ValueError(
                f"context of shape {tuple(ctx.shape)} does not fit this learner's {tuple(self.ctx.shape)} "
                "(class-specific contexts only load into learners with the same classes; n_ctx must match)"
            )
        try:
            return self.load_state_dict(cleaned, strict=strict)
        except RuntimeError as exc:
            raise ValueError(
                f"the checkpoint's prompts do not fit this {type(self).__name__} ({self.extra_repr()}); "
                f"was it trained with other settings? {exc}"
            ) from None

    def with_classnames(self, classnames: Sequence[str]) -> "PromptLearner":
        """The same learner (configuration and learned parameters) for other class names (base → novel).

        The global random state is left untouched.
        """
        if self.class_specific:
            raise ValueError("a class-specific context cannot be transferred to other class names")
        with torch.random.fork_rng(devices=[]):
            new = type(self)(self._bundle, classnames, **self._config)
        new.load_context(self.state_dict())
        return new.train(self.training)

    def extra_repr(self) -> str:
        return (
            f"method={self.method}, n_cls={self.n_cls}, n_ctx={self.n_ctx}, ctx_start={self.ctx_start}, "
            f"class_specific={self.class_specific}, class_token_position={self.class_token_position!r}"
        )
