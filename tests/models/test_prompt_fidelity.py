"""Prompt learners: prompts that would lose the class name are refused; MaPLe/IVLP parameter dtypes and
checkpoint loading as in the originals (muzairkhattak/multimodal-prompt-learning, KaiyangZhou/CoOp)."""

from __future__ import annotations

import pytest
import torch

from ncprobe.models import (
    CoCoOpPromptLearner,
    CoOpPromptLearner,
    IVLPPromptLearner,
    MaPLePromptLearner,
    PromptedCLIP,
    PromptTooLongError,
    load_clip,
)
from tests._helpers.models import CLASSNAMES, NATIVE_CFG

# ---------------------------------------------------------------------------------------------- long prompts

LONG_INIT = "a very detailed high resolution close up photograph of a small"  # 11 words / tokens


@pytest.mark.parametrize("cls", [CoOpPromptLearner, CoCoOpPromptLearner, MaPLePromptLearner, IVLPPromptLearner])
def test_prompt_past_the_context_length_names_class_and_tokens(custom_text_bundle, cls):
    """Context length 24: "<11 words> golden retriever." needs 1+11+2+1+1 = 16 tokens and fits;
    a 10-token class name does not, and before this check every long class silently got the same prompt."""
    options = {"prompt_depth": 1} if cls is MaPLePromptLearner else {}
    if cls is IVLPPromptLearner:
        options = {"text_depth": 1, "vision_depth": 0, "n_ctx_text": 4}
    cls(custom_text_bundle, CLASSNAMES, ctx_init=LONG_INIT, **options)  # fits
    long_name = "greater spotted north american mountain dwelling bushy tailed tree squirrel"
    with pytest.raises(PromptTooLongError) as info:
        cls(custom_text_bundle, ["cat", long_name], ctx_init=LONG_INIT, **options)
    err = info.value
    assert err.classname == long_name and err.context_length == 24 and err.n_tokens == 1 + 11 + 11 + 1 + 1
    message = str(err)
    assert repr(long_name) in message and "needs 25 tokens" in message and "context length is 24" in message


def test_long_class_name_alone_and_hf_tokenizer(native_bundle, hf_bundle):
    huge = " ".join(["word"] * 80)  # longer than CLIP's 77 tokens by itself
    with pytest.raises(PromptTooLongError, match=r"needs at least \d+ tokens .* context length is 77"):
        CoOpPromptLearner(native_bundle, ["cat", huge], ctx_init="a photo of a")
    long_name = " ".join(["dog"] * 26)  # MiniLM tower, context length 32, WordPiece with [CLS]/[SEP]
    with pytest.raises(PromptTooLongError, match="context length is 32") as info:
        CoOpPromptLearner(hf_bundle, ["cat", long_name], ctx_init="a photo of a")
    assert info.value.n_tokens == 2 + 4 + 26 + 1


def test_random_context_too_long(custom_text_bundle):
    # "cat" fits exactly (1 + 20 + 1 + 1 + 1 = 24); the multi-token names do not
    with pytest.raises(
        PromptTooLongError, match=r"class 'hot dog'.*needs 25 tokens.*2 more class\(es\).*'golden_retriever'"
    ):
        CoOpPromptLearner(custom_text_bundle, CLASSNAMES, n_ctx=20)


# ---------------------------------------------------------------------------------------------- dtypes


@pytest.fixture(scope="module")
def fp16_bundle():
    torch.manual_seed(0)
    return load_clip("ncprobe-test-native-fp16", model_cfg=NATIVE_CFG, precision="fp16")


