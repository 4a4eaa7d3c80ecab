"""Base-to-novel: learned context transfers to new class names; per-class buffers never travel."""

from __future__ import annotations

import pytest
import torch

from ncprobe.models import (
    CoCoOpPromptLearner,
    CoOpPromptLearner,
    IVLPPromptLearner,
    MaPLePromptLearner,
    PromptedCLIP,
)
from tests._helpers.models import CLASSNAMES, NOVEL_CLASSNAMES


def _perturb(learner):
    """Stand-in for training: move every learned parameter away from its initial value."""
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in learner.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen).to(p.dtype))


@pytest.mark.parametrize(
    ("cls", "options"),
    [
        (CoOpPromptLearner, dict(ctx_init="a photo of a")),
        (CoOpPromptLearner, dict(n_ctx=8, class_token_position="front")),
        (CoCoOpPromptLearner, dict()),
        (MaPLePromptLearner, dict(prompt_depth=2)),
        (IVLPPromptLearner, dict(text_depth=2, vision_depth=2)),
    ],
)
def test_context_transfers_to_novel_classes(any_bundle, images, cls, options):
    base = cls(any_bundle, CLASSNAMES, **options)
    _perturb(base)
    state = base.state_dict()
    assert not any(k.split(".")[-1] in {"token_prefix", "token_suffix", "token_ids"} for k in state)

    rng = torch.get_rng_state()
    novel = base.with_classnames(NOVEL_CLASSNAMES)
    assert torch.equal(torch.get_rng_state(), rng)  # rebuilding does not consume global randomness
    assert novel.classnames == tuple(NOVEL_CLASSNAMES) and type(novel) is cls
    for key, value in novel.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)

    fresh = cls(any_bundle, NOVEL_CLASSNAMES, **options)
    assert torch.equal(novel.token_ids, fresh.token_ids)
    assert torch.equal(novel.token_suffix, fresh.token_suffix)
    fresh.load_context(state)
    with torch.no_grad():
        a = PromptedCLIP(any_bundle, novel)(images)
        b = PromptedCLIP(any_bundle, fresh)(images)
    assert a.logits.shape == (len(images), len(NOVEL_CLASSNAMES))
    torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=0)


def test_dassl_style_checkpoint_loads(native_bundle):
    base = CoOpPromptLearner(native_bundle, CLASSNAMES, ctx_init="a photo of a")
    _perturb(base)
    dassl = {
        "prompt_learner.ctx": base.ctx.detach().clone(),
        "prompt_learner.token_prefix": torch.zeros(len(CLASSNAMES), 1, 64),
        "prompt_learner.token_suffix": torch.zeros(len(CLASSNAMES), 72, 64),
    }
    novel = CoOpPromptLearner(native_bundle, NOVEL_CLASSNAMES, ctx_init="a photo of a")
    novel.load_context(dassl)
    assert torch.equal(novel.ctx, base.ctx)
    assert novel.token_prefix.shape == (len(NOVEL_CLASSNAMES), 1, 64)


def test_wrapper_rebuild_and_class_specific_refusal(native_bundle, images):
    model = PromptedCLIP(native_bundle, MaPLePromptLearner(native_bundle, CLASSNAMES, prompt_depth=2))
    novel = model.with_classnames(NOVEL_CLASSNAMES)
    assert novel.clip is model.clip and novel.classnames == tuple(NOVEL_CLASSNAMES)
    with torch.no_grad():
        assert novel(images).logits.shape == (len(images), len(NOVEL_CLASSNAMES))
    csc = CoOpPromptLearner(native_bundle, CLASSNAMES, n_ctx=4, class_specific=True)
    with pytest.raises(ValueError, match="class-specific"):
        csc.with_classnames(NOVEL_CLASSNAMES)
    other = CoOpPromptLearner(native_bundle, NOVEL_CLASSNAMES, n_ctx=4, class_specific=True)
    with pytest.raises(ValueError, match="does not fit"):
        other.load_context(csc.state_dict())


def test_deepcopy_shares_the_clip_model(native_bundle):
    import copy

    learner = MaPLePromptLearner(native_bundle, CLASSNAMES, prompt_depth=2)
    clone = copy.deepcopy(learner)
    assert clone.bundle.model is learner.bundle.model and clone.backbone is learner.backbone
    for (name, a), (_, b) in zip(learner.named_parameters(), clone.named_parameters()):
        assert a is not b and torch.equal(a, b), name
    with torch.no_grad():
        clone.ctx.add_(1.0)
    assert not torch.equal(clone.ctx, learner.ctx)
    assert torch.equal(clone.token_prefix, learner.token_prefix) and clone.token_prefix is not learner.token_prefix
