"""Where the context and the class name sit in a tokenized prompt, for any ``open_clip`` tokenizer.

CoOp builds ``"<ctx words or X X X X> <class name>."``, tokenizes it and takes the context at token
positions ``1 : 1 + n_ctx`` (after ``<start_of_text>``), the class name right after it
(``KaiyangZhou/CoOp/trainers/coop.py``, ``PromptLearner.__init__``). To work with other tokenizers
(Hugging Face WordPiece with ``[CLS]`` … ``[SEP]``, SentencePiece without a start token) the positions
are measured instead of assumed:

* ``ctx_start`` — the number of leading special tokens: the first position where the tokenizations of
  ``"X"`` and ``"Y"`` differ (1 for CLIP's ``<start_of_text>`` and BERT's ``[CLS]``).
* the content length of a text — tokens between the leading specials and the trailing special tokens
  (those of the empty string), so content ids that coincide with the pad id are still counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

__all__ = [
    "PromptLayout",
    "PromptTooLongError",
    "TokenizerLayout",
    "build_layout",
    "tokenize_ids",
    "tokenizer_layout",
]


class PromptTooLongError(ValueError):
    """A class prompt does not fit the text encoder's context length, so its class name would be cut off.

    Tokenizers truncate silently (open_clip's even writes the end token over the last kept one): with
    a long ``ctx_init`` or class name the class tokens fall off the end and every such class gets the
    same prompt. Attributes: ``classname``, ``n_tokens`` (tokens the prompt needs, specials included;
    a lower bound when the class name alone overflows) and ``context_length``.
    """

    def __init__(self, message: str, *, classname: str, n_tokens: int, context_length: int) -> None:
        super().__init__(message)
        self.classname = classname
        self.n_tokens = n_tokens
        self.context_length = context_length


@dataclass(frozen=True)
class TokenizerLayout:
    """Special-token structure of a tokenizer."""

    ctx_start: int  #: number of leading special tokens
    end_ids: tuple[int, ...]  #: trailing special tokens after the content (e.g. EOT, [SEP])
    pad_id: int  #: padding id

    def content_length(self, ids: torch.Tensor) -> int:
        """Number of content tokens in one tokenized row (between the leading and trailing specials)."""
        row = ids.tolist()
        n_end = len(self.end_ids)
        if n_end:
            for j in range(self.ctx_start, len(row) - n_end + 1):
                if tuple(row[j : j + n_end]) == self.end_ids:
                    return j - self.ctx_start
            return len(row) - self.ctx_start  # truncated: no end token left
        j = len(row)
        while j > self.ctx_start and row[j - 1] == self.pad_id:
            j -= 1
        return j - self.ctx_start


@dataclass(frozen=True)
class PromptLayout:
    """Tokenized class prompts and the positions of their parts."""

    token_ids: torch.Tensor  #: (n_cls, L) ids of the prompts (placeholders at the context positions)
    prompts: tuple[str, ...]  #: the prompt strings
    ctx_start: int  #: first context position
    n_ctx: int  #: number of learnable context tokens
    n_prefix_tokens: int  #: tokens of the prefix text (> n_ctx when trailing init words stay fixed)
    name_lens: tuple[int, ...]  #: tokens of each class name


def tokenize_ids(tokenizer: Callable, texts: Sequence[str]) -> torch.Tensor:
    """``tokenizer(texts)`` as a ``LongTensor`` ``(N, L)``."""
    ids = tokenizer(list(texts))
    if not isinstance(ids, torch.Tensor):
        ids = torch.as_tensor(ids)
    return ids.long()


def tokenizer_layout(tokenizer: Callable) -> TokenizerLayout:
    """Measure the leading/trailing special tokens and the pad id of ``tokenizer``."""
    probe = tokenize_ids(tokenizer, ["X", "Y", ""])
    differ = (probe[0] != probe[1]).nonzero()
    if len(differ) == 0:
        raise ValueError("cannot locate content tokens: the tokenizer maps 'X' and 'Y' to the same ids")
    ctx_start = int(differ[0])
    empty = probe[2].tolist()
    pad_id = empty[-1]
    n_special = len(empty)
    while n_special > 0 and empty[n_special - 1] == pad_id:
        n_special -= 1
    end_ids = tuple(empty[ctx_start:n_special])
    return TokenizerLayout(ctx_start=ctx_start, end_ids=end_ids, pad_id=pad_id)


def build_layout(
    tokenizer: Callable,
    classnames: Sequence[str],
    *,
    prefix_text: str,
    n_ctx: int,
    check_name_spans: bool = False,
) -> PromptLayout:
    """Tokenize ``"{prefix_text} {classname}."`` for every class and locate the context tokens.

    Parameters
    ----------
    tokenizer:
        ``open_clip`` tokenizer (list of strings → ``(N, L)`` ids).
    classnames:
        Class names; underscores become spaces (as in CoOp).
    prefix_text:
        Context initialisation words (``"a photo of a"``) or ``n_ctx`` placeholders ``"X X … X"``.
    n_ctx:
        Number of learnable tokens: the first ``n_ctx`` tokens of ``prefix_text``. Fewer than the prefix
        has keeps the rest as fixed text (MaPLe/IVLP with ``N_CTX=2`` and ``"a photo of a"``).
    check_name_spans:
        Verify that the class-name tokens follow the context directly and tokenize as the bare name
        (needed to move the class name to the middle/front).

    Returns
    -------
    PromptLayout

    Raises
    ------
    PromptTooLongError
        A prompt ``"{prefix_text} {classname}."`` needs more tokens than the tokenizer's context
        length (the class name would be truncated away); the message names the class, the token
        count and the context length. The count is the sum of the parts tokenized separately
        (prefix, name, ``"."``, special tokens), exact for word-level tokenizers (CLIP BPE, WordPiece).
    """
    if n_ctx < 1:
        raise ValueError(f"n_ctx must be >= 1, got {n_ctx}")
    names = [name.replace("_", " ") for name in classnames]
    prompts = [f"{prefix_text} {name}." for name in names]
    special = tokenizer_layout(tokenizer)
    s = special.ctx_start
    ids = tokenize_ids(tokenizer, prompts)
    prefix_ids = tokenize_ids(tokenizer, [prefix_text])[0]
    n_prefix = special.content_length(prefix_ids)
    if n_ctx > n_prefix:
        raise ValueError(
            f"n_ctx={n_ctx} exceeds the {n_prefix} tokens of the context text {prefix_text!r}; "
            "use more initialisation words or random initialisation"
        )
    if not torch.equal(ids[:, s : s + n_prefix], prefix_ids[s : s + n_prefix].expand(len(names), -1)):
        raise ValueError(f"the context text {prefix_text!r} tokenizes differently inside the class prompts")
    name_ids = tokenize_ids(tokenizer, names)
    name_lens = tuple(special.content_length(row) for row in name_ids)
    context_length = int(ids.shape[1])
    n_dot = special.content_length(tokenize_ids(tokenizer, ["."])[0])
    n_special = s + len(special.end_ids)
    too_long = [
        (original, name, m, n_special + n_prefix + m + n_dot)
        for original, name, m in zip(classnames, names, name_lens)
        if n_special + n_prefix + m + n_dot > context_length
    ]
    if too_long:
        original, name, m, needed = too_long[0]
        name_cut = s + m + len(special.end_ids) >= context_length  # the name alone fills the context
        count = f"at least {needed}" if name_cut else f"{needed}"
        others = ""
        if len(too_long) > 1:
            listed = ", ".join(repr(c) for c, *_ in too_long[1:6]) + (", ..." if len(too_long) > 6 else "")
            others = f" ({len(too_long) - 1} more class(es) do not fit either: {listed})"
        raise PromptTooLongError(
            f"class {original!r}: the prompt {f'{prefix_text} {name}.'!r} needs {count} tokens ({n_prefix} "
            f"context, {m} class name, {n_dot} for '.', {n_special} special) but the text encoder's context "
            f"length is {context_length}; the class name would be cut off, so classes could get identical "
            f"prompts{others}. Use a shorter ctx_init / fewer context tokens, or a shorter class name",
            classname=original,
            n_tokens=needed,
            context_length=context_length,
        )
    if check_name_spans:
        if n_prefix != n_ctx:
            raise ValueError("moving the class name needs every context word to be learnable (n_ctx = words)")
        for i, (row, m) in enumerate(zip(ids, name_lens)):
            if not torch.equal(row[s + n_ctx : s + n_ctx + m], name_ids[i, s : s + m]):
                raise ValueError(f"class name {names[i]!r} tokenizes differently inside its prompt")
    return PromptLayout(
        token_ids=ids,
        prompts=tuple(prompts),
        ctx_start=s,
        n_ctx=n_ctx,
        n_prefix_tokens=n_prefix,
        name_lens=name_lens,
    )
