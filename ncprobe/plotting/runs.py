"""Readable, unique labels for training runs, read from their histories' attributes (``docs/history.md``).

A run's *variant* is its method plus its regularizers (``coop`` with ``["npt"]`` → ``"CoOp+NPT"``): what a
legend needs to tell a regularized run from a plain one. A run's *label* is its variant plus whatever differs
between the runs that share that variant, in this order: ``dataset``, ``protocol``, ``num_shots``
(``"16 shots"``), ``imbalance_ratio`` (``"ρ=8"``), ``seed`` (``"seed 1"``), ``seeds``; then, when runs
still collide, the file (or folder) they were read from, then a number. No run is ever dropped: ``n``
histories always give ``n`` distinct labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import xarray as xr

from ._common import as_dataset, run_attrs, variant_label

__all__ = ["history_runs", "run_labels"]

_DIFFERS = ("dataset", "protocol", "num_shots", "imbalance_ratio", "seed", "seeds")


def _describe(key: str, value: Any) -> str:
    if key == "imbalance_ratio":
        return f"ρ={float(value):g}"
    if key == "num_shots":
        return f"{value} shots"
    if key == "seed":
        return f"seed {value}"
    if key == "seeds":
        return "seeds " + ",".join(str(s) for s in (value if isinstance(value, (list, tuple)) else [value]))
    return str(value)


def _source_names(names: Sequence[str]) -> list[str]:
    """The shortest path tails that tell the files apart (``a/history.nc``, ``b/history.nc`` → ``a``, ``b``)."""
    paths = [Path(n) for n in names]
    stems = [p.stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    for depth in range(1, max(len(p.parts) for p in paths) + 1):
        tails = ["/".join(p.with_suffix("").parts[-depth - 1 : -1]) or p.stem for p in paths]
        if len(set(tails)) == len(tails):
            return tails
    return [str(p) for p in paths]


def run_labels(datasets: Sequence[xr.Dataset], names: Sequence[str] | None = None) -> list[str]:
    """One distinct label per history (see the module docstring); ``names`` are the files they came from.

    >>> import xarray as xr
    >>> runs = [xr.Dataset(attrs={"method": "coop", "seed": s}) for s in (0, 1)]
    >>> runs.append(xr.Dataset(attrs={"method": "coop", "regularizers": '["npt"]', "seed": 0,
    ...                               "ncprobe_json_attrs": '["regularizers"]'}))
    >>> run_labels(runs)
    ['CoOp · seed 0', 'CoOp · seed 1', 'CoOp+NPT']
    """
    if names is not None and len(names) != len(datasets):
        raise ValueError(f"{len(names)} names for {len(datasets)} histories")
    attrs = [run_attrs(as_dataset(ds)) for ds in datasets]
    sources = _source_names(names) if names else None
    labels = [variant_label(a, default=sources[i] if sources else f"run {i + 1}") for i, a in enumerate(attrs)]
    for base in dict.fromkeys(labels):
        members = [i for i, lab in enumerate(labels) if lab == base]
        if len(members) < 2:
            continue
        for key in _DIFFERS:
            values = [repr(attrs[i].get(key)) for i in members]
            if len(set(values)) > 1:
                for i in members:
                    if attrs[i].get(key) is not None:
                        labels[i] += " · " + _describe(key, attrs[i][key])
    if len(set(labels)) < len(labels) and sources:
        dup = {lab for lab in labels if labels.count(lab) > 1}
        labels = [f"{lab} · {sources[i]}" if lab in dup else lab for i, lab in enumerate(labels)]
    seen: dict[str, int] = {}
    dup = {lab for lab in labels if labels.count(lab) > 1}
    for i, lab in enumerate(labels):
        if lab in dup:
            seen[lab] = seen.get(lab, 0) + 1
            labels[i] = f"{lab} #{seen[lab]}"
    return labels


def history_runs(
    histories: Any, *, labels: Sequence[str] | None = None, names: Sequence[str] | None = None
) -> dict[str, xr.Dataset]:
    """``{label: history}`` for one history, a list of them, or a mapping (its keys are kept as labels).

    A list is labelled by :func:`run_labels` (``names``: the files the histories came from) unless ``labels``
    gives one distinct label per history. Every history is kept: ``n`` histories give ``n`` entries.
    """
    if isinstance(histories, xr.Dataset):
        histories = [histories]
    if isinstance(histories, Mapping):
        if labels is not None:
            raise ValueError("labels= applies to a list of histories; a mapping's keys are its labels")
        runs = {str(k): as_dataset(v) for k, v in histories.items()}
    else:
        datasets = [as_dataset(h) for h in histories]
        if labels is not None:
            labels = [str(x) for x in labels]
            if len(labels) != len(datasets):
                raise ValueError(f"{len(labels)} labels for {len(datasets)} histories; give one label per history")
            twice = sorted({x for x in labels if labels.count(x) > 1})
            if twice:
                raise ValueError(f"labels {twice} are given more than once; each run needs its own label")
        else:
            labels = run_labels(datasets, names)
        runs = dict(zip(labels, datasets))
    if not runs:
        raise ValueError("no histories to draw")
    for label, ds in runs.items():
        if "epoch" not in ds.dims:
            raise ValueError(f"{label!r} is not a training history (no 'epoch' dimension); see docs/history.md")
    return runs
