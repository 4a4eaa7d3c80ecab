"""MaPLe and IVLP: deep text/vision prompts, insertion before ln_pre, replacement in later layers."""

from __future__ import annotations

import pytest
import torch

from ncprobe.models import (
    CoOpPromptLearner,
    IVLPPromptLearner,
    MaPLePromptLearner,
    PromptedCLIP,
    encode_image_with_prompts,
)
from tests._helpers.models import CLASSNAMES, prompts_for, reference_text_features


def _capture_inputs(modules):
    """Forward pre-hooks recording the first positional input of each module."""
    seen, handles = {}, []
    for i, module in enumerate(modules):

        def hook(mod, args, kwargs, i=i):
            seen[i] = (args[0] if args else kwargs["hidden_states"]).detach().clone()

        handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))
    return seen, handles


def test_depth_one_without_vision_reduces_to_coop(any_bundle, images):
    maple = MaPLePromptLearner(any_bundle, CLASSNAMES, n_ctx=4, prompt_depth=1, vision_prompts=False)
    coop = CoOpPromptLearner(any_bundle, CLASSNAMES, ctx_init="a photo of a")
    assert set(maple.state_dict()) == {"ctx"}
    with torch.no_grad():
        m_out = PromptedCLIP(any_bundle, maple)(images)
        c_out = PromptedCLIP(any_bundle, coop)(images)
    torch.testing.assert_close(m_out.text_features, c_out.text_features, rtol=0, atol=0)
    torch.testing.assert_close(m_out.logits, c_out.logits, rtol=0, atol=0)
    # the default MaPLe prompt "a photo of a {c}." with only "a photo" learnable also starts there
    two = MaPLePromptLearner(any_bundle, CLASSNAMES, prompt_depth=1, vision_prompts=False)
    assert two.n_ctx == 2
    with torch.no_grad():
        feats = PromptedCLIP(any_bundle, two).encode_text(normalize=False)
    ref = reference_text_features(any_bundle, prompts_for(CLASSNAMES))
    torch.testing.assert_close(feats, ref, rtol=1e-5, atol=1e-6)


def test_vision_prompts_change_image_features_only(native_bundle, images):
    maple = MaPLePromptLearner(native_bundle, CLASSNAMES, prompt_depth=1)
    model = PromptedCLIP(native_bundle, maple)
    with torch.no_grad():
        prompted = model.encode_image(images, normalize=False)
        plain = native_bundle.model.encode_image(images)
        text = model.encode_text(normalize=False)
    assert torch.isfinite(prompted).all() and prompted.shape == plain.shape
    assert not torch.allclose(prompted, plain, atol=1e-4)
    torch.testing.assert_close(text, reference_text_features(native_bundle, prompts_for(CLASSNAMES)))
    shallow, deep = maple.vision_prompts()
    assert shallow.shape == (2, 48) and deep == []
    assert set(maple.state_dict()) == {"ctx", "proj.weight", "proj.bias"}


def test_reimplemented_vision_embedding_matches_open_clip(native_bundle, custom_text_bundle, images):
    for bundle in (native_bundle, custom_text_bundle):  # 'tok' and 'avg' pooling
        visual = bundle.model.visual
        with torch.no_grad():
            ours = encode_image_with_prompts(visual, images, shallow=torch.zeros(0, 48))
            ref = bundle.model.encode_image(images)
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


