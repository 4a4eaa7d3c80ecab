"""``build_table(sweep_dir, layout)``: a paper's table layout from a sweep, with the published numbers beside it.

Each cell is the mean ± std over seeds (``numpy.std``, ``ddof=0``, as the engine's summary) of a run's final value.
The HM follows the engine's convention (:func:`ncprobe.training.summarize`): the harmonic mean of the
**seed-averaged** base and novel accuracies; its ± is the spread of the per-seed HMs. The ``average`` group is the
mean over datasets, per seed (its HM again from the averaged base and novel); cross-dataset and DG tables add an
``average`` column over the targets. With ``compare=True`` each cell gets the published value (:mod:`.published`),
the difference ours − published and a flag when the difference lies outside the seed spread (|Δ| > std); a cell
without a published number says ``not known``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .collect import collect, hm, layout_records
from .published import LAYOUTS, lookup
from .table import Table

__all__ = ["build_table", "aggregate"]


def _recompute_hm(wide: pd.DataFrame, hm_of: dict[str, tuple[str, str]]) -> pd.DataFrame:
    for col, (b, n) in hm_of.items():
        if b in wide and n in wide:
            wide[col] = [hm(x, y) for x, y in zip(wide[b], wide[n])]
    return wide


def _per_seed(records: pd.DataFrame, hm_of: dict, layout: str) -> pd.DataFrame:
    """Wide per-seed values, index (row, group, seed), with the ``average`` group (over datasets) and, for
    cross-dataset / DG, the ``average`` column (over targets)."""
    order = list(dict.fromkeys(records["column"]))
    wide = records.pivot_table(index=["row", "group", "seed"], columns="column", values="value", aggfunc="first")
    wide = _recompute_hm(wide.reindex(columns=order), hm_of)
    if layout in ("cross_dataset", "dg"):
        targets = [c for c in order if c != "source" and "[" not in c]
        if len(targets) > 1:
            wide["average"] = wide[targets].mean(axis=1)
    groups = wide.index.get_level_values("group").unique()
    if layout not in ("cross_dataset", "dg") and len(groups) > 1:
        avg = wide.groupby(level=["row", "seed"]).mean()
        avg = _recompute_hm(avg, hm_of)
        avg["group"] = "average"
        avg = avg.reset_index().set_index(["row", "group", "seed"])
        wide = pd.concat([wide, avg])
    return wide


def aggregate(records: pd.DataFrame, hm_of: dict, layout: str, hidden: list[str] = ()) -> pd.DataFrame:
    """Cells (row, group, column, mean, std, n) from per-seed records: mean ± std over seeds, each HM from the
    seed-averaged base and novel of its cell."""
    wide = _per_seed(records, hm_of, layout)
    rows = list(dict.fromkeys(records["row"]))
    groups = list(dict.fromkeys(records["group"])) + (
        ["average"] if "average" in wide.index.get_level_values(1) else []
    )
    cells = []
    for (row, group), block in wide.groupby(level=["row", "group"], sort=False):
        means = block.mean(axis=0)
        for col in block.columns:
            values = block[col].to_numpy(dtype=float)
            values = values[~np.isnan(values)]
            if values.size == 0:
                continue
            mean = float(values.mean())
            if col in hm_of:
                b, n = hm_of[col]
                mean = hm(float(means[b]), float(means[n]))
            cells.append((row, group, col, mean, float(values.std()), int(values.size)))
    frame = pd.DataFrame(cells, columns=["row", "group", "column", "mean", "std", "n"])
    frame = frame[~frame["column"].isin(list(hidden))]
    frame["row"] = pd.Categorical(frame["row"], rows, ordered=True)
    frame["group"] = pd.Categorical(frame["group"], groups, ordered=True)
    cols = list(dict.fromkeys(frame["column"]))
    frame["column"] = pd.Categorical(frame["column"], cols, ordered=True)
    return frame.sort_values(["row", "group", "column"]).reset_index(drop=True)


def _published_method(row: str, methods: dict[str, str]) -> str:
    return methods.get(row, row)


def _compare(cells: pd.DataFrame, layout: str, methods: dict, source: str | None, path) -> tuple[pd.DataFrame, list]:
    pub, diff, flag, src, used = [], [], [], [], {}
    for _, c in cells.iterrows():
        found = lookup(layout, _published_method(str(c["row"]), methods), str(c["group"]), str(c["column"]),
                       source=source, path=path)  # fmt: skip
        if found is None:
            pub.append(math.nan), diff.append(math.nan), flag.append(math.nan), src.append("not known")
            continue
        value, table = found
        used[table.id] = table
        d = float(c["mean"]) - value
        spread = float(c["std"]) if c["n"] > 1 else math.nan
        pub.append(value), diff.append(d), src.append(table.id)
        flag.append(math.nan if math.isnan(spread) else float(abs(d) > spread))
    cells = cells.assign(published=pub, diff=diff, flag=flag, source=src)
    return cells, list(used.values())


def build_table(
    sweep_dir: str | Path,
    layout: str | None = None,
    *,
    metric: str | None = None,
    nc: list[str] | tuple[str, ...] | None = None,
    compare: bool = False,
    methods: dict[str, str] | None = None,
    source: str | None = None,
    published_path: str | Path | None = None,
) -> Table:
    """Build a paper's table from a sweep folder's finished runs.

    Parameters
    ----------
    sweep_dir:
        The sweep folder (``runs.json`` and ``runs/``).
    layout:
        ``b2n`` (base, novel, HM per dataset and their average), ``imbalance`` (columns by τ), ``cross_dataset``
        and ``dg`` (columns by target), ``few_shot`` (columns by shots). ``None``: the spec's ``table.layout``,
        else ``b2n`` (``metric``, ``nc`` and ``methods`` default to the spec's ``table`` section the same way).
    metric:
        The value of the ``imbalance`` / ``few_shot`` columns: ``hm`` (default for base-to-novel runs), ``base``,
        ``novel`` or ``all`` (the single accuracy of other protocols).
    nc:
        NC metrics as extra columns: ``t2i_cross_etf_error`` (every set) or ``t2i_cross_etf_error[novel]``.
    compare:
        Add the published value, the difference and the out-of-spread flag (``published.yaml``).
    methods:
        Table row → published method name, where a row's label is not the published one (``{'CoOp+NPT': 'coop+npt'}``).
    source:
        Compare with this published table id only (default: the first table that lists a cell).
    """
    runs, axes, missing, defaults = collect(sweep_dir)
    layout = layout or defaults.get("layout", "b2n")
    metric = metric or defaults.get("metric")
    nc = list(nc if nc is not None else defaults.get("nc", []))
    methods = {**defaults.get("methods", {}), **(methods or {})}
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; valid layouts: {', '.join(LAYOUTS)}")
    if runs.empty:
        raise ValueError(f"no finished run in {sweep_dir} yet ({len(missing)} runs without result.json)")
    records, hm_of, hidden = layout_records(runs, axes, layout, metric=metric, nc=nc)
    cells = aggregate(records, hm_of, layout, hidden)
    sources: list = []
    if compare:
        cells, sources = _compare(cells, layout, methods, source, published_path)
    return Table(layout=layout, cells=cells, missing=missing, sources=sources, compared=compare)
