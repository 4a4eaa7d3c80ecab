"""The correlation statistics agree with scipy; the correlation table and figure carry them, the Fisher-z
interval always with n and the bootstrap never alone (issue: statistics for notebooks)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from ncprobe.plotting import correlation_figure, correlation_table, runs_table
from ncprobe.plotting.stats import bootstrap_ci, correlate, pearson, spearman


@pytest.fixture(scope="module")
def xy():
    rng = np.random.default_rng(3)
    x = rng.normal(size=15)
    return x, 0.6 * x + rng.normal(size=15)


def test_pearson_and_spearman_match_scipy(xy):
    x, y = xy
    r, p = pearson(x, y)
    ref = sps.pearsonr(x, y)
    assert r == pytest.approx(ref.statistic, abs=1e-12) and p == pytest.approx(ref.pvalue, rel=1e-9)
    ties_x, ties_y = np.round(x, 0), np.round(y, 0)  # many ties: average ranks
    rho, p = spearman(ties_x, ties_y)
    ref = sps.spearmanr(ties_x, ties_y)
    assert rho == pytest.approx(ref.statistic, abs=1e-12) and p == pytest.approx(ref.pvalue, rel=1e-9)


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_bootstrap_interval_matches_scipy_percentile_bootstrap(xy, method):
    x, y = xy
    func = sps.pearsonr if method == "pearson" else sps.spearmanr
    ref = sps.bootstrap(
        (x, y),
        lambda a, b: func(a, b).statistic,
        paired=True,
        vectorized=False,
        method="percentile",
        n_resamples=4000,
        rng=np.random.default_rng(1),
    ).confidence_interval
    lo, hi = bootstrap_ci(x, y, method=method, n_resamples=4000, seed=0)
    assert lo == pytest.approx(ref.low, abs=0.04) and hi == pytest.approx(ref.high, abs=0.04)


def test_bootstrap_is_seeded_and_degenerate_inputs_give_nan(xy):
    x, y = xy
    assert bootstrap_ci(x, y, seed=5) == bootstrap_ci(x, y, seed=5)
    assert bootstrap_ci(x, y, seed=5) != bootstrap_ci(x, y, seed=6)
    assert np.isnan(pearson([1, 2], [3, 4])[0]) and np.isnan(pearson([1, 1, 1], [1, 2, 3])[0])
    c = correlate([1, 2, np.nan, 4, 5], [2, 1, 3, np.inf, 6])
    assert c.n == 3
    with pytest.raises(ValueError, match="method"):
        bootstrap_ci(x, y, method="kendall")
    with pytest.raises(ValueError, match="differ in length"):
        pearson([1, 2, 3], [1, 2])


def test_runs_table_copies_the_final_epoch(run_histories):
    table = runs_table(run_histories)
    assert len(table) == len(run_histories)
    h = run_histories[0]
    row = table.iloc[0]
    assert row["method"] == "CoOp" and row["epoch"] == int(h["epoch"][-1])
    assert row["nc1"] == float(h["nc1"].sel(eval_set="base").isel(epoch=-1))
    assert row["accuracy_novel"] == float(h["accuracy"].sel(eval_set="novel").isel(epoch=-1))
    assert row["hm"] == float(h["hm"].isel(epoch=-1))
    assert set(table["imbalance_ratio"]) == {1.0, 8.0}
    assert table["run"].is_unique


def test_runs_table_expands_seeds_and_picks_epochs(history):
    table = runs_table({"CoOp": history}, epoch=1, nc_eval_set="novel")
    assert table["seed"].tolist() == [0, 1, 2] and set(table["epoch"]) == {1}
    want = history["t2i_text_etf_error"].sel(eval_set="novel", epoch=1).values
    np.testing.assert_allclose(table["t2i_text_etf_error"], want)
    with pytest.raises(ValueError, match="eval_set='all'"):
        runs_table([history], nc_eval_set="all")


def test_correlation_table_and_figure(run_histories):
    table = runs_table(run_histories)
    stats = correlation_table(table, metric="t2i_text_etf_error", n_resamples=500)
    assert len(stats) == 6 and set(stats["method"]) == {"pearson", "spearman"}
    novel = stats[(stats["accuracy"] == "accuracy_novel") & (stats["method"] == "pearson")].iloc[0]
    assert novel["r"] == pytest.approx(sps.pearsonr(table["t2i_text_etf_error"], table["accuracy_novel"])[0])
    fig = correlation_figure(table, metric="t2i_text_etf_error", n_resamples=500)
    assert novel["label"] in fig.layout.annotations[1].text
    points = [t for t in fig.data if t.mode == "markers" and t.xaxis == "x"]
    assert sum(len(t.x) for t in points) == len(table)
    with pytest.raises(ValueError, match="no columns"):
        correlation_figure(table, metric="nope")


def test_the_figure_shows_the_fisher_interval_with_n_and_never_the_bootstrap_alone(run_histories):
    table = runs_table(run_histories)  # 8 runs: fewer than 20
    stats = correlation_table(table, metric="nc1", accuracies=["hm"], n_resamples=300)
    row = stats[stats["method"] == "pearson"].iloc[0]
    ci = sps.pearsonr(table["nc1"], table["hm"]).confidence_interval()
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert row["interval"] == "Fisher z" and row["bootstrap"] == "percentile" and row["small_bootstrap"]
    assert row["label"].startswith(f"Pearson r = {row['r']:.2f} [{ci.low:.2f}, {ci.high:.2f}], boot [")
    assert "]*, p = " in row["label"]
    fig = correlation_figure(table, metric="nc1", accuracies=["hm"], n_resamples=300)
    assert "(n = 8)" in fig.layout.annotations[0].text and row["label"] in fig.layout.annotations[0].text
    note = fig.layout.annotations[-1].text
    assert note.index("Fisher-z interval") < note.index("percentile-bootstrap")
    assert "* bootstrap over fewer than 20 runs: read the Fisher-z interval" in note
    by_seed = correlation_table(table, metric="nc1", accuracies=["hm"], n_resamples=300, clusters="seed")
    assert set(by_seed["bootstrap"]) == {"cluster"} and set(by_seed["boot_units"]) == {2}
    fig = correlation_figure(table, metric="nc1", accuracies=["hm"], n_resamples=300, clusters="seed")
    assert "whole seeds resampled" in fig.layout.annotations[-1].text
    with pytest.raises(ValueError, match="no columns"):
        correlation_table(table, metric="nc1", accuracies=["hm"], clusters="tower_seed")
