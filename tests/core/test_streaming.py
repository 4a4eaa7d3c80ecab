"""Streaming accumulators: many small updates and merges equal one pass; distributed all-reduce."""

import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import ncprobe
from ncprobe import ClassStatistics, DecisionStatistics, metrics
from tests._helpers import reference as ref


def _data(seed=0, c=7, d=9, n=600, offset=30.0):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(c, d)) * 2 + offset
    y = rng.integers(0, c, size=n)
    x = means[y] + rng.normal(size=(n, d))
    return x, y


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_many_updates_equal_one_pass(backend):
    x, y = _data()
    one = ClassStatistics(7, backend=backend).update(x, y)
    many = ClassStatistics(7, backend=backend)
    for lo in range(0, len(x), 23):
        many.update(x[lo : lo + 23], y[lo : lo + 23])
    for name in ["counts", "means", "class_ss", "scatter", "normalized_sum"]:
        torch.testing.assert_close(getattr(many, name), getattr(one, name), rtol=1e-12, atol=1e-9)
    # Means are exact up to float64 rounding (here: against a float64 numpy pass).
    np.testing.assert_allclose(many.means.numpy(), ref.class_means(x, y, 7), rtol=1e-13)
    assert metrics.nc1(many) == pytest.approx(ref.nc1(x, y, 7), rel=1e-9)


def test_merge_of_shards_equals_one_pass_and_is_order_free():
    x, y = _data(1)
    shards = [ClassStatistics(7).update(x[i::3], y[i::3]) for i in range(3)]
    merged = shards[0].copy().merge(shards[1]).merge(shards[2])
    other_order = shards[2] + shards[0] + shards[1]
    one = ClassStatistics(7).update(x, y)
    for s in (merged, other_order):
        torch.testing.assert_close(s.scatter, one.scatter, rtol=1e-12, atol=1e-9)
        torch.testing.assert_close(s.class_ss, one.class_ss, rtol=1e-12, atol=1e-9)
        torch.testing.assert_close(s.means, one.means, rtol=1e-14, atol=0)


def test_numba_and_torch_paths_agree():
    x, y = _data(2, c=11, d=33, n=2000)
    a = ClassStatistics(11, backend="numba").update(x.astype(np.float32), y)
    b = ClassStatistics(11, backend="torch").update(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y))
    for name in ["counts", "means", "class_ss", "scatter", "normalized_sum"]:
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=1e-12, atol=1e-10)


def test_classes_missing_from_a_batch_and_empty_classes():
    x, y = _data(3, c=5)
    stats = ClassStatistics(6)  # class 5 never appears
    stats.update(x[y < 3], y[y < 3]).update(x[y >= 3], y[y >= 3])
    assert stats.counts[5] == 0
    report = ncprobe.measure(stats)
    assert report["nc1"] == pytest.approx(ref.nc1(x, y, 5), rel=1e-9)
    assert report.dataset.attrs["num_classes"] == 5


def test_second_pass_decisions_match_in_memory():
    x, y = _data(4)
    w = np.random.default_rng(0).normal(size=(7, 9))
    stats = ClassStatistics(7)
    for lo in range(0, len(x), 100):
        stats.update(x[lo : lo + 100], y[lo : lo + 100])
    dec = DecisionStatistics(stats, classifiers={"classifier": w})
    for lo in range(0, len(x), 64):
        dec.update(x[lo : lo + 64], y[lo : lo + 64])
    streamed = ncprobe.measure(stats, decisions=dec, classifier=w)
    direct = ncprobe.measure(x, y, classifier=w)
    for name in direct.keys():
        assert streamed[name] == pytest.approx(direct[name], rel=1e-9, abs=1e-12), name


def test_state_dict_round_trip(tmp_path):
    x, y = _data(5)
    stats = ClassStatistics(7, class_ids=list("abcdefg")).update(x, y)
    torch.save(stats.state_dict(), tmp_path / "s.pt")
    back = ClassStatistics.from_state_dict(torch.load(tmp_path / "s.pt", weights_only=False))
    assert metrics.nc1(back) == metrics.nc1(stats)
    assert list(back.class_ids) == list("abcdefg")


def test_update_errors():
    stats = ClassStatistics(3)
    with pytest.raises(ValueError, match="out of range"):
        stats.update(np.zeros((2, 4)), [0, 3])
    stats.update(np.ones((2, 4)), [0, 1])
    with pytest.raises(ValueError, match="4 dimensions|dimensions"):
        stats.update(np.zeros((2, 5)), [0, 1])
    with pytest.raises(ValueError, match="NaN"):
        stats.update(np.array([[0, np.nan, 0, 0.0]]), [0])
    with pytest.raises(ValueError, match="cannot merge"):
        stats.merge(ClassStatistics(4).update(np.zeros((1, 4)), [0]))
    with pytest.raises(ValueError, match="empty"):
        metrics.nc1(ClassStatistics(3))


