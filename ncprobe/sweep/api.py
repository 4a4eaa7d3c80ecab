"""``ncprobe.sweep(spec)``: launch a grid of training runs, skip the finished ones, resume the killed ones.

The sweep folder (the spec's ``output_dir``) holds:

* ``sweep.yaml`` — the spec as run; ``runs.json`` — the index: each run's name, axis labels, config hash and facts
  (method, dataset, imbalance ratio, shots, seed), which ``ncprobe table`` reads;
* ``configs/<run>.yaml`` — each run's resolved config (``resume: true``, ``output_dir: runs/<run>``);
* ``runs/<run>/`` — the engine's run folder (``config.yaml``, ``history.nc``, ``result.json``, ``checkpoints/``);
* ``state/<run>.json`` — what the job last recorded (running, done, failed with its error, requeued);
* ``jobs.json`` — the submitit job id, executor and log files of each submitted run; ``logs/<job id>/`` — the
  submitit logs.

Before anything is written or submitted every run is checked with the engine's checks (:func:`~.grid.check_grid`):
an unknown field, a bad value, a missing data root, or a run folder that holds another config is an error.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ncprobe._io import atomic_write_json, atomic_write_text, read_json
from ncprobe.training.preflight import holds_work
from ncprobe.training.validation import ConfigError

from .grid import GridRun, check_grid, expand_grid
from .jobs import read_state, torchrun_command
from .spec import SweepSpec, check_executor, load_spec

__all__ = ["SweepPlan", "sweep", "plan_sweep", "sweep_status", "STATES"]

STATES = ("done", "running", "pending", "failed", "not submitted")


@dataclass
class SweepPlan:
    """A checked sweep: its spec, its runs, and (after :func:`sweep`) which were submitted and which skipped."""

    spec: SweepSpec
    runs: list[GridRun]
    root: Path
    submitted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def command(self, run: GridRun) -> str:
        """The shell command that trains ``run`` by hand (what each job does)."""
        config = self.root / "configs" / f"{run.name}.yaml"
        gpus = self.spec.executor.gpus_per_job
        if self.spec.executor.kind != "debug" and gpus > 1:
            return shlex.join(torchrun_command(config, gpus))
        return shlex.join(["ncprobe", "train", "--config", str(config)])

    def grid_table(self) -> pd.DataFrame:
        """One row per run: its name, each axis label, its config hash and its command."""
        rows = [{"run": r.name, **r.labels, "hash": r.hash, "command": self.command(r)} for r in self.runs]
        return pd.DataFrame(rows).set_index("run")

    def __repr__(self) -> str:
        return (
            f"SweepPlan({len(self.runs)} runs in {self.root}, executor {self.spec.executor.kind}, "
            f"{len(self.submitted)} submitted, {len(self.skipped)} skipped)"
        )


def plan_sweep(spec: Any, *, executor: str | None = None, max_parallel: int | None = None) -> SweepPlan:
    """Load the spec, expand its grid and check every run (nothing is written). ``executor`` and
    ``max_parallel`` override the spec's."""
    spec = load_spec(spec)
    if executor is not None:
        spec.executor.kind = executor
    if max_parallel is not None:
        spec.executor.max_parallel = max_parallel
    problems: list[str] = []
    check_executor(spec.executor, problems)
    if problems:
        raise ConfigError(problems)
    runs = expand_grid(spec)
    check_grid(runs)
    return SweepPlan(spec, runs, Path(spec.output_dir))


def _write_folder(plan: SweepPlan) -> None:
    import yaml

    root = plan.root
    (root / "configs").mkdir(parents=True, exist_ok=True)
    (root / "state").mkdir(exist_ok=True)
    atomic_write_text(root / "sweep.yaml", yaml.safe_dump(plan.spec.to_dict(), sort_keys=False))
    index = {
        "name": plan.spec.name,
        "axes": list(plan.runs[0].labels) if plan.runs else [],
        "table": plan.spec.table,
        "runs": {
            r.name: {"hash": r.hash, "labels": r.labels, "facts": r.facts, "dir": f"runs/{r.name}"} for r in plan.runs
        },
    }
    atomic_write_json(root / "runs.json", index)
    for run in plan.runs:
        run.resolved.to_yaml(root / "configs" / f"{run.name}.yaml")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _slurm_state(root: Path, job_id: str) -> str | None:
    """Slurm's state of a job (``sacct`` through submitit), or ``None`` when it cannot be asked."""
    if shutil.which("sacct") is None:
        return None
    try:
        import submitit

        return str(submitit.SlurmJob(folder=str(root / "logs" / "%j"), job_id=job_id).state)
    except Exception:  # no sacct here, or Slurm does not answer: the state files decide
        return None


_SLURM_DEAD = ("CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE")


