"""Few-shot sampling: exactness against a step-by-step mirror of Dassl/CoOp, cache reuse, CoOp pkl files."""

from __future__ import annotations

import json
import pickle
import random
import sys
import types
import warnings
from collections import defaultdict

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ncprobe.data.fewshot as fewshot_mod
from ncprobe.data import (
    FewShotFileError,
    FewShotWarning,
    Item,
    fewshot_cache_path,
    fewshot_manifest_path,
    generate_fewshot_dataset,
    load_dataset,
    load_fewshot_cache,
    sample_fewshot,
    save_fewshot_cache,
)


# ----------------------------------------------------------------------------------------------
# Independent mirror of the reference code, written from
#   Dassl.pytorch/dassl/utils/tools.py            set_random_seed
#   Dassl.pytorch/dassl/data/datasets/base_dataset.py  generate_fewshot_dataset, split_dataset_by_label
#   CoOp/datasets/oxford_pets.py (and siblings)    train with K shots, then val with min(K, 4)
# It uses the *global* random module exactly as CoOp does.
# ----------------------------------------------------------------------------------------------
def _dassl_set_random_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _dassl_split_dataset_by_label(data_source):
    output = defaultdict(list)
    for item in data_source:
        output[item.label].append(item)
    return output


def _dassl_generate_fewshot_dataset(*data_sources, num_shots=-1, repeat=False):
    if num_shots < 1:
        if len(data_sources) == 1:
            return data_sources[0]
        return data_sources
    output = []
    for data_source in data_sources:
        tracker = _dassl_split_dataset_by_label(data_source)
        dataset = []
        for _label, items in tracker.items():
            if len(items) >= num_shots:
                sampled_items = random.sample(items, num_shots)
            else:
                if repeat:
                    sampled_items = random.choices(items, k=num_shots)
                else:
                    sampled_items = items
            dataset.extend(sampled_items)
        output.append(dataset)
    if len(output) == 1:
        return output[0]
    return output


def coop_fewshot(train, val, num_shots, seed, repeat=False):
    """What a CoOp dataset constructor does between set_random_seed and the pkl dump."""
    _dassl_set_random_seed(seed)
    train = _dassl_generate_fewshot_dataset(train, num_shots=num_shots, repeat=repeat)
    if val is None:
        return train, None
    val = _dassl_generate_fewshot_dataset(val, num_shots=min(num_shots, 4), repeat=repeat)
    return train, val


def _paths(items):
    return [it.impath for it in items]


# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("num_shots", [1, 2, 4, 8, 16])
def test_dataset_fewshot_matches_dassl(fake, data_root, seed, num_shots):
    fake.build("DescribableTextures")
    full = load_dataset("dtd", data_root)
    want_train, want_val = coop_fewshot(full.train, full.val, num_shots, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewShotWarning)
        got = load_dataset("dtd", data_root, num_shots=num_shots, seed=seed, use_cache=False)
    assert _paths(got.train) == _paths(want_train)
    assert _paths(got.val) == _paths(want_val)
    assert got.test == full.test  # test is never subsampled


def test_first_appearance_class_order_matters(fake, data_root):
    """The train list is shuffled, so labels first appear out of order; sorted order would differ."""
    fake.build("DescribableTextures")
    full = load_dataset("dtd", data_root)
    first_seen = list(dict.fromkeys(it.label for it in full.train))
    assert first_seen != sorted(first_seen)
    got = load_dataset("dtd", data_root, num_shots=2, seed=5, use_cache=False)
    assert list(dict.fromkeys(it.label for it in got.train)) == first_seen
    rng = random.Random(5)  # the sorted-order alternative draws different images
    by_label = defaultdict(list)
    for it in full.train:
        by_label[it.label].append(it)
    sorted_draw = [x for label in sorted(by_label) for x in rng.sample(by_label[label], 2)]
    assert sorted(_paths(sorted_draw)) != sorted(_paths(got.train))


