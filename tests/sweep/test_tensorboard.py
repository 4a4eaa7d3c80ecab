"""track.tensorboard: every history scalar per epoch in the run folder; off by default; not part of the identity."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ncprobe.training import get_preset
from ncprobe.training.config import config_hash
from tests.sweep.conftest import FAST


def test_tensorboard_is_off_by_default_and_not_part_of_the_run_identity():
    cfg = get_preset("testbed-coop-b2n")
    assert cfg.track.tensorboard is False
    assert config_hash(cfg.replace(**{"track.tensorboard": True})) == config_hash(cfg)


def test_training_without_tensorboard_never_imports_it():
    code = "import ncprobe.training.api, sys; print(any(m.startswith('tensorboard') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_tensorboard_logs_every_history_scalar_per_epoch(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from ncprobe.training.api import train

    cfg = get_preset("testbed-coop-b2n").replace(
        **{**FAST, "optim.epochs": 2, "track.tensorboard": True, "seeds": [1], "output_dir": str(tmp_path / "run")}
    )
    result = train(cfg)
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/loss", "train/lr", "accuracy/base", "accuracy/novel", "t2i_text_etf_error/novel"} <= tags
    assert [e.step for e in events.Scalars("accuracy/novel")] == [0, 1, 2]
    history = result.history
    final = float(history["accuracy"].sel(eval_set="novel").isel(epoch=-1))
    assert events.Scalars("accuracy/novel")[-1].value == pytest.approx(final, rel=1e-6)


def test_tensorboard_without_a_run_folder_is_refused_before_any_work():
    from ncprobe.training.validation import ConfigError, check_run

    cfg = get_preset("testbed-coop-b2n").replace(**FAST, **{"track.tensorboard": True})
    with pytest.raises(ConfigError, match="track.tensorboard writes into the run folder: pass --output_dir DIR"):
        check_run(cfg)
