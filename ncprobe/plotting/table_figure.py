"""The figure of a results table (``ncprobe table``): mean ± std per method and column, published values beside.

It takes the ``xarray.Dataset`` of :meth:`ncprobe.tables.Table.to_xarray` (dimensions ``row``, ``group``,
``column``; variables ``mean``, ``std``, optionally ``published``) and draws what is stored there.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import xarray as xr

from ._common import fit_width, legend_below, run_colors, with_subtitle

__all__ = ["table_figure"]


def table_figure(table: xr.Dataset, *, width: int | None = None, height: int = 460) -> go.Figure:
    """Grouped bars: one bar per method (row) for each ``group · column`` cell, error bars ± std over seeds; a
    compared table adds the published value of each cell as a black marker (cells without one have none)."""
    if not {"row", "group", "column"} <= set(table.dims) or "mean" not in table:
        raise ValueError("table_figure takes Table.to_xarray(): dimensions row, group, column and variable mean")
    rows = [str(r) for r in table["row"].values]
    cells = [(str(g), str(c)) for g in table["group"].values for c in table["column"].values]
    cells = [gc for gc in cells if np.isfinite(table["mean"].sel(group=gc[0], column=gc[1]).values).any()]
    x = [f"{g} · {c}" for g, c in cells]
    colors = run_colors(len(rows))
    fig = go.Figure()
    for color, row in zip(colors, rows):
        means = [float(table["mean"].sel(row=row, group=g, column=c)) for g, c in cells]
        stds = [float(table["std"].sel(row=row, group=g, column=c)) for g, c in cells]
        fig.add_bar(name=row, x=x, y=means, marker_color=color, error_y={"type": "data", "array": stds})
        if "published" in table:
            pub = [float(table["published"].sel(row=row, group=g, column=c)) for g, c in cells]
            if np.isfinite(pub).any():
                fig.add_scatter(
                    x=x,
                    y=pub,
                    mode="markers",
                    name=f"{row} (published)",
                    marker={"symbol": "line-ew-open", "size": 18, "color": "black", "line": {"width": 3}},
                    offsetgroup=row,
                    showlegend=True,
                )
    layout = str(table.attrs.get("layout", "table"))
    fig.update_layout(
        barmode="group",
        width=fit_width(width, 160 + 40 * len(x) * max(len(rows), 1)),
        height=height,
        title=with_subtitle(f"{layout} table", f"{len(rows)} methods · mean ± std over seeds"),
        yaxis_title="value",
        legend=legend_below(height),
        template="plotly_white",
        scattermode="group",
    )
    return fig
