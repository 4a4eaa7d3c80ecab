"""Correlations agree with scipy; the Fisher-z interval is always there with n; a bootstrap over fewer than
20 units is flagged; the cluster bootstrap resamples whole clusters; within/between agree with regression."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from ncprobe.stats import correlation, fisher_interval, within_between


@pytest.fixture(scope="module")
def xy():
    rng = np.random.default_rng(3)
    x = rng.normal(size=15)
    return x, 0.6 * x + rng.normal(size=15)


def test_pearson_matches_scipy_with_its_fisher_interval(xy):
    x, y = xy
    c = correlation(x, y, confidence=0.9, n_boot=0)
    ref = sps.pearsonr(x, y)
    ci = ref.confidence_interval(confidence_level=0.9)
    assert c.r == pytest.approx(ref.statistic, abs=1e-12) and c.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert c.ci_low == pytest.approx(ci.low, abs=1e-12) and c.ci_high == pytest.approx(ci.high, abs=1e-12)
    assert c.n == 15 and c.df == 13 and c.boot is None
    assert "(90 % Fisher z, n = 15)" in str(c) and "bootstrap" not in str(c)


def test_spearman_matches_scipy_and_uses_the_bonett_wright_se(xy):
    x, y = np.round(xy[0], 0), np.round(xy[1], 0)  # many ties: average ranks
    c = correlation(x, y, method="spearman", n_boot=0)
    ref = sps.spearmanr(x, y)
    assert c.r == pytest.approx(ref.statistic, abs=1e-12) and c.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    se = np.sqrt((1 + c.r**2 / 2) / (15 - 3))
    want = np.tanh(np.arctanh(c.r) + np.array([-1, 1]) * sps.norm.ppf(0.975) * se)
    np.testing.assert_allclose([c.ci_low, c.ci_high], want, rtol=1e-12)
    assert "Bonett–Wright se" in str(c) and str(c).startswith("Spearman ρ = ")


def test_percentile_bootstrap_matches_scipy_and_is_flagged_under_20_runs(xy):
    x, y = xy
    for method, func in (("pearson", sps.pearsonr), ("spearman", sps.spearmanr)):
        ref = sps.bootstrap(
            (x, y),
            lambda a, b, func=func: func(a, b).statistic,
            paired=True,
            vectorized=False,
            method="percentile",
            n_resamples=4000,
            rng=np.random.default_rng(1),
        ).confidence_interval
        c = correlation(x, y, method=method, n_boot=4000, seed=0)
        assert c.boot == "percentile" and c.n_units == 15 and c.small_bootstrap
        assert c.boot_low == pytest.approx(ref.low, abs=0.04) and c.boot_high == pytest.approx(ref.high, abs=0.04)
        text = str(c)
        assert "Fisher z, " in text and "n = 15" in text
        assert text.index("Fisher z") < text.index("percentile bootstrap")  # never alone, never first
        assert text.endswith("bootstrap over n < 20 runs: read the Fisher-z interval")
        assert "boot [" in c.label() and c.label().count("*") == 1
    assert correlation(x, y, seed=5) == correlation(x, y, seed=5) != correlation(x, y, seed=6)
    rng = np.random.default_rng(0)
    big = rng.normal(size=25)
    c = correlation(big, big + rng.normal(size=25), n_boot=500)
    assert not c.small_bootstrap and "read the Fisher-z" not in str(c) and "*" not in c.label()


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_cluster_bootstrap_resamples_whole_clusters(method):
    """The weighted computation equals the r of each concatenated resample, drawn from the same generator."""
    rng = np.random.default_rng(4)
    clusters = np.repeat(np.array(["s0", "s1", "s2", "s3", "s4", "s5"]), [3, 4, 2, 3, 3, 1])
    x = np.round(rng.normal(size=clusters.size), 1)
    y = np.round(0.5 * x + rng.normal(size=clusters.size), 1)
    c = correlation(x, y, method=method, clusters=clusters, n_boot=300, seed=9)
    codes = np.unique(clusters, return_inverse=True)[1]  # same order as first appearance here
    members = [np.flatnonzero(codes == g) for g in range(6)]
    func = sps.pearsonr if method == "pearson" else sps.spearmanr
    rs = []
    for draw in np.random.default_rng(9).integers(0, 6, size=(300, 6)):
        idx = np.concatenate([members[g] for g in draw])
        if np.ptp(x[idx]) > 0 and np.ptp(y[idx]) > 0:
            rs.append(func(x[idx], y[idx]).statistic)
    np.testing.assert_allclose([c.boot_low, c.boot_high], np.quantile(rs, [0.025, 0.975]), rtol=1e-10)
    assert c.boot == "cluster" and c.n_units == 6 and c.n == 16
    assert "cluster bootstrap (6 clusters)" in str(c) and "bootstrap over 6 < 20 clusters" in str(c)


def test_undefined_and_missing_values():
    c = correlation([0.906, 0.906, 0.9060000000000001, 0.906], [0.1, 0.2, 0.3, 0.4])
    assert np.isnan(c.r) and np.isnan(c.p_value) and c.reason == "x is constant (0.906)"
    assert str(c) == "Pearson r undefined (n = 4): x is constant (0.906)" and "undefined (n = 4)" in c.label()
    assert correlation([1, 2], [2, 1]).reason == "fewer than 3 pairs"
    three = correlation([1, 2, 3], [1, 3, 2], n_boot=0)
    assert three.r == pytest.approx(0.5) and np.isnan(three.ci_low) and "interval needs n ≥ 4" in str(three)
    with pytest.raises(ValueError, match=r"NaN or inf in x or y at \['#2'\]"):
        correlation([1, 2, np.nan, 4, 5], [2, 1, 3, 4, 6])
    c = correlation([1, 2, np.nan, 4, 5], [2, 1, 3, np.inf, 6], nan_policy="omit", n_boot=0)
    assert c.n == 3 and c.r == pytest.approx(sps.pearsonr([1, 2, 5], [2, 1, 6]).statistic)
    with pytest.raises(ValueError, match="method"):
        correlation([1, 2, 3], [1, 2, 3], method="kendall")
    with pytest.raises(ValueError, match="clusters has 2 labels for 3 pairs"):
        correlation([1, 2, 3], [1, 2, 4], clusters=[0, 1])
    assert fisher_interval(1.0, 10) == (1.0, 1.0) and np.isnan(fisher_interval(0.3, 3)[0])
    one_seed = correlation([1, 2, 3, 4], [1, 3, 2, 4], clusters=[0, 0, 0, 0])
    assert np.isnan(one_seed.boot_low) and "boot [undefined: one unit" in one_seed.label()


def test_within_between_matches_regression_on_condition_dummies():
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(5), 6)
    level = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    x = level[g] + rng.normal(scale=0.5, size=g.size)
    y = level[g] - 0.6 * (x - level[g]) + rng.normal(scale=0.3, size=g.size)  # Simpson: + between, − within
    between, within = within_between(x, y, g)
    means = np.array([[x[g == k].mean(), y[g == k].mean()] for k in range(5)])
    ref = sps.pearsonr(means[:, 0], means[:, 1])
    assert between.n == 5 and between.r == pytest.approx(ref.statistic) and between.r > 0.9
    # y on x plus one intercept per condition: the t of x's slope has N − G − 1 = 24 degrees of freedom
    design = np.column_stack([x, (g[:, None] == np.arange(5)).astype(float)])
    coef, res, *_ = np.linalg.lstsq(design, y, rcond=None)
    df = g.size - 5 - 1
    s2 = res[0] / df
    t = coef[0] / np.sqrt(s2 * np.linalg.inv(design.T @ design)[0, 0])
    resid_x = x - design[:, 1:] @ np.linalg.lstsq(design[:, 1:], x, rcond=None)[0]
    resid_y = y - design[:, 1:] @ np.linalg.lstsq(design[:, 1:], y, rcond=None)[0]
    assert within.r == pytest.approx(sps.pearsonr(resid_x, resid_y).statistic, abs=1e-12) and within.r < 0
    assert within.df == df and within.n == 30
    assert within.p_value == pytest.approx(2 * sps.t.sf(abs(t), df), rel=1e-8)
    np.testing.assert_allclose([within.ci_low, within.ci_high], fisher_interval(within.r, df), rtol=1e-12)
    text = str(within_between(x, y, g))
    assert "between 5 conditions (means)" in text and "within 5 conditions" in text and "df = 24" in text
    sp_between, sp_within = within_between(x, y, g, method="spearman")
    assert sp_between.r == pytest.approx(sps.spearmanr(means[:, 0], means[:, 1]).statistic)
    assert sp_within.r < 0
    flat = within_between(level[g], y, g).within
    assert np.isnan(flat.r) and flat.reason == "x does not vary within conditions"
