"""One sweep job: train one run folder, recording its state for ``ncprobe sweep --status``.

:class:`RunJob` is what every executor runs (in this process for ``debug``, pickled by submitit for ``local`` and
``slurm``). It calls the engine on the run's config, which has ``resume=True``: a run that was killed or
preempted continues from its last checkpoint (the engine's exact resume), a run without work starts afresh.
It is a :class:`submitit.helpers.Checkpointable`: when Slurm preempts or times out the job, submitit calls
:meth:`RunJob.checkpoint`, which requeues the same call, and the requeued job resumes through the engine.

A job writes ``<sweep>/state/<run>.json`` (atomically) when it starts, ends, fails or is requeued: its state, the
host and process, the submitit job id, the error of a failure and the time.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from submitit.helpers import Checkpointable, DelayedSubmission

from ncprobe._io import atomic_write_json, read_json

__all__ = ["RunJob", "read_state", "write_state", "torchrun_command"]


def _job_id() -> str | None:
    for key in ("SLURM_ARRAY_JOB_ID", "SLURM_JOB_ID"):
        if os.environ.get(key):
            task = os.environ.get("SLURM_ARRAY_TASK_ID")
            return f"{os.environ[key]}_{task}" if key == "SLURM_ARRAY_JOB_ID" and task else os.environ[key]
    return os.environ.get("SUBMITIT_LOCAL_JOB_ID")


def write_state(path: str | Path, state: str, **extra: Any) -> None:
    """Record a run's state (``running``, ``done``, ``failed``, ``requeued``) with its host, pid and job id."""
    info = {
        "state": state,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "job_id": _job_id(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }
    atomic_write_json(path, info, sort_keys=True)


def read_state(path: str | Path) -> dict | None:
    """A run's recorded state, or ``None`` when its job never started."""
    path = Path(path)
    return read_json(path, what="sweep job state") if path.is_file() else None


def torchrun_command(config_path: str | Path, gpus: int) -> list[str]:
    """The command that trains one run over ``gpus`` GPUs of this node (the engine initialises
    ``torch.distributed`` from torchrun's environment)."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={gpus}",
        "-m",
        "ncprobe",
        "train",
        "--config",
        str(config_path),
    ]


class RunJob(Checkpointable):
    """Train the run of one config file (``resume=True``), recording its state; requeued on preemption."""

    def __call__(self, config_path: str, state_path: str, gpus: int = 1) -> dict:
        """Train; returns the run's ``final`` block (``result.json``). A failure is recorded, then re-raised."""
        write_state(state_path, "running")
        try:
            if gpus > 1:
                subprocess.run(torchrun_command(config_path, gpus), check=True)
            else:
                from ncprobe.training.api import train

                train(config_path)
        except BaseException as err:
            text = "".join(traceback.format_exception_only(type(err), err)).strip()
            write_state(state_path, "failed", error=text[-2000:])
            raise
        from ncprobe.training.config import load_config

        run_dir = Path(load_config(config_path).output_dir)
        final = read_json(run_dir / "result.json", what="run result").get("final", {})
        write_state(state_path, "done")
        return final

    def checkpoint(self, *args: Any, **kwargs: Any) -> DelayedSubmission:
        """Called by submitit on preemption or timeout: requeue the same call, which resumes from the last
        checkpoint because the run's config has ``resume=True``."""
        state_path = args[1] if len(args) > 1 else kwargs.get("state_path")
        if state_path:
            write_state(state_path, "requeued")
        return DelayedSubmission(self, *args, **kwargs)
