"""The CPU read in parts (:mod:`ncprobe.core.cpu_read`): thread-count independence, BLAS thread settings
restored, chunking invisible, and the fused decide-and-count kernel against a plain argmax."""

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

import ncprobe
from ncprobe.core import _numba_kernels, cpu_read
from tests._helpers import reference as ref

pytestmark = pytest.mark.skipif(not _numba_kernels.AVAILABLE, reason="needs numba")


def _data(c=7, d=33, n=3000, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(c, d)) + 5.0
    y = rng.integers(0, c, size=n)
    x = (means[y] + rng.normal(size=(n, d))).astype(np.float32)
    return x, y, (means - means.mean(0) + 0.5 * rng.normal(size=(c, d))).astype(np.float32)


@pytest.mark.parametrize("scatter", ["projected", "full"])
def test_results_do_not_depend_on_the_thread_count(scatter):
    x, y, w = _data(n=20000)
    assert 20000 // cpu_read._MIN_PART_ROWS >= 3  # several parts, dealt differently to 1, 2 and 3 threads
    before = torch.get_num_threads()
    out = []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            stats, dec = ncprobe.compute_statistics(x, y, classifiers={"w": w}, scatter=scatter)
            out.append((stats.class_ss, stats.scatter, stats.projected_scatter, dec.w_ncc_agree, dec.ncc_correct))
    finally:
        torch.set_num_threads(before)
    for other in out[1:]:
        for a, b in zip(out[0], other):
            assert (a is None and b is None) or torch.equal(a, b)  # bit for bit


def test_blas_threads_are_restored_after_the_read():
    x, y, w = _data()
    blas = lambda: [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]  # noqa: E731
    before = blas()
    ncprobe.measure(x, y, classifier=w)
    assert blas() == before


@pytest.mark.parametrize("rows", [1, 5, 64, None])
def test_chunk_size_changes_no_decision_and_nc1_only_by_rounding(rows):
    x, y, w = _data(n=700)
    stats, dec = ncprobe.compute_statistics(x, y, classifiers={"classifier": w}, chunk_rows=rows)
    report = ncprobe.measure(stats, decisions=dec)
    assert report["nc1"] == pytest.approx(ref.nc1(x, y, 7), rel=1e-9)
    expected = ref.decisions(w, x, y, 7)
    for k in ("ncc_accuracy", "classifier_accuracy", "nc4_ncc_agreement"):
        assert report[k] == expected[k], k


def test_decide_count_tallies_certain_rows_and_returns_the_rest():
    rng = np.random.default_rng(1)
    n, c = 500, 6
    products = rng.normal(size=(n, c)).astype(np.float32)
    table = rng.normal(size=(c, c))
    codes = rng.integers(0, c, size=n)
    reference = rng.integers(0, c, size=n)
    scale = rng.uniform(0.0, 2.0, size=n)
    pred = np.empty(n, dtype=np.int64)
    correct, agree = np.zeros(c, dtype=np.int64), np.zeros(c, dtype=np.int64)
    bound = 0.3
    unsure = _numba_kernels.decide_count(
        products,
        2.0,
        table,
        codes,
        bound=bound,
        scale=scale,
        pred=pred,
        correct=correct,
        agree=agree,
        reference=reference,
    )
    scores = 2.0 * products.astype(np.float64) + table[codes]
    top = np.sort(scores, axis=1)
    margin = top[:, -1] - top[:, -2]
    assert np.array_equal(pred, scores.argmax(1))
    assert np.array_equal(unsure, np.flatnonzero(margin <= bound * scale))
    sure = np.setdiff1d(np.arange(n), unsure)
    assert 0 < len(unsure) < n  # both kinds of rows occur
    assert np.array_equal(correct, np.bincount(codes[sure], weights=pred[sure] == codes[sure], minlength=c))
    assert np.array_equal(agree, np.bincount(codes[sure], weights=pred[sure] == reference[sure], minlength=c))


@pytest.mark.parametrize("c", [1, 2, 3, 4, 5, 7, 8, 9, 13, 300])
def test_best_two_equals_a_sort_with_ties_and_absent_classes(c):
    # Small integers make many exact ties (the first index must win, the margin be 0); -inf columns are
    # classes that can never be chosen (absent from the NCC table). c covers the 4-lane loop and its tail.
    rng = np.random.default_rng(c)
    n = 400
    products = rng.integers(-3, 4, size=(n, c)).astype(np.float32)
    table = rng.integers(-2, 3, size=(c, c)).astype(np.float64)
    if c > 2:
        table[:, rng.choice(c, size=c // 3, replace=False)] = -np.inf
    codes = rng.integers(0, c, size=n)
    pred, margin = np.empty(n, dtype=np.int64), np.empty(n)
    _numba_kernels.best_two(products, 0.5, table, codes, pred, margin)
    scores = 0.5 * products.astype(np.float64) + table[codes]
    top = np.sort(scores, axis=1)
    assert np.array_equal(pred, scores.argmax(1))
    with np.errstate(invalid="ignore"):
        expected = top[:, -1] - top[:, -2] if c > 1 else np.full(n, np.inf)
    np.testing.assert_array_equal(margin, expected)
    assert c < 3 or (margin == 0).any()  # ties occurred


def test_parts_cover_every_row_once():
    x, y, _ = _data(n=5000)
    means = np.stack([x[y == k].astype(np.float64).mean(0) for k in range(7)])
    plan = cpu_read.ReadPlan(means, scatter="full", rows=33)
    assert len(x) // cpu_read._MIN_PART_ROWS >= 2
    res = cpu_read.read_in_parts(x, y.astype(np.int64), plan)
    r = x.astype(np.float64) - means[y]
    np.testing.assert_allclose(res.scatter, r.T @ r, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(res.class_ss, np.bincount(y, weights=(r * r).sum(1)), rtol=1e-12)


def test_streamed_first_pass_class_variances_match_two_passes():
    x, y, _ = _data(n=6000)
    stats = ncprobe.ClassStatistics(7, track_scatter=False)
    for lo in range(0, len(x), 700):
        stats.update(x[lo : lo + 700], y[lo : lo + 700])
    x64 = x.astype(np.float64)
    expected = [((x64[y == k] - x64[y == k].mean(0)) ** 2).sum() for k in range(7)]
    np.testing.assert_allclose(stats.class_ss.numpy(), expected, rtol=1e-11)
