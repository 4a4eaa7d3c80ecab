"""Every metric against the plain float64 reference, for each backend and scatter mode."""

import numpy as np
import pytest
import torch

import ncprobe
from ncprobe import metrics
from tests._helpers import reference as ref

BACKENDS = ["torch", "numba"]


def _data(seed, c=6, d=12, n=40, offset=0.0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(c, d)) * 2 + offset
    sizes = rng.integers(3, n, size=c)
    y = np.repeat(np.arange(c), sizes)
    rng.shuffle(y)
    x = means[y] + rng.normal(size=(len(y), d)) * rng.uniform(0.3, 1.5, size=d)
    w = means - means.mean(0) + 0.5 * rng.normal(size=(c, d))
    return x.astype(dtype), y, w


@pytest.mark.parametrize("backend", BACKENDS)
def test_measure_matches_reference_with_cone_offset(backend):
    # A large common offset (CLIP's narrow cone) must not cost precision.
    x, y, w = _data(2, c=5, d=10, offset=50.0, dtype=np.float64)
    report = ncprobe.measure(x, y, classifier=w, backend=backend)
    assert report["nc1"] == pytest.approx(ref.nc1(x, y, 5), rel=1e-8)
    assert report["nc1_quotient"] == pytest.approx(ref.nc1_quotient(x, y, 5), rel=1e-10)
    for name, value in {**ref.nc2(x, y, 5), **ref.nc3(w, x, y, 5), **ref.decisions(w, x, y, 5)}.items():
        assert report[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_precision_mode_stays_close(backend):
    x, y, w = _data(3, c=8, d=16, offset=20.0)
    exact = ref.nc1(x, y, 8)
    fast = metrics.nc1(x, y, backend=backend, precision="float32")
    assert fast == pytest.approx(exact, rel=1e-4)


def test_nc1_pinv_tolerance_is_explicit():
    # Means spanning 2 of 3 between-class directions strongly, the third weakly: a large rtol drops it.
    rng = np.random.default_rng(0)
    means = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 1e-3]], dtype=float)
    y = np.repeat(np.arange(4), 50)
    x = means[y] + 0.1 * rng.normal(size=(200, 3))
    full = metrics.nc1(x, y)
    truncated = metrics.nc1(x, y, pinv_rtol=1e-3)
    assert full == pytest.approx(ref.nc1(x, y, 4), rel=1e-8)
    assert truncated == pytest.approx(ref.nc1(x, y, 4, rtol=1e-3), rel=1e-8)
    assert truncated < full


def test_non_contiguous_labels_are_mapped():
    x, y, _ = _data(4, c=4, d=6)
    labels = np.array([3, 10, 42, 7])[y]
    r = ncprobe.measure(x, labels)
    assert list(r.dataset["class"].values) == [3, 7, 10, 42]
    assert r["nc1"] == pytest.approx(metrics.nc1(x, y), rel=1e-12)
    counts = r.dataset["class_count"].sel({"class": 42}).item()
    assert counts == np.sum(labels == 42)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_accepts_low_precision_tensors(dtype):
    x, y, _ = _data(5, c=4, d=8)
    xt = torch.from_numpy(x).to(dtype)
    upcast = xt.double().numpy()
    assert metrics.nc1(xt, torch.from_numpy(y)) == pytest.approx(ref.nc1(upcast, y, 4), rel=1e-9)


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_near_tied_decisions_equal_float64_decisions(precision):
    # Two classifier rows differ by 1e-9 relative: float32 logits tie, float64 logits do not.
    rng = np.random.default_rng(7)
    c, d = 4, 32
    means = rng.normal(size=(c, d))
    y = np.repeat(np.arange(c), 100)
    x = means[y] + 0.5 * rng.normal(size=(len(y), d))
    w = rng.normal(size=(c, d))
    w[1] = w[0] * (1 + 1e-9)
    expected = ref.decisions(w, x, y, c)
    report = ncprobe.measure(x, y, classifier=w, precision=precision)
    assert report["classifier_accuracy"] == pytest.approx(expected["classifier_accuracy"], abs=0)
    assert report["nc4_ncc_agreement"] == pytest.approx(expected["nc4_ncc_agreement"], abs=0)
    assert report["ncc_accuracy"] == pytest.approx(expected["ncc_accuracy"], abs=0)
