"""The synthetic histories follow docs/history.md exactly, and survive a netCDF round trip."""

from __future__ import annotations

import numpy as np

from ncprobe.core import catalog
from ncprobe.core.report import decode_attrs, load_dataset, save_dataset
from tests.plotting.histories import make_history


def test_dims_coords_and_variables(history):
    assert set(history.dims) >= {"seed", "epoch", "eval_set", "class", "class_other", "component"}
    assert history["epoch"].values.tolist() == [0, 1, 2, 3, 4]
    assert history["eval_set"].values.tolist() == ["base", "novel"]
    assert history["component"].values.tolist() == [0, 1, 2]
    assert set(history["class_split"].values) == {"base", "novel"}
    assert set(history["class_group"].values) <= {"head", "medium", "tail", "none"}
    for name in ("accuracy", "nc1", "t2i_text_etf_error"):
        assert history[name].dims == ("seed", "epoch", "eval_set"), name
    assert history["hm"].dims == ("seed", "epoch")
    assert history["loss"].dims == ("seed", "epoch") and np.isnan(history["loss"].isel(epoch=0)).all()
    assert history["class_ncc_accuracy"].dims == ("seed", "epoch", "eval_set", "class")
    assert history["mean_cosines"].dims == ("seed", "epoch", "eval_set", "class", "class_other")
    assert history["mean_coords"].dims == ("seed", "epoch", "eval_set", "class", "component")
    assert "group" not in history.dims and set(history["class_group"].values) == {"none"}  # balanced: no groups
    scalars = [n for n in catalog.names() if n in history]
    assert len(scalars) >= 15


def test_an_imbalanced_history_has_head_medium_tail_groups():
    h = make_history(imbalance_ratio=8, epochs=1)
    assert "group" in h["group_ncc_accuracy"].dims
    base = (h["class_split"] == "base").values
    assert set(h["class_group"].values[base]) == {"head", "medium", "tail"}


def test_classes_outside_an_eval_set_are_nan(history):
    novel = history["class_ncc_accuracy"].sel(eval_set="novel").isel(seed=0, epoch=-1)
    base_classes = (history["class_split"] == "base").values
    assert np.isnan(novel.values[base_classes]).all() and np.isfinite(novel.values[~base_classes]).all()


def test_hm_is_the_harmonic_mean_of_base_and_novel(history):
    b = history["accuracy"].sel(eval_set="base")
    v = history["accuracy"].sel(eval_set="novel")
    np.testing.assert_allclose(history["hm"], 2 * b * v / (b + v))


def test_netcdf_round_trip(history, tmp_path):
    save_dataset(history, tmp_path / "history.nc")
    back = load_dataset(tmp_path / "history.nc")
    np.testing.assert_allclose(back["nc1"], history["nc1"])
    assert decode_attrs(dict(history.attrs))["method"] == back.attrs["method"] == "CoOp"
    assert back.attrs["seeds"] == [0, 1, 2]
