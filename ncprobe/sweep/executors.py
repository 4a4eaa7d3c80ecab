"""Where sweep jobs run: ``debug`` (this process), ``local`` and ``slurm`` (both through submitit).

Each executor takes :class:`Job` items (a run's name, config file and state file) and returns a record per run
(``job_id``, ``executor``, ``stdout``, ``stderr``) for ``<sweep>/jobs.json``. No scheduler is written here:

* ``debug`` runs the jobs one after another in this process (a failure is recorded and the next job runs);
* ``local`` is submitit's ``LocalExecutor``: one subprocess per free slot, a slot being one GPU (or
  ``gpus_per_job`` GPUs) of ``executor.gpus`` / the visible GPUs, else one of ``max_parallel`` CPU slots; it waits
  for every job, with a progress bar;
* ``slurm`` is submitit's ``AutoExecutor`` (``cluster="slurm"``): one array job, ``array_parallelism`` (or
  ``max_parallel``) at a time, with the spec's partition, time, GPUs per job and extra ``slurm_*`` options. It
  returns once the array is submitted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from .jobs import RunJob
from .spec import ExecutorSpec

__all__ = ["Job", "run_debug", "run_local", "submit_slurm", "local_slots", "slurm_parameters"]


@dataclass
class Job:
    """One run to execute: its name, config file and state file."""

    name: str
    config: Path
    state: Path


def _record(job, executor: str) -> dict:
    return {
        "job_id": str(job.job_id),
        "executor": executor,
        "stdout": str(job.paths.stdout),
        "stderr": str(job.paths.stderr),
        "submitted": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def run_debug(jobs: list[Job], progress: bool = True) -> dict[str, dict]:
    """Run each job in this process, in turn; a failing job is recorded (its state file) and the next runs."""
    out = {}
    for job in tqdm(jobs, desc="sweep (debug)", unit="run", disable=not progress):
        out[job.name] = {"job_id": "debug", "executor": "debug", "stdout": None, "stderr": None}
        try:
            RunJob()(str(job.config), str(job.state))
        except Exception as err:  # recorded in the state file by RunJob; the sweep goes on
            tqdm.write(f"run {job.name} failed: {type(err).__name__}: {err}")
    return out


def local_slots(ex: ExecutorSpec, max_parallel: int | None) -> list[list[int]]:
    """The local executor's slots: groups of ``gpus_per_job`` GPU ids (``executor.gpus`` or every visible GPU),
    else ``max_parallel`` CPU slots (no GPU each)."""
    gpus = list(ex.gpus) if ex.gpus is not None else None
    if gpus is None:
        import torch

        gpus = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    per = max(int(ex.gpus_per_job or 1), 1)
    slots = [gpus[i : i + per] for i in range(0, len(gpus) - per + 1, per)] if gpus else []
    limit = max_parallel or ex.max_parallel
    if not slots:
        return [[] for _ in range(limit or 1)]
    return slots[:limit] if limit else slots


def run_local(jobs: list[Job], folder: Path, ex: ExecutorSpec, max_parallel: int | None, progress: bool = True):
    """Run the jobs as submitit local jobs, one per free slot, and wait for all; returns the job records."""
    import submitit

    executor = submitit.LocalExecutor(folder=str(folder / "%j"))
    slots = local_slots(ex, max_parallel)
    free = list(range(len(slots)))
    pending = list(jobs)
    active: dict[int, tuple[Job, object]] = {}
    out: dict[str, dict] = {}
    bar = tqdm(total=len(jobs), desc="sweep (local)", unit="run", disable=not progress)
    try:
        while pending or active:
            while pending and free:
                slot = free.pop(0)
                job = pending.pop(0)
                gpus = slots[slot]
                executor.update_parameters(timeout_min=ex.time, gpus_per_node=len(gpus), visible_gpus=tuple(gpus))
                handle = executor.submit(RunJob(), str(job.config), str(job.state), max(len(gpus), 1))
                out[job.name] = _record(handle, "local")
                active[slot] = (job, handle)
            time.sleep(0.2)
            for slot, (job, handle) in list(active.items()):
                if handle.done():
                    del active[slot]
                    free.append(slot)
                    bar.update(1)
                    if handle.state != "FINISHED" or handle.exception() is not None:
                        bar.write(f"run {job.name} failed (log: {handle.paths.stderr})")
    except BaseException:
        for _, handle in active.values():
            handle.cancel(check=False)
        raise
    finally:
        bar.close()
    return out


def slurm_parameters(ex: ExecutorSpec, max_parallel: int | None) -> dict:
    """The ``AutoExecutor.update_parameters`` arguments of the spec's Slurm options."""
    params: dict = {
        "timeout_min": ex.time,
        "gpus_per_node": ex.gpus_per_job,
        "tasks_per_node": 1,
        "nodes": 1,
        "slurm_array_parallelism": max_parallel or ex.array_parallelism or ex.max_parallel or 256,
    }
    if ex.partition:
        params["slurm_partition"] = ex.partition
    if ex.cpus_per_job:
        params["cpus_per_task"] = ex.cpus_per_job
    if ex.mem_gb:
        params["mem_gb"] = ex.mem_gb
    params.update(ex.slurm)
    return params


def submit_slurm(jobs: list[Job], folder: Path, ex: ExecutorSpec, max_parallel: int | None) -> dict[str, dict]:
    """Submit the jobs as one Slurm array through submitit's ``AutoExecutor``; returns the job records."""
    import submitit

    executor = submitit.AutoExecutor(folder=str(folder / "%j"), cluster="slurm")
    executor.update_parameters(**slurm_parameters(ex, max_parallel))
    with executor.batch():
        handles = [executor.submit(RunJob(), str(j.config), str(j.state), max(ex.gpus_per_job, 1)) for j in jobs]
    return {job.name: _record(handle, "slurm") for job, handle in zip(jobs, handles)}
