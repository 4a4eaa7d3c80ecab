"""The measure() front door: report API, groups, persistence, and bad input."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

import ncprobe
from ncprobe import SingletonClassWarning
from ncprobe.core.synthetic import make_collapse

SCALARS = [
    "nc1",
    "nc1_quotient",
    "cdnv",
    "nc2_equinorm",
    "nc2_equiangularity",
    "nc2_max_angle",
    "nc2_etf_error",
    "ncc_accuracy",
]


@pytest.fixture(scope="module")
def data():
    return make_collapse(num_classes=6, dim=12, samples_per_class=60, noise=0.8, imbalance=8, seed=1)


def test_report_names_and_access(data):
    r = ncprobe.measure(data.features, data.labels)
    for name in SCALARS:
        assert isinstance(r[name], float)
    assert "nc3_self_duality" not in r and "nc4_ncc_agreement" not in r
    r2 = ncprobe.measure(data.features, data.labels, classifier=data.classifier)
    assert {"nc3_self_duality", "nc3_duality_gram", "nc4_ncc_agreement", "classifier_accuracy"} <= set(r2.keys())
    with pytest.raises(KeyError, match="available"):
        r["nc5"]
    assert isinstance(r.dataset, xr.Dataset)
    assert r.dataset["cdnv_pairs"].dims == ("class", "class_other")
    frame = r.to_dataframe()
    assert isinstance(frame, pd.DataFrame) and frame.loc["nc1", "value"] == r["nc1"]
    assert "nc1" in repr(r) and "<table" in r._repr_html_()
    assert r.per_class().shape[0] == 6


def test_groups_from_counts_and_mapping(data):
    r = ncprobe.measure(data.features, data.labels, groups="counts")
    assert list(r.dataset["group"].values) == ["head", "medium", "tail"]
    g = r.per_group()
    assert g.loc["head", "count"] > g.loc["tail", "count"]
    assert g["num_classes"].sum() == 6
    mapping = {k: ("many" if k < 3 else "few") for k in range(6)}
    r2 = ncprobe.measure(data.features, data.labels, groups=mapping)
    acc = r2.per_group()["ncc_accuracy"]
    y, per = data.labels, r2.per_class()
    manual = (per["ncc_accuracy"] * per["count"])[np.arange(6) < 3].sum() / (y < 3).sum()
    assert acc["many"] == pytest.approx(manual)
    with pytest.raises(ValueError, match="one entry per class"):
        ncprobe.measure(data.features, data.labels, groups=["a", "b"])


def test_netcdf_round_trip(tmp_path, data):
    r = ncprobe.measure(
        data.features, data.labels, text_features=data.text_features, groups="counts", class_names=data.class_names
    )
    r.to_netcdf(tmp_path / "r.nc")
    back = ncprobe.NCReport.from_netcdf(tmp_path / "r.nc")
    assert back.scalars() == pytest.approx(r.scalars())
    assert list(back.dataset["class_name"].values) == data.class_names


def test_stack_reports_along_epochs(data):
    reports = [
        ncprobe.measure(
            make_collapse(num_classes=4, dim=8, noise=s, seed=0).features,
            make_collapse(num_classes=4, dim=8, noise=s, seed=0).labels,
        )
        for s in (2, 1, 0.5)
    ]
    ds = ncprobe.stack_reports(reports, coords=[1, 2, 3])
    assert ds["nc1"].dims == ("epoch",)
    assert np.all(np.diff(ds["nc1"].values) < 0)


def test_singleton_class_is_warned_and_excluded():
    rng = np.random.default_rng(0)
    y = np.array([0] * 10 + [1] * 10 + [2] * 10 + [3])
    x = np.eye(4, 5)[y] * 5 + rng.normal(size=(31, 5))
    with pytest.warns(SingletonClassWarning, match=r"\[3\]"):
        r = ncprobe.measure(x, y)
    keep = y < 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ref = ncprobe.measure(x[keep], y[keep])
    assert r["nc1_quotient"] == pytest.approx(ref["nc1_quotient"], rel=1e-12)
    assert r["cdnv"] == pytest.approx(ref["cdnv"], rel=1e-12)
    assert r["nc1"] == pytest.approx(ref["nc1"], rel=1e-9)  # exclusion re-centres the means
    assert np.isnan(r.per_class().loc[3, "variance"])
    assert r.dataset.attrs["singleton_classes"] == ["3"]


@pytest.mark.parametrize(
    "features,labels,error,match",
    [
        (np.zeros((5, 3)), np.zeros(4, int), ValueError, "disagree in length"),
        (np.zeros((4, 3)), np.array([0, 1, 0.5, 1]), TypeError, "integers"),
        (np.zeros((4, 3)), np.array([0, 1, -1, 1]), ValueError, "non-negative"),
        (np.array([[0, 1.0], [np.inf, 0], [1, 1], [2, 2]]), np.array([0, 1, 0, 1]), ValueError, "NaN or inf"),
        (np.zeros((4, 3)), np.zeros(4, int), ValueError, "at least 2 classes"),
        (np.zeros(4), np.array([0, 1, 0, 1]), ValueError, "shape"),
        (np.zeros((4, 3), dtype=int), np.array([0, 1, 0, 1]), TypeError, "floating-point"),
        (np.zeros((4, 3)), np.array(["a", "b", "a", "b"]), TypeError, "integers"),
    ],
)
def test_bad_input_errors(features, labels, error, match):
    with pytest.raises(error, match=match):
        ncprobe.measure(features, labels)


def test_identical_class_means_give_clear_error():
    x = np.random.default_rng(0).normal(size=(20, 3))
    x -= np.where(np.arange(20)[:, None] % 2 == 0, x[::2].mean(0), x[1::2].mean(0))
    with pytest.raises(ValueError, match="coincide"):
        ncprobe.measure(x, np.arange(20) % 2)


def test_accepts_tensors_and_reports_same_numbers(data):
    a = ncprobe.measure(data.features, data.labels)
    b = ncprobe.measure(torch.from_numpy(data.features), torch.from_numpy(data.labels), backend="torch")
    assert a.scalars() == pytest.approx(b.scalars(), rel=1e-10)


def test_two_class_classifier_given_as_nested_list_is_not_read_as_weights_and_bias():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    x = np.array([[3.0, 0.0], [-3.0, 0.0]])[y] + rng.normal(size=(40, 2))
    as_list = ncprobe.measure(x, y, classifier=[[1.0, 0.0], [-1.0, 0.0]])
    as_array = ncprobe.measure(x, y, classifier=np.array([[1.0, 0.0], [-1.0, 0.0]]))
    assert as_list.scalars() == as_array.scalars()
    with_bias = ncprobe.measure(x, y, classifier=(np.array([[1.0, 0.0], [-1.0, 0.0]]), np.array([100.0, 0.0])))
    assert with_bias["classifier_accuracy"] == 0.5
