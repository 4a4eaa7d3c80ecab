"""Shared pieces of the sweep tests: a 2 methods × 2 seeds spec on the fast embedded testbed (v2 benchmark)."""

from __future__ import annotations

import pytest

#: Pinned: the fast testbed build, the v2 benchmark dataset, three tiny epochs of v2's CoOp schedule (the testbed
#: presets' own schedule may change), few shots, no bars.
FAST = {
    "model.testbed_preset": "fast",
    "data.dataset": "testbed",
    "data.num_shots": 4,
    "optim.epochs": 3,
    "optim.batch_size": 16,
    "optim.lr": 0.002,
    "track.max_per_class": 40,
    "progress": False,
}


def make_spec(out, *, executor: str | dict = "debug", **extra) -> dict:
    """The 2 methods (coop, coop+kgcoop) × 2 seeds sweep as a dict, writing to ``out``."""
    spec = {
        "name": "tiny",
        "base": "testbed-coop-b2n",
        "set": dict(FAST),
        "axes": {
            "method": ["coop", {"label": "coop+kgcoop", "method.name": "coop", "regularizers": ["kgcoop:8"]}],
            "seed": [1, 2],
        },
        "output_dir": str(out),
        "executor": executor if isinstance(executor, dict) else {"kind": executor},
    }
    spec.update(extra)
    return spec


@pytest.fixture(scope="session")
def debug_sweep(tmp_path_factory):
    """The uninterrupted sweep, run once with the debug executor: (spec, its folder)."""
    from ncprobe.sweep import sweep

    out = tmp_path_factory.mktemp("sweep") / "debug"
    spec = make_spec(out)
    plan = sweep(spec, progress=False)
    assert len(plan.submitted) == 4
    return spec, out
