"""The geometry view: class means, class text features and a sample cloud on the means' principal axes.

Everything drawn is stored in the report (``mean_coords``, ``text_coords``, ``sample_coords``,
``sample_class``; see :mod:`ncprobe.core.projection`): the figure never projects anything itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ._common import (
    GROUP_SYMBOLS,
    class_colors,
    class_groups,
    class_labels,
    fit_width,
    header_note,
    select_report,
    with_subtitle,
)

__all__ = ["geometry_figure"]


def geometry_figure(
    report: Any,
    *,
    dims: int = 2,
    cloud: bool = True,
    links: bool = True,
    epoch: int | None = -1,
    eval_set: str | None = None,
    seed: int | None = None,
    title: str | None = None,
    width: int | None = None,
    height: int | None = None,
) -> go.Figure:
    """Class means, text features and samples projected to 2-D or 3-D, one colour per class.

    Left panel: the sample cloud (when the report holds one: ``measure(..., cloud=N)``) and the centred
    class means. Right panel: the class text features in the same basis, with the class means as open
    markers and a line from each mean to its class's text feature (how far the modalities are from being
    paired). A class has one colour in both panels and one legend entry (clicking it hides the class
    everywhere); marker symbols mark head (●), medium (■) and tail (◆) classes when the report has groups.

    Parameters
    ----------
    report:
        An :class:`~ncprobe.NCReport`, its dataset, or a history (``epoch``/``eval_set``/``seed`` select one).
    dims:
        2 or 3 components (the report stores ``projection`` components; 3 by default).
    cloud:
        Draw the sample cloud when present.
    links:
        Draw mean → text segments in the right panel.
    epoch, eval_set, seed:
        Selection in a history (``seed`` is required when it holds several: coordinates of different seeds
        live in different bases and are never averaged). The subtitle names the selection.
    title, width, height:
        Figure title and size in pixels (default 1,100 × 520; 3-D: 1,100 × 640).

    Returns
    -------
    plotly.graph_objects.Figure

    Example
    -------
    >>> from ncprobe.core.synthetic import make_collapse
    >>> import ncprobe
    >>> d = make_collapse(num_classes=4, dim=8, samples_per_class=20, seed=0)
    >>> r = ncprobe.measure(d.features, d.labels, text_features=d.text_features, cloud=40)
    >>> geometry_figure(r, dims=3).layout.scene.xaxis.title.text
    'PC1'
    """
    if dims not in (2, 3):
        raise ValueError(f"dims must be 2 or 3, got {dims}")
    ds, selected = select_report(report, epoch=epoch, eval_set=eval_set, seed=seed)
    if "mean_coords" not in ds:
        raise ValueError("the report has no 'mean_coords'; measure with projection >= 2")
    stored = ds.sizes["component"]
    if stored < dims:
        raise ValueError(f"the report stores {stored} components; dims={dims} needs measure(..., projection={dims})")
    means = ds["mean_coords"].values[:, :dims]
    text = ds["text_coords"].values[:, :dims] if "text_coords" in ds else None
    names = class_labels(ds)
    groups = class_groups(ds)
    colors = class_colors(len(names))
    ids = ds["class"].values.tolist()
    kind = "scene" if dims == 3 else "xy"
    titles = ["image features: samples and class means"]
    if text is not None:
        titles.append("text features (filled) vs image means (open)")
    fig = make_subplots(
        rows=1, cols=len(titles), subplot_titles=titles, specs=[[{"type": kind}] * len(titles)], horizontal_spacing=0.1
    )
    scatter = go.Scatter3d if dims == 3 else go.Scatter
    if cloud and "sample_coords" in ds:
        pts = ds["sample_coords"].values[:, :dims]
        owner = np.asarray(ds["sample_class"].values)
        for k, cid in enumerate(ids):
            sel = owner == cid
            if sel.any():
                fig.add_trace(
                    scatter(
                        **_xyz(pts[sel]),
                        mode="markers",
                        marker={"size": 3 if dims == 3 else 5, "color": colors[k], "opacity": 0.35},
                        name=names[k],
                        legendgroup=names[k],
                        showlegend=False,
                        hovertemplate=f"sample of {names[k]}<extra></extra>",
                    ),
                    row=1,
                    col=1,
                )
    for k, name in enumerate(names):
        if np.isnan(means[k]).any():
            continue
        group = groups[k] if groups else None
        symbol = GROUP_SYMBOLS.get(group, "circle") if group else "circle"
        label = f"{name} ({group})" if group else name
        hover = f"{name}<br>group: {group}<br>" if group else f"{name}<br>"
        fig.add_trace(
            scatter(
                **_xyz(means[k : k + 1]),
                mode="markers",
                marker={"size": 9 if dims == 3 else 14, "color": colors[k], "symbol": symbol, "line": _edge(dims)},
                name=label,
                legendgroup=name,
                hovertemplate=hover + "class mean<extra></extra>",
            ),
            row=1,
            col=1,
        )
        if text is None or np.isnan(text[k]).any():
            continue
        if links:
            seg = np.vstack([means[k], text[k]])
            fig.add_trace(
                scatter(
                    **_xyz(seg),
                    mode="lines",
                    line={"color": colors[k], "width": 2, "dash": "dot"},
                    legendgroup=name,
                    showlegend=False,
                    hoverinfo="skip",
                ),
                row=1,
                col=2,
            )
        fig.add_trace(
            scatter(
                **_xyz(means[k : k + 1]),
                mode="markers",
                marker={"size": 7 if dims == 3 else 12, "color": colors[k], "symbol": _open(symbol, dims)},
                legendgroup=name,
                showlegend=False,
                hovertemplate=hover + "class mean<extra></extra>",
            ),
            row=1,
            col=2,
        )
        fig.add_trace(
            scatter(
                **_xyz(text[k : k + 1]),
                mode="markers",
                marker={"size": 9 if dims == 3 else 14, "color": colors[k], "symbol": symbol, "line": _edge(dims)},
                legendgroup=name,
                showlegend=False,
                hovertemplate=hover + "text feature<extra></extra>",
            ),
            row=1,
            col=2,
        )
    if groups:
        marks = {"circle": "●", "square": "■", "diamond": "◆", "x": "✕"}
        key = "   ".join(f"{marks[GROUP_SYMBOLS.get(g, 'circle')]} {g}" for g in dict.fromkeys(groups))
        header_note(fig, f"markers: {key}", align="right", y=1.1, yshift=0)
    _axes(fig, dims, len(titles))
    fig.update_layout(
        title=with_subtitle(title or "Class geometry on the class means' principal axes", selected),
        width=fit_width(width, 1100),
        height=height or (640 if dims == 3 else 520),
        template="plotly_white",
        legend={"itemsizing": "constant"},
    )
    return fig


#: Marker symbols a 3-D scene accepts (Plotly's scatter3d has no "x-open", "triangle", …).
_SYMBOLS_3D = ("circle", "circle-open", "cross", "diamond", "diamond-open", "square", "square-open", "x")


def _open(symbol: str, dims: int) -> str:
    """The open variant of ``symbol`` (a 3-D scene falls back to the filled symbol where none exists)."""
    if dims == 3 and symbol + "-open" not in _SYMBOLS_3D:
        return symbol if symbol in _SYMBOLS_3D else "circle-open"
    return symbol + "-open"


def _xyz(points: np.ndarray) -> dict:
    out = {"x": points[:, 0], "y": points[:, 1]}
    if points.shape[1] == 3:
        out["z"] = points[:, 2]
    return out


def _edge(dims: int) -> dict:
    return {"color": "black", "width": 1 if dims == 2 else 0.5}


def _axes(fig: go.Figure, dims: int, panels: int) -> None:
    if dims == 3:
        for i in range(1, panels + 1):
            key = "scene" if i == 1 else f"scene{i}"
            fig.layout[key].update(xaxis_title="PC1", yaxis_title="PC2", zaxis_title="PC3", aspectmode="cube")
        return
    for i in range(1, panels + 1):
        fig.update_xaxes(title_text="PC1", zeroline=True, row=1, col=i)
        fig.update_yaxes(
            title_text="PC2", zeroline=True, scaleanchor=f"x{'' if i == 1 else i}", scaleratio=1, row=1, col=i
        )
