"""What ``ncprobe plot FILE… --kind KIND -o OUT`` runs: read saved datasets, draw, save.

Kinds and the files they read:

* ``gram``, ``geometry``, ``groups`` — one report (``report.to_netcdf``), or one history (``--epoch``,
  default the last; ``--eval-set``, default ``base`` when there are several; ``--seed``, required for
  ``gram``/``geometry`` when the history holds several seeds, while ``groups`` then draws their mean ± std);
* ``trajectory`` — one or more histories (several overlay, each labelled by ``--label`` or by its method,
  regularizers and what differs between the runs; no run is ever dropped);
* ``layers`` — a stack of layer reports (:func:`ncprobe.plotting.stack_layers`, saved with
  ``ncprobe.core.report.save_dataset``);
* ``correlation`` — several histories (one point per run and seed); ``--metrics`` names the NC metric
  (default ``t2i_text_etf_error``), ``--eval-set`` the set whose NC metrics are used (default ``base``).

Each option maps to the same-named argument of the figure function (:data:`OPTIONS` says which kinds take
it); an option a kind does not take, or a wrong count of ``--label``, is refused before anything is drawn.
Every failure is a ``ValueError`` with a one-line message (the command prints it as ``ncprobe: error: …``).
"""

from __future__ import annotations

import os
import re
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
from .runs import history_runs
from .trajectory import trajectory_figure

__all__ = ["KINDS", "OPTIONS", "draw", "figure_from_files"]

KINDS = ("gram", "geometry", "trajectory", "groups", "layers", "correlation")
#: The kinds each option applies to (the command-line flag is the name with "-" for "_").
OPTIONS = {
    "eval_set": ("gram", "geometry", "groups", "trajectory", "correlation"),
    "epoch": ("gram", "geometry", "groups", "correlation"),
    "seed": ("gram", "geometry", "groups", "trajectory", "correlation"),
    "dims": ("geometry",),
    "cross": ("gram",),
    "metrics": ("trajectory", "groups", "layers", "correlation"),
    "labels": ("trajectory", "correlation"),
}
_FLAGS = {"labels": "--label", "eval_set": "--eval-set"}


def _kind_of(ds: xr.Dataset) -> str:
    if "layer" in ds.dims:
        return "layers"
    if "epoch" in ds.dims:
        return "history"
    return "report"


def _one(datasets: list[tuple[str, xr.Dataset]], kind: str, eval_set: str | None, seed: int | None) -> dict:
    """The one report or history of a one-file kind, with the selection arguments its figure takes: the
    default evaluation set (``base`` when there are several) is picked here; the figure's
    :func:`~ncprobe.plotting.report_dataset` checks the eval set, epoch and seed."""
    if len(datasets) != 1:
        raise ValueError(f"--kind {kind} draws one file, got {len(datasets)}")
    name, ds = datasets[0]
    if _kind_of(ds) == "layers":
        raise ValueError(f"{name} stacks layer reports: draw it with --kind layers")
    if eval_set is None and "eval_set" in ds.dims:
        sets = [str(s) for s in ds["eval_set"].values]
        eval_set = "base" if "base" in sets else sets[0]
    return {"report": ds, "eval_set": eval_set, "seed": seed}


#: The figure functions' argument names (``seed=``) as the command's flags (``--seed``), in error messages.
_ARGUMENT = re.compile(r"\b(eval_set|epoch|seed)=")


def _in_flags(err: ValueError, name: str) -> ValueError:
    """``err`` in the command line's words (``seed=7`` as ``--seed 7``), prefixed by the file's name."""
    text = _ARGUMENT.sub(lambda m: "--" + m.group(1).replace("_", "-") + " ", str(err)).replace("  ", " ")
    return ValueError(f"{name}: {text}")


def _check_options(kind: str, given: dict) -> None:
    for option, value in given.items():
        if value not in (None, False) and kind not in OPTIONS[option]:
            flag = _FLAGS.get(option, "--" + option)
            takes = ", ".join(OPTIONS[option])
            raise ValueError(f"{flag} does not apply to --kind {kind} (only to {takes})")


def figure_from_files(
    files: Sequence[str | os.PathLike],
    *,
    kind: str,
    metrics: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    eval_set: str | None = None,
    epoch: int | None = None,
    seed: int | None = None,
    dims: int | None = None,
    cross: bool = False,
) -> go.Figure:
    """The figure ``kind`` of saved report / history / layer-stack files (see the module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    if not files:
        raise ValueError("no input file")
    options = {"eval_set": eval_set, "epoch": epoch, "seed": seed, "dims": dims, "cross": cross}
    _check_options(kind, {**options, "metrics": metrics or None, "labels": labels or None})
    if labels and len(labels) != len(files):
        raise ValueError(f"--label given {len(labels)} times for {len(files)} files; give one per file")
    if dims is not None and dims not in (2, 3):
        raise ValueError(f"--dims must be 2 or 3, got {dims}")
    datasets = [(str(f), load_dataset(f)) for f in files]
    at = {"epoch": -1 if epoch is None else epoch}
    if kind in ("gram", "geometry", "groups"):
        one = _one(datasets, kind, eval_set, seed)
        try:
            if kind == "gram":
                return gram_figure(**one, **at, cross=cross)
            if kind == "geometry":
                return geometry_figure(**one, **at, dims=dims or 2)
            return group_bars_figure(**one, **at, **({"variables": metrics} if metrics else {}))
        except ValueError as err:
            raise _in_flags(err, datasets[0][0]) from None
    if kind == "layers":
        name, ds = datasets[0] if len(datasets) == 1 else (None, None)
        if ds is None or _kind_of(ds) != "layers":
            raise ValueError("--kind layers needs one file stacking layer reports (ncprobe.plotting.stack_layers)")
        return layers_figure(ds, **({"metrics": metrics} if metrics else {}))
    for name, ds in datasets:
        if _kind_of(ds) != "history":
            raise ValueError(f"--kind {kind} needs training histories (an 'epoch' dimension); {name} is not one")
    runs = history_runs([ds for _, ds in datasets], labels=labels, names=[n for n, _ in datasets])
    if kind == "trajectory":
        return trajectory_figure(runs, metrics=metrics or None, eval_sets=[eval_set] if eval_set else None, seed=seed)
    metric = (metrics or ["t2i_text_etf_error"])[0]
    if metrics and len(metrics) > 1:
        raise ValueError("--kind correlation draws one NC metric; pass a single name to --metrics")
    table = runs_table(runs, epoch=at["epoch"], nc_eval_set=eval_set or "base", seed=seed)
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
    **options,
) -> Path:
    """Draw ``kind`` from ``files`` and save it to ``output`` (.html, or .png / .svg through kaleido).

    ``options`` are those of :func:`figure_from_files` (``labels``, ``eval_set``, ``epoch``, ``seed``,
    ``dims``, ``cross``).

    Returns
    -------
    pathlib.Path
        The path written.
    """
    fig = figure_from_files(files, kind=kind, metrics=metrics, **options)
    try:
        return save_figure(fig, output)
    except ExportError as err:
        raise ValueError(str(err)) from None
