"""CoCoOp: meta-net bias on the context; zero bias reduces to CoOp."""

from __future__ import annotations

import pytest
import torch

from ncprobe.models import CoCoOpPromptLearner, CoOpPromptLearner, PromptedCLIP
from tests._helpers.models import CLASSNAMES


def test_meta_net_architecture(native_bundle):
    learner = CoCoOpPromptLearner(native_bundle, CLASSNAMES)
    assert learner.conditional and learner.n_ctx == 4
    assert [type(m).__name__ for m in learner.meta_net] == ["Linear", "ReLU", "Linear"]
    assert (learner.meta_net.linear1.in_features, learner.meta_net.linear1.out_features) == (32, 2)
    assert (learner.meta_net.linear2.in_features, learner.meta_net.linear2.out_features) == (2, 64)
    assert set(learner.state_dict()) == {
        "ctx",
        "meta_net.linear1.weight",
        "meta_net.linear1.bias",
        "meta_net.linear2.weight",
        "meta_net.linear2.bias",
    }


def test_zero_meta_net_equals_coop(any_bundle, images):
    cocoop = CoCoOpPromptLearner(any_bundle, CLASSNAMES, ctx_init="a photo of a")
    with torch.no_grad():
        cocoop.meta_net.linear2.weight.zero_()
        cocoop.meta_net.linear2.bias.zero_()
    coop = CoOpPromptLearner(any_bundle, CLASSNAMES, ctx_init="a photo of a")
    with torch.no_grad():
        out = PromptedCLIP(any_bundle, cocoop)(images)
        ref = PromptedCLIP(any_bundle, coop)(images)
    assert out.text_features.shape == (len(images), len(CLASSNAMES), 32)
    for i in range(len(images)):
        torch.testing.assert_close(out.text_features[i], ref.text_features, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.logits, ref.logits, rtol=1e-5, atol=1e-5)


def test_bias_is_added_to_every_context_token(native_bundle, images):
    learner = CoCoOpPromptLearner(native_bundle, CLASSNAMES)
    model = PromptedCLIP(native_bundle, learner)
    with torch.no_grad():
        image_features = model.encode_image(images)
        prompts = learner.text_prompts(image_features)
        bias = learner.meta_net(image_features)
    s, n = learner.ctx_start, learner.n_ctx
    assert prompts.shape == (len(images), len(CLASSNAMES), 77, 64)
    for b in range(len(images)):
        expected = learner.ctx + bias[b]
        for c in range(len(CLASSNAMES)):
            torch.testing.assert_close(prompts[b, c, s : s + n], expected)
            torch.testing.assert_close(prompts[b, c, :s], learner.token_prefix[c])
    # different images give different class text features
    with torch.no_grad():
        text = model(images).text_features
    assert not torch.allclose(text[0], text[1], atol=1e-4)


def test_conditional_misuse_raises(native_bundle, images):
    model = PromptedCLIP(native_bundle, CoCoOpPromptLearner(native_bundle, CLASSNAMES))
    with pytest.raises(ValueError, match="image"):
        model.encode_text()
    with pytest.raises(ValueError, match="conditional"):
        model(images, text_features=torch.zeros(len(CLASSNAMES), 32))


def test_chunked_conditional_encoding_matches(native_bundle, images):
    learner = CoCoOpPromptLearner(native_bundle, CLASSNAMES)
    whole = PromptedCLIP(native_bundle, learner)
    chunked = PromptedCLIP(native_bundle, learner, max_prompts_per_pass=len(CLASSNAMES))  # one image per pass
    with torch.no_grad():
        torch.testing.assert_close(chunked(images).logits, whole(images).logits, rtol=1e-5, atol=1e-5)
        assert chunked(images).text_features.shape == (len(images), len(CLASSNAMES), 32)
