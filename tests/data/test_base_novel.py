"""Base/new class split (CoOp ``OxfordPets.subsample_classes``), applied after few-shot sampling."""

from __future__ import annotations

import math

import pytest

from ncprobe.data import Item, base_novel_labels, load_dataset, subsample_classes


def _items(labels):
    return [Item(f"/x/{i}.jpg", label, f"class{label}") for i, label in enumerate(labels)]


@pytest.mark.parametrize("n", [1, 2, 5, 10, 47, 101])
def test_base_is_first_ceil_half_of_sorted_labels(n):
    base, new = base_novel_labels(list(range(n - 1, -1, -1)))
    assert base == list(range(math.ceil(n / 2)))
    assert new == list(range(math.ceil(n / 2), n))


def test_relabel_and_classnames_follow():
    train = _items([4, 0, 3, 1, 2, 4])
    test = _items([0, 1, 2, 3, 4])
    base_train, base_test = subsample_classes(train, test, subsample="base")
    assert [it.label for it in base_train] == [0, 1, 2]  # labels 0, 1, 2 kept, order preserved
    assert [it.classname for it in base_train] == ["class0", "class1", "class2"]
    new_train, new_test = subsample_classes(train, test, subsample="novel")
    assert [(it.label, it.classname) for it in new_train] == [(1, "class4"), (0, "class3"), (1, "class4")]
    assert [(it.label, it.classname) for it in new_test] == [(0, "class3"), (1, "class4")]
    assert subsample_classes(train, subsample="all") == (train,)


def test_classes_are_read_from_the_first_split():
    train = _items([0, 1, 2, 3])  # 4 classes -> base {0, 1}
    test = _items([0, 1, 2, 3, 4, 5])
    (base_test,) = subsample_classes(test, subsample="base")  # 6 classes -> base {0, 1, 2}
    assert {it.label for it in base_test} == {0, 1, 2}
    _, test_b = subsample_classes(train, test, subsample="base")
    assert {it.classname for it in test_b} == {"class0", "class1"}


def test_bad_subsample_value():
    with pytest.raises(ValueError, match="subsample must be one of"):
        subsample_classes(_items([0, 1]), subsample="everything")
    with pytest.raises(ValueError, match="CoOp's name for the novel classes; ncprobe calls them 'novel'"):
        subsample_classes(_items([0, 1]), subsample="new")


def test_dataset_base_new_after_fewshot(fake, data_root):
    fake.build("DescribableTextures")  # 5 classes -> base 3, new 2
    full = load_dataset("dtd", data_root, num_shots=4, seed=2)
    base = load_dataset("dtd", data_root, num_shots=4, seed=2, subsample="base")
    new = load_dataset("dtd", data_root, num_shots=4, seed=2, subsample="novel")
    assert base.classnames == full.classnames[:3] and new.classnames == full.classnames[3:]
    assert base.num_classes == 3 and new.num_classes == 2
    # the base training set is the base-class part of the seed's all-class K-shot set
    assert [it.impath for it in base.train] == [it.impath for it in full.train if it.label < 3]
    assert [it.impath for it in new.train] == [it.impath for it in full.train if it.label >= 3]
    assert [it.label for it in new.test] == [it.label - 3 for it in full.test if it.label >= 3]
    for ds in (base, new):
        for split in (ds.train, ds.val, ds.test):
            assert all(ds.classnames[it.label] == it.classname for it in split)
    with pytest.raises(ValueError, match="subsample must be one of"):
        load_dataset("dtd", data_root, subsample="half")


def test_imagenet_base_val_is_test(fake, data_root):
    fake.build("ImageNet")
    ds = load_dataset("imagenet", data_root, num_shots=2, subsample="novel")
    assert ds.val is ds.test and ds.classnames == ["tiger shark", "hammerhead shark"]
