"""The grid of a sweep: one :class:`GridRun` per point of the axes' product, named from what differs.

Each run is one seed in one folder, ``<sweep>/runs/<name>``, where the name joins ``axis=label`` for each axis
with more than one value (``method=coop__data.imbalance_ratio=4__seed=1``). The run's identity is the engine's
:func:`~ncprobe.training.config.config_hash` of its resolved config; :func:`check_grid` runs the engine's own
checks on every run (fields and names through :func:`~ncprobe.training.validation.resolve_config`, data folders,
weights and the run folder through :mod:`ncprobe.training.preflight`) and raises one ``ConfigError`` listing
every problem, each once with the runs it concerns, before anything is written or submitted.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ncprobe.training.config import TrainConfig, config_hash, load_config
from ncprobe.training.preflight import dataset_problems, folder_problems, weights_problem
from ncprobe.training.presets import PRESETS, get_preset
from ncprobe.training.validation import ConfigError, resolve_config

from .spec import AXIS_ALIASES, SweepSpec

__all__ = ["GridRun", "base_config", "expand_grid", "check_grid", "regularizer_list"]


@dataclass
class GridRun:
    """One run of the grid: its folder name, the label of each axis, its config (with ``output_dir``) and, once
    checked, its resolved config and hash."""

    name: str
    labels: dict[str, str]
    config: TrainConfig
    resolved: TrainConfig | None = None
    hash: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        """The engine's run folder of this run."""
        return Path(self.config.output_dir)


def base_config(base: Any) -> TrainConfig:
    """The spec's base: a preset name, a config file, a config mapping or a :class:`TrainConfig`."""
    if isinstance(base, str) and base in PRESETS:
        return get_preset(base)
    if isinstance(base, str) and not base.endswith((".yaml", ".yml", ".json")):
        get_preset(base)  # raises the unknown-preset error with close names
    return load_config(base)


def regularizer_list(value: Any) -> list[dict]:
    """An axis value of ``regularizers`` as the config's list: ``none``/``[]``, ``npt``, ``npt:10`` (name:weight),
    a ``{name, weight, options}`` mapping, or a list of these."""
    if value is None or value == "none" or value == []:
        return []
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, str):
            name, _, weight = item.partition(":")
            out.append({"name": name.strip(), **({"weight": float(weight)} if weight else {})})
        elif isinstance(item, dict):
            out.append(dict(item))
        else:
            raise ValueError(f"a regularizers value is none, a name, name:weight or a mapping, got {item!r}")
    return out


def _label(axis: str, value: Any) -> str:
    if isinstance(value, dict) and "label" in value:
        return str(value["label"])
    if axis == "regularizers":
        regs = regularizer_list(value)
        return "+".join(r["name"] for r in regs) or "none"
    return str(value)


def _changes(axis: str, value: Any) -> dict[str, Any]:
    """The dotted config changes of one axis value (a variant mapping sets each of its keys)."""
    if isinstance(value, dict) and "label" in value:
        out: dict[str, Any] = {}
        for key, v in value.items():
            if key != "label":
                out.update(_changes(key, v))
        return out
    if axis == "seed":
        return {"seeds": [int(value)]}
    path = AXIS_ALIASES.get(axis, axis)
    if path == "regularizers":
        return {"regularizers": regularizer_list(value)}
    return {path: value}


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+=-]+", "-", text).strip("-") or "x"


def expand_grid(spec: SweepSpec) -> list[GridRun]:
    """Every run of the spec's grid, in the axes' order, each with ``output_dir`` under ``<sweep>/runs/`` and
    ``resume=True`` (a killed run continues from its last checkpoint). Errors in the values are collected."""
    problems: list[str] = []
    try:
        base = base_config(spec.base)
    except (ValueError, OSError) as err:
        raise ConfigError([f"base: {err}"]) from None
    data = base.to_dict()
    for path, value in spec.set.items():
        try:
            data = TrainConfig.from_dict(data).replace(**_changes(path, value)).to_dict()
        except ValueError as err:
            problems.append(f"set.{path}: {err}")
    axes = dict(spec.axes)
    if "seed" not in axes:
        axes["seed"] = [int(s) for s in data.get("seeds") or [1]]
    varying = [a for a, values in axes.items() if len(values) > 1]
    root = Path(spec.output_dir) / "runs"
    runs: list[GridRun] = []
    for combo in itertools.product(*axes.values()):
        labels = {axis: _label(axis, value) for axis, value in zip(axes, combo)}
        name = "__".join(f"{_safe(a)}={_safe(labels[a])}" for a in varying) or "run"
        changes: dict[str, Any] = {}
        try:
            for axis, value in zip(axes, combo):
                changes.update(_changes(axis, value))
            cfg = TrainConfig.from_dict(data).replace(**changes, output_dir=str(root / name), resume=True)
        except ValueError as err:
            problems.append(f"{name}: {err}")
            continue
        runs.append(GridRun(name, labels, cfg))
    if problems:
        raise ConfigError(list(dict.fromkeys(problems)))
    return runs


def _facts(cfg: TrainConfig) -> dict[str, Any]:
    """What the tables group by, read from a resolved config."""
    regs = "+".join(r.name for r in cfg.regularizers)
    return {
        "method": cfg.method.name + (f"+{regs}" if regs else ""),
        "dataset": cfg.data.dataset,
        "protocol": cfg.data.protocol,
        "imbalance_ratio": float(cfg.data.imbalance_ratio),
        "num_shots": cfg.data.num_shots,
        "seed": int(cfg.seeds[0]),
        "model": cfg.model.name,
    }


def check_grid(runs: list[GridRun]) -> None:
    """Resolve and check every run with the engine's checks; fills ``resolved``, ``hash`` and ``facts``. Raises one
    ``ConfigError``: each problem once, with the runs it concerns (a missing data root is one line, not 99)."""
    where: dict[str, list[str]] = {}
    data_cache: dict[str, list[str]] = {}
    weights_cache: dict[tuple, str | None] = {}
    hashes: dict[str, str] = {}

    def add(problem: str, run: str) -> None:
        where.setdefault(problem, []).append(run)

    for run in runs:
        try:
            run.resolved = resolve_config(run.config)
        except ConfigError as err:
            for p in err.problems:
                add(p, run.name)
        key = json.dumps(run.config.data.__dict__, sort_keys=True, default=str)
        if key not in data_cache:
            data_cache[key] = dataset_problems(run.config)
        for p in data_cache[key]:
            add(p, run.name)
        model = (run.config.model.name, run.config.model.pretrained)
        if model not in weights_cache:
            weights_cache[model] = weights_problem(*model)
        if weights_cache[model]:
            add(weights_cache[model], run.name)
        if run.resolved is None:
            continue
        run.hash = config_hash(run.resolved)
        run.facts = _facts(run.resolved)
        if run.hash in hashes:
            add(
                f"runs {hashes[run.hash]} and {run.name} have the same config (hash {run.hash}): "
                "an axis value changes nothing",
                run.name,
            )
        hashes.setdefault(run.hash, run.name)
        for p in folder_problems(run.resolved):
            add(p, run.name)
    if where:
        lines = []
        for problem, names in where.items():
            if len(names) == 1 and names[0] in problem:
                lines.append(problem)
            else:
                shown = ", ".join(names[:3]) + (f", +{len(names) - 3} more" if len(names) > 3 else "")
                lines.append(f"{problem} [run{'s' if len(names) > 1 else ''} {shown}]")
        raise ConfigError(lines)
