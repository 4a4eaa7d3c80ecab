"""The sweep spec: a base config and the axes whose product is the grid.

A spec is YAML, a dict of the same tree or a :class:`SweepSpec`::

    name: npt-imbalance
    base: paper-coop-npt-base_to_novel    # a preset name, a config file (YAML/JSON) or a config mapping
    set: {data.root: /data/coop}          # dotted fields applied to the base
    axes:                                 # the grid is the product of these lists
      method: [coop, maple]               # method.name; or {label: coop+npt, method.name: coop, regularizers: [npt]}
      regularizers: [none, npt]           # none, a name, name:weight, or a list of {name, weight, options}
      dataset: [oxford_pets, dtd]         # data.dataset
      data.imbalance_ratio: [1, 4, 16]    # any config field by its dotted name
      seed: [1, 2, 3]                     # one run (one folder) per seed
    output_dir: sweeps/npt                # the sweep folder (runs/, logs/, jobs.json, ...)
    executor: {kind: slurm, partition: gpu, time: 240, gpus_per_job: 1, array_parallelism: 32,
               slurm: {slurm_account: lab}}

An axis value that is a mapping with a ``label`` is a variant: its other keys are dotted fields set together
(``{label: coop+npt, method.name: coop, regularizers: [npt]}``). Every problem is reported at once, in one
:class:`~ncprobe.training.ConfigError`, before anything is written.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ExecutorSpec", "SweepSpec", "load_spec", "AXIS_ALIASES", "EXECUTORS"]

#: Axis names that stand for a config field (``seed`` is special: it sets ``seeds: [s]``).
AXIS_ALIASES = {"method": "method.name", "dataset": "data.dataset", "regularizers": "regularizers"}
EXECUTORS = ("debug", "local", "slurm")
_EXECUTOR_KEYS = (
    "kind",
    "max_parallel",
    "partition",
    "time",
    "gpus_per_job",
    "cpus_per_job",
    "mem_gb",
    "array_parallelism",
    "gpus",
    "slurm",
)
_SPEC_KEYS = ("name", "base", "set", "axes", "output_dir", "executor", "table")


@dataclass
class ExecutorSpec:
    """Where the runs go: ``debug`` (in this process), ``local`` (submitit subprocesses, one per GPU or CPU slot)
    or ``slurm`` (submitit's ``AutoExecutor``, one array job)."""

    kind: str = "debug"
    max_parallel: int | None = None  # local: concurrent jobs (default: one per visible GPU, else 1); slurm: array %
    partition: str | None = None
    time: int = 240  # minutes per job (Slurm's --time; the local executor's timeout)
    gpus_per_job: int = 1  # >1: the job runs torchrun over its GPUs
    cpus_per_job: int | None = None
    mem_gb: float | None = None
    array_parallelism: int | None = None
    gpus: list[int] | None = None  # local: the GPU ids to use (default: every visible one)
    slurm: dict = field(default_factory=dict)  # extra slurm_* options (slurm_account, slurm_qos, ...)


@dataclass
class SweepSpec:
    """A sweep: the base config, the overrides, the axes and where it runs (see the module docstring)."""

    base: Any = None
    axes: dict = field(default_factory=dict)
    set: dict = field(default_factory=dict)
    output_dir: str | None = None
    name: str | None = None
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)
    table: dict = field(default_factory=dict)  # defaults of ``ncprobe table``: layout, metric, nc, methods

    def to_dict(self) -> dict:
        """The spec as a plain dict (what ``sweep.yaml`` in the sweep folder holds)."""
        from dataclasses import asdict

        return asdict(self)


def _spec_error(problems: list[str]) -> Exception:
    from ncprobe.training.validation import ConfigError

    return ConfigError(problems)


