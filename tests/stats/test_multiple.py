"""The Holm correction: a hand-computed example, its defining properties, and statsmodels where installed."""

from __future__ import annotations

import numpy as np
import pytest

from ncprobe.stats import holm, holm_adjust


def test_hand_computed_example():
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → running max 0.06
    table = holm([0.01, 0.04, 0.03, 0.005], names=["a", "b", "c", "d"])
    assert table["name"].tolist() == ["a", "b", "c", "d"]
    assert table["p"].tolist() == [0.01, 0.04, 0.03, 0.005]
    np.testing.assert_allclose(table["p_holm"], [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    assert table["reject"].tolist() == [True, False, False, True]
    assert table.attrs == {"alpha": 0.05, "m": 4, "method": "holm"}
    assert holm(table.set_index("name")["p"].to_dict(), alpha=0.1)["reject"].tolist() == [True] * 4


def test_capped_at_one_ties_and_a_single_test():
    np.testing.assert_allclose(holm_adjust([0.5, 0.6, 0.9]), [1.0, 1.0, 1.0])
    np.testing.assert_allclose(holm_adjust([0.02, 0.02, 0.5]), [0.06, 0.06, 0.5])
    assert holm_adjust([0.03]).tolist() == [0.03]


def test_properties_against_the_definition():
    rng = np.random.default_rng(0)
    for m in (2, 5, 13):
        p = rng.uniform(0, 0.2, size=m) ** 2
        got = holm_adjust(p)
        order = np.argsort(p)
        want = [max(min(1.0, (m - j) * p[order[j]]) for j in range(i + 1)) for i in range(m)]
        np.testing.assert_allclose(got[order], want, rtol=1e-12)
        assert np.all(got >= p) and np.all(got <= 1) and np.all(np.diff(got[order]) >= 0)


def test_matches_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.random.default_rng(2).uniform(0, 0.1, size=9)
    reject, adjusted, _, _ = multitest.multipletests(p, alpha=0.05, method="holm")
    table = holm(p)
    np.testing.assert_allclose(table["p_holm"], adjusted, rtol=1e-12)
    assert table["reject"].tolist() == reject.tolist()


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"\[0, 1\]; not so for \['b'\]"):
        holm([0.1, np.nan], names=["a", "b"])
    with pytest.raises(ValueError, match=r"not so for \['test 1'\]"):
        holm([1.5])
    with pytest.raises(ValueError, match="2 names for 3 p-values"):
        holm([0.1, 0.2, 0.3], names=["a", "b"])
    with pytest.raises(ValueError, match="no p-values"):
        holm_adjust([])
    with pytest.raises(ValueError, match="alpha"):
        holm([0.1], alpha=1.0)
