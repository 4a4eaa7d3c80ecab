"""What ``ncprobe plot FILE… --kind KIND -o OUT`` runs: read saved datasets, draw, save.

Kinds and the files they read:

* ``gram``, ``geometry``, ``groups`` — one report (``report.to_netcdf``), or one history (the last epoch;
  the evaluation set ``base`` when there are several);
* ``trajectory`` — one or more histories (several overlay, labelled by their ``method`` attribute);
* ``layers`` — a stack of layer reports (:func:`ncprobe.plotting.stack_layers`, saved with
  ``ncprobe.core.report.save_dataset``);
* ``correlation`` — several histories (one point per run and seed); ``--metrics`` names the NC metric
  (default ``t2i_text_etf_error``).

Every failure is a ``ValueError`` with a one-line message (the command prints it as ``ncprobe: error: …``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import plotly.graph_objects as go
import xarray as xr

from ncprobe.core.report import load_dataset

from .correlation import correlation_figure, runs_table
from .export import ExportError, save_figure
from .geometry import geometry_figure
from .gram import gram_figure
from .groups import group_bars_figure
from .layers import layers_figure
from .trajectory import trajectory_figure

__all__ = ["KINDS", "draw", "figure_from_files"]

KINDS = ("gram", "geometry", "trajectory", "groups", "layers", "correlation")


def _kind_of(ds: xr.Dataset) -> str:
    if "layer" in ds.dims:
        return "layers"
    if "epoch" in ds.dims:
        return "history"
    return "report"


def _one(datasets: list[tuple[str, xr.Dataset]], kind: str) -> xr.Dataset:
    if len(datasets) != 1:
        raise ValueError(f"--kind {kind} draws one file, got {len(datasets)}")
    name, ds = datasets[0]
    what = _kind_of(ds)
    if what == "layers":
        raise ValueError(f"{name} stacks layer reports: draw it with --kind layers")
    if what == "history" and "eval_set" in ds.dims and ds.sizes["eval_set"] > 1:
        sets = [str(s) for s in ds["eval_set"].values]
        ds = ds.sel(eval_set="base" if "base" in sets else sets[0])
    return ds


def figure_from_files(
    files: Sequence[str | os.PathLike], *, kind: str, metrics: Sequence[str] | None = None
) -> go.Figure:
    """The figure ``kind`` of saved report / history / layer-stack files (see the module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    if not files:
        raise ValueError("no input file")
    datasets = [(str(f), load_dataset(f)) for f in files]
    if kind == "gram":
        return gram_figure(_one(datasets, kind))
    if kind == "geometry":
        return geometry_figure(_one(datasets, kind))
    if kind == "groups":
        return group_bars_figure(_one(datasets, kind))
    if kind == "layers":
        name, ds = datasets[0] if len(datasets) == 1 else (None, None)
        if ds is None or _kind_of(ds) != "layers":
            raise ValueError("--kind layers needs one file stacking layer reports (ncprobe.plotting.stack_layers)")
        return layers_figure(ds, **({"metrics": metrics} if metrics else {}))
    histories = {}
    for name, ds in datasets:
        if _kind_of(ds) != "history":
            raise ValueError(f"--kind {kind} needs training histories (an 'epoch' dimension); {name} is not one")
        label = str(ds.attrs.get("method", Path(name).stem))
        histories[label if label not in histories else f"{label} ({Path(name).stem})"] = ds
    if kind == "trajectory":
        return trajectory_figure(histories, metrics=metrics or None)
    metric = (metrics or ["t2i_text_etf_error"])[0]
    if metrics and len(metrics) > 1:
        raise ValueError("--kind correlation draws one NC metric; pass a single name to --metrics")
    table = runs_table(histories)
    if len(table) < 3:
        raise ValueError(f"--kind correlation needs at least 3 runs (rows), got {len(table)}")
    if metric not in table.columns:
        raise ValueError(f"the histories hold no metric {metric!r}")
    accuracies = [c for c in ("accuracy_base", "accuracy_novel", "hm") if c in table.columns]
    if not accuracies:
        accuracies = [c for c in table.columns if str(c).startswith("accuracy_")]
    if not accuracies:
        raise ValueError("the histories hold no accuracy to correlate with")
    return correlation_figure(table, metric=metric, accuracies=accuracies)


def draw(
    files: Sequence[str | os.PathLike],
    *,
    kind: str,
    output: str | os.PathLike,
    metrics: Sequence[str] | None = None,
) -> Path:
    """Draw ``kind`` from ``files`` and save it to ``output`` (.html, or .png / .svg through kaleido).

    Returns
    -------
    pathlib.Path
        The path written.
    """
    fig = figure_from_files(files, kind=kind, metrics=metrics)
    try:
        return save_figure(fig, output)
    except ExportError as err:
        raise ValueError(str(err)) from None
