"""Paired differences agree with scipy's paired t test and its exact sign-flip permutation test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats as sps

from ncprobe.stats import PairedDifference, paired_difference, sign_flip_test


@pytest.fixture(scope="module")
def ab():
    rng = np.random.default_rng(7)
    b = rng.normal(0.65, 0.02, size=10)
    return b + rng.normal(0.03, 0.02, size=10), b


def test_t_interval_and_p_match_ttest_rel(ab):
    a, b = ab
    d = paired_difference(a, b, confidence=0.9)
    ref = sps.ttest_rel(a, b)
    ci = ref.confidence_interval(confidence_level=0.9)
    assert d.n == 10 and d.df == 9
    assert d.mean == pytest.approx(np.mean(a - b), abs=1e-15)
    assert d.std == pytest.approx(np.std(a - b, ddof=1), rel=1e-12)
    assert d.se == pytest.approx(sps.sem(a - b), rel=1e-12)
    assert d.t == pytest.approx(ref.statistic, rel=1e-10) and d.p_t == pytest.approx(ref.pvalue, rel=1e-9)
    assert d.ci_low == pytest.approx(ci.low, rel=1e-10) and d.ci_high == pytest.approx(ci.high, rel=1e-10)
    assert d.perm_exact and d.n_patterns == 2**10


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize("n", [5, 9])
def test_exact_sign_flip_matches_scipy_permutation_test(n, alternative):
    d = np.random.default_rng(n).normal(0.3, 1.0, size=n)
    ref = sps.permutation_test(
        (d,),
        lambda x, axis: np.mean(x, axis=axis),
        permutation_type="samples",
        n_resamples=np.inf,
        alternative=alternative,
    )
    got = sign_flip_test(d, alternative=alternative)
    assert got.exact and got.n_patterns == 2**n
    assert got.p_value == pytest.approx(ref.pvalue, abs=1e-12)
    assert got.statistic == pytest.approx(ref.statistic)


@pytest.mark.parametrize("n", [3, 8, 16])
def test_all_equal_positive_differences(n):
    d = paired_difference(np.full(n, 0.75), np.full(n, 0.7))
    assert d.p_perm == 2 / 2**n  # only the all-plus and the all-minus patterns are as extreme
    assert d.t == np.inf and d.p_t == 0.0 and d.ci_low == pytest.approx(0.05) == d.ci_high
    zero = paired_difference(np.ones(n), np.ones(n))
    assert zero.p_perm == 1.0 and np.isnan(zero.t) and np.isnan(zero.p_t)


def test_monte_carlo_above_16_is_seeded_and_close_to_the_exact_value():
    d = np.random.default_rng(1).normal(0.25, 1.0, size=18)
    bits = (np.arange(2**18)[:, None] >> np.arange(18)) & 1
    exact = np.mean(np.abs((1 - 2 * bits) @ d) >= abs(d.sum()) * (1 - 1e-12))
    mc = sign_flip_test(d, n_permutations=20_000, seed=3)
    assert not mc.exact and mc.n_patterns == 20_000
    assert mc.p_value == pytest.approx(exact, abs=4 * np.sqrt(exact * (1 - exact) / 20_000))
    assert mc == sign_flip_test(d, n_permutations=20_000, seed=3)
    assert mc.p_value != sign_flip_test(d, n_permutations=20_000, seed=4).p_value
    tiny = sign_flip_test(np.full(30, 1.0), n_permutations=99)
    assert tiny.p_value == 1 / 100  # the +1 correction: never 0


def test_nan_length_and_size_errors_name_the_problem():
    a = pd.Series([0.7, np.nan, 0.72, 0.71], index=pd.Index([0, 1, 2, 3], name="seed"))
    b = pd.Series([0.65, 0.66, 0.64, 0.66], index=a.index)
    with pytest.raises(ValueError, match=r"NaN or inf in 1 pair\(s\): \['1 \(a=nan, b=0.66\)'\]"):
        paired_difference(a, b)
    with pytest.raises(ValueError, match="differ in length: 3 vs 2"):
        paired_difference([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 2 pairs"):
        paired_difference([1.0], [0.5])
    with pytest.raises(ValueError, match="indices differ"):
        paired_difference(b, b.rename(index={3: 9}))
    with pytest.raises(ValueError, match=r"differences hold NaN or inf at \['#1'\]"):
        sign_flip_test([0.1, np.nan, 0.2])


def test_series_pair_by_index_and_dataarrays_by_coordinates(ab):
    a, b = ab
    ref = paired_difference(a, b)
    sa, sb = pd.Series(a), pd.Series(b)
    assert paired_difference(sa, sb.sample(frac=1.0, random_state=0)) == ref
    grid = {"tower_seed": [0, 1], "prompt_seed": [0, 1, 2, 3, 4]}
    da = xr.DataArray(a.reshape(2, 5), coords=grid, dims=list(grid))
    db = xr.DataArray(b.reshape(2, 5), coords=grid, dims=list(grid)).transpose("prompt_seed", "tower_seed")
    got = paired_difference(da, db)
    assert got == ref and got.labels[6] == "tower_seed=1, prompt_seed=1"
    bad = da.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="tower_seed=1, prompt_seed=1"):
        paired_difference(bad, db)


def test_printed_summary(ab):
    a, b = ab
    d = paired_difference(a, b, names=("CoOp", "zero-shot"))
    assert isinstance(d, PairedDifference)
    text = str(d)
    assert text.startswith("CoOp − zero-shot: Δ = +0.0")
    assert "(95 % t, n = 10)" in text and "p_perm = " in text and "exact, 1024 sign patterns" in text
    assert f"p_t = {d.p_t:.2g}" in text and "<span" in d._repr_html_()
