"""load_clip: random init, custom configs, local checkpoints, precision, clear errors offline."""

from __future__ import annotations

import time
import warnings

import open_clip
import pytest
import torch

from ncprobe.models import (
    PRECISIONS,
    CLIPBundle,
    PretrainedWeightsUnavailableError,
    autocast,
    load_clip,
    register_model_config,
)
from tests._helpers.models import NATIVE_CFG


def test_random_init_bundle(native_bundle):
    b = native_bundle
    assert isinstance(b, CLIPBundle)
    assert isinstance(b.model, open_clip.CLIP)
    assert b.pretrained is None and b.name == "ncprobe-test-native"
    assert b.extra == {"precision": "fp32", "quick_gelu": False}
    assert not b.model.training
    ids = b.tokenizer(["a photo of a cat."])
    assert ids.shape == (1, 77) and ids.dtype == torch.long
    assert b.preprocess is not None
    feats = b.model.encode_image(torch.randn(2, 3, 32, 32))
    assert feats.shape == (2, 32) and torch.isfinite(feats).all()


def test_hf_tower_bundle(hf_bundle):
    assert isinstance(hf_bundle.model, open_clip.CustomTextCLIP)
    assert isinstance(hf_bundle.model.text, open_clip.hf_model.HFTextEncoder)
    assert hf_bundle.tokenizer(["a photo of a cat."]).shape == (1, 32)


def test_local_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(3)
    source = load_clip("ncprobe-test-ckpt", model_cfg=NATIVE_CFG)
    path = tmp_path / "tiny.pt"
    torch.save(source.model.state_dict(), path)
    torch.manual_seed(4)  # a different random init, overwritten by the checkpoint
    loaded = load_clip("ncprobe-test-ckpt", pretrained=path)
    assert loaded.pretrained == str(path)
    for (k, a), (_, b) in zip(source.model.state_dict().items(), loaded.model.state_dict().items()):
        assert torch.equal(a, b), k


def test_quick_gelu_flag():
    cfg = dict(NATIVE_CFG, quick_gelu=True)
    b = load_clip("ncprobe-test-quickgelu", model_cfg=cfg)
    assert b.extra["quick_gelu"] is True
    act = b.model.transformer.resblocks[0].mlp.gelu
    assert type(act).__name__ == "QuickGELU"
    forced = load_clip("ncprobe-test-native", model_cfg=NATIVE_CFG, force_quick_gelu=True)
    assert type(forced.model.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"


def test_unreachable_pretrained_tag_fails_fast_with_instructions(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    start = time.monotonic()
    with pytest.raises(PretrainedWeightsUnavailableError) as info:
        load_clip("ViT-B-16-quickgelu", "openai")
    assert time.monotonic() - start < 20
    message = str(info.value)
    assert "pretrained='/path/to/checkpoint" in message and "ViT-B-16-quickgelu" in message


def test_download_failure_inside_open_clip_is_wrapped(monkeypatch):
    """Even when the offline pre-check is bypassed, open_clip's failure becomes the clear error."""
    from huggingface_hub import constants

    import ncprobe.models.clip as clip_module

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(clip_module, "_hf_offline", lambda: False)
    start = time.monotonic()
    with pytest.raises(PretrainedWeightsUnavailableError) as info:
        load_clip("ViT-B-32-quickgelu", "openai")
    assert time.monotonic() - start < 20
    assert isinstance(info.value.__cause__, RuntimeError)  # open_clip's own download error, kept as cause


def test_openai_with_gelu_config_warns(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.warns(UserWarning, match="quickgelu"), pytest.raises(PretrainedWeightsUnavailableError):
        load_clip("ViT-B-16", "openai")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(PretrainedWeightsUnavailableError):
            load_clip("ViT-B-16-quickgelu", "openai")


def test_bad_arguments():
    with pytest.raises(ValueError, match="known tags"):
        load_clip("ViT-B-16", "no-such-tag")
    with pytest.raises(FileNotFoundError):
        load_clip("ViT-B-16", "/does/not/exist.pt")
    with pytest.raises(ValueError, match="unknown open_clip model"):
        load_clip("no-such-model")
    with pytest.raises(ValueError, match="precision"):
        load_clip("ncprobe-test-native", model_cfg=NATIVE_CFG, precision="fp8")
    with pytest.raises(ValueError, match="lacks"):
        register_model_config("broken", {"embed_dim": 8})


def test_bf16_precision_and_autocast():
    b = load_clip("ncprobe-test-native", model_cfg=NATIVE_CFG, precision="bf16")
    assert b.model.transformer.resblocks[0].mlp.c_fc.weight.dtype == torch.bfloat16
    assert b.extra["precision"] == "bf16"
    assert "amp_bf16" in PRECISIONS
    with autocast("amp_bf16", "cpu"):
        assert (torch.randn(2, 2) @ torch.randn(2, 2)).dtype == torch.bfloat16
    with autocast("fp32"):
        assert not torch.is_autocast_enabled("cpu")


def test_fp16_as_in_dassl(images):
    """fp16 CLIP with fp16 prompts (Dassl's PREC: fp16): exact prompt reproduction, finite gradients."""
    from ncprobe.models import CoOpPromptLearner, MaPLePromptLearner, PromptedCLIP
    from tests._helpers.models import CLASSNAMES, minilm_cfg, prompts_for

    bundle = load_clip("ncprobe-test-native", model_cfg=NATIVE_CFG, precision="fp16")
    coop = CoOpPromptLearner(bundle, CLASSNAMES, ctx_init="a photo of a")
    assert coop.ctx.dtype == torch.float16
    with torch.no_grad():
        ours = PromptedCLIP(bundle, coop, trim_padding=False).encode_text(normalize=False)
        ref = bundle.model.encode_text(bundle.tokenizer(prompts_for(CLASSNAMES)))
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)
    model = PromptedCLIP(bundle, MaPLePromptLearner(bundle, CLASSNAMES, prompt_depth=2)).train()
    out = model(images)
    assert out.logits.dtype == torch.float16
    torch.nn.functional.cross_entropy(out.logits.float(), torch.tensor([0, 1, 2])).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.prompt_learner.parameters())
    with pytest.raises(ValueError, match="pure_fp16"):
        load_clip("ncprobe-test-minilm-mean", model_cfg=minilm_cfg("mean_pooler"), precision="fp16")
