"""The fast second read: chunked residuals, shared products, certified float32 decisions, the projected
scatter of a streamed second pass. Each path against the plain float64 reference."""

import numpy as np
import pytest
import torch

import ncprobe
from ncprobe import ClassStatistics, DecisionStatistics
from ncprobe.core import _numba_kernels
from ncprobe.core.decisions import DecisionTables
from tests._helpers import reference as ref


def _data(seed, c, d, n, offset=20.0, noise=1.0):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(c, d)) + offset
    y = rng.integers(0, c, size=n)
    x = (means[y] + noise * rng.normal(size=(n, d))).astype(np.float32)
    w = means - means.mean(0) + 0.3 * rng.normal(size=(c, d))
    return x, y, w


def _near_tied(seed=3, c=5, d=24, n=900, tie=1e-7):
    # Class 1 is class 0 shifted by 10·tie, and classifier rows 0 and 1 differ by ``tie`` relative along a
    # direction orthogonal to every class mean: the float32 scores of classes 0 and 1 cannot be told apart,
    # the float64 ones can, so many rows are decided only by the float64 re-scoring.
    rng = np.random.default_rng(seed)
    means = 3 * rng.normal(size=(c, d))
    y = np.repeat(np.arange(c), n // c)
    x = means[y] + 0.5 * rng.normal(size=(len(y), d))
    x[y == 1] = x[y == 0] + 10 * tie * rng.normal(size=d)
    mu = np.stack([x[y == k].mean(0) for k in range(c)])
    q, _ = np.linalg.qr(np.concatenate([mu.T, rng.normal(size=(d, 1))], 1))
    w = mu - mu.mean(0) + 0.3 * rng.normal(size=(c, d))
    w[1] = w[0] + tie * np.linalg.norm(w[0]) * q[:, c]
    return x, y, w


def _rates(report):
    return {k: report[k] for k in ("ncc_accuracy", "classifier_accuracy", "nc4_ncc_agreement")}


def _expected(w, x, y, c):
    e = ref.decisions(w, x, y, c)
    return {k: e[k] for k in ("ncc_accuracy", "classifier_accuracy", "nc4_ncc_agreement")}


@pytest.mark.parametrize("c, d", [(8, 40), (40, 12)])  # C < D (projected scatter) and C ≥ D (full scatter)
@pytest.mark.parametrize("chunk_rows", [None, 37])
def test_in_memory_nc1_and_decisions_match_float64_reference(c, d, chunk_rows):
    x, y, w = _data(0, c, d, 1500)
    stats, dec = ncprobe.compute_statistics(x, y, classifiers={"classifier": w}, chunk_rows=chunk_rows)
    report = ncprobe.measure(stats, decisions=dec)
    assert report["nc1"] == pytest.approx(ref.nc1(x, y, c), rel=1e-9)
    assert _rates(report) == _expected(w, x, y, c)


@pytest.mark.parametrize("scatter", ["projected", "full"])
@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])  # float32: logits of the features themselves
def test_near_ties_are_decided_as_in_float64(scatter, precision, dtype):
    x, y, w = _near_tied()
    x = x.astype(dtype)
    report = ncprobe.measure(x, y, classifier=w, scatter=scatter, precision=precision)
    assert _rates(report) == _expected(w, x, y, 5)


def test_torch_top2_equals_numba_top2(monkeypatch):
    x, y, w = _near_tied(seed=4)
    fast = ncprobe.measure(x, y, classifier=w, scatter="full")
    monkeypatch.setattr(_numba_kernels, "AVAILABLE", False)
    slow = ncprobe.measure(x, y, classifier=w, scatter="full", backend="torch")
    assert _rates(fast) == _rates(slow) == _expected(w, x, y, 5)


def _tf32(t: torch.Tensor) -> torch.Tensor:
    """Truncate float32 values to TF32's 10 explicit mantissa bits (the worst case of a tensor core)."""
    bits = t.float().contiguous().view(torch.int32) & ~((1 << 13) - 1)
    return bits.view(torch.float32)


