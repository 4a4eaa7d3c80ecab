"""Imbalance profiles on few-shot sets: exact counts, seeded class order, group labels, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ncprobe.data import (
    GROUP_NAMES,
    ImbalanceSpec,
    Item,
    apply_imbalance,
    assign_groups,
    imbalance_counts,
    load_dataset,
)


def _shots(num_classes, per_class):
    return [Item(f"/c{c}/{i}.jpg", c, f"class{c}") for c in range(num_classes) for i in range(per_class)]


def test_exp_profile_counts():
    got = imbalance_counts(10, n_max=16, ratio=16, profile="exp")
    want = [math.floor(16 * 16 ** (-k / 9) + 1e-9) for k in range(10)]
    assert got == want
    assert got[0] == 16 and got[-1] == 1  # n_max / n_min == ρ exactly at the ends
    assert got == sorted(got, reverse=True)
    assert imbalance_counts(10, n_max=16, ratio=1, profile="exp") == [16] * 10
    assert imbalance_counts(1, n_max=7, ratio=4, profile="exp") == [7]
    assert min(imbalance_counts(5, n_max=4, ratio=100, profile="exp")) == 1  # never 0


def test_step_profile_counts():
    assert imbalance_counts(10, n_max=16, ratio=4, profile="step") == [16] * 5 + [4] * 5
    assert imbalance_counts(7, n_max=16, ratio=4, profile="step") == [16] * 4 + [4] * 3  # floor(0.5*7)=3
    assert imbalance_counts(4, n_max=16, ratio=100, profile="step") == [16, 16, 1, 1]
    assert imbalance_counts(10, n_max=16, ratio=2, profile="step", mu=0.2) == [16] * 8 + [8] * 2


@pytest.mark.parametrize("ratio", [0.5, 0.999, -1.0, float("nan"), float("inf")])
def test_ratio_below_one_is_rejected(ratio):
    with pytest.raises(ValueError, match="ratio"):
        imbalance_counts(5, n_max=16, ratio=ratio, profile="exp")
    with pytest.raises(ValueError, match="ratio"):
        ImbalanceSpec("exp", ratio)
    with pytest.raises(ValueError, match="ratio"):
        apply_imbalance(_shots(3, 4), profile="step", ratio=ratio, seed=0)


def test_bad_profile_and_mu():
    with pytest.raises(ValueError, match="profile"):
        ImbalanceSpec("linear", 2.0)
    with pytest.raises(ValueError, match="mu"):
        ImbalanceSpec("step", 2.0, mu=1.5)
    with pytest.raises(ValueError, match="n_max"):
        ImbalanceSpec("step", 2.0, n_max=0)


@pytest.mark.parametrize("profile", ["exp", "step"])
def test_apply_imbalance_counts_and_order(profile):
    items = _shots(9, 16)
    res = apply_imbalance(items, profile=profile, ratio=8, seed=3)
    targets = imbalance_counts(9, n_max=16, ratio=8, profile=profile)
    assert sorted(res.ranks.tolist()) == list(range(9))
    assert res.target_counts.tolist() == [targets[r] for r in res.ranks]
    assert res.counts.tolist() == res.target_counts.tolist()
    per_class = np.bincount([it.label for it in res.items], minlength=9)
    assert per_class.tolist() == res.counts.tolist()
    positions = [items.index(it) for it in res.items]
    assert positions == sorted(positions)  # kept items keep their original order
    again = apply_imbalance(items, profile=profile, ratio=8, seed=3)
    assert again.items == res.items and again.ranks.tolist() == res.ranks.tolist()
    other = apply_imbalance(items, profile=profile, ratio=8, seed=4)
    assert other.ranks.tolist() != res.ranks.tolist()


def test_short_classes_and_explicit_n_max():
    items = _shots(3, 8)[:-6]  # class 2 keeps only 2 items
    res = apply_imbalance(items, profile="step", ratio=2, seed=0, n_max=8, mu=0.0)
    assert res.target_counts.tolist() == [8, 8, 8]
    assert res.counts.tolist() == [8, 8, 2]


def test_groups_rank_thirds():
    counts = [16, 1, 12, 9, 7, 5, 4, 3, 2]
    groups = assign_groups(counts)
    assert groups.tolist() == ["head", "tail", "head", "head", "medium", "medium", "medium", "tail", "tail"]
    assert set(groups) <= set(GROUP_NAMES)
    assert assign_groups([5]).tolist() == ["medium"]
    assert assign_groups([]).tolist() == []


def test_groups_log_count():
    counts = imbalance_counts(10, n_max=100, ratio=100, profile="exp")
    assert counts == [100, 59, 35, 21, 12, 7, 4, 2, 1, 1]
    groups = assign_groups(counts, method="log_count").tolist()  # t = log(c)/log(100)
    assert groups == ["head"] * 3 + ["medium"] * 3 + ["tail"] * 4
    step = imbalance_counts(6, n_max=16, ratio=4, profile="step")
    assert assign_groups(step, method="log_count").tolist() == ["head"] * 3 + ["tail"] * 3
    assert assign_groups([4, 4], method="log_count").tolist() == ["medium", "medium"]
    with pytest.raises(ValueError, match="group method"):
        assign_groups([1, 2], method="quantile")


def test_load_dataset_with_imbalance(fake, data_root):
    fake.build("DescribableTextures")
    balanced = load_dataset("dtd", data_root, num_shots=4, seed=1, subsample="base")
    spec = ImbalanceSpec("exp", 4.0)
    ds = load_dataset("dtd", data_root, num_shots=4, seed=1, subsample="base", imbalance=spec)
    assert ds.imbalance is not None
    assert sorted(ds.class_counts().tolist()) == [1, 2, 4]  # floor(4·4^(-k/2)) over the 3 base classes
    assert set(it.impath for it in ds.train) <= set(it.impath for it in balanced.train)
    assert ds.groups.tolist() == assign_groups(ds.class_counts()).tolist()
    assert ds.val == balanced.val and ds.test == balanced.test  # only train is imbalanced
    same = load_dataset("dtd", data_root, num_shots=4, seed=1, subsample="base", imbalance=spec)
    assert same.train == ds.train
    seeded = load_dataset(
        "dtd", data_root, num_shots=4, seed=1, subsample="base", imbalance=ImbalanceSpec("exp", 4.0, seed=99)
    )
    assert seeded.imbalance.ranks.tolist() != ds.imbalance.ranks.tolist() or seeded.train != ds.train


def test_imbalance_result_repr_is_short():
    items = [Item(f"/x/{i}.jpg", i % 4, f"c{i % 4}") for i in range(400)]
    text = repr(apply_imbalance(items, profile="exp", ratio=5, seed=1))
    assert text.startswith("ImbalanceResult(") and "Item(" not in text and len(text) < 200
