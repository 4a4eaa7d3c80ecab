"""GPU path against the CPU paths and the float64 reference (skipped without CUDA)."""

import numpy as np
import pytest
import torch

import ncprobe
from ncprobe import ClassStatistics
from tests._helpers import reference as ref

pytestmark = pytest.mark.gpu


def _data(c=20, d=48, n=5000, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(c, d)) * 2 + 10
    y = rng.integers(0, c, size=n)
    return (means[y] + rng.normal(size=(n, d))).astype(np.float32), y, rng.normal(size=(c, d))


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_cuda_measure_matches_cpu_and_reference(precision):
    x, y, w = _data()
    xc, yc = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()
    gpu = ncprobe.measure(xc, yc, classifier=w, precision=precision)
    cpu = ncprobe.measure(x, y, classifier=w, backend="numba")
    rel = 1e-9 if precision == "float64" else 1e-4
    assert gpu["nc1"] == pytest.approx(ref.nc1(x, y, 20), rel=rel)
    for name in cpu.keys():
        assert gpu[name] == pytest.approx(cpu[name], rel=rel, abs=1e-9), name


def test_cuda_streaming_state_stays_on_device():
    x, y, _ = _data(c=10, d=16, n=1000)
    stats = ClassStatistics(10)
    for lo in range(0, 1000, 128):
        stats.update(torch.from_numpy(x[lo : lo + 128]).cuda().half(), torch.from_numpy(y[lo : lo + 128]).cuda())
    assert stats.scatter.device.type == "cuda" and stats.scatter.dtype == torch.float64
    cpu = ClassStatistics(10).update(torch.from_numpy(x).half().float(), y)
    torch.testing.assert_close(stats.scatter.cpu(), cpu.scatter, rtol=1e-10, atol=1e-8)
