import numpy as np
import pytest
import torch

from ncprobe.core.anchors import relative_representation, select_anchors
from ncprobe.core.mmd import CRAFT_BANDWIDTHS, gaussian_kernel, minmax_normalize, mmd2


def _np_kernel(a, b, bws):
    d = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return sum(np.exp(-d / (2 * s)) for s in bws)


def test_mmd_estimators_match_numpy_reference():
    g = np.random.default_rng(0)
    x, y = g.normal(size=(20, 4)), g.normal(1.0, 1.0, size=(13, 4))
    bws = (0.5, 2.0)
    kxx, kyy, kxy = _np_kernel(x, x, bws), _np_kernel(y, y, bws), _np_kernel(x, y, bws)
    biased = kxx.mean() + kyy.mean() - 2 * kxy.mean()
    unbiased = (kxx.sum() - np.trace(kxx)) / (20 * 19) + (kyy.sum() - np.trace(kyy)) / (13 * 12) - 2 * kxy.mean()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    assert float(mmd2(tx, ty, bandwidths=bws)) == pytest.approx(biased, rel=1e-10)
    assert float(mmd2(tx, ty, bandwidths=bws, estimator="unbiased")) == pytest.approx(unbiased, rel=1e-10)


def test_mmd_detects_shift_and_is_differentiable():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 3, generator=g, dtype=torch.float64)
    same = torch.randn(300, 3, generator=g, dtype=torch.float64)
    shifted = (torch.randn(300, 3, generator=g, dtype=torch.float64) + 1.0).requires_grad_()
    null = mmd2(x, same, bandwidths=(1.0,), estimator="unbiased")
    alt = mmd2(x, shifted, bandwidths=(1.0,), estimator="unbiased")
    assert abs(float(null)) < 0.02 < float(alt.detach())
    alt.backward()
    assert shifted.grad is not None and torch.isfinite(shifted.grad).all()


def test_minmax_normalisation_as_craft():
    x = torch.tensor([[1.0, 5.0], [3.0, 5.0], [2.0, 5.0]])
    out = minmax_normalize(x)
    torch.testing.assert_close(out[:, 0], torch.tensor([0.0, 1.0, 0.5]), atol=1e-6, rtol=0)
    assert torch.all(out[:, 1] == 0)  # a constant column maps to 0, not NaN
    assert float(mmd2(x, x + 7.0, normalize="minmax")) == pytest.approx(0.0, abs=1e-12)
    k = gaussian_kernel(x, x, CRAFT_BANDWIDTHS)
    torch.testing.assert_close(k.diagonal(), torch.full((3,), 4.0))


def test_mmd_bad_input():
    with pytest.raises(ValueError, match="equal column"):
        mmd2(torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="at least 2"):
        mmd2(torch.zeros(1, 2), torch.zeros(3, 2), estimator="unbiased")
    with pytest.raises(ValueError, match="positive"):
        mmd2(torch.zeros(3, 2), torch.zeros(3, 2), bandwidths=(0.0,))


def test_relative_representation_is_scaled_cosine_and_differentiable():
    x = torch.randn(5, 8, requires_grad=True)
    a = torch.randn(3, 8)
    rel = relative_representation(x, a, scale=100.0)
    expected = 100 * torch.nn.functional.cosine_similarity(x[:, None], a[None], dim=-1)
    torch.testing.assert_close(rel, expected, rtol=1e-5, atol=1e-4)
    rel.sum().backward()
    assert x.grad is not None
    with pytest.raises(ValueError, match="dimension"):
        relative_representation(x, torch.randn(3, 7))


def test_anchor_selection_methods():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    x = np.eye(3, 6)[y] * 10 + rng.normal(size=(60, 6))
    means, owners = select_anchors(x, y)
    np.testing.assert_allclose(means.numpy(), np.stack([x[y == k].mean(0) for k in range(3)]), rtol=1e-6)
    assert owners.tolist() == [0, 1, 2]
    km, owners = select_anchors(x, y, method="kmeans", per_class=2, seed=0)
    assert km.shape == (6, 6) and owners.tolist() == [0, 0, 1, 1, 2, 2]
    fp, _ = select_anchors(x, method="farthest", num_anchors=3, seed=0)
    # Farthest-point sampling over three separated clusters picks one point from each.
    picked = [int(np.argmax(row[:3])) for row in fp.numpy()]
    assert sorted(picked) == [0, 1, 2]
    r1, _ = select_anchors(x, y, method="random", per_class=2, seed=1)
    r2, _ = select_anchors(x, y, method="random", per_class=2, seed=1)
    torch.testing.assert_close(r1, r2)
    with pytest.raises(ValueError, match="needs labels"):
        select_anchors(x, method="class_mean")
    with pytest.raises(ValueError, match="unknown anchor method"):
        select_anchors(x, y, method="median")
