"""Layer-by-layer execution of ``open_clip`` transformers with deep prompts replacing tokens.

Deep prompting (MaPLe, IVLP, PromptSRC) feeds layer 1 with the shallow prompts already in the token
sequence and, before each later layer ``i = 2..J`` (1-based), **replaces** the hidden states at the
prompt positions with that layer's learnable prompt (``ResidualAttentionBlock_MaPLe.forward`` and
``ResidualAttentionBlock_IVLP.forward`` in ``muzairkhattak/multimodal-prompt-learning/clip/model.py``).
The sequence length never changes, so masks and pooling indices stay valid.

``open_clip`` 3.x transformers are batch-first (N, L, D); the Dassl code works in (L, N, D). Both
orders are handled here through ``transformer.batch_first``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

__all__ = ["replace_tokens", "run_resblocks"]


def replace_tokens(x: torch.Tensor, prompt: torch.Tensor, start: int) -> torch.Tensor:
    """Return ``x`` (N, L, D) with tokens ``start : start + n`` replaced by ``prompt``.

    Parameters
    ----------
    x:
        Hidden states, batch-first.
    prompt:
        ``(n, D)`` shared by the batch, or ``(N, n, D)`` per sample.
    start:
        First replaced position; ``start + n`` must not exceed ``L``.

    Returns
    -------
    torch.Tensor
        A new tensor (the replacement is differentiable with respect to ``prompt``).
    """
    n = prompt.shape[-2]
    if start < 0 or start + n > x.shape[1]:
        raise ValueError(f"cannot place {n} prompt tokens at position {start} of a length-{x.shape[1]} sequence")
    p = prompt.to(dtype=x.dtype, device=x.device)
    if p.dim() == 2:
        p = p.unsqueeze(0).expand(x.shape[0], -1, -1)
    return torch.cat([x[:, :start], p, x[:, start + n :]], dim=1)


def run_resblocks(
    transformer: nn.Module,
    x: torch.Tensor,
    *,
    attn_mask: torch.Tensor | None = None,
    deep_prompts: Sequence[torch.Tensor | None] = (),
    start: int | Callable[[int], int] = 1,
) -> torch.Tensor:
    """Run an ``open_clip`` ``Transformer``'s residual blocks with deep prompt replacement.

    Parameters
    ----------
    transformer:
        ``open_clip.transformer.Transformer`` (has ``resblocks``).
    x:
        Batch-first input (N, L, D) of the first block.
    attn_mask:
        Passed unchanged to every block (causal and/or padding mask).
    deep_prompts:
        ``deep_prompts[k]`` replaces the prompt tokens at the input of block ``k + 1`` (0-based), i.e.
        layers 2..len+1 in the papers' 1-based numbering; ``None`` entries leave a layer untouched.
    start:
        Prompt position: an ``int`` (text: right after the start token) or a function of the sequence
        length (vision: ``lambda L: L - n`` for prompts appended at the end).

    Returns
    -------
    torch.Tensor
        Batch-first output of the last block.
    """
    blocks = transformer.resblocks
    if len(deep_prompts) > len(blocks) - 1:
        raise ValueError(f"{len(deep_prompts)} deep prompt layers do not fit a {len(blocks)}-layer transformer")
    batch_first = getattr(transformer, "batch_first", True)
    for i, block in enumerate(blocks):
        if 1 <= i <= len(deep_prompts) and deep_prompts[i - 1] is not None:
            pos = start(x.shape[1]) if callable(start) else start
            x = replace_tokens(x, deep_prompts[i - 1], pos)
        if batch_first:
            x = block(x, attn_mask=attn_mask)
        else:
            x = block(x.transpose(0, 1), attn_mask=attn_mask).transpose(0, 1)
    return x
