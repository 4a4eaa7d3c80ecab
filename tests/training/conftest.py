"""Shared fixtures of the training tests: tiny, fast configs on the embedded testbed."""

from __future__ import annotations

import pytest

from ncprobe.training import TrainConfig, get_preset


def fast(preset: str, **changes) -> TrainConfig:
    """A preset on the fast testbed build, few shots, no progress bars, plus dotted-path changes."""
    base = {"model.testbed_preset": "fast", "data.num_shots": 4, "progress": False, "track.max_per_class": 40}
    return get_preset(preset).replace(**{**base, **changes})


@pytest.fixture
def make_config():
    return fast
