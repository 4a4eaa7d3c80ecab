"""Reports and histories shared by the plotting tests (built once per session: CPU is scarce)."""

from __future__ import annotations

import pytest

from tests.plotting.histories import make_history, make_report


@pytest.fixture(scope="session")
def report():
    """Ten imbalanced classes with text features, head/medium/tail groups and a 200-sample cloud."""
    return make_report(num_classes=10, dim=24, samples_per_class=60, noise=1.2, imbalance=10, cloud=200)


@pytest.fixture(scope="session")
def history():
    """A three-seed CoOp-like history, epochs 0..4."""
    return make_history(method="CoOp", seeds=[0, 1, 2], epochs=4)


@pytest.fixture(scope="session")
def npt_history():
    return make_history(method="CoOp+NPT", seeds=[0, 1, 2], epochs=4, strength=0.9)


@pytest.fixture(scope="session")
def run_histories():
    """Single-seed runs over methods and imbalance ratios, for the correlation view."""
    return [
        make_history(method=m, seed=s, imbalance_ratio=r, strength=k, epochs=2)
        for m, k in (("CoOp", 0.2), ("CoOp+NPT", 0.8))
        for r in (1, 8)
        for s in (0, 1)
    ]
