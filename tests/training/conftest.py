"""Shared fixtures of the training tests: tiny, fast configs on the embedded testbed."""

from __future__ import annotations

import pytest

from ncprobe.training import TrainConfig, get_preset

#: v3 out-of-distribution targets and their v2 counterpart (the same classes in another domain).
_V2_OOD_TARGET = {"testbed-colour": "testbed-shifted", "testbed-strokes": "testbed-shifted"}
#: The CoOp schedule the testbed presets had on v2 (these tests' thresholds were set with it). On v3 they take
#: full-batch steps (a batch size above any shot count), chosen on v3's validation split for v3's tower.
_V2_COOP = {"optim.epochs": 10, "optim.batch_size": 16, "optim.lr": 0.002}
_FULL_BATCH = 1024


def fast(preset: str, **changes) -> TrainConfig:
    """A preset on v2's fast testbed build, few shots, no progress bars, plus dotted-path changes.

    The testbed presets run on the v3 task ``testbed-strokes``; these tests exercise the engine on v2's fast
    build (``data.dataset='testbed'``, seconds to build) unless ``changes`` names another dataset: a preset's
    v3 ``data.ood_target`` becomes v2's ``testbed-shifted`` and v3's full-batch CoOp schedule v2's.
    ``tests/training/test_testbed_v3.py`` runs the v3 tasks.
    """
    cfg = get_preset(preset)
    base = {"model.testbed_preset": "fast", "data.num_shots": 4, "progress": False, "track.max_per_class": 40}
    if cfg.model.name == "testbed" and "data.dataset" not in changes:
        base["data.dataset"] = "testbed"
        if cfg.data.ood_target in _V2_OOD_TARGET:
            base["data.ood_target"] = _V2_OOD_TARGET[cfg.data.ood_target]
        if (cfg.optim.batch_size or 0) >= _FULL_BATCH:
            base.update(_V2_COOP)
    return cfg.replace(**{**base, **changes})


@pytest.fixture
def make_config():
    return fast
