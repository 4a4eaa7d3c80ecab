"""PromptedCLIP: logits formula, frozen backbone and gradient flow, train mode, unsupported towers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ncprobe.models import (
    CLIPBundle,
    CoCoOpPromptLearner,
    CoOpPromptLearner,
    IVLPPromptLearner,
    MaPLePromptLearner,
    PromptedCLIP,
    UnsupportedTextTowerError,
    UnsupportedVisionTowerError,
    build_prompt_learner,
    load_clip,
)
from tests._helpers.models import CLASSNAMES, NATIVE_CFG

LEARNERS = {
    "coop": dict(n_ctx=4),
    "coop_csc_middle": dict(n_ctx=4, class_specific=True, class_token_position="middle"),
    "cocoop": dict(),
    "maple": dict(prompt_depth=2),
    "ivlp": dict(n_ctx_text=2, n_ctx_vision=2, text_depth=2, vision_depth=2),
}


def _make(name, bundle):
    method = name.split("_")[0]
    return build_prompt_learner(method, bundle, CLASSNAMES, **LEARNERS[name])


def test_logits_are_scaled_cosines(native_bundle, images):
    model = PromptedCLIP(native_bundle, CoOpPromptLearner(native_bundle, CLASSNAMES, ctx_init="a photo of a"))
    with torch.no_grad():
        out = model(images)
        img = F.normalize(native_bundle.model.encode_image(images), dim=-1)
    torch.testing.assert_close(out.image_features, img)
    torch.testing.assert_close(out.text_features.norm(dim=-1), torch.ones(len(CLASSNAMES)))
    scale = native_bundle.model.logit_scale.exp()
    assert scale.item() == pytest.approx(torch.tensor(2.0).exp().item())
    torch.testing.assert_close(out.logits, scale * img @ out.text_features.t())
    torch.testing.assert_close(out.logit_scale, scale)
    # precomputed text features give the same logits
    torch.testing.assert_close(model(images, text_features=out.text_features).logits, out.logits)


def test_logit_bias_is_added(custom_text_bundle, images):
    model = PromptedCLIP(custom_text_bundle, CoOpPromptLearner(custom_text_bundle, CLASSNAMES, n_ctx=4))
    with torch.no_grad():
        out = model(images)
    expected = out.logit_scale * out.image_features @ out.text_features.t() + custom_text_bundle.model.logit_bias
    torch.testing.assert_close(out.logits, expected)
    assert custom_text_bundle.model.logit_bias.item() == -10.0


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_gradient_reaches_only_prompt_parameters(native_bundle, images, name):
    learner = _make(name, native_bundle)
    if name == "cocoop":  # the tiny meta-net has 32 // 16 = 2 hidden ReLUs: keep them active
        with torch.no_grad():
            learner.meta_net.linear1.bias.fill_(1.0)
    model = PromptedCLIP(native_bundle, learner).train()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"prompt_learner.{n}" for n, _ in learner.named_parameters()}
    labels = torch.tensor([0, 1, 2])
    out = model(images)
    loss = F.cross_entropy(out.logits, labels) + model.encode_sentences(["a photo of a dog."]).sum()
    loss.backward()
    for n, p in learner.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), n
        assert p.grad.abs().sum() > 0, n
    assert all(p.grad is None for p in native_bundle.model.parameters())


def test_gradient_hf_tower_maple(hf_bundle, images):
    learner = MaPLePromptLearner(hf_bundle, CLASSNAMES, prompt_depth=2)
    model = PromptedCLIP(hf_bundle, learner).train()
    F.cross_entropy(model(images).logits, torch.tensor([0, 1, 3])).backward()
    for n, p in learner.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, n
    assert all(p.grad is None for p in hf_bundle.model.parameters())


def test_train_keeps_clip_in_eval_mode(hf_bundle, images):
    model = PromptedCLIP(hf_bundle, CoOpPromptLearner(hf_bundle, CLASSNAMES, ctx_init="a photo of a")).train()
    assert model.training and model.prompt_learner.training
    assert not hf_bundle.model.training and not any(m.training for m in hf_bundle.model.modules())
    with torch.no_grad():  # dropout of the BERT tower stays off: deterministic
        torch.testing.assert_close(model(images).logits, model(images).logits, rtol=0, atol=0)
    model.eval()
    assert not model.prompt_learner.training


def test_vision_prompts_need_a_vision_transformer():
    cfg = dict(NATIVE_CFG, vision_cfg={"image_size": 32, "layers": [1, 1, 1, 1], "width": 8, "head_width": 8})
    bundle = load_clip("ncprobe-test-resnet", model_cfg=cfg)
    with pytest.raises(UnsupportedVisionTowerError, match="VisionTransformer"):
        MaPLePromptLearner(bundle, CLASSNAMES, prompt_depth=1)
    with pytest.raises(UnsupportedVisionTowerError):
        IVLPPromptLearner(bundle, CLASSNAMES, text_depth=1, vision_depth=1)
    coop = PromptedCLIP(bundle, CoOpPromptLearner(bundle, CLASSNAMES, n_ctx=2))  # CoOp works with any tower
    with torch.no_grad():
        assert coop(torch.randn(2, 3, 32, 32)).logits.shape == (2, len(CLASSNAMES))


def test_unsupported_text_tower_is_explained(native_bundle):
    class Fake(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.text = torch.nn.Linear(2, 2)

    bundle = CLIPBundle(model=Fake(), tokenizer=native_bundle.tokenizer, preprocess=None, name="fake")
    with pytest.raises(UnsupportedTextTowerError, match="open_clip.CLIP") as info:
        CoOpPromptLearner(bundle, CLASSNAMES, n_ctx=2)
    assert "HFTextEncoder" in str(info.value)


def test_learner_and_wrapper_must_share_the_model(native_bundle, custom_text_bundle):
    learner = CoCoOpPromptLearner(native_bundle, CLASSNAMES)
    with pytest.raises(ValueError, match="different CLIP model"):
        PromptedCLIP(custom_text_bundle, learner)


@pytest.mark.parametrize("cfg_name", ["native", "hf"])
def test_trimming_prompt_padding_gives_the_same_features(cfg_name):
    """Prompts cut after their last non-padding token: same features as the full context (fp32)."""
    from ncprobe.models import CoOpPromptLearner, MaPLePromptLearner, PromptedCLIP, load_clip
    from tests._helpers.models import CLASSNAMES, NATIVE_CFG, minilm_cfg

    bundle = (
        load_clip("ncprobe-test-native", model_cfg=NATIVE_CFG)
        if cfg_name == "native"
        else load_clip("ncprobe-test-minilm-mean", model_cfg=minilm_cfg("mean_pooler"))
    )
    for learner in (
        CoOpPromptLearner(bundle, CLASSNAMES, ctx_init="a photo of a"),
        MaPLePromptLearner(bundle, CLASSNAMES, prompt_depth=2, vision_prompts=False),
    ):
        trimmed, full = PromptedCLIP(bundle, learner), PromptedCLIP(bundle, learner, trim_padding=False)
        with torch.no_grad():
            a, b = trimmed.encode_text(), full.encode_text()
        assert trimmed._active_length() < learner.token_ids.shape[1]
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["maple", "ivlp", "cocoop"])
def test_extract_features_of_a_prompted_model(native_bundle, images, name):
    from torch.utils.data import TensorDataset

    from ncprobe.models.features import extract_features, feature_cache_path

    torch.manual_seed(0)
    model = PromptedCLIP(native_bundle, _make(name, native_bundle)).train()
    data = TensorDataset(images, torch.arange(len(images)))
    feats, labels = extract_features(model, data, batch_size=2, progress=False)
    with torch.no_grad():
        direct = model.encode_image(images, normalize=False)
    torch.testing.assert_close(feats, direct)
    assert labels.tolist() == [0, 1, 2] and model.training  # mode restored
    plain, _ = extract_features(native_bundle, data, cache=False, progress=False)
    assert torch.allclose(plain, feats) == (name == "cocoop")  # only visual prompts change image features
    assert not feature_cache_path(model, data)[0].exists()  # prompted models are not cached by default
    cached, _ = extract_features(model, data, cache=True, progress=False)
    path = feature_cache_path(model, data)[0]
    assert path.is_file()
    torch.testing.assert_close(cached, feats)
    with torch.no_grad():  # a training step on the prompts
        for p in model.prompt_learner.parameters():
            p.add_(0.05)
    moved = feature_cache_path(model, data)[0]
    assert (moved != path) == model.prompt_learner.uses_vision_prompts
    after, _ = extract_features(model, data, cache=True, progress=False)
    with torch.no_grad():
        torch.testing.assert_close(after, model.encode_image(images, normalize=False))
