"""Embedding-level text encoding for ``open_clip`` text towers (what prompt learning needs).

Prompt learners replace some token embeddings by learnable vectors, so they cannot call
``model.encode_text(token_ids)``: they need "token ids → embeddings" and "embeddings (+ ids for
masks and pooling) → text features" as separate steps, plus an optional replacement of prompt tokens
inside deeper layers. :func:`text_backbone_for` returns that interface for:

* ``open_clip.CLIP`` — the native text transformer (OpenAI / LAION CLIP): token embedding +
  positional embedding → causal transformer → ``ln_final`` → ``text_global_pool`` (``argmax`` = EOT
  for OpenAI CLIP, or ``eos``/``first``/``last``) → ``text_projection``. This mirrors
  ``CLIP.encode_text`` and CoOp's ``TextEncoder`` (``KaiyangZhou/CoOp/trainers/coop.py``); the
  pooling index is taken from the *placeholder-tokenized* prompt ids, CoOp's trick.
* ``open_clip.CustomTextCLIP`` whose ``.text`` is an ``open_clip`` ``TextTransformer`` (e.g. SigLIP):
  the same, with its optional padding mask.
* ``open_clip.CustomTextCLIP`` whose ``.text`` is an ``HFTextEncoder`` (Hugging Face towers such as
  BERT/MiniLM, RoBERTa, XLM-R, mT5): the HF model is called with ``inputs_embeds`` and the attention mask
  ``ids != pad_token_id`` (as ``HFTextEncoder.forward``), then the tower's own ``pooler``
  (``mean_pooler``, ``max_pooler``, ``cls_pooler``, ``cls_last_hidden_state_pooler``) and ``proj``.
  Deep prompts are injected with forward pre-hooks on the encoder layers.
"""

from __future__ import annotations

import abc
import contextlib
from typing import Iterator, Sequence

import torch
from open_clip import CLIP, CoCa, CustomTextCLIP
from open_clip.hf_model import HFTextEncoder
from open_clip.transformer import TextTransformer, text_global_pool
from torch import nn

from .deep_prompting import replace_tokens, run_resblocks
from .open_clip_compat import text_pad_mask

__all__ = [
    "HFTextBackbone",
    "NativeTextBackbone",
    "SUPPORTED_TEXT_TOWERS",
    "TextBackbone",
    "UnsupportedTextTowerError",
    "text_backbone_for",
]

SUPPORTED_TEXT_TOWERS = (
    "open_clip.CLIP (native text transformer); "
    "open_clip.CustomTextCLIP with an open_clip TextTransformer text tower (no appended CLS embedding); "
    "open_clip.CustomTextCLIP with an HFTextEncoder (Hugging Face) text tower"
)


class UnsupportedTextTowerError(TypeError):
    """The model's text tower cannot be driven at the embedding level."""


