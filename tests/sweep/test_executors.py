"""The submitit executors: Slurm submission against a fake ``sbatch`` that records its arguments, the requeue hook
that resumes a preempted run, and the local executor end to end."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from ncprobe.sweep import sweep, sweep_status
from ncprobe.sweep.executors import local_slots
from ncprobe.sweep.jobs import RunJob, read_state
from ncprobe.sweep.spec import ExecutorSpec
from ncprobe.tables import build_table
from ncprobe.training.validation import ConfigError
from tests.sweep.conftest import make_spec

SLURM = {
    "kind": "slurm",
    "partition": "gpu",
    "time": 90,
    "gpus_per_job": 1,
    "array_parallelism": 2,
    "slurm": {"slurm_account": "lab", "slurm_qos": "high"},
}


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """``sbatch`` (records its arguments and the submission file, answers a job id) and ``srun`` on the PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "sbatch.txt"
    scripts = {
        "sbatch": f'#!/bin/sh\necho "ARGS $@" >> {record}\ncat "$1" >> {record}\necho "Submitted batch job 4242"\n',
        "srun": "#!/bin/sh\nexit 0\n",
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod((bin_dir / name).stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return record


def test_slurm_submits_one_array_with_the_spec_options(tmp_path, fake_slurm):
    out = tmp_path / "s"
    plan = sweep(make_spec(out, executor=SLURM), progress=False)
    assert len(plan.submitted) == 4
    text = fake_slurm.read_text()
    assert text.count("ARGS ") == 1  # one sbatch call: an array job
    for flag in (
        "--array=0-3%2",
        "--partition=gpu",
        "--time=90",
        "--gpus-per-node=1",
        "--account=lab",
        "--qos=high",
        "--signal=USR2@",  # submitit's preemption / timeout signal, answered by RunJob.checkpoint
    ):
        assert f"#SBATCH {flag}" in text, flag
    assert "srun" in text and "submitit.core._submit" in text
    status = sweep_status(out)
    assert status["job_id"].tolist() == [f"4242_{i}" for i in range(4)]
    assert set(status["state"]) == {"pending"}  # submitted, not started: a rerun does not submit them again
    again = sweep(make_spec(out, executor=SLURM), progress=False)
    assert again.submitted == [] and fake_slurm.read_text().count("ARGS ") == 1


def test_slurm_without_sbatch_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="executor slurm needs Slurm's sbatch and srun on the PATH"):
        sweep(make_spec(tmp_path / "s", executor=SLURM), progress=False)
    assert not (tmp_path / "s").exists()


def test_requeue_resubmits_the_same_call_which_resumes(tmp_path):
    job = RunJob()
    state = tmp_path / "state.json"
    delayed = job.checkpoint("configs/run.yaml", str(state), 1)
    assert delayed.function is job and delayed.args == ("configs/run.yaml", str(state), 1)
    assert read_state(state)["state"] == "requeued"


def test_a_failed_job_records_its_error(tmp_path):
    state = tmp_path / "state.json"
    with pytest.raises(ConfigError, match="no such config file"):
        RunJob()(str(tmp_path / "missing.yaml"), str(state))
    recorded = read_state(state)
    assert recorded["state"] == "failed" and "missing.yaml" in recorded["error"]


def test_local_slots_one_per_gpu_or_cpu_slot():
    assert local_slots(ExecutorSpec(gpus=[0, 1, 2, 3]), None) == [[0], [1], [2], [3]]
    assert local_slots(ExecutorSpec(gpus=[0, 1, 2, 3], gpus_per_job=2), None) == [[0, 1], [2, 3]]
    assert local_slots(ExecutorSpec(gpus=[0, 1, 2, 3]), 2) == [[0], [1]]
    assert local_slots(ExecutorSpec(gpus=[]), 3) == [[], [], []]


@pytest.mark.slow
def test_local_executor_runs_the_sweep_and_gives_the_debug_table(debug_sweep, tmp_path):
    _, debug_out = debug_sweep
    out = tmp_path / "local"
    plan = sweep(make_spec(out, executor={"kind": "local", "gpus": []}), max_parallel=2, progress=False)
    assert len(plan.submitted) == 4
    status = sweep_status(out)
    assert set(status["state"]) == {"done"} and status["job_id"].notna().all()
    for job_id in status["job_id"]:
        assert (out / "logs" / job_id).is_dir()  # submitit's logs of each job
    ours, debug = build_table(out, "b2n").to_xarray(), build_table(debug_out, "b2n").to_xarray()
    np.testing.assert_allclose(ours["mean"].values, debug["mean"].values, rtol=1e-6)


def test_a_job_whose_process_died_is_failed_and_rerun(debug_sweep, tmp_path):
    import json
    import shutil
    import subprocess

    from ncprobe.sweep.jobs import write_state

    _, out = debug_sweep
    folder = tmp_path / "copy"
    shutil.copytree(out, folder)
    name = "method=coop__seed=2"
    (folder / "runs" / name / "result.json").unlink()  # the job was killed (SIGKILL) before it finished
    dead = subprocess.Popen(["true"])
    dead.wait()
    write_state(folder / "state" / f"{name}.json", "running")
    state = json.loads((folder / "state" / f"{name}.json").read_text())
    state["pid"] = dead.pid  # the job's process, gone
    (folder / "state" / f"{name}.json").write_text(json.dumps(state))
    jobs = json.loads((folder / "jobs.json").read_text())
    jobs[name] = {"job_id": "123", "executor": "local", "stderr": "logs/123/123_0_log.err"}
    (folder / "jobs.json").write_text(json.dumps(jobs))
    status = sweep_status(folder)
    assert status.loc[name, "state"] == "failed" and "ended without finishing" in status.loc[name, "error"]
    assert status.loc[name, "log"] == "logs/123/123_0_log.err"
    assert (status.drop(name)["state"] == "done").all()
