"""Gram heatmaps: cosines of the centred class means and of the class text features, next to the ideal
simplex-ETF Gram (1 on the diagonal, −1/(C−1) elsewhere)."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ncprobe.core import catalog

from ._common import class_labels, etf_cosine, fit_width, present_classes, select_report, with_subtitle

__all__ = ["gram_figure"]

_PANELS = {
    "mean_cosines": ("image class means<br>cos(μ̃<sub>k</sub>, μ̃<sub>k'</sub>)", "μ̃", "μ̃"),
    "text_cosines": ("class text features<br>cos(t̃<sub>k</sub>, t̃<sub>k'</sub>)", "t̃", "t̃"),
    "cross_cosines": ("image means × text<br>cos(μ̃<sub>k</sub>, t̃<sub>k'</sub>)", "μ̃", "t̃"),
}


def gram_figure(
    report: Any,
    *,
    cross: bool = False,
    epoch: int | None = -1,
    eval_set: str | None = None,
    seed: int | None = None,
    colorscale: str = "RdBu_r",
    title: str | None = None,
    width: int | None = None,
    height: int = 420,
) -> go.Figure:
    """Heatmaps of the report's cosine matrices side by side with the ideal simplex-ETF Gram.

    Draws ``mean_cosines`` (and ``text_cosines`` when the report has text features; ``cross_cosines`` with
    ``cross=True``) as they are stored in the report, plus the ETF Gram of the same C classes. All panels
    share one diverging colour scale on the catalog's range [−1, 1], centred at 0. Hovering a cell shows
    both class names and the cosine.

    Parameters
    ----------
    report:
        An :class:`~ncprobe.NCReport`, a report's dataset, or a training history (then ``epoch``,
        ``eval_set`` and ``seed`` choose one report; the history must store the cosine matrices).
    cross:
        Add the image-mean × text cross-cosine panel.
    epoch, eval_set, seed:
        Selection in a history (see :func:`ncprobe.plotting.report_dataset`; ``seed`` is required when it
        holds several). The subtitle names the selection.
    colorscale:
        A Plotly diverging colour scale.
    title, width, height:
        Figure title and size in pixels (width default: 380 per panel, at most 1,400).

    Returns
    -------
    plotly.graph_objects.Figure

    Example
    -------
    >>> from ncprobe.core.synthetic import make_collapse
    >>> import ncprobe
    >>> d = make_collapse(num_classes=4, dim=8, samples_per_class=20, seed=0)
    >>> fig = gram_figure(ncprobe.measure(d.features, d.labels, text_features=d.text_features))
    >>> len(fig.data)
    3
    """
    ds, selected = select_report(report, epoch=epoch, eval_set=eval_set, seed=seed)
    if "mean_cosines" not in ds:
        raise ValueError("the report has no 'mean_cosines'; measure it with the default metrics (or include it)")
    keep = present_classes(ds)
    names = np.asarray(class_labels(ds))[keep]
    c = int(keep.sum())
    panels = [p for p in ("mean_cosines", "text_cosines") if p in ds]
    if cross:
        if "cross_cosines" not in ds:
            raise ValueError("cross=True needs 'cross_cosines' in the report (measure with text_features)")
        panels.append("cross_cosines")
    matrices = [ds[p].values[np.ix_(keep, keep)] for p in panels]
    ideal = np.full((c, c), etf_cosine(c))
    np.fill_diagonal(ideal, 1.0)
    titles = [_PANELS[p][0] for p in panels] + [f"ideal simplex ETF<br>off-diagonal −1/(C−1) = {etf_cosine(c):.3f}"]
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles, horizontal_spacing=0.06)
    lo, hi = catalog.get("mean_cosines").range
    for col, (mat, panel) in enumerate(zip([*matrices, ideal], [*panels, "etf"]), start=1):
        row_sym, col_sym = _PANELS.get(panel, ("", "e", "e"))[1:]
        fig.add_trace(
            go.Heatmap(
                z=mat,
                x=list(names),
                y=list(names),
                zmin=lo,
                zmax=hi,
                zmid=0.0,
                colorscale=colorscale,
                showscale=col == 1,
                colorbar={"title": {"text": "cosine"}, "len": 0.9},
                name=panel,
                hovertemplate=f"{row_sym}: %{{y}}<br>{col_sym}: %{{x}}<br>cosine %{{z:.3f}}<extra>{panel}</extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{'' if col == 1 else col}", row=1, col=col)
        fig.update_xaxes(tickangle=-45, row=1, col=col)
        if col > 1:
            fig.update_yaxes(showticklabels=False, row=1, col=col)
    fig.update_layout(
        title=with_subtitle(title or "Gram matrices vs the simplex ETF", selected),
        width=fit_width(width, 380 * len(titles) + 80),
        height=height,
        template="plotly_white",
        margin={"t": 150, "l": 80, "r": 90, "b": 80},
    )
    return fig