def test_maple_and_ivlp_keep_their_deep_prompts_in_float32(fp16_bundle, images):
    maple = MaPLePromptLearner(fp16_bundle, CLASSNAMES, prompt_depth=2)
    assert maple.backbone.dtype == torch.float16
    assert maple.ctx.dtype == torch.float16 and maple.proj.weight.dtype == torch.float16  # as in maple.py
    assert all(p.dtype == torch.float32 for p in maple.compound_prompts_text)
    assert all(p.dtype == torch.float32 for p in maple.compound_prompt_projections.parameters())
    ivlp = IVLPPromptLearner(fp16_bundle, CLASSNAMES, text_depth=2, vision_depth=2, n_ctx_text=2)
    assert ivlp.ctx.dtype == torch.float16
    assert ivlp.vision_ctx.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in [*ivlp.deep_text_ctx, *ivlp.deep_vision_ctx])
    for learner in (maple, ivlp):  # cast where used: the forward pass runs in fp16, gradients reach fp32
        model = PromptedCLIP(fp16_bundle, learner)
        out = model(images)
        out.logits.float().sum().backward()
        deep = list(learner.compound_prompts_text) if learner is maple else [ivlp.vision_ctx]
        assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in deep)
        assert torch.isfinite(out.logits).all()


# ---------------------------------------------------------------------------------------------- checkpoints


def _perturbed(cls, bundle, seed, **options):
    torch.manual_seed(seed)
    learner = cls(bundle, CLASSNAMES, **options)
    with torch.no_grad():
        for p in learner.parameters():
            p.add_(torch.randn_like(p))
    return learner


@pytest.mark.parametrize(
    "cls, options",
    [
        (MaPLePromptLearner, {"prompt_depth": 2}),
        (IVLPPromptLearner, {"text_depth": 2, "vision_depth": 2, "n_ctx_text": 2}),
    ],
)
@pytest.mark.parametrize("saved", ["learner", "prompted", "dassl"])
def test_load_context_reads_checkpoints_ncprobe_wrote(native_bundle, tmp_path, cls, options, saved):
    trained = _perturbed(cls, native_bundle, 1, **options)
    state = {
        "learner": lambda: trained.state_dict(),
        "prompted": lambda: PromptedCLIP(native_bundle, trained).state_dict(),
        "dassl": lambda: {"state_dict": PromptedCLIP(native_bundle, trained).state_dict(), "epoch": 5},
    }[saved]()
    torch.save(state, tmp_path / "ckpt.pt")
    fresh = _perturbed(cls, native_bundle, 2, **options)
    fresh.load_context(torch.load(tmp_path / "ckpt.pt"))  # default arguments
    for (name, a), (_, b) in zip(trained.state_dict().items(), fresh.state_dict().items()):
        assert torch.equal(a, b), name


def test_load_context_maps_original_ivlp_checkpoint_keys(native_bundle):
    trained = _perturbed(IVLPPromptLearner, native_bundle, 3, text_depth=2, vision_depth=2, n_ctx_text=2)
    original = {  # keys of a Dassl checkpoint of IVLP's CustomCLIP (prompts inside the CLIP blocks)
        "module.prompt_learner.ctx": trained.ctx.detach().half(),
        "prompt_learner.token_prefix": torch.zeros(1),
        "image_encoder.VPT": trained.vision_ctx.detach(),
        "image_encoder.transformer.resblocks.1.VPT_shallow": trained.deep_vision_ctx[0].detach(),
        "text_encoder.transformer.resblocks.1.VPT_shallow": trained.deep_text_ctx[0].detach(),
        "image_encoder.conv1.weight": torch.zeros(3),
        "logit_scale": torch.zeros(()),
    }
    fresh = _perturbed(IVLPPromptLearner, native_bundle, 4, text_depth=2, vision_depth=2, n_ctx_text=2)
    fresh.load_context({"state_dict": original, "epoch": 1})
    assert torch.equal(fresh.vision_ctx, trained.vision_ctx)
    assert torch.equal(fresh.deep_text_ctx[0], trained.deep_text_ctx[0])
    torch.testing.assert_close(fresh.ctx, trained.ctx.half().float())


def test_load_context_with_other_settings_says_so(native_bundle):
    deep = MaPLePromptLearner(native_bundle, CLASSNAMES, prompt_depth=2)
    shallow = MaPLePromptLearner(native_bundle, CLASSNAMES, prompt_depth=1)
    with pytest.raises(ValueError, match="do not fit this MaPLePromptLearner.*other settings"):
        shallow.load_context(deep.state_dict())