def test_gpu_bound_certifies_tf32_products(monkeypatch):
    # The GPU bound must cover products of TF32-truncated inputs: emulate them on the CPU.
    x, y, w = _near_tied(seed=5, d=64, tie=1e-4)  # resolved by float32, not by TF32
    stats = ClassStatistics(5).update(x, y)
    dec = DecisionStatistics(stats, classifiers={"classifier": w})
    cuda_unit = DecisionTables.unit(64, torch.device("cuda"))
    monkeypatch.setattr(DecisionTables, "unit", staticmethod(lambda dim, device: cuda_unit))
    dec.tables.stacked32 = _tf32(dec.tables.stacked32)
    r = torch.from_numpy(x).double() - stats.means[torch.from_numpy(y)]
    dec.add_residuals(r, _tf32(r), torch.from_numpy(y), r.pow(2).sum(1))
    got = {
        "ncc_accuracy": float(dec.ncc_correct.sum() / len(y)),
        "classifier_accuracy": float(dec.classifier_correct.sum() / len(y)),
        "nc4_ncc_agreement": float(dec.classifier_ncc_agree.sum() / len(y)),
    }
    assert got == _expected(w, x, y, 5)


@pytest.mark.parametrize("c, d", [(6, 30), (30, 10)])
@pytest.mark.parametrize("first_pass", ["scatter", "variance", "means"])
def test_streamed_equals_in_memory(c, d, first_pass):
    # "means": the first pass keeps counts and means only; the second supplies the sums of squares and the
    # scatter (projected when C < D, D×D when C ≥ D). "variance": the second supplies the scatter only.
    x, y, w = _data(1, c, d, 1200)
    stats = ClassStatistics(c, track_scatter=first_pass == "scatter", track_variance=first_pass != "means")
    for lo in range(0, len(x), 100):
        stats.update(x[lo : lo + 100], y[lo : lo + 100])
    dec = DecisionStatistics(stats, classifiers={"classifier": w})
    for lo in range(0, len(x), 64):
        dec.update(x[lo : lo + 64], y[lo : lo + 64])
    assert dec.scatter_kind == {"scatter": None}.get(first_pass, "projected" if c < d else "full")
    done = dec.statistics()
    assert (done is stats) == (first_pass == "scatter")
    streamed = ncprobe.measure(done, decisions=dec)
    direct = ncprobe.measure(x, y, classifier=w)
    assert streamed["nc1"] == pytest.approx(ref.nc1(x, y, c), rel=1e-9)
    for name in direct.keys():
        assert streamed[name] == pytest.approx(direct[name], rel=1e-9, abs=1e-12), name


