"""CLIP models and prompt learning on ``open_clip``.

* :func:`load_clip` — an ``open_clip`` model (pretrained tag, local checkpoint or random init) as a
  :class:`CLIPBundle`.
* Prompt learners — :class:`CoOpPromptLearner`, :class:`CoCoOpPromptLearner`,
  :class:`MaPLePromptLearner`, :class:`IVLPPromptLearner` (or :func:`build_prompt_learner`).
* :class:`PromptedCLIP` — frozen CLIP + learner → logits and normalised features.
* :func:`text_backbone_for` / :func:`encode_image_with_prompts` — the embedding-level text and
  prompted image encoders underneath.
* :func:`weights_digest` — SHA-256 of a model's current weights (the part of cache keys that says
  which weights produced a result).
* :func:`extract_features` / :func:`text_features` (in :mod:`ncprobe.models.features`) — image
  features of a bundle or a :class:`PromptedCLIP`, with a weight-keyed cache; zero-shot weights.
"""

from .bundle import CLIPBundle
from .clip import PRECISIONS, PretrainedWeightsUnavailableError, autocast, load_clip, register_model_config
from .digest import weights_digest
from .prompt_learners import (
    CLASS_TOKEN_POSITIONS,
    PROMPT_LEARNERS,
    CoCoOpPromptLearner,
    CoOpPromptLearner,
    IVLPPromptLearner,
    MaPLePromptLearner,
    PromptLearner,
    PromptTooLongError,
    build_prompt_learner,
)
from .prompted_clip import PromptedCLIP, PromptedCLIPOutput
from .text_backbones import (
    HFTextBackbone,
    NativeTextBackbone,
    TextBackbone,
    UnsupportedTextTowerError,
    text_backbone_for,
)
from .vision_prompts import UnsupportedVisionTowerError, encode_image_with_prompts

__all__ = [
    "CLASS_TOKEN_POSITIONS",
    "CLIPBundle",
    "CoCoOpPromptLearner",
    "CoOpPromptLearner",
    "HFTextBackbone",
    "IVLPPromptLearner",
    "MaPLePromptLearner",
    "NativeTextBackbone",
    "PRECISIONS",
    "PROMPT_LEARNERS",
    "PretrainedWeightsUnavailableError",
    "PromptLearner",
    "PromptTooLongError",
    "PromptedCLIP",
    "PromptedCLIPOutput",
    "TextBackbone",
    "UnsupportedTextTowerError",
    "UnsupportedVisionTowerError",
    "autocast",
    "build_prompt_learner",
    "encode_image_with_prompts",
    "load_clip",
    "register_model_config",
    "text_backbone_for",
    "weights_digest",
]
