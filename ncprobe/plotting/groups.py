"""Group bars: per-class and per head/medium/tail values of NC1-type variance, NCC accuracy and test
accuracy, read from a report's ``class_*`` and ``group_*`` variables."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ._common import (
    GROUP_COLORS,
    class_groups,
    class_labels,
    fit_width,
    header_note,
    metric_axis,
    metric_title,
    run_attrs,
    select_report,
    with_subtitle,
)

__all__ = ["group_bars_figure", "no_groups_note", "DEFAULT_GROUP_VARIABLES"]

#: Per-class variables drawn by default, in order; the first present accuracy stands for test accuracy.
DEFAULT_GROUP_VARIABLES = ("class_variance", "class_ncc_accuracy", "accuracy")
_TEST_ACCURACY = ("class_t2i_zero_shot_accuracy", "class_classifier_accuracy")


def group_bars_figure(
    report: Any,
    *,
    variables: Sequence[str] = DEFAULT_GROUP_VARIABLES,
    sort: str = "count",
    epoch: int | None = -1,
    eval_set: str | None = None,
    seed: int | None = None,
    title: str | None = None,
    width: int | None = None,
    height: int = 620,
) -> go.Figure:
    """Bars per class (top row) and per head/medium/tail group (bottom row), one column per variable.

    Per-class bars are coloured by group. The group bars are the report's ``group_*`` aggregates as
    stored (accuracies sample-weighted, variances class-averaged: see :mod:`ncprobe.core.report`); nothing
    is re-aggregated here. Hover shows the class, its group and its sample count. A report without groups
    (none asked for, or equal class counts: ``groups_note``) gets the per-class row only and a note saying
    why. From a history with several seeds and no ``seed=``, bars are the mean over seeds with ± std (ddof 0)
    error bars; the subtitle says so.

    Parameters
    ----------
    report:
        An :class:`~ncprobe.NCReport`, its dataset, or a history (``epoch``/``eval_set``/``seed`` select one).
        Group bars need a report measured with ``groups=`` (e.g. ``"counts"``).
    variables:
        Per-class variable names (``class_variance``, ``class_ncc_accuracy``, ``class_t2i_alignment``, …).
        ``"accuracy"`` stands for the test accuracy: ``class_t2i_zero_shot_accuracy`` (the text classifier, a
        V-L model's prediction) or else ``class_classifier_accuracy``. Absent variables are skipped.
    sort:
        Class order: ``"count"`` (descending sample count, the long tail to the right) or ``"class"``.
    epoch, eval_set, seed:
        Selection in a history (``seed=None`` on several seeds: their mean ± std).
    title, width, height:
        Figure title and size in pixels (width default: 360 per column, at most 1,400).

    Returns
    -------
    plotly.graph_objects.Figure

    Example
    -------
    >>> from ncprobe.core.synthetic import make_collapse
    >>> import ncprobe
    >>> d = make_collapse(num_classes=6, dim=8, samples_per_class=30, imbalance=10, seed=0)
    >>> r = ncprobe.measure(d.features, d.labels, text_features=d.text_features, groups="counts")
    >>> [a.text for a in group_bars_figure(r).layout.annotations][:3]
    ['class_variance ↓', 'class_ncc_accuracy ↑', 'class_t2i_zero_shot_accuracy ↑']
    """
    if sort not in ("count", "class"):
        raise ValueError(f"sort must be 'count' or 'class', got {sort!r}")
    ds, selected = select_report(report, epoch=epoch, eval_set=eval_set, seed=seed, keep_seeds=True)
    names = _resolve(ds, variables)
    if not names:
        raise ValueError(f"none of {list(variables)} is in the report; it has {_per_class(ds)}")
    seeds = ds.sizes.get("seed", 0)
    if seeds:
        selected += f" · mean ± std (ddof 0) over {seeds} seeds, as error bars"
    labels = np.asarray(class_labels(ds))
    groups = class_groups(ds)
    counts = _mean(ds["class_count"])[0] if "class_count" in ds else np.full(len(labels), np.nan)
    order = np.argsort(-np.nan_to_num(counts), kind="stable") if sort == "count" else np.arange(len(labels))
    has_groups = groups is not None and "group" in ds.dims
    rows = 2 if has_groups else 1
    titles = [metric_title(n) for n in names] + ([f"per group: {n.removeprefix('class_')}" for n in names] * has_groups)
    fig = make_subplots(rows=rows, cols=len(names), subplot_titles=titles, vertical_spacing=0.22)
    group_of = np.asarray(groups) if groups else np.full(len(labels), "all")
    shown: set[str] = set()
    for col, name in enumerate(names, start=1):
        values, spread = _mean(ds[name])
        for g in dict.fromkeys(group_of[order]):
            sel = order[group_of[order] == g]
            fig.add_trace(
                go.Bar(
                    x=labels[sel],
                    y=values[sel],
                    error_y=_error(spread, sel),
                    name=f"{g}" if groups else name,
                    legendgroup=str(g),
                    showlegend=bool(groups) and g not in shown,
                    marker_color=GROUP_COLORS.get(str(g), "#0072B2"),
                    customdata=np.stack([group_of[sel], counts[sel]], axis=1),
                    hovertemplate="%{x}<br>group %{customdata[0]}, n=%{customdata[1]}<br>"
                    + name
                    + " %{y:.4g}<extra></extra>",
                ),
                row=1,
                col=col,
            )
            shown.add(g)
        fig.update_xaxes(categoryorder="array", categoryarray=labels[order], tickangle=-45, row=1, col=col)
        fig.update_yaxes(**metric_axis(name, full=name.endswith("accuracy")), row=1, col=col)
        if has_groups:
            gname = "group_" + name.removeprefix("class_")
            if gname in ds:
                gs = [str(g) for g in ds["group"].values]
                gvalues, gspread = _mean(ds[gname])
                fig.add_trace(
                    go.Bar(
                        x=gs,
                        y=gvalues,
                        error_y=_error(gspread, slice(None)),
                        marker_color=[GROUP_COLORS.get(g, "#999") for g in gs],
                        showlegend=False,
                        customdata=_mean(ds["group_num_classes"])[0] if "group_num_classes" in ds else None,
                        hovertemplate="%{x}: %{customdata} classes<br>" + gname + " %{y:.4g}<extra></extra>",
                    ),
                    row=2,
                    col=col,
                )
                fig.update_yaxes(**metric_axis(name, full=name.endswith("accuracy")), row=2, col=col)
    if not has_groups:
        header_note(fig, no_groups_note(ds), color="#8a4b00", name="no groups")
    default = (
        "Per class and per head / medium / tail group" if has_groups else "Per class (no head / medium / tail groups)"
    )
    fig.update_layout(
        title=with_subtitle(title or default, selected),
        barmode="group",
        width=fit_width(width, 360 * len(names) + 120),
        height=height if has_groups else height * 0.7,
        margin={"t": 130 if has_groups else 150},
        template="plotly_white",
        legend={"title": {"text": "group"}},
        bargap=0.15,
    )
    return fig


def no_groups_note(ds) -> str:
    """Why a report or history selection has no head/medium/tail groups, in one line."""
    note = ds.attrs.get("groups_note") or run_attrs(ds).get("groups_note")
    if note:
        return str(note)
    if "class_group" in ds.coords:
        ratio = run_attrs(ds).get("imbalance_ratio")
        why = f"; this run's imbalance ratio is {ratio:g}" if isinstance(ratio, (int, float)) else ""
        return (
            "no head/medium/tail groups for these classes: groups come from an imbalanced run's training counts "
            f"(a balanced run and classes not trained on have none){why}"
        )
    return "no head/medium/tail groups in this report (measure(..., groups='counts') on unequal counts forms them)"


def _mean(var) -> tuple[np.ndarray, np.ndarray | None]:
    """Values of ``var``, or their mean and std (ddof 0) over ``seed`` when it has that dimension."""
    if "seed" not in var.dims:
        return np.asarray(var.values, dtype=float), None
    return var.mean("seed", skipna=True).values.astype(float), var.std("seed", ddof=0, skipna=True).values


def _error(spread: np.ndarray | None, sel) -> dict | None:
    if spread is None:
        return None
    return {"type": "data", "array": spread[sel], "visible": True, "thickness": 1.2, "width": 3}


def _per_class(ds) -> list[str]:
    return [str(v) for v in ds.data_vars if _is_per_class(ds[v])]


def _is_per_class(var) -> bool:
    return var.dims in (("class",), ("seed", "class"))


def _resolve(ds, variables: Sequence[str]) -> list[str]:
    out = []
    for v in variables:
        if v == "accuracy":
            v = next((a for a in _TEST_ACCURACY if a in ds), "")
        if v and v in ds and _is_per_class(ds[v]) and v not in out:
            out.append(v)
    return out
