"""Regularizer state across a kill: NPT's image class-mean memory and PromptSRC's Gaussian prompt aggregation
(running mean, its log-weight and epoch count) are checkpointed every epoch, so a run killed after its first
checkpoint and resumed ends bit for bit where the uninterrupted run ends (issue 16, "known gaps"). The kill
follows ``test_resume_distributed.py``: a child process trains from a YAML file and is SIGKILLed once the first
epoch's checkpoint exists."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ncprobe.training import load_run, train
from ncprobe.training.checkpoint import latest_checkpoint, load_checkpoint
from tests.training.conftest import fast

ROOT = Path(__file__).parents[2]


def kill_after_first_checkpoint(cfg, folder: Path) -> Path:
    """Train ``cfg`` into ``folder`` in a child process and SIGKILL it once ``epoch_0001.pt`` is written."""
    yaml = folder.parent / f"{folder.name}.yaml"
    cfg.replace(output_dir=str(folder)).to_yaml(yaml)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = f"from ncprobe.training import train; train({str(yaml)!r})"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    first = folder / "checkpoints" / "epoch_0001.pt"
    deadline = time.time() + 600
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert first.exists(), proc.communicate()[0][-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (folder / "result.json").exists(), "the run finished before it could be killed"
    return folder


def _assert_same_run(resumed, clean, killed: Path, clean_dir: Path) -> None:
    for name in resumed.history.data_vars:
        if name != "seconds":
            np.testing.assert_array_equal(resumed.history[name].values, clean.history[name].values, err_msg=name)
    for (n1, p1), (_, p2) in zip(
        resumed.model.prompt_learner.named_parameters(), clean.model.prompt_learner.named_parameters()
    ):
        assert torch.equal(p1, p2), n1
    assert load_run(killed).result["final"] == load_run(clean_dir).result["final"]


def _regularizer_state(run_dir: Path, name: str) -> dict:
    return load_checkpoint(latest_checkpoint(run_dir))["regularizers"][name]


#: Two epochs of 5 steps (10 base classes x 2 shots, batch 4), NC tracked at the start and the end: killed after
#: epoch 1, the resumed run trains epoch 2 from the checkpointed state.
SCHEDULE = {
    "optim.epochs": 2,
    "optim.batch_size": 4,
    "optim.lr": 0.05,
    "optim.warmup_epochs": 0,
    "data.num_shots": 2,
    "track.every": 100,
    "track.max_per_class": 5,
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "preset,name,state",
    [
        ("testbed-coop-npt-b2n", "npt", ["memory"]),
        ("testbed-ivlp-promptsrc-b2n", "promptsrc", ["gpa_log_weight", "gpa_epochs", "gpa_mean_0"]),
    ],
)
def test_regularizer_state_survives_a_kill(tmp_path, preset, name, state):
    cfg = fast(preset, **SCHEDULE)
    killed = kill_after_first_checkpoint(cfg, tmp_path / "killed")
    first = load_checkpoint(killed / "checkpoints" / "epoch_0001.pt")["regularizers"][name]
    assert set(state) <= set(first), sorted(first)  # the state is in the checkpoint
    resumed = train(cfg.replace(output_dir=str(killed), resume=True)).runs[0]
    clean = train(cfg.replace(output_dir=str(tmp_path / "clean"))).runs[0]
    _assert_same_run(resumed, clean, killed, tmp_path / "clean")
    a, b = _regularizer_state(killed, name), _regularizer_state(tmp_path / "clean", name)
    for key in state:
        assert torch.equal(a[key], b[key]), key
    if name == "npt":  # the memory moved during training: a fresh one would differ
        assert not torch.equal(first["memory"], a["memory"])
    else:
        assert int(a["gpa_epochs"]) == 2 and resumed.result["regularizers"]["promptsrc"]["gpa_epochs"] == 2
