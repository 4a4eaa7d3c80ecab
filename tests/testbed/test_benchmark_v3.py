"""The v3 benchmark (``ncprobe-embedded-v3``): its splits, tasks, pretraining set and image styles."""

from __future__ import annotations

import hashlib
import itertools
import math

import pytest
import torch

from ncprobe.testbed import benchmark_v3 as b3
from ncprobe.testbed import styles


def _digests(images: torch.Tensor) -> set[str]:
    return {hashlib.sha1(x.numpy().tobytes()).hexdigest() for x in images}


def test_garment_and_digit_splits_are_disjoint():
    """Pretraining, few-shot pool, validation and test hold different images (by content), in the stated sizes."""
    sizes = {"pretrain": b3.PRETRAIN_PER_CLASS, "train": b3.POOL_PER_CLASS, "val": b3.VAL_PER_CLASS}
    digests = {}
    for which in ("pretrain", "train", "val", "test"):
        images, labels, names, _ = b3._garments_digits(which)
        assert images.dtype == torch.uint8 and images.shape[1:] == (28, 28) and len(names) == 20
        if which in sizes:
            assert labels.bincount().tolist() == [sizes[which]] * 20
        digests[which] = _digests(images)
        assert len(digests[which]) == len(images)  # no duplicate inside a split either
    for a, b in itertools.combinations(digests, 2):
        assert not digests[a] & digests[b], f"{a} and {b} share images"


def test_shape_splits_use_different_render_seeds():
    assert len(set(b3._SHAPE_SEEDS.values())) == len(b3._SHAPE_SEEDS)
    digests = {}
    for which, per_class in b3.SHAPES_PER_CLASS.items():
        images, labels, names, _ = b3._shapes(which)
        assert images.shape == (36 * per_class, 3, 28, 28) and images.dtype == torch.uint8
        assert labels.bincount().tolist() == [per_class] * 36 and len(names) == 36
        digests[which] = _digests(images)
    for a, b in itertools.combinations(digests, 2):
        assert not digests[a] & digests[b], f"{a} and {b} share rendered shapes"


@pytest.mark.parametrize("name", list(b3.V3_TASKS))
def test_tasks_run_base_first_and_match_their_class_count(name):
    c = b3.num_classes(name)
    base, novel = b3.base_novel(name)
    assert base == list(range(math.ceil(c / 2))) and novel == list(range(len(base), c))
    for split in b3.SPLITS:
        data = b3.load_task(name, split)
        assert len(data.classnames) == len(set(data.classnames)) == c == len(data.descriptions)
        assert data.images.shape == (len(data), 3, 28, 28) and data.images.dtype == torch.uint8
        assert data.labels.unique().tolist() == list(range(c))
        assert data.template == "a photo of a {}."
    # the test split is the reporting split: as large as the pool, larger than validation
    assert len(b3.load_task(name, "val")) < len(b3.load_task(name, "test"))


def test_load_task_is_deterministic_and_restyles_each_split():
    b3.load_task.cache_clear()
    first = b3.load_task("testbed-colour", "val")
    b3.load_task.cache_clear()
    again = b3.load_task("testbed-colour", "val")
    assert torch.equal(first.images, again.images) and torch.equal(first.labels, again.labels)
    # the same grey images under two shifts differ; the shift is the task's
    strokes = b3.load_task("testbed-strokes", "val")
    assert torch.equal(strokes.labels, first.labels) and not torch.equal(strokes.images, first.images)


def test_unknown_task_and_split_fail_with_the_valid_names():
    with pytest.raises(ValueError, match="testbed-strokes, testbed-colour, testbed-shapes"):
        b3.load_task("testbed-nope", "test")
    with pytest.raises(ValueError, match="testbed-strokes"):
        b3.num_classes("testbed")
    with pytest.raises(ValueError, match="unknown split 'pretrain'.*train, val, test"):
        b3.load_task("testbed-strokes", "pretrain")


def test_pretraining_set_never_uses_the_evaluation_template():
    names = b3.pretraining_classnames()
    assert len(names) == len(set(names)) == 56
    images, labels, captions = b3.pretraining_set()
    assert images.shape == (len(labels), 3, 28, 28) and images.dtype == torch.uint8
    assert labels.unique().tolist() == list(range(56)) and len(captions) == 56
    flat = [c for row in captions for c in row]
    assert flat and not any(c.startswith("a photo of a ") for c in flat)
    assert all(any(n in c for c in row) for n, row in zip(names, captions))  # each class's name is in its captions
    # neutral style: the garments and digits are grey (equal channels)
    grey = images[labels < 20]
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])


def test_training_config_lists_the_same_tasks():
    from ncprobe.training.config import TESTBED_V3_DATASETS

    assert TESTBED_V3_DATASETS == tuple(b3.V3_TASKS)


def test_definition_changes_with_a_shift(monkeypatch):
    before = b3.definition()
    assert before["benchmark"] == b3.BENCHMARK_V3_NAME and "a photo of a {}." not in before["templates"]
    spec = b3.V3_TASKS["testbed-strokes"]
    monkeypatch.setitem(b3.V3_TASKS, "testbed-strokes", b3.TaskSpec(spec.name, spec.source, spec.style, (), ""))
    assert b3.definition() != before


# ------------------------------------------------------------------------------------------------- styles
def test_thick_noise_without_noise_dilates_a_pixel_to_a_block():
    x = torch.zeros(1, 28, 28, dtype=torch.uint8)
    x[0, 14, 14] = 255
    out = styles.thick_noise(x, sigma=0.0)
    assert out.shape == (1, 3, 28, 28) and out.dtype == torch.uint8
    block = torch.zeros(28, 28, dtype=torch.uint8)
    block[13:16, 13:16] = 255
    for channel in range(3):
        assert torch.equal(out[0, channel], block)


def test_tinted_at_zero_strength_is_identity_on_grey():
    grey = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(styles.tinted(grey, strength=0.0, seed=3), styles.as_rgb(grey))
    coloured = styles.tinted(grey, strength=1.0, seed=3)
    assert not torch.equal(coloured[:, 0], coloured[:, 1])  # full strength colours the strokes
    with pytest.raises(ValueError, match="strength"):
        styles.tinted(grey, strength=1.5)


@pytest.mark.parametrize("style", sorted(styles.STYLES))
@pytest.mark.parametrize("shape", [(5, 28, 28), (5, 3, 28, 28)])
def test_styles_are_uint8_rgb_and_pure_functions_of_the_seed(style, shape):
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    before = torch.get_rng_state()
    out = styles.apply_style(images, style, seed=7)
    again = styles.apply_style(images, style, seed=7)
    assert torch.equal(torch.get_rng_state(), before)  # torch's global generator is untouched
    assert out.shape == (5, 3, 28, 28) and out.dtype == torch.uint8
    assert out.numpy().tobytes() == again.numpy().tobytes()
    if style != "neutral":
        assert not torch.equal(out, styles.apply_style(images, style, seed=8))


def test_unknown_style_and_bad_images_fail():
    with pytest.raises(ValueError, match="valid styles: neutral, thick_noise, tinted, cluttered"):
        styles.apply_style(torch.zeros(1, 28, 28, dtype=torch.uint8), "sepia", seed=0)
    with pytest.raises(ValueError, match="uint8"):
        styles.as_rgb(torch.zeros(1, 28, 28))
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        styles.as_rgb(torch.zeros(1, 32, 32, dtype=torch.uint8))
