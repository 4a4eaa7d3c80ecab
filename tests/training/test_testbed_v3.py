"""The training engine on the v3 testbed's tasks (``testbed-strokes``, ``testbed-colour``, ``testbed-shapes``), on
v3's test build (``v3-fast``, built once per test session)."""

from __future__ import annotations

import math

import pytest

from ncprobe.testbed import build as tb
from ncprobe.testbed.benchmark_v3 import V3_TASKS, num_classes
from ncprobe.training import TrainConfig, get_preset, train, validate_config
from ncprobe.training.tasks import build_task
from ncprobe.training.validation import ConfigError

TASKS = list(V3_TASKS)


def v3(preset: str, **changes) -> TrainConfig:
    """A testbed preset on v3's test build, two shots, a short schedule, no progress bars."""
    base = {
        "model.testbed_preset": "v3-fast",
        "data.num_shots": 2,
        "progress": False,
        "track.max_per_class": 20,
    }
    return get_preset(preset).replace(**{**base, **changes})


@pytest.fixture(scope="module")
def zero_shot():
    """The v3-fast build's stored zero-shot numbers ``{task: {split: {base, novel, all}}}`` (builds it if needed)."""
    return tb.testbed_metadata(tb.load_testbed("v3-fast", progress=False))["zero_shot"]


@pytest.mark.parametrize("task", TASKS)
def test_zeroshot_reproduces_the_build_on_val_and_test(task, zero_shot):
    """Zero-shot through the engine, on every held-out image, gives the build's numbers; val is not test."""
    finals = {}
    for split in ("test", "val"):
        cfg = v3(
            "testbed-zeroshot-b2n", **{"data.dataset": task, "data.eval_split": split, "track.max_per_class": None}
        )
        finals[split] = train(cfg).runs[0].result["final"]["accuracy"]
        for half in ("base", "novel"):
            assert finals[split][half] == pytest.approx(zero_shot[task][split][half], abs=1e-3), (split, half)
    assert finals["val"] != finals["test"]


def test_eval_split_val_evaluates_the_validation_images():
    sizes = {}
    for split in ("test", "val"):
        cfg = v3("testbed-coop-b2n", **{"data.eval_split": split})
        task = build_task(cfg.data, protocol=cfg.data.protocol, seed=1, image_size=32)
        sizes[split] = {es.name: len(es.labels) for es in task.eval_sets}
    half = math.ceil(num_classes("testbed-strokes") / 2)
    assert sizes["test"] == {"base": 100 * half, "novel": 100 * half}
    assert sizes["val"] == {"base": 40 * half, "novel": 40 * half}


@pytest.mark.parametrize("task", TASKS)
def test_coop_trains_on_every_task(task):
    cfg = v3("testbed-coop-b2n", **{"data.dataset": task, "optim.epochs": 2, "track.every": 1})
    run = train(cfg).runs[0]
    h = run.history
    assert list(h["eval_set"].values) == ["base", "novel"] and h.sizes["class"] == num_classes(task)
    assert list(h["epoch"].values) == [0, 1, 2]
    assert all(0.0 <= a <= 1.0 for a in h["accuracy"].values.ravel())
    assert run.result["provenance"]["dataset"] == task and math.isfinite(run.result["final"]["hm"])


def test_cross_dataset_on_strokes_evaluates_sklearn_digits():
    cfg = v3("testbed-coop-xd", **{"optim.epochs": 1})
    h = train(cfg).runs[0].history
    assert list(h["eval_set"].values) == ["all", "sklearn-digits"]
    assert not math.isnan(float(h["accuracy"].sel(eval_set="sklearn-digits").isel(epoch=-1)))


def test_domain_generalization_on_strokes_evaluates_colour(zero_shot):
    """DG's target is the other style of the same 20 classes; zero-shot on it is the build's all-class number."""
    cfg = v3("testbed-coop-dg", **{"optim.epochs": 1})
    h = train(cfg).runs[0].history
    assert list(h["eval_set"].values) == ["all", "testbed-colour"]
    zs = v3("testbed-zeroshot-b2n", **{"data.protocol": "domain_generalization", "track.max_per_class": None})
    for split in ("test", "val"):
        run = train(zs.replace(**{"data.eval_split": split})).runs[0]
        got = run.result["final"]["accuracy"]["testbed-colour"]
        assert got == pytest.approx(zero_shot["testbed-colour"][split]["all"], abs=1e-3), split


def test_a_v2_tower_with_a_v3_task_is_refused():
    with pytest.raises(ConfigError, match="--model.testbed_preset v3 or v3-fast"):
        validate_config(v3("testbed-coop-b2n", **{"model.testbed_preset": "fast"}))
    with pytest.raises(ConfigError, match=r"--model.testbed_preset default \(alias v2\), fast or transfer"):
        validate_config(v3("testbed-coop-b2n", **{"data.dataset": "testbed"}))
    validate_config(v3("testbed-coop-b2n", **{"model.testbed_preset": None}))  # the dataset's own build (v3)


def test_eval_split_val_needs_a_v3_task():
    cfg = v3("testbed-coop-b2n", **{"data.dataset": "testbed", "model.testbed_preset": "fast"})
    validate_config(cfg)
    with pytest.raises(ConfigError, match="eval_split='val'.*'testbed' has no validation split"):
        validate_config(cfg.replace(**{"data.eval_split": "val"}))


def test_targets_of_the_shapes_task():
    """The shapes task shares its classes with no other task: no OOD target and no cross-dataset target."""
    with pytest.raises(
        ConfigError, match="unknown data.ood_target 'testbed-colour'; valid targets of testbed-shapes: none"
    ):
        validate_config(
            v3("testbed-coop-b2n", **{"data.dataset": "testbed-shapes", "data.ood_target": "testbed-colour"})
        )
    xd = v3("testbed-coop-xd", **{"data.dataset": "testbed-shapes", "data.targets": ["sklearn-digits"]})
    with pytest.raises(ConfigError, match="valid cross_dataset targets of testbed-shapes: none"):
        validate_config(xd)
    # the strokes task's OOD target is the colour task (the OOD preset's), and v2's target is not one of its
    validate_config(v3("testbed-maple-craft-ood"))
    with pytest.raises(ConfigError, match="valid targets of testbed-strokes: testbed-colour"):
        validate_config(v3("testbed-maple-craft-ood", **{"data.ood_target": "testbed-shifted"}))


@pytest.mark.slow
def test_testbed_seed_loads_another_tower(zero_shot):
    """``model.testbed_seed=1`` trains and loads a second v3-fast tower: other zero-shot numbers, its own build's."""
    meta = tb.testbed_metadata(tb.load_testbed("v3-fast", seed=1, progress=False))
    other = meta["zero_shot"]["testbed-strokes"]["test"]
    cfg = v3("testbed-zeroshot-b2n", **{"model.testbed_seed": 1, "track.max_per_class": None})
    got = train(cfg).runs[0].result["final"]["accuracy"]
    assert got["base"] == pytest.approx(other["base"], abs=1e-3)
    assert got["novel"] == pytest.approx(other["novel"], abs=1e-3)
    seed0 = zero_shot["testbed-strokes"]["test"]
    assert (got["base"], got["novel"]) != (seed0["base"], seed0["novel"])