def test_vision_prompts_enter_before_ln_pre_and_are_replaced_deeper(native_bundle, images):
    maple = MaPLePromptLearner(native_bundle, CLASSNAMES, prompt_depth=2)
    visual = native_bundle.model.visual
    seen_ln, h_ln = _capture_inputs([visual.ln_pre])
    seen, handles = _capture_inputs(visual.transformer.resblocks)
    try:
        with torch.no_grad():
            PromptedCLIP(native_bundle, maple).encode_image(images)
            shallow, deep = maple.vision_prompts()
    finally:
        for h in handles + h_ln:
            h.remove()
    n_tokens = 1 + (32 // 8) ** 2
    assert seen_ln[0].shape == (len(images), n_tokens + 2, 48)  # prompts pass through ln_pre
    torch.testing.assert_close(seen_ln[0][:, -2:], shallow.expand(len(images), -1, -1))
    assert seen[1].shape == (len(images), n_tokens + 2, 48)
    torch.testing.assert_close(seen[1][:, -2:], deep[0].expand(len(images), -1, -1))  # replaced, not appended
    assert not torch.allclose(seen[1][:, :-2], seen[0][:, :-2])


def test_coupling_projections(native_bundle):
    maple = MaPLePromptLearner(native_bundle, CLASSNAMES, prompt_depth=2)
    assert (maple.proj.in_features, maple.proj.out_features) == (64, 48)
    assert len(maple.compound_prompts_text) == 1 and maple.compound_prompts_text[0].shape == (2, 64)
    assert abs(maple.compound_prompts_text[0].std().item() - 0.02) < 0.01
    _, deep = maple.vision_prompts()
    torch.testing.assert_close(deep[0], maple.compound_prompt_projections[0](maple.compound_prompts_text[0]))
    with pytest.raises(ValueError, match="prompt_depth"):
        MaPLePromptLearner(native_bundle, CLASSNAMES, prompt_depth=3)


def test_deep_text_prompts_replace_context_tokens(any_bundle):
    maple = MaPLePromptLearner(any_bundle, CLASSNAMES, prompt_depth=2)
    if any_bundle.model.__class__.__name__ == "CLIP":
        blocks = any_bundle.model.transformer.resblocks
    else:  # BERT layers: the attention sub-module sees the (replaced) layer input
        blocks = [layer.attention for layer in maple.backbone.layers]
    seen, handles = _capture_inputs(blocks)
    try:
        with torch.no_grad():
            PromptedCLIP(any_bundle, maple).encode_text()
    finally:
        for h in handles:
            h.remove()
    s, n = maple.ctx_start, maple.n_ctx
    target = maple.compound_prompts_text[0].expand(len(CLASSNAMES), -1, -1)
    torch.testing.assert_close(seen[1][:, s : s + n], target)
    assert not torch.allclose(seen[0][:, s : s + n], seen[1][:, s : s + n])


def test_sentences_through_deep_prompted_encoder(any_bundle):
    sentences = ["a photo of a dog.", "a blurry photo of a large bus."]
    ref = reference_text_features(any_bundle, sentences)
    shallow = PromptedCLIP(any_bundle, MaPLePromptLearner(any_bundle, CLASSNAMES, prompt_depth=1))
    with torch.no_grad():
        torch.testing.assert_close(shallow.encode_sentences(sentences, normalize=False), ref, rtol=1e-5, atol=1e-6)
    deep = PromptedCLIP(any_bundle, MaPLePromptLearner(any_bundle, CLASSNAMES, prompt_depth=2))
    feats = deep.encode_sentences(sentences)
    assert feats.shape == (2, 32) and not torch.allclose(feats, torch.nn.functional.normalize(ref, dim=-1))
    feats.sum().backward()  # Craft's sentence features train the deep prompts
    assert deep.prompt_learner.compound_prompts_text[0].grad is not None
    assert deep.prompt_learner.ctx.grad is None  # the shallow context is not in plain sentences


def test_ivlp_structure_and_independence(native_bundle, images):
    learner = IVLPPromptLearner(native_bundle, CLASSNAMES, n_ctx_text=2, n_ctx_vision=3, text_depth=2, vision_depth=2)
    shallow, deep = learner.vision_prompts()
    assert shallow.shape == (3, 48) and len(deep) == 1 and deep[0].shape == (3, 48)
    assert len(learner.deep_text_prompts()) == 1 and learner.deep_text_prompts()[0].shape == (2, 64)
    model = PromptedCLIP(native_bundle, learner)
    seen, handles = _capture_inputs(native_bundle.model.visual.transformer.resblocks)
    try:
        with torch.no_grad():
            out = model(images)
    finally:
        for h in handles:
            h.remove()
    torch.testing.assert_close(seen[1][:, -3:], deep[0].expand(len(images), -1, -1))
    assert torch.isfinite(out.logits).all()
    # text-only IVLP leaves the image tower untouched
    text_only = IVLPPromptLearner(native_bundle, CLASSNAMES, text_depth=2, vision_depth=0)
    assert text_only.vision_prompts() == (None, [])
    with torch.no_grad():
        torch.testing.assert_close(
            PromptedCLIP(native_bundle, text_only).encode_image(images, normalize=False),
            native_bundle.model.encode_image(images),
        )
    # vision prompts do not depend on text prompts (no coupling)
    before = model.encode_image(images).detach()
    with torch.no_grad():
        learner.ctx.add_(torch.randn_like(learner.ctx))
    torch.testing.assert_close(model.encode_image(images).detach(), before)
