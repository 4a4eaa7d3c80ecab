"""Image encoding with visual prompt tokens (MaPLe, IVLP/VPT) on ``open_clip``'s ``VisionTransformer``.

MaPLe and IVLP append their visual prompts **after the positional embedding and before ``ln_pre``**
(``VisionTransformer_MaPLe.forward`` / ``VisionTransformer.forward`` in
``muzairkhattak/multimodal-prompt-learning/clip/model.py``). ``open_clip``'s
``VisionTransformer._embeds`` applies ``ln_pre`` itself, so the embedding step is re-implemented
here: ``conv1`` → flatten → prepend class token → ``+ positional_embedding`` → patch dropout →
**append prompts** → ``ln_pre``. In deeper layers 2..J the last ``n`` tokens are replaced by that
layer's prompts. The prompt tokens are dropped before pooling, so ``_pool`` sees exactly the tokens it
expects: for ``pool_type='tok'`` (OpenAI CLIP) this equals the original ``ln_post(x[:, 0])``, and
``'avg'`` pooling is not contaminated by prompts.
"""

from __future__ import annotations

from typing import Sequence

import torch
from open_clip.transformer import VisionTransformer
from torch import nn

from .deep_prompting import run_resblocks
from .open_clip_compat import vision_pool

__all__ = [
    "UnsupportedVisionTowerError",
    "check_promptable_visual",
    "encode_image_with_prompts",
    "vision_num_layers",
    "vision_width",
]


class UnsupportedVisionTowerError(TypeError):
    """Visual prompts need ``open_clip``'s own ``VisionTransformer`` (not ResNets or timm towers)."""


def check_promptable_visual(visual: nn.Module) -> VisionTransformer:
    """Return ``visual`` if visual prompts can be inserted into it, else raise a clear error."""
    if not isinstance(visual, VisionTransformer):
        raise UnsupportedVisionTowerError(
            f"visual prompts need open_clip's VisionTransformer image tower, got {type(visual).__name__} "
            "(ModifiedResNet and timm towers are not supported; CoOp/CoCoOp work with any image tower)"
        )
    return visual


def vision_width(visual: nn.Module) -> int:
    """Token width of a promptable vision transformer (768 for ViT-B/16)."""
    return int(check_promptable_visual(visual).transformer.width)


def vision_num_layers(visual: nn.Module) -> int:
    """Number of residual blocks of a promptable vision transformer."""
    return len(check_promptable_visual(visual).transformer.resblocks)


def encode_image_with_prompts(
    visual: nn.Module,
    images: torch.Tensor,
    *,
    shallow: torch.Tensor,
    deep: Sequence[torch.Tensor | None] = (),
) -> torch.Tensor:
    """Image features (unnormalised, ``(B, embed_dim)``) with visual prompt tokens.

    Parameters
    ----------
    visual:
        ``open_clip.transformer.VisionTransformer``.
    images:
        ``(B, 3, H, W)`` preprocessed images (cast to the tower's dtype).
    shallow:
        ``(n, width)`` or ``(B, n, width)`` prompts appended to the token sequence before ``ln_pre``;
        ``n = 0`` gives exactly ``visual(images)``.
    deep:
        ``deep[k]`` replaces the last ``n`` tokens at the input of block ``k + 1`` (layers 2..).

    Returns
    -------
    torch.Tensor
        The pooled, projected image features.
    """
    vit = check_promptable_visual(visual)
    x = vit.conv1(images.to(vit.conv1.weight.dtype))
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # (B, grid**2, width)
    cls = vit.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
    x = torch.cat([cls, x], dim=1)
    x = x + vit.positional_embedding.to(x.dtype)
    x = vit.patch_dropout(x)
    n = shallow.shape[-2]
    prompts = shallow.to(dtype=x.dtype, device=x.device)
    if prompts.dim() == 2:
        prompts = prompts.unsqueeze(0).expand(x.shape[0], -1, -1)
    x = torch.cat([x, prompts], dim=1)
    x = vit.ln_pre(x)
    if any(p is not None for p in deep) and n == 0:
        raise ValueError("deep visual prompts need shallow visual prompts (their positions) to replace")
    x = run_resblocks(vit.transformer, x, deep_prompts=deep, start=lambda length: length - n)
    x = x[:, : x.shape[1] - n]
    pooled = vision_pool(vit, x)
    if vit.proj is not None:
        pooled = pooled @ vit.proj
    return pooled