def _run_state(root: Path, name: str, info: dict, job: dict | None) -> tuple[str, str | None]:
    """(state, error) of one run from its folder, its state file and its job record."""
    run_dir = root / info["dir"]
    if (run_dir / "result.json").is_file():
        return "done", None
    state = read_state(root / "state" / f"{name}.json")
    if state is not None and state["state"] == "failed":
        return "failed", state.get("error")
    if state is not None and state["state"] == "running":
        same_host = state.get("host") == os.uname().nodename
        if same_host and not _pid_alive(int(state.get("pid", 0))):
            return "failed", "the job's process ended without finishing (killed?)"
    if job is not None and job.get("executor") == "slurm":
        slurm = _slurm_state(root, job["job_id"])
        if slurm is not None and slurm.split()[0] in _SLURM_DEAD:
            return "failed", f"Slurm state {slurm}"
    if state is not None and state["state"] in ("running", "requeued"):
        return ("running" if state["state"] == "running" else "pending"), None
    if job is None:
        return "not submitted", None
    if job.get("executor") in ("debug", "local"):  # the submitting process waited: the job never started
        return ("failed" if holds_work(run_dir) else "not submitted"), None
    return "pending", None


def _failure_log(root: Path, name: str, job: dict | None) -> str:
    """Where a failed run's story is: its job's stderr (local, slurm), else its state file (debug: this process)."""
    return (job or {}).get("stderr") or str(root / "state" / f"{name}.json")


def sweep_status(sweep_dir: str | Path) -> pd.DataFrame:
    """The state of every run of a sweep folder: ``done``, ``running``, ``pending``, ``failed`` (with its error and
    log file) or ``not submitted``; one row per run."""
    root = Path(sweep_dir)
    index_file = root / "runs.json"
    if not index_file.is_file():
        raise FileNotFoundError(f"{root} is not a sweep folder (no runs.json): run ncprobe sweep --spec SPEC first")
    index = read_json(index_file, what="sweep index")
    jobs = read_json(root / "jobs.json", what="sweep jobs") if (root / "jobs.json").is_file() else {}
    rows = []
    for name, info in index["runs"].items():
        job = jobs.get(name)
        state, error = _run_state(root, name, info, job)
        rows.append(
            {
                "run": name,
                "state": state,
                "job_id": job.get("job_id") if job else None,
                "log": _failure_log(root, name, job) if state == "failed" else None,
                "error": error,
            }
        )
    return pd.DataFrame(rows, columns=["run", "state", "job_id", "log", "error"]).set_index("run")


def sweep(
    spec: Any,
    *,
    executor: str | None = None,
    max_parallel: int | None = None,
    dry_run: bool = False,
    retry_failed: bool = False,
    progress: bool = True,
) -> SweepPlan:
    """Run a sweep: check every run, then submit each run that is neither finished nor in flight.

    Parameters
    ----------
    spec:
        A :class:`~.spec.SweepSpec`, a dict of the same tree or a YAML file (``docs/sweeps.md``).
    executor, max_parallel:
        Override the spec's ``executor.kind`` (``debug``, ``local``, ``slurm``) and parallelism.
    dry_run:
        Check every config and return the plan (:meth:`SweepPlan.grid_table`); nothing is written or submitted.
    retry_failed:
        Submit only the runs whose job failed (``ncprobe sweep --status`` lists them).

    Returns
    -------
    SweepPlan
        The runs, with ``submitted`` and ``skipped`` (finished or in flight) names. ``debug`` and ``local`` return
        when every job has ended; ``slurm`` once the array is submitted.
    """
    plan = plan_sweep(spec, executor=executor, max_parallel=max_parallel)
    if dry_run:
        return plan
    missing = [c for c in ("sbatch", "srun") if shutil.which(c) is None]
    if plan.spec.executor.kind == "slurm" and missing:
        raise ConfigError(
            [
                f"executor slurm needs Slurm's {' and '.join(missing)} on the PATH: run ncprobe sweep on a login node "
                "of the cluster, or pass --executor local (GPUs of this machine) or debug (this process)"
            ]
        )
    root = plan.root
    _write_folder(plan)
    status = sweep_status(root)
    wanted = ("failed",) if retry_failed else ("failed", "not submitted")
    todo = [r for r in plan.runs if status.loc[r.name, "state"] in wanted]
    plan.skipped = [r.name for r in plan.runs if r not in todo]
    plan.submitted = [r.name for r in todo]
    if not todo:
        return plan
    from .executors import Job, run_debug, run_local, submit_slurm

    for run in todo:  # a failure recorded by an earlier job is replaced when its run is submitted again
        (root / "state" / f"{run.name}.json").unlink(missing_ok=True)
    jobs = [Job(r.name, root / "configs" / f"{r.name}.yaml", root / "state" / f"{r.name}.json") for r in todo]
    ex = plan.spec.executor
    records_file = root / "jobs.json"
    records = read_json(records_file, what="sweep jobs") if records_file.is_file() else {}
    if ex.kind == "slurm":
        records.update(submit_slurm(jobs, root / "logs", ex, max_parallel))
        atomic_write_json(records_file, records, sort_keys=True)
        return plan
    if ex.kind == "local":
        records.update({j.name: {"job_id": None, "executor": "local"} for j in jobs})
        atomic_write_json(records_file, records, sort_keys=True)
        records.update(run_local(jobs, root / "logs", ex, max_parallel, progress))
    else:
        records.update({j.name: {"job_id": "debug", "executor": "debug"} for j in jobs})
        atomic_write_json(records_file, records, sort_keys=True)
        records.update(run_debug(jobs, progress))
    atomic_write_json(records_file, records, sort_keys=True)
    sys.stdout.flush()
    return plan