def test_imagenet_samples_train_only(fake, data_root):
    fake.build("ImageNet")
    full = load_dataset("imagenet", data_root)
    want_train, _ = coop_fewshot(full.train, None, 4, 1)
    got = load_dataset("imagenet", data_root, num_shots=4, seed=1)
    assert _paths(got.train) == _paths(want_train)
    assert got.val is got.test and len(got.test) == len(full.test)
    assert set(load_fewshot_cache(got.fewshot_cache, dataset_dir=got.dataset_dir)) >= {"train", "val"}
    assert load_fewshot_cache(got.fewshot_cache, dataset_dir=got.dataset_dir)["val"] is None


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(0, 5), min_size=1, max_size=40),
    num_shots=st.integers(1, 6),
    seed=st.integers(0, 2**31 - 1),
    repeat=st.booleans(),
)
def test_generate_matches_dassl_on_random_inputs(labels, num_shots, seed, repeat):
    items = [Item(f"/x/{i}.jpg", label, f"c{label}") for i, label in enumerate(labels)]
    val = [Item(f"/v/{i}.jpg", label, f"c{label}") for i, label in enumerate(reversed(labels))]
    want_train, want_val = coop_fewshot(items, val, num_shots, seed, repeat)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewShotWarning)
        got_train, got_val = sample_fewshot(items, val, num_shots=num_shots, seed=seed, repeat=repeat)
    assert got_train == want_train and got_val == want_val


def test_sampler_leaves_global_random_state_alone():
    items = [Item(f"/x/{i}.jpg", i % 3, f"c{i % 3}") for i in range(30)]
    random.seed(123)
    state = random.getstate()
    sample_fewshot(items, items, num_shots=4, seed=1)
    assert random.getstate() == state


def test_short_classes_keep_all_and_warn():
    items = [Item(f"/x/{i}.jpg", 0, "a") for i in range(5)] + [Item("/y/0.jpg", 1, "b")]
    pattern = r"1 class\(es\) have fewer than num_shots=3.*kept all.*1 \('b'\): 1"
    with pytest.warns(FewShotWarning, match=pattern):
        out = generate_fewshot_dataset(items, num_shots=3, rng=random.Random(0))
    assert [it.label for it in out].count(1) == 1 and [it.label for it in out].count(0) == 3
    with pytest.warns(FewShotWarning, match="with replacement"):
        out = generate_fewshot_dataset(items, num_shots=3, rng=random.Random(0), repeat=True)
    assert [it.impath for it in out if it.label == 1] == ["/y/0.jpg"] * 3


def test_dataset_with_more_shots_than_images_warns(fake, data_root):
    exp = fake.build("EuroSAT")
    with pytest.warns(FewShotWarning):
        ds = load_dataset("eurosat", data_root, num_shots=100, seed=1)
    assert ds.class_counts("train").tolist() == exp.counts["train"]  # everything kept
    assert ds.class_counts("val").tolist() == [4, 4, 4]  # min(100, 4)


def test_num_shots_zero_keeps_everything():
    items = [Item(f"/x/{i}.jpg", i % 2, "ab"[i % 2]) for i in range(7)]
    assert generate_fewshot_dataset(items, num_shots=0, rng=random.Random(0)) == items


# ---------------------------------------------------------------------------------------------- cache


def test_cache_written_then_reused(fake, data_root, monkeypatch):
    fake.build("OxfordPets")
    first = load_dataset("pets", data_root, num_shots=2, seed=3)
    folder = data_root.resolve() / "oxford_pets" / "split_fewshot"
    path = folder / "ncprobe_shot_2-seed_3.json"
    assert first.fewshot_cache == path and path.is_file()
    assert not (folder / "shot_2-seed_3.pkl").exists()  # CoOp's name is never written
    raw = json.loads(path.read_text())  # a manifest: plain JSON, paths relative to the dataset folder
    assert raw["num_shots"] == 2 and raw["seed"] == 3 and not raw["train"][0][0].startswith("/")

    def boom(*args, **kwargs):
        raise AssertionError("sampled again although the cache exists")

    monkeypatch.setattr(fewshot_mod, "sample_fewshot", boom)
    second = load_dataset("pets", data_root, num_shots=2, seed=3)
    assert second.train == first.train and second.val == first.val
    # base and new share the seed's cache file, as in CoOp
    base = load_dataset("pets", data_root, num_shots=2, seed=3, subsample="base")
    assert base.fewshot_cache == path


def test_cache_content_is_what_gets_loaded(fake, data_root):
    fake.build("OxfordPets")
    ds = load_dataset("pets", data_root, num_shots=2, seed=1)
    tampered = [it for it in ds.train if it.label != 0] + [ds.train[0]]
    save_fewshot_cache(
        ds.fewshot_cache, tampered, ds.val, num_shots=2, seed=1, repeat=False, dataset_dir=ds.dataset_dir
    )
    again = load_dataset("pets", data_root, num_shots=2, seed=1)
    assert again.train == tampered
    # a cache recorded with other settings is stale and gets resampled (with a warning)
    save_fewshot_cache(ds.fewshot_cache, tampered, ds.val, num_shots=2, seed=1, repeat=True, dataset_dir=ds.dataset_dir)
    with pytest.warns(UserWarning, match="is stale"):
        fresh = load_dataset("pets", data_root, num_shots=2, seed=1)
    assert fresh.train == ds.train