class TextBackbone(abc.ABC):
    """Common interface: ``embed_tokens`` then ``encode``. Holds references, registers no parameters.

    Attributes
    ----------
    model:
        The wrapped ``open_clip`` model.
    kind:
        ``"native"`` or ``"hf"``.
    """

    kind: str = ""

    def __init__(self, model: nn.Module):
        self.model = model

    @property
    def width(self) -> int:
        """Hidden width of the token embeddings (the prompt vector size)."""
        return int(self.embedding_module.weight.shape[1])

    @property
    @abc.abstractmethod
    def dtype(self) -> torch.dtype:
        """Dtype the transformer computes in (prompt parameters are created in it)."""

    @property
    def device(self) -> torch.device:
        return self.embedding_module.weight.device

    @property
    @abc.abstractmethod
    def num_layers(self) -> int:
        """Number of transformer blocks (the largest useful deep-prompt depth)."""

    @property
    @abc.abstractmethod
    def embedding_module(self) -> nn.Embedding:
        """The tower's token-embedding table."""

    def embed_tokens(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings ``(N, L, width)`` in :attr:`dtype` (no positional information)."""
        ids = token_ids.to(self.device)
        return self.embedding_module(ids).to(self.dtype)

    @abc.abstractmethod
    def encode(
        self,
        embeddings: torch.Tensor,
        token_ids: torch.Tensor,
        *,
        deep_prompts: Sequence[torch.Tensor | None] = (),
        deep_start: int = 1,
    ) -> torch.Tensor:
        """Text features (unnormalised, ``(N, embed_dim)``) from token embeddings.

        Parameters
        ----------
        embeddings:
            ``(N, L, width)`` token embeddings, some of them learnable prompts.
        token_ids:
            ``(N, L)`` ids of the same sequences (placeholders at prompt positions); they define the
            attention/padding mask and the pooled position exactly as for ``model.encode_text``.
        deep_prompts:
            Prompts replacing tokens ``deep_start : deep_start + n`` at the input of layers 2, 3, ...
        deep_start:
            Position of the first prompt token (1 after a start-of-text / ``[CLS]`` token).
        """

    def encode_ids(self, token_ids: torch.Tensor, **kwargs) -> torch.Tensor:
        """Text features of plain token ids (equals ``model.encode_text`` when no deep prompts are given)."""
        return self.encode(self.embed_tokens(token_ids), token_ids, **kwargs)

    @property
    def padding_invisible(self) -> bool:
        """Whether tokens after the last non-padding token cannot change the pooled output (a causal or
        padding mask hides them, and pooling never reads them). Then prompts may be cut to the longest one
        in a batch — the same features from a fraction of the sequence (``PromptedCLIP`` does)."""
        return False


class NativeTextBackbone(TextBackbone):
    """The ``open_clip`` text transformer, on ``CLIP`` or as ``CustomTextCLIP.text``."""

    kind = "native"

    def __init__(self, model: nn.Module):
        super().__init__(model)
        if isinstance(model, CLIP):
            self._tower = model
            self._text = None
            self.pool_type = model.text_pool_type
            self.eos_id = getattr(model, "text_eos_id", None)
        else:
            text = model.text
            if text.cls_emb is not None:
                raise UnsupportedTextTowerError(
                    "text towers with an appended CLS embedding (CoCa-style) are not supported; "
                    f"supported: {SUPPORTED_TEXT_TOWERS}"
                )
            self._tower = text
            self._text = text
            self.pool_type = text.pool_type
            self.eos_id = getattr(text, "eos_id", None)

    @property
    def embedding_module(self) -> nn.Embedding:
        return self._tower.token_embedding

    @property
    def dtype(self) -> torch.dtype:
        return self._tower.transformer.get_cast_dtype()

    @property
    def num_layers(self) -> int:
        return len(self._tower.transformer.resblocks)

    @property
    def context_length(self) -> int:
        return int(self._tower.positional_embedding.shape[0])

    @property
    def padding_invisible(self) -> bool:
        masked = self._tower.attn_mask is not None or (self._text is not None and self._text.use_pad_mask)
        return masked and self.pool_type in ("argmax", "eos", "first")

    def _attn_mask(self, token_ids: torch.Tensor, length: int, dtype: torch.dtype) -> torch.Tensor | None:
        mask = self._tower.attn_mask
        text = self._text
        if text is not None and text.use_pad_mask:
            pad_mask = text_pad_mask(text, token_ids, length, dtype)
            return pad_mask if mask is None else mask[:length, :length].unsqueeze(0) + pad_mask
        return None if mask is None else mask[:length, :length]

    def encode(self, embeddings, token_ids, *, deep_prompts=(), deep_start=1):
        tower = self._tower
        cast = self.dtype
        token_ids = token_ids.to(embeddings.device)
        length = embeddings.shape[1]
        x = embeddings.to(cast) + tower.positional_embedding[:length].to(cast)
        mask = self._attn_mask(token_ids, length, x.dtype)
        x = run_resblocks(tower.transformer, x, attn_mask=mask, deep_prompts=deep_prompts, start=deep_start)
        x = tower.ln_final(x)
        x = text_global_pool(x, token_ids, self.pool_type, eos_token_id=self.eos_id)
        proj = tower.text_projection
        if proj is not None:
            x = proj(x) if isinstance(proj, nn.Linear) else x @ proj
        return x


def _hf_layers(hf_model: nn.Module) -> nn.ModuleList:
    """The list of transformer layers of a Hugging Face encoder (BERT/RoBERTa, T5 stacks, M2M100...)."""
    for path in ("encoder.layer", "encoder.layers", "encoder.block", "block", "layers", "layer"):
        obj = hf_model
        for attr in path.split("."):
            obj = getattr(obj, attr, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList):
            return obj
    raise UnsupportedTextTowerError(
        f"cannot find the layer list of the Hugging Face model {type(hf_model).__name__} "
        "(looked for encoder.layer, encoder.layers, encoder.block, block, layers, layer)"
    )


@contextlib.contextmanager
def _deep_prompt_hooks(
    layers: nn.ModuleList, deep_prompts: Sequence[torch.Tensor | None], start: int
) -> Iterator[None]:
    """Temporarily replace prompt tokens at the input of layers 2.. of a Hugging Face encoder."""
    if len(deep_prompts) > len(layers) - 1:
        raise ValueError(f"{len(deep_prompts)} deep prompt layers do not fit a {len(layers)}-layer encoder")
    handles = []

    def make_hook(prompt: torch.Tensor):
        def hook(module, args, kwargs):
            if args:
                return (replace_tokens(args[0], prompt, start), *args[1:]), kwargs
            kwargs = dict(kwargs)
            kwargs["hidden_states"] = replace_tokens(kwargs["hidden_states"], prompt, start)
            return args, kwargs

        return hook

    try:
        for k, prompt in enumerate(deep_prompts):
            if prompt is not None:
                handles.append(layers[k + 1].register_forward_pre_hook(make_hook(prompt), with_kwargs=True))
        yield
    finally:
        for handle in handles:
            handle.remove()


class HFTextBackbone(TextBackbone):
    """A Hugging Face text tower (``open_clip.hf_model.HFTextEncoder``) driven through ``inputs_embeds``."""

    kind = "hf"

    def __init__(self, model: nn.Module):
        super().__init__(model)
        self.text: HFTextEncoder = model.text
        self.hf = self.text.transformer
        self.layers = _hf_layers(self.hf)
        if not hasattr(self.text, "proj"):
            raise UnsupportedTextTowerError(
                "this HFTextEncoder has no projection (proj_type=None with a width different from the output)"
            )

    @property
    def embedding_module(self) -> nn.Embedding:
        return self.hf.get_input_embeddings()

    @property
    def dtype(self) -> torch.dtype:
        return self.embedding_module.weight.dtype

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def pad_token_id(self) -> int:
        return int(self.text.config.pad_token_id)

    @property
    def padding_invisible(self) -> bool:
        return True  # the attention mask hides padding and open_clip's HF poolers are masked or read [CLS]

    def encode(self, embeddings, token_ids, *, deep_prompts=(), deep_start=1):
        token_ids = token_ids.to(embeddings.device)
        attn_mask = (token_ids != self.pad_token_id).long()
        kwargs = {"inputs_embeds": embeddings.to(self.dtype), "attention_mask": attn_mask}
        emb = getattr(self.hf, "embeddings", None)
        if hasattr(emb, "create_position_ids_from_input_ids") and getattr(emb, "padding_idx", None) is not None:
            # RoBERTa-style positions depend on padding; with inputs_embeds HF would number pads too.
            kwargs["position_ids"] = emb.create_position_ids_from_input_ids(token_ids, emb.padding_idx)
        with _deep_prompt_hooks(self.layers, deep_prompts, deep_start):
            out = self.hf(**kwargs)
        pooled = self.text.pooler(out, attn_mask)
        return self.text.proj(pooled)


def text_backbone_for(model: nn.Module) -> TextBackbone:
    """Return the embedding-level text interface of an ``open_clip`` model.

    Raises
    ------
    UnsupportedTextTowerError
        For towers other than those listed in :data:`SUPPORTED_TEXT_TOWERS` (e.g. CoCa).
    """
    if isinstance(model, CoCa):
        raise UnsupportedTextTowerError(f"CoCa models are not supported; supported: {SUPPORTED_TEXT_TOWERS}")
    if isinstance(model, CLIP):
        return NativeTextBackbone(model)
    text = getattr(model, "text", None)
    if isinstance(model, CustomTextCLIP) or text is not None:
        if isinstance(text, HFTextEncoder):
            return HFTextBackbone(model)
        if isinstance(text, TextTransformer):
            return NativeTextBackbone(model)
    raise UnsupportedTextTowerError(
        f"unsupported model/text tower {type(model).__name__}/{type(text).__name__}; supported: {SUPPORTED_TEXT_TOWERS}"
    )