def _executor(data: Any, problems: list[str]) -> ExecutorSpec:
    if data is None:
        return ExecutorSpec()
    if isinstance(data, ExecutorSpec):
        return data
    if isinstance(data, str):
        data = {"kind": data}
    if not isinstance(data, dict):
        problems.append(f"executor must be a mapping or one of {', '.join(EXECUTORS)}, got {data!r}")
        return ExecutorSpec()
    unknown = [k for k in data if k not in _EXECUTOR_KEYS]
    if unknown:
        problems.append(f"unknown executor keys {unknown}; valid keys: {', '.join(_EXECUTOR_KEYS)}")
    ex = ExecutorSpec(**{k: v for k, v in data.items() if k in _EXECUTOR_KEYS})
    check_executor(ex, problems)
    return ex


def check_executor(ex: ExecutorSpec, problems: list[str]) -> None:
    """Append the problems of an executor spec (kind, counts, slurm option names) to ``problems``."""
    if ex.kind not in EXECUTORS:
        problems.append(f"executor.kind must be one of {', '.join(EXECUTORS)}, got {ex.kind!r}")
    for key in ("max_parallel", "gpus_per_job", "cpus_per_job", "array_parallelism", "time"):
        value = getattr(ex, key)
        if value is not None and (type(value) is not int or value < (0 if key == "gpus_per_job" else 1)):
            problems.append(f"executor.{key} must be a whole number >= 1, got {value!r}")
    if not isinstance(ex.slurm, dict):
        problems.append(f"executor.slurm must be a mapping of slurm_* options, got {ex.slurm!r}")
    else:
        bad = [k for k in ex.slurm if not str(k).startswith("slurm_")]
        if bad:
            problems.append(f"executor.slurm keys must start with 'slurm_' (submitit's names), got {bad}")


def load_spec(source: Any) -> SweepSpec:
    """A :class:`SweepSpec` from a spec, a dict or a YAML/JSON file; one ``ConfigError`` lists every problem of
    its shape (the configs of the grid are checked by :func:`~ncprobe.sweep.grid.check_grid`)."""
    if isinstance(source, SweepSpec):
        data = source.to_dict()
    elif isinstance(source, dict):
        data = copy.deepcopy(source)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no such sweep spec: {path}")
        import yaml

        data = yaml.safe_load(path.read_text())
        if not isinstance(data, dict):
            raise _spec_error([f"{path} does not hold a sweep spec mapping"])
        base = data.get("base")  # a base config file is relative to the spec
        if isinstance(base, str) and base.endswith((".yaml", ".yml", ".json")) and not Path(base).is_absolute():
            data["base"] = str(path.parent / base)
    else:
        raise TypeError(f"a sweep spec is a SweepSpec, a dict or a YAML path, got {type(source).__name__}")
    problems: list[str] = []
    unknown = [k for k in data if k not in _SPEC_KEYS]
    if unknown:
        problems.append(f"unknown sweep spec keys {unknown}; valid keys: {', '.join(_SPEC_KEYS)}")
    if data.get("base") is None:
        problems.append("base is required: a preset name (ncprobe train --list-presets), a config file or a mapping")
    axes = data.get("axes") or {}
    if not isinstance(axes, dict):
        problems.append("axes must be a mapping of a field name to a list of values")
        axes = {}
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            problems.append(f"axes.{key} must be a non-empty list, got {values!r}")
        if key == "seeds":
            problems.append("axes.seeds: use the axis 'seed' (one run, one folder, per seed)")
    overrides = data.get("set") or {}
    if not isinstance(overrides, dict):
        problems.append("set must be a mapping of dotted config fields to values")
        overrides = {}
    if not data.get("output_dir"):
        problems.append("output_dir is required: the sweep folder (runs/, logs/, jobs.json)")
    table = data.get("table") or {}
    bad = [k for k in table if k not in ("layout", "metric", "nc", "methods")] if isinstance(table, dict) else ["?"]
    if bad:
        problems.append(f"table: a mapping of layout, metric, nc, methods (ncprobe table's defaults), got keys {bad}")
    executor = _executor(data.get("executor"), problems)
    if problems:
        raise _spec_error(problems)
    return SweepSpec(
        base=data["base"],
        axes=dict(axes),
        set=dict(overrides),
        output_dir=str(Path(data["output_dir"]).expanduser().resolve()),  # jobs may start in another folder
        name=data.get("name"),
        executor=executor,
        table=dict(data.get("table") or {}),
    )
