"""Closed forms of the metrics added through the catalog: GNC2, UNC3, NC5, VCI, minority collapse, ETF floor."""

import math

import numpy as np
import pytest

import ncprobe
from ncprobe.core.geometry import etf_error_floor, simplex_etf
from ncprobe.core.synthetic import make_collapse


def _etf_data(c=5, d=8, n=30, noise=0.0, seed=0):
    means = 4.0 * simplex_etf(c, d, seed=seed).numpy()
    y = np.repeat(np.arange(c), n)
    x = means[y] + noise * np.random.default_rng(seed).normal(size=(len(y), d))
    return x, y, means


def test_gnc2_energies_of_a_simplex_etf():
    c = 5
    x, y, _ = _etf_data(c=c, noise=0.0)
    r = ncprobe.measure(x, y)
    dist2 = 2 * c / (c - 1)
    assert r["gnc2_log_energy"] == pytest.approx(-0.5 * math.log(dist2), rel=1e-12)
    assert r["gnc2_log_variance"] == pytest.approx(0.0, abs=1e-20)
    assert r["gnc2_riesz_energy"] == pytest.approx(dist2**-0.5, rel=1e-12)


def test_gnc2_is_lowest_for_the_etf():
    etf = ncprobe.gnc2_log_energy(*_etf_data(noise=0.0)[:2])
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(5), 30)
    for _ in range(5):
        x = rng.normal(size=(5, 8))[y] * 4
        assert ncprobe.gnc2_log_energy(x, y) > etf


def test_unc3_is_zero_for_a_classifier_equal_to_the_means_and_positive_otherwise():
    x, y, means = _etf_data(noise=0.3)
    centred = np.stack([x[y == k].mean(0) for k in range(5)])
    centred -= centred.mean(0)
    assert ncprobe.unc3_uniform_duality(centred * 3.0, x, y) == pytest.approx(0.0, abs=1e-12)
    tilted = centred.copy()
    tilted[0] += 2.0 * np.random.default_rng(0).normal(size=8)
    assert ncprobe.unc3_uniform_duality(tilted, x, y) > 0.01


def test_nc5_is_zero_for_an_orthogonal_ood_mean_and_one_for_an_aligned_one():
    c, d = 4, 8
    x, y, means = _etf_data(c=c, d=d)  # the ETF spans the first c-1 coordinates after rotation (seed 0)
    mt = means - means.mean(0)
    basis = np.linalg.svd(mt)[2]  # rows: directions; the last d-(c-1) are orthogonal to every class mean
    ood_dir = basis[-1]
    ood = means.mean(0) + ood_dir * np.array([[1.0], [3.0]])  # mean: μ_G + 2·ood_dir
    assert ncprobe.nc5_ood_orthogonality(ood, x, y) == pytest.approx(0.0, abs=1e-12)
    aligned = means.mean(0) + 5 * mt[0][None, :]
    value = ncprobe.nc5_ood_orthogonality(aligned, x, y)
    # |cos(μ̃_0, μ̃_0)| = 1, |cos(μ̃_k, μ̃_0)| = 1/(C−1) for the others
    assert value == pytest.approx((1 + (c - 1) / (c - 1)) / c, rel=1e-12)


def test_vci_of_an_isotropic_mixture_has_a_closed_form():
    c, d, sigma = 4, 6, 0.7
    means = 3.0 * simplex_etf(c, d, seed=3).numpy()
    y = np.repeat(np.arange(c), 20000)
    x = means[y] + sigma * np.random.default_rng(0).normal(size=(len(y), d))
    mu = means.mean(0)
    lam = np.linalg.eigvalsh((means - mu).T @ (means - mu) / c)
    lam = lam[lam > 1e-9]
    expected = 1 - np.mean(lam / (sigma**2 + lam))
    assert ncprobe.vci(x, y, scatter="full") == pytest.approx(expected, rel=0.03)
    assert ncprobe.vci(*_etf_data(noise=0.0)[:2], scatter="full") == pytest.approx(0.0, abs=1e-9)


def test_vci_is_invariant_to_an_invertible_linear_map():
    data = make_collapse(num_classes=4, dim=6, samples_per_class=60, noise=0.8, seed=2)
    a = np.random.default_rng(3).normal(size=(6, 6)) + 3 * np.eye(6)
    before = ncprobe.vci(data.features, data.labels, scatter="full")
    after = ncprobe.vci(data.features.astype(np.float64) @ a, data.labels, scatter="full")
    assert after == pytest.approx(before, rel=1e-8)


def test_vci_needs_the_full_scatter():
    data = make_collapse(num_classes=4, dim=16, seed=0)
    with pytest.raises(ValueError, match="scatter='full'"):
        ncprobe.vci(data.features, data.labels)
    assert "vci" not in ncprobe.measure(data.features, data.labels)  # projected scatter by default (C < D)
    with pytest.raises(ValueError, match="vci.*full_scatter"):
        ncprobe.measure(data.features, data.labels, metrics=["vci"])


def test_minority_collapse_cosines_per_group():
    c = 6
    x, y, means = _etf_data(c=c, d=8)
    groups = ["head"] * 3 + ["tail"] * 3
    r = ncprobe.measure(x, y, classifier=means - means.mean(0), groups=groups)
    np.testing.assert_allclose(r["group_mean_cosine"].values, [-1 / (c - 1)] * 2, rtol=1e-12)
    np.testing.assert_allclose(r["group_classifier_cosine"].values, [-1 / (c - 1)] * 2, rtol=1e-12)
    # collapse the tail classifiers onto one direction: their group cosine goes to 1
    w = means - means.mean(0)
    w[3:] = w[3] + 1e-3 * np.arange(3)[:, None]
    r = ncprobe.measure(x, y, classifier=w, groups=groups)
    assert r["group_classifier_cosine"].sel(group="tail") > 0.999


@pytest.mark.parametrize("c,d", [(10, 4), (30, 8), (1000, 512)])
def test_etf_error_floor_is_attained_by_a_tight_frame_and_reported(c, d):
    q = np.linalg.qr(np.random.default_rng(0).normal(size=(c, c)))[0]
    centring = np.eye(c) - 1.0 / c
    frame = np.linalg.qr(centring @ q[:, :d])[0]  # orthonormal columns inside 1^⊥: a centred tight frame
    gram = frame @ frame.T
    assert ncprobe.etf_structure_error(gram) == pytest.approx(etf_error_floor(c, d), rel=1e-9)
    if c < 100:
        y = np.repeat(np.arange(c), 3)
        x = 5 * frame[y] + 1e-3 * np.random.default_rng(1).normal(size=(len(y), d))
        r = ncprobe.measure(x, y)
        assert r.dataset.attrs["simplex_etf_exists"] is False
        assert r["nc2_etf_error_floor"] == pytest.approx(etf_error_floor(c, d))
        assert r["nc2_etf_error"] >= r["nc2_etf_error_floor"] - 1e-12
        assert "no simplex ETF exists" in repr(r)


def test_etf_error_floor_is_zero_when_an_etf_exists():
    x, y, _ = _etf_data(c=5, d=8)
    r = ncprobe.measure(x, y)
    assert r["nc2_etf_error_floor"] == 0.0 and r.dataset.attrs["simplex_etf_exists"] is True
