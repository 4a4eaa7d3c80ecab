"""Per-epoch records → the history ``xarray.Dataset`` described in ``docs/history.md``.

The engine appends one :class:`EpochRecord` per tracked epoch (plain numbers and numpy arrays, so records
checkpoint with ``torch.save``); :func:`build_history` lays them out on the dimensions ``epoch``,
``eval_set``, ``class`` (the task's global class index), ``class_other``, ``group`` and ``component``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from ncprobe.core import catalog
from ncprobe.core.groups import GROUP_NAMES

__all__ = ["EpochRecord", "record_evaluation", "build_history"]


@dataclass
class EpochRecord:
    """What one epoch produced: losses, accuracies and the NC reports' values per evaluation set."""

    epoch: int
    losses: dict[str, float] = field(default_factory=dict)
    train_accuracy: float = float("nan")
    lr: float = float("nan")
    accuracy: dict[str, float] = field(default_factory=dict)
    scalars: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> set -> value
    per_class: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # metric -> set -> (C_global,)
    per_group: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # metric -> set -> (3,)
    pairs: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # metric -> set -> (C_g, C_g)
    coords: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # name -> set -> (C_g, 3)
    seconds: float = float("nan")


def record_evaluation(
    rec: EpochRecord, name: str, accuracy: float, report, class_index: np.ndarray, num_global: int, *, pairs: bool
) -> None:
    """Copy one set's accuracy and report into ``rec``, placing per-class values at their global indices."""
    rec.accuracy[name] = accuracy
    if report is None:
        return
    ds = report.dataset
    for metric, value in report.scalars().items():
        rec.scalars.setdefault(metric, {})[name] = value
    for var in ds.data_vars:
        dims = ds[var].dims
        if dims == ("class",):
            full = np.full(num_global, np.nan)
            full[class_index] = ds[var].values
            rec.per_class.setdefault(var, {})[name] = full
        elif dims == ("group",) and var.startswith("group_"):
            full = np.full(len(GROUP_NAMES), np.nan)
            for g, v in zip(ds["group"].values.tolist(), ds[var].values):
                if g in GROUP_NAMES:
                    full[GROUP_NAMES.index(g)] = v
            rec.per_group.setdefault(var, {})[name] = full
        elif dims == ("class", "class_other") and pairs and var != "cdnv_pairs":
            full = np.full((num_global, num_global), np.nan)
            full[np.ix_(class_index, class_index)] = ds[var].values
            rec.pairs.setdefault(var, {})[name] = full
        elif dims == ("class", "component"):
            full = np.full((num_global, 3), np.nan)
            full[class_index, : ds[var].shape[1]] = ds[var].values
            rec.coords.setdefault(var, {})[name] = full


def _stack(records, field_name, sets, shape) -> dict[str, np.ndarray]:
    names = sorted(
        {m for r in records for m in getattr(r, field_name)},
        key=lambda n: (catalog.names(kind=None).index(n) if n in catalog.names(kind=None) else 999, n),
    )
    out = {}
    for metric in names:
        arr = np.full((len(records), len(sets), *shape), np.nan)
        for i, r in enumerate(records):
            for j, s in enumerate(sets):
                value = getattr(r, field_name).get(metric, {}).get(s)
                if value is not None:
                    arr[i, j] = value
        out[metric] = arr
    return out


def build_history(
    records: list[EpochRecord],
    *,
    classnames: list[str],
    class_split: list[str],
    class_group: list[str],
    eval_sets: list[str],
    attrs: dict,
) -> xr.Dataset:
    """The history dataset of a run (see ``docs/history.md``)."""
    epochs = [r.epoch for r in records]
    c = len(classnames)
    data: dict = {}
    loss_names = sorted({k for r in records for k in r.losses}, key=lambda k: (k != "loss", k != "loss_ce", k))
    for name in loss_names:
        data[name] = (("epoch",), np.array([r.losses.get(name, np.nan) for r in records]))
    data["train_accuracy"] = (("epoch",), np.array([r.train_accuracy for r in records]))
    data["lr"] = (("epoch",), np.array([r.lr for r in records]))
    data["seconds"] = (("epoch",), np.array([r.seconds for r in records]))
    data["accuracy"] = (
        ("epoch", "eval_set"),
        np.array([[r.accuracy.get(s, np.nan) for s in eval_sets] for r in records]),
    )
    if "base" in eval_sets and "novel" in eval_sets:
        b, n = data["accuracy"][1][:, eval_sets.index("base")], data["accuracy"][1][:, eval_sets.index("novel")]
        with np.errstate(invalid="ignore", divide="ignore"):
            data["hm"] = (("epoch",), np.where(b + n > 0, 2 * b * n / (b + n), 0.0))
    for k, v in _stack(records, "scalars", eval_sets, ()).items():
        data[k] = (("epoch", "eval_set"), v)
    for k, v in _stack(records, "per_class", eval_sets, (c,)).items():
        data[k] = (("epoch", "eval_set", "class"), v)
    for k, v in _stack(records, "per_group", eval_sets, (len(GROUP_NAMES),)).items():
        data[k] = (("epoch", "eval_set", "group"), v)
    for k, v in _stack(records, "pairs", eval_sets, (c, c)).items():
        data[k] = (("epoch", "eval_set", "class", "class_other"), v)
    for k, v in _stack(records, "coords", eval_sets, (c, 3)).items():
        data[k] = (("epoch", "eval_set", "class", "component"), v)
    coords = {
        "epoch": epochs,
        "eval_set": list(eval_sets),
        "class": np.arange(c),
        "class_other": np.arange(c),
        "class_name": ("class", np.asarray(classnames, dtype=str)),
        "class_split": ("class", np.asarray(class_split, dtype=str)),
        "class_group": ("class", np.asarray(class_group, dtype=str)),
        "group": list(GROUP_NAMES),
        "component": [0, 1, 2],
    }
    ds = xr.Dataset(data, coords=coords)
    for name in ds.data_vars:
        try:
            ds[name].attrs["description"] = catalog.get(name).description
        except KeyError:
            pass
    ds.attrs.update(attrs)
    return ds