def _worker(rank, world, init_file, x, y, out_file):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    stats = ClassStatistics(7).update(x[rank::world], y[rank::world])
    stats.all_reduce()
    dec = DecisionStatistics(stats).update(x[rank::world], y[rank::world]).all_reduce()
    if rank == 0:
        torch.save({"stats": stats.state_dict(), "ncc": dec.ncc_correct, "n": dec.counts}, out_file)
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")
def test_all_reduce_across_processes_equals_one_pass(tmp_path):
    x, y = _data(6)
    out = tmp_path / "out.pt"
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), x, y, str(out)), nprocs=2, join=True)
    got = torch.load(out, weights_only=False)
    reduced = ClassStatistics.from_state_dict(got["stats"])
    one = ClassStatistics(7).update(x, y)
    torch.testing.assert_close(reduced.scatter, one.scatter, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(reduced.means, one.means, rtol=1e-13, atol=1e-12)
    assert float(got["ncc"].sum() / got["n"].sum()) == pytest.approx(ref.decisions(None, x, y, 7)["ncc_accuracy"])
    assert os.path.exists(out)


def test_streamed_text_classifier_matches_in_memory():
    x, y = _data(7)
    text = np.random.default_rng(1).normal(size=(7, 9)) * 5  # unnormalised on purpose
    stats = ClassStatistics(7).update(x, y)
    dec = DecisionStatistics(stats, classifiers={"text": text}).update(x, y)
    streamed = ncprobe.measure(stats, decisions=dec, text_features=text)
    direct = ncprobe.measure(x, y, text_features=text)
    for name in ["t2i_zero_shot_accuracy", "t2i_ncc_agreement", "t2i_text_etf_error", "t2i_self_duality"]:
        assert streamed[name] == pytest.approx(direct[name], rel=1e-12), name


def test_accumulator_protocol_reset_state_and_moments():
    x, y = _data(11)
    stats = ClassStatistics(7).update(x, y)
    dec = DecisionStatistics(stats, classifiers={"w": np.eye(7, 9)}).update(x, y)
    # load_state_dict into a fresh accumulator equals the original; reset empties it
    fresh = ClassStatistics(7).load_state_dict(stats.state_dict())
    for name in ("counts", "means", "class_ss", "scatter", "normalized_sum"):
        assert torch.equal(getattr(fresh, name), getattr(stats, name))
    fresh.reset()
    assert fresh.n_samples == 0 and fresh.dim == 9
    fresh.update(x, y)
    assert torch.allclose(fresh.scatter, stats.scatter, rtol=0, atol=0)
    # a public constructor from moments gives the same report as the accumulator
    built = ClassStatistics.from_moments(
        stats.counts, stats.means, stats.class_ss, scatter=stats.scatter, normalized_sum=stats.normalized_sum
    )
    assert ncprobe.measure(built).scalars() == ncprobe.measure(stats).scalars()
    # decisions: reset zeroes the tallies, load_state_dict restores them, other statistics are refused
    saved = dec.state_dict()
    dec.reset()
    assert float(dec.counts.sum()) == 0
    dec.load_state_dict(saved)
    assert float(dec.counts.sum()) == len(y)
    other = ClassStatistics(7).update(x[:-3], y[:-3])
    with pytest.raises(ValueError, match="different class statistics"):
        DecisionStatistics(other, classifiers={"w": np.eye(7, 9)}).load_state_dict(saved)
    with pytest.raises(ValueError, match="state holds 7 classes"):
        ClassStatistics(5).load_state_dict(stats.state_dict())
    assert "classifiers=['w']" in repr(dec)


def test_measure_uses_decisions_under_any_name_and_refuses_mismatches():
    x, y = _data(12)
    w = np.random.default_rng(0).normal(size=(7, 9))
    stats = ClassStatistics(7).update(x, y)
    dec = DecisionStatistics(stats, classifiers={"linear": w}).update(x, y)
    direct = ncprobe.measure(x, y, classifier=w)
    streamed = ncprobe.measure(stats, decisions=dec)  # classifier found in the decisions
    for name in ("nc4_ncc_agreement", "classifier_accuracy", "nc3_self_duality", "nc3_duality_gram"):
        assert streamed[name] == pytest.approx(direct[name], rel=1e-12), name
    assert streamed.attrs["classifier"] == "decisions:linear"
    assert ncprobe.measure(stats, decisions=dec, classifier=w)["nc4_ncc_agreement"] == direct["nc4_ncc_agreement"]
    with pytest.raises(ValueError, match="none of which is the classifier passed"):
        ncprobe.measure(stats, decisions=dec, classifier=w + 1.0)
    other = ClassStatistics(7).update(x[::2], y[::2])
    with pytest.raises(ValueError, match="other class statistics"):
        ncprobe.measure(other, decisions=dec)
    two = DecisionStatistics(stats, classifiers={"a": w, "b": 2 * w}).update(x, y)
    with pytest.raises(ValueError, match="several classifiers"):
        ncprobe.measure(stats, decisions=two)
    assert ncprobe.measure(stats, decisions=two, classifier=2 * w)["classifier_accuracy"] == pytest.approx(
        direct["classifier_accuracy"]
    )
    with pytest.raises(TypeError, match="mapping"):
        DecisionStatistics(stats, classifiers=[w])