def test_projected_scatter_merges_and_round_trips():
    x, y, w = _data(2, 5, 20, 800)
    stats = ClassStatistics(5, track_scatter=False).update(x, y)
    whole = DecisionStatistics(stats, classifiers={"w": w}).update(x, y)
    halves = [DecisionStatistics(stats, classifiers={"w": w}).update(x[i::2], y[i::2]) for i in range(2)]
    merged = halves[0].merge(halves[1])
    torch.testing.assert_close(merged.projected_scatter, whole.projected_scatter, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(merged.class_ss, whole.class_ss, rtol=1e-12, atol=0)
    torch.testing.assert_close(whole.class_ss, stats.class_ss, rtol=1e-12, atol=0)  # two-pass = Chan's update
    back = DecisionStatistics(stats, classifiers={"w": w}).load_state_dict(whole.state_dict())
    assert torch.equal(back.projected_scatter, whole.projected_scatter)
    assert torch.equal(back.class_ss, whole.class_ss)
    assert ncprobe.measure(back.projected_statistics(), decisions=back)["nc1"] == pytest.approx(
        ref.nc1(x, y, 5), rel=1e-9
    )
    # a state saved before the second pass kept sums of squares: the first pass's are used
    old = {k: v for k, v in whole.state_dict().items() if k != "class_ss"}
    back = DecisionStatistics(stats, classifiers={"w": w}).load_state_dict(old)
    assert back.class_ss is None and torch.equal(back.projected_statistics().class_ss, stats.class_ss)
    lean = ClassStatistics(5, track_scatter=False, track_variance=False).update(x, y)
    back = DecisionStatistics(lean, classifiers={"w": w}).load_state_dict(old)
    with pytest.raises(ValueError, match="neither pass"):
        back.projected_statistics()


def test_measure_completes_a_first_pass_with_the_second():
    x, y, w = _data(8, 5, 20, 600)
    direct = ncprobe.measure(x, y, classifier=w)
    for variance in (True, False):
        stats = ClassStatistics(5, track_scatter=False, track_variance=variance).update(x, y)
        dec = DecisionStatistics(stats, classifiers={"classifier": w}).update(x, y)
        assert dec.completes(stats) and not dec.completes(stats.copy())
        report = ncprobe.measure(stats, decisions=dec)
        assert report["nc1"] == pytest.approx(direct["nc1"], rel=1e-9)
        assert report["ncc_accuracy"] == direct["ncc_accuracy"]
    stats.update(x[:10], y[:10])  # first-pass statistics changed after the second pass: refused
    with pytest.raises(ValueError, match="other class statistics"):
        ncprobe.measure(stats, decisions=dec)
    # a second pass over other samples completes nothing: without a scatter there is no NC1
    stats = ClassStatistics(5, track_scatter=False).update(x, y)
    part = DecisionStatistics(stats, classifiers={"classifier": w}).update(x[:300], y[:300])
    assert not part.completes(stats)
    report = ncprobe.measure(stats, decisions=part)
    assert "nc1" not in report.scalars() or np.isnan(report["nc1"])
    assert report["cdnv"] == pytest.approx(direct["cdnv"], rel=1e-9)


def test_counts_and_means_only_first_pass():
    x, y, w = _data(6, 5, 20, 900)
    full = ClassStatistics(5, track_scatter=False).update(x, y)
    shards = [ClassStatistics(5, track_scatter=False, track_variance=False).update(x[i::3], y[i::3]) for i in range(3)]
    lean = shards[0].copy().merge(shards[1]) + shards[2]
    assert lean.class_ss is None and not lean.track_variance and "variances=no" in repr(lean)
    torch.testing.assert_close(lean.means, full.means, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(lean.normalized_sum, full.normalized_sum, rtol=1e-13, atol=1e-13)
    assert torch.equal(lean.counts, full.counts)
    back = ClassStatistics.from_state_dict(lean.state_dict())
    assert back.class_ss is None and not back.track_variance and torch.equal(back.means, lean.means)
    for needs_variances in (lambda: ncprobe.measure(lean), lambda: lean.class_variances):
        with pytest.raises(ValueError, match="counts and means only"):
            needs_variances()
    with pytest.raises(ValueError, match="track_variance=False"):
        full.copy().merge(lean)
    with pytest.raises(ValueError, match="needs track_variance=True"):
        ClassStatistics(5, track_variance=False)
    bad = x.copy()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="inf"):
        ClassStatistics(5, track_scatter=False, track_variance=False).update(bad, y)
    dec = DecisionStatistics(lean, classifiers={"w": w}).update(x, y)
    done = dec.projected_statistics()
    torch.testing.assert_close(done.class_ss, full.class_ss, rtol=1e-12, atol=0)
    assert ncprobe.measure(done, decisions=dec)["nc1"] == pytest.approx(ref.nc1(x, y, 5), rel=1e-9)


def test_projected_statistics_refuses_other_data():
    x, y, w = _data(3, 4, 16, 400)
    stats = ClassStatistics(4, track_scatter=False).update(x, y)
    dec = DecisionStatistics(stats).update(x[:200], y[:200])
    with pytest.raises(ValueError, match="same data in both passes"):
        dec.projected_statistics()
    with pytest.raises(ValueError, match="neither pass holds a within-class scatter"):
        DecisionStatistics(stats, scatter=None).update(x, y).statistics()
    with pytest.raises(ValueError, match="scatter must be"):
        DecisionStatistics(stats, scatter="diagonal")


def test_full_scatter_of_the_second_pass_merges_all_reduces_and_round_trips():
    x, y, w = _data(7, 12, 6, 900)  # C ≥ D: the second pass forms S_W = RᵀR
    stats = ClassStatistics(12, track_scatter=False, track_variance=False).update(x, y)
    whole = DecisionStatistics(stats, classifiers={"w": w}).update(x, y)
    assert whole.scatter_kind == "full" and whole.projected_scatter is None
    reference = ClassStatistics(12).update(x, y)
    torch.testing.assert_close(whole.scatter, reference.scatter, rtol=1e-12, atol=1e-9)
    halves = [DecisionStatistics(stats, classifiers={"w": w}).update(x[i::2], y[i::2]) for i in range(2)]
    merged = halves[0].merge(halves[1])
    torch.testing.assert_close(merged.scatter, whole.scatter, rtol=1e-12, atol=1e-9)
    back = DecisionStatistics(stats, classifiers={"w": w}).load_state_dict(whole.state_dict())
    assert torch.equal(back.scatter, whole.scatter) and torch.equal(back.class_ss, whole.class_ss)
    done = back.statistics()
    assert done.scatter is not None and done.projected_scatter is None
    done.merge(ClassStatistics(12).update(x[:50], y[:50]))  # a D×D scatter: such statistics merge
    other = DecisionStatistics(stats, classifiers={"w": w}, scatter="projected").update(x, y)
    with pytest.raises(ValueError, match="cannot merge a pass with scatter 'projected'"):
        whole.merge(other)
    with pytest.raises(ValueError, match="holds no scatter"):
        DecisionStatistics(stats, classifiers={"w": w}).load_state_dict(other.state_dict())
    assert ncprobe.measure(back.statistics(), decisions=back)["nc1"] == pytest.approx(ref.nc1(x, y, 12), rel=1e-9)


def test_non_finite_features_are_refused_by_both_passes():
    x, y, w = _data(4, 3, 6, 300)
    stats = ClassStatistics(3).update(x, y)
    dec = DecisionStatistics(stats)
    bad = x.copy()
    bad[7, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        dec.update(bad, y)
    with pytest.raises(ValueError, match="NaN"):
        ClassStatistics(3).update(bad, y)
    with pytest.raises(ValueError, match="overflow"):
        ClassStatistics(3).update(1e200 * np.random.default_rng(0).normal(size=(6, 6)), [0, 1, 2, 0, 1, 2])


def _projected_worker(rank, world, init_file, x, y, w, out_file):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    c = w.shape[0]
    stats = ClassStatistics(c, track_scatter=False, track_variance=False).update(x[rank::world], y[rank::world])
    stats.all_reduce()
    dec = DecisionStatistics(stats, classifiers={"classifier": w}).update(x[rank::world], y[rank::world])
    dec.all_reduce()
    if rank == 0:
        torch.save(ncprobe.measure(dec.statistics(), decisions=dec).scalars(), out_file)
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.parametrize("c, d", [(5, 20), (12, 6)])  # the second pass's projected or D×D scatter
def test_second_pass_all_reduce_equals_one_process(tmp_path, c, d):
    import torch.multiprocessing as mp

    x, y, w = _data(5, c, d, 600)
    out = tmp_path / "out.pt"
    mp.spawn(_projected_worker, args=(2, str(tmp_path / "init"), x, y, w, str(out)), nprocs=2, join=True)
    got = torch.load(out, weights_only=False)
    direct = ncprobe.measure(x, y, classifier=w).scalars()
    assert got["nc1"] == pytest.approx(ref.nc1(x, y, c), rel=1e-9)
    for name in ("nc4_ncc_agreement", "classifier_accuracy", "ncc_accuracy", "nc1_quotient"):
        assert got[name] == pytest.approx(direct[name], rel=1e-12), name
