"""Read a sweep's finished runs into per-seed records of a table layout.

:func:`collect` reads ``runs.json`` (each run's axis labels and facts) and each finished run's ``result.json``
(final accuracies and NC metrics per evaluation set). :func:`layout_records` turns them into one record per
(row, group, seed, column): the row is the method (the labels of the axes that are not the dataset, the seed or
the layout's column), the group the dataset, the column what the layout prints (``base``/``novel``/``hm``, ``tau=4``,
a target, ``16-shot``). Accuracies are in percent; NC metrics as recorded.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ncprobe._io import read_json

__all__ = ["collect", "layout_records", "SOURCE_SETS", "COLUMN_AXES", "hm"]

#: Evaluation sets of the training dataset itself (every other set is a cross-dataset / DG target).
SOURCE_SETS = ("base", "novel", "all")
#: The fact each layout spreads over its columns (and the axis names that stand for it).
COLUMN_AXES = {
    "imbalance": ("imbalance_ratio", ("data.imbalance_ratio",)),
    "few_shot": ("num_shots", ("data.num_shots",)),
}
_NOT_ROW_AXES = {"seed", "dataset", "data.dataset"}


def hm(base: float, novel: float) -> float:
    """The harmonic mean of base and novel accuracy (0 when both are 0; NaN when either is missing)."""
    if base is None or novel is None or math.isnan(base) or math.isnan(novel):
        return math.nan
    return 2 * base * novel / (base + novel) if base + novel > 0 else 0.0


def collect(sweep_dir: str | Path) -> tuple[pd.DataFrame, list[str], list[str], dict]:
    """``(runs, axes, missing, defaults)``: one row per finished run (its axis labels ``axis:<name>``, facts, final
    ``accuracy`` and ``metrics`` dicts), the sweep's axes, the runs without a result yet, and the spec's ``table``
    section (default layout, metric, nc columns, method names)."""
    root = Path(sweep_dir)
    index_file = root / "runs.json"
    if not index_file.is_file():
        raise FileNotFoundError(f"{root} is not a sweep folder (no runs.json); run ncprobe sweep --spec SPEC first")
    index = read_json(index_file, what="sweep index")
    rows, missing = [], []
    for name, info in index["runs"].items():
        result_file = root / info["dir"] / "result.json"
        if not result_file.is_file():
            missing.append(name)
            continue
        final = read_json(result_file, what="run result").get("final", {})
        rows.append(
            {
                "run": name,
                **{f"axis:{a}": v for a, v in info["labels"].items()},
                **info["facts"],
                "accuracy": final.get("accuracy", {}),
                "metrics": final.get("metrics", {}),
            }
        )
    return pd.DataFrame(rows), list(index.get("axes", [])), missing, dict(index.get("table") or {})


def _row_label(run: pd.Series, row_axes: list[str]) -> str:
    if not row_axes:
        return str(run["method"])
    return " · ".join(str(run[f"axis:{a}"]) for a in row_axes)


def _pct(value) -> float:
    return math.nan if value is None else 100.0 * float(value)


def _num(value) -> float:
    return math.nan if value is None else float(value)


def _nc_values(run: pd.Series, metrics: list[str], sets: list[str]) -> dict[str, float]:
    """``{'name[set]': value}`` of each requested NC metric (``name`` for every set, or ``name[set]``)."""
    out = {}
    for spec in metrics:
        name, _, only = spec.partition("[")
        only = only.rstrip("]")
        per = run["metrics"].get(name)
        if per is None:
            raise ValueError(
                f"metric {name!r} is not in the runs' results; recorded: {', '.join(sorted(run['metrics']))}"
            )
        for s in [only] if only else sets:
            out[f"{name}[{s}]"] = _num(per.get(s))
    return out


def layout_records(
    runs: pd.DataFrame, axes: list[str], layout: str, *, metric: str | None = None, nc: list[str] = ()
) -> tuple[pd.DataFrame, dict[str, tuple[str, str]], list[str]]:
    """``(records, hm_of, hidden)``: columns row, group, seed, column, value; ``hm_of`` maps each HM column to its
    base and novel columns (an HM is recomputed from their means: the engine's convention); ``hidden`` lists the
    helper columns not printed."""
    column_fact, column_axes = COLUMN_AXES.get(layout, (None, ()))
    row_axes = [a for a in axes if a not in _NOT_ROW_AXES and a not in column_axes and runs[f"axis:{a}"].nunique() > 1]
    out, hm_of, hidden = [], {}, []

    def emit(run, column, value):
        out.append((_row_label(run, row_axes), str(run["dataset"]), int(run["seed"]), column, value))

    for _, run in runs.iterrows():
        acc = run["accuracy"]
        b2n = "base" in acc and "novel" in acc
        if layout == "b2n":
            if not b2n:
                raise ValueError(
                    f"run {run['run']} has no base and novel accuracy: layout b2n needs base_to_novel runs"
                )
            emit(run, "base", _pct(acc["base"]))
            emit(run, "novel", _pct(acc["novel"]))
            emit(run, "hm", math.nan)
            hm_of["hm"] = ("base", "novel")
            for col, v in _nc_values(run, list(nc), ["base", "novel"]).items():
                emit(run, col, v)
        elif layout in ("imbalance", "few_shot"):
            tag = f"tau={run[column_fact]:g}" if layout == "imbalance" else f"{run[column_fact]}-shot"
            want = metric or ("hm" if b2n else "all")
            if want == "hm":
                if not b2n:
                    raise ValueError(f"run {run['run']}: metric hm needs base and novel accuracy (base_to_novel runs)")
                emit(run, f"{tag} base", _pct(acc["base"]))
                emit(run, f"{tag} novel", _pct(acc["novel"]))
                emit(run, tag, math.nan)
                hm_of[tag] = (f"{tag} base", f"{tag} novel")
                hidden += [f"{tag} base", f"{tag} novel"]
            else:
                if want not in acc:
                    raise ValueError(f"run {run['run']} has no accuracy on {want!r}; it has {', '.join(acc)}")
                emit(run, tag, _pct(acc[want]))
            for col, v in _nc_values(run, list(nc), [s for s in acc if s in SOURCE_SETS]).items():
                emit(run, f"{tag} {col}", v)
        elif layout in ("cross_dataset", "dg"):
            for s, v in acc.items():
                emit(run, "source" if s in SOURCE_SETS else s, _pct(v))
            for col, v in _nc_values(run, list(nc), list(acc)).items():
                emit(run, col, v)
        else:
            raise ValueError(f"unknown layout {layout!r}; valid layouts: b2n, imbalance, cross_dataset, dg, few_shot")
    frame = pd.DataFrame(out, columns=["row", "group", "seed", "column", "value"])
    return frame, hm_of, list(dict.fromkeys(hidden))