def test_custom_cache_dir_and_cache_off(fake, data_root, tmp_path):
    fake.build("Food101")
    ds = load_dataset("food101", data_root, num_shots=1, seed=2, fewshot_dir=tmp_path / "fs")
    assert ds.fewshot_cache == fewshot_manifest_path(tmp_path / "fs", num_shots=1, seed=2)
    assert ds.fewshot_cache.is_file()
    assert not fewshot_cache_path(tmp_path / "fs", num_shots=1, seed=2).exists()
    off = load_dataset("food101", data_root, num_shots=1, seed=7, use_cache=False)
    assert off.fewshot_cache is None
    assert not (data_root / "food-101" / "split_fewshot").exists()


def _install_fake_dassl(monkeypatch):
    """A stand-in ``dassl.data.datasets.base_dataset.Datum`` so a CoOp-style pkl can be produced."""

    class Datum:
        def __init__(self, impath="", label=0, domain=0, classname=""):
            self._impath, self._label, self._domain, self._classname = impath, label, domain, classname

    Datum.__module__ = "dassl.data.datasets.base_dataset"
    Datum.__qualname__ = "Datum"
    names = ["dassl", "dassl.data", "dassl.data.datasets", "dassl.data.datasets.base_dataset"]
    for name in names:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    sys.modules["dassl.data.datasets.base_dataset"].Datum = Datum
    return Datum, names


def test_reads_coop_written_pkl_and_reroots_paths(fake, data_root, monkeypatch):
    fake.build("DescribableTextures")
    full = load_dataset("dtd", data_root)
    want_train, want_val = coop_fewshot(full.train, full.val, 2, 1)
    datum, names = _install_fake_dassl(monkeypatch)
    here = str(full.dataset_dir)

    def to_datum(it):  # as saved on another machine
        return datum(it.impath.replace(here, "/old/machine/DATA/dtd"), it.label, 0, it.classname)

    blob = pickle.dumps(
        {"train": [to_datum(i) for i in want_train], "val": [to_datum(i) for i in want_val]},
        protocol=pickle.HIGHEST_PROTOCOL,
    )
    for name in names:
        monkeypatch.delitem(sys.modules, name)
    path = full.dataset_dir / "split_fewshot" / "shot_2-seed_1.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    got = load_dataset("dtd", data_root, num_shots=2, seed=1)
    assert got.train == want_train and got.val == want_val
    assert path.read_bytes() == blob  # CoOp's file is never rewritten


def test_untrusted_pickle_is_refused(tmp_path):
    path = tmp_path / "shot_1-seed_1.pkl"
    path.write_bytes(pickle.dumps({"train": [print]}))
    with pytest.raises(FewShotFileError, match="refusing to load builtins.print") as info:
        load_fewshot_cache(path, dataset_dir=tmp_path)
    assert str(path) in str(info.value)


def test_coop_pkl_without_val_is_resampled_in_memory(fake, data_root, monkeypatch):
    fake.build("DescribableTextures")
    full = load_dataset("dtd", data_root)
    datum, names = _install_fake_dassl(monkeypatch)
    blob = pickle.dumps({"train": [datum(it.impath, it.label, 0, it.classname) for it in full.train[:3]]})
    for name in names:
        monkeypatch.delitem(sys.modules, name)
    path = full.dataset_dir / "split_fewshot" / "shot_2-seed_1.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    with pytest.warns(UserWarning, match="has no 'val' split"):
        got = load_dataset("dtd", data_root, num_shots=2, seed=1)
    want_train, want_val = coop_fewshot(full.train, full.val, 2, 1)
    assert got.train == want_train and got.val == want_val
    assert path.read_bytes() == blob


def test_unwritable_cache_only_warns(fake, data_root, tmp_path):
    fake.build("EuroSAT")
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(UserWarning, match="could not write few-shot cache"):
        ds = load_dataset("eurosat", data_root, num_shots=2, fewshot_dir=blocker)
    assert ds.class_counts().tolist() == [2, 2, 2]


def test_test_only_variant_fewshot_draws_from_all_images(fake, data_root):
    fake.build("ImageNetSketch")
    full = load_dataset("sketch", data_root)
    want, _ = coop_fewshot(full.test, None, 2, 3)
    got = load_dataset("sketch", data_root, num_shots=2, seed=3)
    assert got.train == want and got.test == full.test and got.val == []
