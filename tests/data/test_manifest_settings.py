"""A manifest fixes num_shots, seed and subsample: a value passed with it is compared, never taken for "not
given" because it equals a default (``seed=1`` against a manifest drawn with seed 2 was accepted)."""

from __future__ import annotations

import pytest

from ncprobe.data import Item, RawSplits, prepare_dataset


def _raw(root) -> RawSplits:
    names = [f"class {k}" for k in range(4)]
    items = [Item(str(root / f"{k}_{i}.jpg"), k, names[k]) for k in range(4) for i in range(6)]
    return RawSplits(items, [], items, val_mode="none", source="synthetic")


def _prepare(root, **options):
    return prepare_dataset(_raw(root), name="Synthetic", dataset_dir=root, template="{}", use_cache=False, **options)


def test_settings_equal_to_the_old_defaults_are_compared_with_the_manifest(tmp_path):
    drawn = _prepare(tmp_path, num_shots=2, seed=2, subsample="base").to_manifest()
    again = _prepare(tmp_path, manifest=drawn)  # nothing given: everything from the manifest
    assert (again.num_shots, again.seed, again.subsample) == (2, 2, "base")
    assert _prepare(tmp_path, num_shots=2, seed=2, subsample="base", manifest=drawn).train == again.train
    for given, text in [
        ({"seed": 1}, "seed=1 (manifest: 2)"),
        ({"subsample": "all"}, "subsample='all' (manifest: 'base')"),
        ({"num_shots": 0}, "num_shots=0 (manifest: 2)"),
    ]:
        with pytest.raises(
            ValueError, match=f"contradict the manifest.*{text}".replace("(", r"\(").replace(")", r"\)")
        ):
            _prepare(tmp_path, manifest=drawn, **given)


def test_without_a_manifest_the_defaults_are_every_image_seed_1_all_classes(tmp_path):
    ds = _prepare(tmp_path)
    assert (ds.num_shots, ds.seed, ds.subsample, len(ds.train)) == (0, None, "all", 24)
    assert _prepare(tmp_path, num_shots=1).seed == 1
