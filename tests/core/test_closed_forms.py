"""Known closed-form cases: exact collapse, an isotropic Gaussian mixture, invariances."""

import numpy as np
import pytest
import torch

import ncprobe
from ncprobe import metrics
from ncprobe.core.geometry import simplex_etf
from ncprobe.core.synthetic import isotropic_nc1, make_collapse


@pytest.mark.parametrize("c,d", [(2, 2), (5, 5), (5, 4), (10, 32)])
def test_exact_etf_without_noise_is_fully_collapsed(c, d):
    shift = np.full(d, 3.0)
    etf = simplex_etf(c, d, seed=3).numpy() * 7.0 + shift  # scaled and shifted: still an ETF after centring
    y = np.repeat(np.arange(c), 4)
    x = etf[y]
    w = etf - etf.mean(0)
    r = ncprobe.measure(x, y, classifier=(w, -w @ shift))  # the bias removes the shift from the logits
    for name in [
        "nc1",
        "nc1_quotient",
        "cdnv",
        "nc2_equinorm",
        "nc2_equiangularity",
        "nc2_max_angle",
        "nc2_etf_error",
        "nc3_self_duality",
        "nc3_duality_gram",
    ]:
        assert r[name] == pytest.approx(0.0, abs=1e-12), name
    assert r["nc2_max_cosine"] == pytest.approx(-1 / (c - 1), abs=1e-12)
    assert r["nc4_ncc_agreement"] == 1.0
    assert r["ncc_accuracy"] == 1.0


def test_isotropic_mixture_has_known_nc1():
    c, d, sigma = 5, 8, 0.7
    rng = np.random.default_rng(0)
    means = rng.normal(size=(c, d)) * 3
    expected = isotropic_nc1(means, sigma)
    values = []
    for seed in range(3):
        r = np.random.default_rng(seed + 10)
        y = np.repeat(np.arange(c), 4000)
        x = means[y] + sigma * r.normal(size=(len(y), d))
        # Use the population means for Σ_B so only Σ_W is estimated: compare via the estimator itself.
        values.append(metrics.nc1(x, y))
    # The plug-in estimate converges to the population value; 20k samples → ~1-2% spread.
    assert np.mean(values) == pytest.approx(expected, rel=0.05)


def test_quotient_of_isotropic_mixture():
    c, d, sigma = 4, 6, 0.5
    means = simplex_etf(c, d, seed=0).numpy() * 4
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(c), 5000)
    x = means[y] + sigma * rng.normal(size=(len(y), d))
    # tr Σ_W = d σ², tr Σ_B = (1/C) Σ ‖μ̃_k‖² = 16.
    assert metrics.nc1_quotient(x, y) == pytest.approx(d * sigma**2 / 16, rel=0.03)
    assert metrics.cdnv(x, y) == pytest.approx(2 * d * sigma**2 / (2 * 16 * 2 * c / (c - 1)), rel=0.03)


def test_nc1_decreases_with_noise():
    vals = [metrics.nc1(*_mixture(noise)) for noise in (2.0, 1.0, 0.5, 0.1)]
    assert all(a > b for a, b in zip(vals, vals[1:]))


def _mixture(noise):
    d = make_collapse(num_classes=5, dim=8, samples_per_class=100, noise=noise, seed=0)
    return torch.from_numpy(d.features), torch.from_numpy(d.labels)
