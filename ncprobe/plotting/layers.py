"""Collapse across layers: NC1, NC2 and NCC accuracy of intermediate features, layer by layer, for base
and novel classes (progressive collapse through depth: Rangamani et al. 2023; He & Su 2023).

Input: ``{layer: {"base": NCReport, "novel": NCReport}}`` (one report per layer and class split, e.g. from
``ncprobe.measure`` of the features returned by ``ncprobe.models.layerwise.extract_layer_features``), or the
``xarray.Dataset`` that :func:`stack_layers` makes of it (dims ``layer`` and ``eval_set``; saved with
``ncprobe.core.report.save_dataset`` it is what ``ncprobe plot layers.nc --kind layers`` reads).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import xarray as xr
from plotly.subplots import make_subplots

from ncprobe.core.report import NCReport, stack_reports

from ._common import as_dataset, fit_width, metric_axis, metric_title, run_colors

__all__ = ["layers_figure", "stack_layers", "DEFAULT_LAYER_METRICS"]

DEFAULT_LAYER_METRICS = ("nc1", "nc2_etf_error", "ncc_accuracy")


def stack_layers(reports: Mapping[Any, Mapping[str, NCReport] | NCReport]) -> xr.Dataset:
    """Stack ``{layer: {split: report}}`` into one dataset with dims ``layer`` (in the mapping's order) and
    ``eval_set`` (the splits). A plain ``{layer: report}`` gets ``eval_set="all"``.

    Per-class variables are kept (classes of different splits are joined, NaN elsewhere), so the stack is a
    complete record that :func:`ncprobe.core.report.save_dataset` can write.

    >>> # ds = stack_layers({i: {"base": measure(fb[i], yb), "novel": measure(fn[i], yn)} for i in fb})
    """
    if not reports:
        raise ValueError("no layers to stack")
    layers = list(reports)
    by_split: dict[str, list[NCReport]] = {}
    for layer in layers:
        entry = reports[layer]
        entry = {"all": entry} if isinstance(entry, (NCReport, xr.Dataset)) else dict(entry)
        for split, rep in entry.items():
            by_split.setdefault(str(split), []).append(rep if isinstance(rep, NCReport) else NCReport(rep))
    splits = list(by_split)
    short = [s for s in splits if len(by_split[s]) != len(layers)]
    if short:
        raise ValueError(f"splits {short} are missing at some layers; every layer needs the same splits {splits}")
    coords = [str(layer) for layer in layers]
    stacks = [stack_reports(by_split[s], dim="layer", coords=coords) for s in splits]
    labels: dict[str, dict] = {"class_name": {}, "class_group": {}}  # per-class coordinates, joined by hand
    for st in stacks:
        for key, table in labels.items():
            if key in st.coords:
                table.update(zip(st["class"].values.tolist(), map(str, st[key].values)))
    bare = [st.drop_vars([k for k in labels if k in st.coords]) for st in stacks]
    out = xr.concat(bare, dim="eval_set", join="outer", combine_attrs="drop_conflicts").assign_coords(eval_set=splits)
    ids = out["class"].values.tolist()
    for key, table in labels.items():
        if table:
            values = [table.get(c, "none" if key == "class_group" else f"class {c}") for c in ids]
            out = out.assign_coords({key: ("class", values)})
    return out


def layers_figure(
    layers: Any,
    *,
    metrics: Sequence[str] = DEFAULT_LAYER_METRICS,
    log_metrics: Sequence[str] = ("nc1",),
    title: str | None = None,
    width: int | None = None,
    height: int = 380,
) -> go.Figure:
    """One panel per metric against depth, one line per class split (base, novel, …).

    Parameters
    ----------
    layers:
        ``{layer: {"base": NCReport, "novel": NCReport}}`` or a dataset from :func:`stack_layers`.
    metrics:
        Scalar report metrics to draw (default NC1, NC2's ETF error and NCC accuracy).
    log_metrics:
        Metrics drawn on a log axis.
    title, width, height:
        Figure title and size in pixels.

    Returns
    -------
    plotly.graph_objects.Figure

    Example
    -------
    >>> import ncprobe
    >>> from ncprobe.core.synthetic import make_collapse
    >>> def rep(noise):
    ...     d = make_collapse(num_classes=4, dim=8, samples_per_class=20, noise=noise, seed=0)
    ...     return ncprobe.measure(d.features, d.labels)
    >>> fig = layers_figure({f"block {i}": {"base": rep(1.0 / i), "novel": rep(2.0 / i)} for i in (1, 2, 3)})
    >>> [t.name for t in fig.data][:2]
    ['base', 'novel']
    """
    ds = layers if isinstance(layers, xr.Dataset) else stack_layers(layers)
    ds = as_dataset(ds)
    if "layer" not in ds.dims:
        raise ValueError("the dataset has no 'layer' dimension; build it with stack_layers({layer: {split: report}})")
    names = [m for m in metrics if m in ds]
    if not names:
        raise ValueError(f"none of {list(metrics)} is in the layer reports")
    sets = [str(s) for s in ds["eval_set"].values] if "eval_set" in ds.dims else [None]
    x = [str(v) for v in ds["layer"].values]
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=[metric_title(m) for m in names])
    colors = run_colors(len(sets))
    for col, name in enumerate(names, start=1):
        for s, color in zip(sets, colors):
            var = ds[name] if s is None else ds[name].sel(eval_set=s)
            extra = [d for d in var.dims if d != "layer"]
            if extra:
                raise ValueError(f"{name!r} varies along {extra}; layers_figure draws scalars per layer")
            label = s or "all"
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=np.asarray(var.values, dtype=float),
                    mode="lines+markers",
                    name=label,
                    legendgroup=label,
                    showlegend=col == 1,
                    line={"color": color, "width": 2, "dash": "solid" if label in ("base", "all") else "dash"},
                    marker={"size": 8},
                    hovertemplate=f"{label}<br>layer %{{x}}<br>{name} %{{y:.4g}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
        fig.update_yaxes(**metric_axis(name, log=name in log_metrics), row=1, col=col)
        fig.update_xaxes(title_text="layer", type="category", row=1, col=col)
    fig.update_layout(
        title=title or "Collapse across layers",
        width=fit_width(width, 360 * len(names) + 160),
        height=height,
        template="plotly_white",
        legend={"title": {"text": "classes"}},
    )
    return fig
