"""CoOp: context from words reproduces hand-written prompts; class-token positions; random init."""

from __future__ import annotations

import warnings

import pytest
import torch

from ncprobe.models import CoCoOpPromptLearner, CoOpPromptLearner, PromptedCLIP, build_prompt_learner
from ncprobe.models.prompt_learners import tokenizer_layout
from tests._helpers.models import CLASSNAMES, prompts_for, reference_text_features


def _text_features(bundle, learner):
    with torch.no_grad():
        return PromptedCLIP(bundle, learner).encode_text(normalize=False)


def test_ctx_from_words_equals_encode_text_native(native_bundle):
    learner = CoOpPromptLearner(native_bundle, CLASSNAMES, ctx_init="a photo of a")
    assert learner.n_ctx == 4 and learner.ctx_start == 1 and tuple(learner.ctx.shape) == (4, 64)
    ref = reference_text_features(native_bundle, prompts_for(CLASSNAMES))
    torch.testing.assert_close(_text_features(native_bundle, learner), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fixture", ["hf_bundle", "hf_cls_bundle"])
def test_ctx_from_words_equals_encode_text_hf(request, fixture):
    bundle = request.getfixturevalue(fixture)
    learner = CoOpPromptLearner(bundle, CLASSNAMES, ctx_init="a photo of a")
    assert learner.ctx_start == 1  # after [CLS]
    assert learner.backbone.kind == "hf"
    ref = reference_text_features(bundle, prompts_for(CLASSNAMES))
    torch.testing.assert_close(_text_features(bundle, learner), ref, rtol=1e-5, atol=1e-6)


def test_ctx_from_words_equals_encode_text_custom_text_tower(custom_text_bundle):
    learner = CoOpPromptLearner(custom_text_bundle, CLASSNAMES, ctx_init="a photo of a")
    assert learner.backbone.kind == "native" and learner.backbone.pool_type == "eos"
    ref = reference_text_features(custom_text_bundle, prompts_for(CLASSNAMES))
    torch.testing.assert_close(_text_features(custom_text_bundle, learner), ref, rtol=1e-5, atol=1e-6)


def test_tokenizer_layouts(native_bundle, hf_bundle):
    clip_layout = tokenizer_layout(native_bundle.tokenizer)
    assert (clip_layout.ctx_start, clip_layout.end_ids, clip_layout.pad_id) == (1, (49407,), 0)
    bert_layout = tokenizer_layout(hf_bundle.tokenizer)
    assert (bert_layout.ctx_start, bert_layout.end_ids, bert_layout.pad_id) == (1, (102,), 0)


@pytest.mark.parametrize(
    ("position", "template"),
    [("front", "{} a photo of a."), ("middle", "a photo {} of a."), ("end", "a photo of a {}.")],
)
def test_class_token_positions(any_bundle, position, template):
    learner = CoOpPromptLearner(any_bundle, CLASSNAMES, ctx_init="a photo of a", class_token_position=position)
    sentences = prompts_for(CLASSNAMES, template)
    ids = any_bundle.tokenizer(sentences)
    with torch.no_grad():
        expected_embeddings = learner.backbone.embed_tokens(ids)
        got = learner.text_prompts()
    assert got.shape == expected_embeddings.shape
    torch.testing.assert_close(got, expected_embeddings, rtol=0, atol=0)
    if position != "end":  # the content really moved
        assert not torch.equal(got, learner.backbone.embed_tokens(learner.token_ids))
    torch.testing.assert_close(
        _text_features(any_bundle, learner),
        reference_text_features(any_bundle, sentences),
        rtol=1e-5,
        atol=1e-6,
    )


def test_middle_with_odd_context_splits_like_coop(native_bundle):
    # n_ctx=3 ("a photo of"): CoOp puts n_ctx // 2 = 1 token before the name, 2 after.
    learner = CoOpPromptLearner(native_bundle, ["cat"], ctx_init="a photo of", class_token_position="middle")
    ids = native_bundle.tokenizer(["a cat photo of."])
    torch.testing.assert_close(learner.text_prompts(), learner.backbone.embed_tokens(ids), rtol=0, atol=0)


def test_random_init_and_class_specific(native_bundle):
    gen = torch.Generator().manual_seed(0)
    learner = CoOpPromptLearner(native_bundle, CLASSNAMES, n_ctx=16, generator=gen)
    assert tuple(learner.ctx.shape) == (16, 64)
    assert abs(learner.ctx.std().item() - 0.02) < 0.003 and abs(learner.ctx.mean().item()) < 0.003
    same = CoOpPromptLearner(native_bundle, CLASSNAMES, n_ctx=16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(learner.ctx, same.ctx)
    # placeholders keep the prompt ids CoOp uses ("X X ... X name.")
    assert learner.layout.prompts[0] == " ".join(["X"] * 16) + " cat."
    csc = CoOpPromptLearner(native_bundle, CLASSNAMES, n_ctx=4, class_specific=True)
    assert tuple(csc.ctx.shape) == (len(CLASSNAMES), 4, 64)
    assert csc.text_prompts().shape == (len(CLASSNAMES), 77, 64)
    # class-specific context initialised from words: every class starts from "a photo of a"
    csc_words = CoOpPromptLearner(native_bundle, CLASSNAMES, ctx_init="a photo of a", class_specific=True)
    torch.testing.assert_close(
        _text_features(native_bundle, csc_words),
        reference_text_features(native_bundle, prompts_for(CLASSNAMES)),
    )
    csc_words.ctx.data[1] += torch.randn(4, 64)  # contexts are independent per class
    feats = _text_features(native_bundle, csc_words)
    ref = reference_text_features(native_bundle, prompts_for(CLASSNAMES))
    assert torch.allclose(feats[0], ref[0], atol=1e-6) and not torch.allclose(feats[1], ref[1], atol=1e-3)


def test_n_ctx_is_the_number_of_words_of_ctx_init_as_in_coop(native_bundle):
    """CoOp/CoCoOp: ``n_ctx = len(ctx_init.split(" "))``, an explicit n_ctx is ignored (with a warning here)."""
    with pytest.warns(UserWarning, match=r"n_ctx=2 is ignored.*one context vector per word \(4\)"):
        learner = CoOpPromptLearner(native_bundle, CLASSNAMES, n_ctx=2, ctx_init="a photo of a")
    assert tuple(learner.ctx.shape) == (4, 64) and learner.n_ctx == 4
    with pytest.warns(UserWarning, match="n_ctx=5 is ignored"):
        assert CoOpPromptLearner(native_bundle, CLASSNAMES, n_ctx=5, ctx_init="a photo of a").n_ctx == 4
    with pytest.warns(UserWarning, match="n_ctx=16 is ignored"):
        assert CoCoOpPromptLearner(native_bundle, CLASSNAMES, n_ctx=16, ctx_init="a_photo_of_a").n_ctx == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning when n_ctx is omitted or agrees
        assert CoOpPromptLearner(native_bundle, CLASSNAMES, n_ctx=4, ctx_init="a photo of a").n_ctx == 4
        assert CoOpPromptLearner(native_bundle, CLASSNAMES, ctx_init="a photo of a").with_classnames(["x"]).n_ctx == 4


def test_words_that_take_several_tokens_keep_their_tail_fixed(native_bundle):
    # "xylophonist" is 4 BPE tokens: CoOp learns 3 vectors (3 words) = "a", "xyl..." first piece, ...
    # and leaves the remaining tokens of ctx_init as fixed text (embedding[0, 1 : 1 + n_ctx]).
    learner = CoOpPromptLearner(native_bundle, CLASSNAMES, ctx_init="a xylophonist photo")
    assert learner.n_ctx == 3 and learner.layout.n_prefix_tokens == 6
    ref = reference_text_features(native_bundle, prompts_for(CLASSNAMES, "a xylophonist photo {}."))
    torch.testing.assert_close(_text_features(native_bundle, learner), ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="every context word to be learnable"):
        CoOpPromptLearner(native_bundle, CLASSNAMES, ctx_init="a xylophonist photo", class_token_position="front")


def test_invalid_options(native_bundle):
    with pytest.raises(ValueError, match="class_token_position"):
        CoOpPromptLearner(native_bundle, CLASSNAMES, class_token_position="left")
    with pytest.raises(ValueError, match="empty"):
        CoOpPromptLearner(native_bundle, [])
    with pytest.raises(ValueError, match="unknown prompt method"):
        build_prompt_learner("vpt", native_bundle, CLASSNAMES)
    assert isinstance(build_prompt_learner("CoOp", native_bundle, CLASSNAMES, n_ctx=4), CoOpPromptLearner)
