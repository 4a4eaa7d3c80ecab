"""The two private ``open_clip`` internals ncprobe relies on, in one place, pinned and tested.

Prompted encoders re-run parts of open_clip's towers layer by layer, and two steps have no public API:

* :func:`vision_pool` — ``VisionTransformer._pool`` (final layer norm and token pooling, in the order the
  tower's ``final_ln_after_pool`` / ``attn_pool`` settings say);
* :func:`text_pad_mask` — ``TextTransformer._build_additive_mask`` (the padding mask of towers with
  ``use_pad_mask``).

``pyproject.toml`` pins ``open_clip_torch`` to the tested range :data:`TESTED_RANGE`;
``tests/models/test_open_clip_compat.py`` fails loudly when either internal moves or changes behaviour
(it compares the prompted encoders without prompts against the public ``encode_image``/``encode_text``).
Everything else ncprobe uses of open_clip is public API.
"""

from __future__ import annotations

import torch
from open_clip.transformer import TextTransformer, VisionTransformer

__all__ = ["TESTED_RANGE", "vision_pool", "text_pad_mask"]

#: open_clip_torch versions these internals are tested with (mirrors pyproject.toml).
TESTED_RANGE = (">=3.3.0", "<3.4")


def vision_pool(vit: VisionTransformer, x: torch.Tensor) -> torch.Tensor:
    """Pooled output of a vision tower's final tokens ``x`` (N, L, D), before the projection."""
    pooled, _ = vit._pool(x)
    return pooled


def text_pad_mask(text: TextTransformer, token_ids: torch.Tensor, length: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive padding mask (N·heads, L, L) of a text tower that masks padding tokens."""
    return text._build_additive_mask(token_ids, length, dtype)
