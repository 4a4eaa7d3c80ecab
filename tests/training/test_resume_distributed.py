"""Runs that are killed and resumed, runs over two processes, and the paper presets on a generated CoOp tree."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from ncprobe.training import get_preset, load_run, train
from tests.training.conftest import fast

ROOT = Path(__file__).parents[2]


def _python(code: str, *, cwd: Path = ROOT) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _assert_same_history(a: xr.Dataset, b: xr.Dataset, *, rtol: float = 0.0, atol: float = 0.0) -> None:
    assert list(a.data_vars) == list(b.data_vars)
    for name in a.data_vars:
        if name == "seconds":
            continue
        np.testing.assert_allclose(a[name].values, b[name].values, rtol=rtol, atol=atol, equal_nan=True, err_msg=name)


def test_a_run_killed_mid_epoch_resumes_to_the_uninterrupted_result(tmp_path):
    changes = {"optim.epochs": 4, "data.num_shots": 8, "optim.batch_size": 4, "optim.lr": 0.05}
    cfg = fast("testbed-coop-b2n", **changes)
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    cfg.replace(output_dir=str(killed)).to_yaml(tmp_path / "run.yaml")
    proc = _python(f"from ncprobe.training import train; train({str(tmp_path / 'run.yaml')!r})")
    first = killed / "checkpoints" / "epoch_0001.pt"
    deadline = time.time() + 600
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert first.exists(), proc.communicate()[0][-2000:]
    time.sleep(1.0)  # inside epoch 2 (20 steps of batch 4) or its evaluation
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "result.json").exists(), "the run finished before it could be killed"
    resumed = train(cfg.replace(output_dir=str(killed), resume=True)).runs[0]
    uninterrupted = train(cfg.replace(output_dir=str(clean))).runs[0]
    _assert_same_history(resumed.history, uninterrupted.history)
    for (n1, p1), (_, p2) in zip(
        resumed.model.prompt_learner.named_parameters(), uninterrupted.model.prompt_learner.named_parameters()
    ):
        assert torch.equal(p1, p2), n1
    assert load_run(killed).result["final"] == load_run(clean).result["final"]


def test_two_gloo_processes_equal_one_process(tmp_path):
    changes = {
        "optim.epochs": 2,
        "data.num_shots": 4,
        "optim.batch_size": 8,
        "optim.lr": 0.05,
        "track.max_per_class": None,
    }
    cfg = fast("testbed-coop-b2n", **changes)
    one, two = tmp_path / "one", tmp_path / "two"
    cfg.replace(output_dir=str(two), device="cpu").to_yaml(tmp_path / "two.yaml")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "ncprobe",
            "train",
            "--config",
            str(tmp_path / "two.yaml"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    single = train(cfg.replace(output_dir=str(one), device="cpu")).runs[0]
    double = load_run(two)
    assert double.result["provenance"]["world_size"] == 2
    _assert_same_history(double.history, single.history, rtol=1e-5, atol=1e-6)


def test_paper_presets_build_and_run_one_step_on_a_generated_coop_tree(tmp_path):
    from ncprobe.models import register_model_config
    from tests._helpers.models import NATIVE_CFG
    from tests.data.conftest import FakeData

    data_root = tmp_path / "data"
    FakeData(data_root).build("OxfordPets")
    register_model_config("ncprobe-test-paper-native", NATIVE_CFG)
    for name in (
        "paper-coop-base_to_novel",
        "paper-maple-base_to_novel",
        "paper-zeroshot-base_to_novel",
        "paper-coop-few_shot",
    ):
        preset = get_preset(name)
        assert preset.model.name == "ViT-B-16-quickgelu" and preset.model.pretrained == "openai"
        cfg = preset.replace(
            **{
                "model.name": "ncprobe-test-paper-native",
                "model.pretrained": None,
                "data.root": str(data_root),
                "data.num_shots": 2,
                "seeds": [1],
                "optim.max_steps": 1,
                "optim.batch_size": 2,
                "progress": False,
                "method.prompt_depth": None if "maple" not in name else 2,
                "output_dir": str(tmp_path / name),
            }
        )
        result = train(cfg)
        h = result.history
        assert {"base", "novel"} <= set(h["eval_set"].values) or "all" in h["eval_set"].values
        assert np.isfinite(h["accuracy"].values).all()
        if preset.method.name != "zeroshot":
            assert int(result.runs[0].history["epoch"][-1]) == 1  # one step, one (partial) epoch
