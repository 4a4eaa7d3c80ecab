import numpy as np
import pytest
import torch

from ncprobe.core.geometry import etf_gram, etf_structure_error, near_etf, nearest_etf, simplex_etf


@pytest.mark.parametrize("c,d", [(2, 1), (3, 2), (10, 9), (10, 10), (10, 64), (100, 512)])
def test_simplex_etf_properties(c, d):
    e = simplex_etf(c, d, seed=0)
    assert e.shape == (c, d)
    torch.testing.assert_close(e @ e.T, etf_gram(c), rtol=0, atol=1e-12)
    torch.testing.assert_close(e.sum(0), torch.zeros(d, dtype=torch.float64), rtol=0, atol=1e-12)


def test_seeds_rotate_and_none_is_canonical():
    a, b = simplex_etf(5, 8, seed=1), simplex_etf(5, 8, seed=2)
    assert not torch.allclose(a, b)
    torch.testing.assert_close(simplex_etf(5, 8, seed=1), a)
    canon = simplex_etf(5, 8)
    assert torch.all(canon[:, 4:] == 0)


def test_too_many_classes_raise_or_approximate():
    with pytest.raises(ValueError, match="dim >= 9"):
        simplex_etf(10, 8)
    approx = simplex_etf(12, 3, approximate=True)
    assert approx.shape == (12, 3)
    torch.testing.assert_close(approx.norm(dim=1), torch.ones(12, dtype=torch.float64))
    cos = (approx @ approx.T)[~torch.eye(12, dtype=torch.bool)]
    # Welch bound for 12 vectors in R^3 is sqrt(9/33) ≈ 0.52; a random frame is far worse.
    assert cos.max() < 0.75
    with pytest.raises(ValueError):
        simplex_etf(1, 3)


def test_structure_error_of_etf_gram_is_zero_and_scale_invariant():
    assert etf_structure_error(etf_gram(7) * 13.0) == pytest.approx(0, abs=1e-14)
    assert etf_structure_error(torch.eye(4)) > 0.1
    with pytest.raises(ValueError, match="zero"):
        etf_structure_error(torch.zeros(3, 3))


def test_nearest_etf_recovers_a_rotated_etf():
    e = simplex_etf(6, 10, seed=5).numpy()
    noisy = 3.0 * e + 0.01 * np.random.default_rng(0).normal(size=e.shape) + 1.0
    found = nearest_etf(noisy).numpy()
    np.testing.assert_allclose(found @ found.T, etf_gram(6).numpy(), atol=1e-12)
    np.testing.assert_allclose(found, e, atol=0.02)


def test_nearest_etf_is_optimal_among_random_rotations():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(5, 7))
    vc = v - v.mean(0)
    vc = vc / np.sqrt((vc**2).sum(1).mean())
    best = np.linalg.norm(nearest_etf(v).numpy() - vc)
    for seed in range(20):
        assert np.linalg.norm(simplex_etf(5, 7, seed=seed).numpy() - vc) >= best - 1e-12


def test_near_etf_falls_back_to_exact_when_possible():
    torch.testing.assert_close(near_etf(4, 5, seed=3), simplex_etf(4, 5, seed=3))


def test_a_loss_written_on_the_kernels_backpropagates_and_reaches_the_etf():
    """An NPT-style loss on the geometry kernels: gradients flow and descent drives the text Gram to the ETF."""
    from ncprobe.core.geometry import center_rows, etf_gram_deviation, etf_gram_distance, normalize_rows

    torch.manual_seed(0)
    t = torch.nn.Parameter(torch.randn(5, 16, dtype=torch.float64) + 3.0)  # a narrow cone, far from an ETF
    opt = torch.optim.Adam([t], lr=0.02)
    u0 = normalize_rows(t.detach())
    start = float(etf_gram_deviation(u0 @ u0.T))
    for _ in range(600):
        u = normalize_rows(t)
        loss = etf_gram_deviation(u @ u.T)
        opt.zero_grad()
        loss.backward()
        assert t.grad is not None and torch.isfinite(t.grad).all()
        opt.step()
    u = normalize_rows(t.detach())
    assert start > 0.5 and float(etf_gram_deviation(u @ u.T)) < 1e-3 * start
    assert float(etf_gram_distance(center_rows(u) @ center_rows(u).T)) < 0.05


def test_kernels_match_the_float_metrics():
    from ncprobe.core.geometry import etf_gram_distance, paired_cosines, self_duality_distance

    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(6, 9, generator=g, dtype=torch.float64), torch.randn(6, 9, generator=g, dtype=torch.float64)
    assert float(etf_gram_distance(a @ b.T)) == etf_structure_error(a @ b.T)
    expected = ((a / a.norm() - b / b.norm()) ** 2).sum()
    assert torch.allclose(self_duality_distance(a, b), expected)
    cos = torch.nn.functional.cosine_similarity(a, b, dim=1)
    assert torch.allclose(paired_cosines(a, b), cos)


def test_one_normaliser_keeps_zero_rows_at_zero_with_finite_gradients():
    from ncprobe.core.geometry import normalize_rows

    x = torch.tensor([[3.0, 4.0], [0.0, 0.0]], requires_grad=True)
    out = normalize_rows(x)
    out.sum().backward()
    assert torch.equal(out[1].detach(), torch.zeros(2)) and torch.isfinite(x.grad).all()
    assert torch.allclose(out[0], torch.tensor([0.6, 0.8]))
