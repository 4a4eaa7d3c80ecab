"""Files that survive interruptions, validation gaps, and the cross-modal conventions that change numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ncprobe
from ncprobe.core.report import load_dataset, save_dataset
from ncprobe.core.synthetic import make_collapse


@pytest.fixture(scope="module")
def data():
    return make_collapse(num_classes=5, dim=12, samples_per_class=40, noise=0.8, imbalance=4, seed=3)


# ------------------------------------------------------------------------------------------ files
def test_report_attributes_keep_their_types_on_disk(tmp_path, data):
    r = ncprobe.measure(data.features, data.labels, text_features=data.text_features, groups="counts")
    r.to_netcdf(tmp_path / "r.nc")
    back = ncprobe.NCReport.from_netcdf(tmp_path / "r.nc")
    for key in ("center", "normalize_images", "simplex_etf_exists", "singleton_classes", "absent_classes"):
        assert back.attrs[key] == r.attrs[key] and type(back.attrs[key]) is type(r.attrs[key]), key
    assert back.attrs["center"] is True and back.attrs["singleton_classes"] == []


def test_a_stack_of_reports_saves_with_xarray_and_with_the_atomic_helper(tmp_path, data):
    reports = [ncprobe.measure(data.features * s, data.labels, text_features=data.text_features) for s in (1, 2)]
    stack = ncprobe.stack_reports(reports)
    stack.to_netcdf(tmp_path / "plain.nc", engine="h5netcdf")  # the call that used to fail on a bool attribute
    save_dataset(stack, tmp_path / "atomic.nc")
    back = load_dataset(tmp_path / "atomic.nc")
    assert back.attrs["center"] is True
    np.testing.assert_allclose(back["nc1"].values, stack["nc1"].values)


def test_truncated_and_foreign_files_are_refused_with_their_path(tmp_path, data):
    r = ncprobe.measure(data.features, data.labels)
    r.to_netcdf(tmp_path / "r.nc")
    blob = (tmp_path / "r.nc").read_bytes()
    (tmp_path / "cut.nc").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="cut.nc is not a readable netCDF file"):
        ncprobe.NCReport.from_netcdf(tmp_path / "cut.nc")
    (tmp_path / "text.nc").write_text("hello")
    with pytest.raises(ValueError, match="text.nc is not a readable netCDF file"):
        ncprobe.NCReport.from_netcdf(tmp_path / "text.nc")
    foreign = r.dataset.copy()
    foreign.attrs = {}
    foreign.to_netcdf(tmp_path / "foreign.nc", engine="h5netcdf")
    with pytest.raises(ValueError, match="not one written by ncprobe"):
        ncprobe.NCReport.from_netcdf(tmp_path / "foreign.nc")
    with pytest.raises(FileNotFoundError, match="missing.nc"):
        ncprobe.NCReport.from_netcdf(tmp_path / "missing.nc")


def test_a_file_missing_variables_it_recorded_is_refused(tmp_path, data):
    r = ncprobe.measure(data.features, data.labels)
    r.to_netcdf(tmp_path / "r.nc")
    ds = load_dataset(tmp_path / "r.nc")
    partial = ds[["nc1", "cdnv"]].copy()
    partial.attrs = {**ds.attrs, "ncprobe_variables": sorted(map(str, ds.data_vars))}
    from ncprobe.core.report import encode_attrs

    partial.attrs = encode_attrs(partial.attrs)
    partial.to_netcdf(tmp_path / "partial.nc", engine="h5netcdf")
    with pytest.raises(ValueError, match="incomplete: variables .*nc2_etf_error"):
        ncprobe.NCReport.from_netcdf(tmp_path / "partial.nc")


def test_an_interrupted_write_leaves_the_old_file(tmp_path, data, monkeypatch):
    r = ncprobe.measure(data.features, data.labels)
    r.to_netcdf(tmp_path / "r.nc")
    before = (tmp_path / "r.nc").read_bytes()
    import xarray as xr

    def boom(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.Dataset, "to_netcdf", boom)
    with pytest.raises(KeyboardInterrupt):
        r.to_netcdf(tmp_path / "r.nc")
    assert (tmp_path / "r.nc").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.nc"]  # no temporary file left behind


def test_report_iterates_like_a_mapping(data):
    r = ncprobe.measure(data.features, data.labels)
    assert list(r) == r.keys() and len(r) == len(r.keys()) and dict(r.items()) == r.scalars()


# ------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda d: ncprobe.ClassStatistics(2.7), TypeError, "num_classes must be an integer"),
        (lambda d: ncprobe.ClassStatistics("5"), TypeError, "num_classes must be an integer"),
        (lambda d: ncprobe.ClassStatistics(0), ValueError, "num_classes must be at least 1"),
        (lambda d: ncprobe.nc1(d.features, d.labels, pinv_rtol=-1.0), ValueError, "pinv_rtol must be a finite number"),
        (
            lambda d: ncprobe.measure(d.features, np.array([2**63 + 5] * 100 + [1] * 96, dtype=np.uint64)),
            ValueError,
            "below 2\\*\\*63",
        ),
        (lambda d: ncprobe.measure(d.features, d.labels, num_classes=3), ValueError, "labels out of range"),
        (lambda d: ncprobe.measure(d.features, d.labels, gap_weighting="x"), ValueError, "gap_weighting"),
        (lambda d: ncprobe.measure(d.features, d.labels, metrics=["nc9"]), KeyError, "known metrics"),
        (lambda d: ncprobe.measure(d.features, d.labels, metrics=["nc3_self_duality"]), ValueError, "classifier"),
    ],
)
def test_validation_gaps_are_closed(data, call, error, match):
    with pytest.raises(error, match=match):
        call(data)


def test_huge_finite_features_give_an_overflow_message_not_coinciding_means():
    x = np.array([[1e200, 0.0], [1.1e200, 0.0], [0.0, 1e200], [0.0, 1.2e200]])
    with pytest.raises(ValueError, match="too large"):
        ncprobe.measure(x, np.array([0, 0, 1, 1]))


def test_text_rows_must_not_be_zero_and_messages_name_the_shape(data):
    t = data.text_features.copy()
    t[1] = 0
    with pytest.raises(ValueError, match=r"all-zero rows \[1\]"):
        ncprobe.measure(data.features, data.labels, text_features=t)
    with pytest.raises(ValueError, match=r"\(n_classes, dim\)"):
        ncprobe.measure(data.features, data.labels, classifier=np.zeros(5))


# ------------------------------------------------------------------------------------------ inputs
def test_a_linear_layer_is_a_classifier(data):
    lin = torch.nn.Linear(12, 5)
    a = ncprobe.measure(data.features, data.labels, classifier=lin)
    b = ncprobe.measure(data.features, data.labels, classifier=(lin.weight.detach().numpy(), lin.bias.detach().numpy()))
    assert a["nc4_ncc_agreement"] == b["nc4_ncc_agreement"] and a["nc3_self_duality"] == b["nc3_self_duality"]


def test_num_classes_keeps_absent_classes_in_place(data):
    keep = data.labels != 2
    r = ncprobe.measure(data.features[keep], data.labels[keep], num_classes=5, text_features=data.text_features)
    assert list(r.dataset["class"].values) == [0, 1, 2, 3, 4]
    assert np.isnan(r.per_class().loc[2, "variance"]) and r.attrs["absent_classes"] == ["2"]
    sub = ncprobe.measure(data.features[keep], data.labels[keep], text_features=data.text_features[[0, 1, 3, 4]])
    assert r["t2i_text_etf_error"] == pytest.approx(sub["t2i_text_etf_error"], rel=1e-12)
    assert r["t2i_zero_shot_accuracy"] == pytest.approx(sub["t2i_zero_shot_accuracy"])


def test_ood_features_enable_nc5(data):
    r = ncprobe.measure(data.features, data.labels, ood_features=np.random.default_rng(0).normal(size=(30, 12)))
    assert 0 <= r["nc5_ood_orthogonality"] <= 1


# ------------------------------------------------------------------------------------------ conventions
def test_modality_gap_weightings_under_imbalance():
    """Counts 400/100/20/5: one weight per class and the paired (per-image) text centroid give different gaps."""
    rng = np.random.default_rng(0)
    c, d = 4, 16
    counts = [400, 100, 20, 5]
    y = np.repeat(np.arange(c), counts)
    text = rng.normal(size=(c, d))
    x = text[y] + 2.0 * rng.normal(size=(len(y), d)) + 3.0
    t = text / np.linalg.norm(text, axis=1, keepdims=True)
    xn = (x / np.linalg.norm(x, axis=1, keepdims=True)).mean(0)
    per_class = np.linalg.norm(xn - t.mean(0))
    paired = np.linalg.norm(xn - (np.array(counts)[:, None] * t).sum(0) / len(y))
    assert ncprobe.modality_gap(text, x, y, weighting="class") == pytest.approx(per_class, rel=1e-12)
    assert ncprobe.modality_gap(text, x, y) == pytest.approx(paired, rel=1e-12)  # default: Liang et al.
    assert abs(paired - per_class) > 1e-3
    r = ncprobe.measure(x, y, text_features=text, gap_weighting="class")
    assert r["t2i_modality_gap"] == pytest.approx(per_class, rel=1e-12) and r.attrs["gap_weighting"] == "class"


def test_normalize_images_makes_every_metric_scale_free(data):
    scale = np.linspace(0.5, 3.0, len(data.labels))[:, None]  # a different length for every image
    a = ncprobe.measure(data.features, data.labels, text_features=data.text_features, normalize_images=True)
    b = ncprobe.measure(data.features * scale, data.labels, text_features=data.text_features, normalize_images=True)
    assert a.scalars() == pytest.approx(b.scalars(), rel=1e-6)
    raw = ncprobe.measure(data.features * scale, data.labels, text_features=data.text_features)
    assert raw["t2i_cross_etf_error"] != pytest.approx(a["t2i_cross_etf_error"], rel=1e-3)


def test_mmd_takes_numpy_and_computes_half_precision_in_float32():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 8)), rng.normal(size=(48, 8)) + 0.5
    exact = float(ncprobe.mmd2(x, y))
    half = float(ncprobe.mmd2(torch.tensor(x, dtype=torch.bfloat16), torch.tensor(y, dtype=torch.bfloat16)))
    rounded = float(ncprobe.mmd2(torch.tensor(x).bfloat16().double(), torch.tensor(y).bfloat16().double()))
    assert half == pytest.approx(rounded, rel=1e-5)  # only the inputs' rounding differs from float64
    assert half == pytest.approx(exact, rel=0.05)


def test_report_attributes_are_json_safe(data):
    r = ncprobe.measure(data.features, data.labels, text_features=data.text_features)
    json.dumps(r.attrs)
