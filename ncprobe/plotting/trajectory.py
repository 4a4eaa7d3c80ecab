"""Training trajectories: NC metrics, accuracy and losses of one or several histories against epochs,
with mean ± std bands over seeds (``docs/history.md``)."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import plotly.colors as pcolors
import plotly.graph_objects as go
import xarray as xr
from plotly.subplots import make_subplots

from ncprobe.core import catalog

from ._common import (
    etf_cosine,
    fit_width,
    legend_below,
    metric_axis,
    metric_title,
    run_attrs,
    run_colors,
    variant_label,
    with_subtitle,
)
from .runs import history_runs

__all__ = [
    "trajectory_figure",
    "history_runs",
    "trajectory_metrics",
    "frozen_image_tower",
    "DEFAULT_LOG_METRICS",
    "FROZEN_IMAGE_METHODS",
]

#: Metrics drawn on a log axis by default (they span orders of magnitude during training).
DEFAULT_LOG_METRICS = ("nc1", "nc1_quotient", "cdnv")
_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
_HIDDEN = ("nc2_etf_error_floor",)
_FULL = ("accuracy", "hm", "train_accuracy")  # drawn on [0, 1]
#: The methods whose image features do not depend on trainable parameters (a frozen, unprompted image tower:
#: zero-shot, CoOp, CoCoOp; KgCoOp is a regularizer on CoOp, not a method), so every image-only metric is flat
#: during training. A copy of ``{n for n, s in ncprobe.training.methods.METHODS.items() if
#: s.frozen_image_features}`` (plotting does not import training; a test checks the two agree), used only for
#: histories written before training recorded the ``frozen_image_features`` attribute.
FROZEN_IMAGE_METHODS = frozenset({"zeroshot", "coop", "cocoop"})
_BANDS = {"std": "mean ± std (ddof 0)", "sem": "mean ± standard error", "minmax": "mean, band min–max"}


def frozen_image_tower(history: xr.Dataset) -> bool | None:
    """Whether the run kept its image tower frozen: ``True``, ``False``, or ``None`` when the attributes do not say.

    Read from ``history.attrs``: the ``frozen_image_features`` flag that training writes (the method's
    ``MethodSpec.frozen_image_features``). Histories written before it: ``feature_bank`` true (cached
    frozen-tower features) or a ``method`` whose first part is in :data:`FROZEN_IMAGE_METHODS` means frozen;
    another ``method`` (MaPLe, IVLP, …) means prompted.
    """
    attrs = run_attrs(history)
    flag = attrs.get("frozen_image_features")
    if flag is not None:
        return _true(flag)
    if _true(attrs.get("feature_bank")):
        return True
    method = str(attrs.get("method") or "").split("+")[0].strip().lower()
    if not method:
        return None
    return method in FROZEN_IMAGE_METHODS


def _true(value: Any) -> bool:
    """A boolean attribute as written (``True``, ``"true"``, ``1``; JSON-decoded or not) read as a bool."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value is not None and value in (True, 1))


def _image_only(name: str) -> bool:
    """A catalog scalar computed from image features alone (no text, no classifier)."""
    return not catalog.get(name).needs & {"text", "classifier"}


def trajectory_metrics(history: xr.Dataset) -> list[str]:
    """The default panels for ``history``: accuracy and HM, the catalog scalars that can move, then the losses.

    With a frozen image tower (:func:`frozen_image_tower`) the image-only metrics (``nc1``, ``nc2_*``,
    ``ncc_accuracy``, …: no text, no classifier) are flat by construction and left out: the text and
    cross-modal ones (``t2i_*``) remain. Otherwise every catalog scalar the history holds is drawn.
    """
    head = [v for v in ("accuracy", "hm") if v in history]
    nc = [n for n in catalog.names(kind="scalar") if n in history and n not in _HIDDEN]
    if frozen_image_tower(history):
        nc = [n for n in nc if not _image_only(n)]
    losses = sorted(v for v in history.data_vars if str(v).startswith("loss"))
    return head + nc + losses


def trajectory_figure(
    histories: Any,
    *,
    metrics: Sequence[str] | None = None,
    eval_sets: Sequence[str] | None = None,
    seed: int | None = None,
    band: str | None = "std",
    labels: Sequence[str] | None = None,
    log_metrics: Sequence[str] = DEFAULT_LOG_METRICS,
    columns: int = 3,
    title: str | None = None,
    width: int | None = None,
    panel_height: int = 260,
) -> go.Figure:
    """One panel per metric against epoch, several runs overlaid, seed bands when a ``seed`` dim exists.

    Each run (e.g. ``{"CoOp": h1, "CoOp+NPT": h2}``) has one colour; each evaluation set one dash style
    (base solid, novel dashed, …). With a ``seed`` dimension the line is the mean over seeds and the band
    mean ± std (population std, ddof 0; ``band="sem"`` the standard error std/√n, ``"minmax"`` the range
    over seeds, ``None`` none), unless ``seed=`` picks one seed; the subtitle says which. Panel titles carry
    the catalog's direction of collapse (↓ lower, ↑ higher, → a target value), axis ranges are the
    catalog's; ``nc2_max_cosine`` gets the ETF's −1/(C−1) as a dotted line and ``nc2_etf_error`` its floor
    (``nc2_etf_error_floor``) when non-zero. Log axes label every tick with its value.

    Parameters
    ----------
    histories:
        A history ``Dataset`` (``docs/history.md``), a list of them, or ``{label: history}``.
    metrics:
        Variables to draw (catalog scalars, ``accuracy``, ``hm``, ``loss*``, ``train_accuracy``, ``lr``);
        default :func:`trajectory_metrics` of the first run (metrics that can move for its method: image-only
        metrics are left out when the image tower is frozen).
    eval_sets:
        Evaluation sets to draw (default all).
    seed:
        Draw this seed of every run instead of the mean over seeds (single-seed runs of other seeds are
        left out; a multi-seed run without it is an error).
    band:
        ``"std"``, ``"sem"``, ``"minmax"`` or ``None``.
    labels:
        One legend label per history of a list (default :func:`ncprobe.plotting.runs.run_labels`: method,
        regularizers and what differs).
    log_metrics:
        Metrics drawn on a log axis.
    columns:
        Panels per row.
    title, width, panel_height:
        Figure title, width (default: fits a 1,400 px window) and the height of one row of panels, in pixels.

    Returns
    -------
    plotly.graph_objects.Figure

    Example
    -------
    >>> # fig = trajectory_figure({"CoOp": coop.history, "CoOp+NPT": npt.history}, metrics=["hm", "nc1"])
    """
    if band not in (*_BANDS, None):
        raise ValueError(f"band must be 'std', 'sem', 'minmax' or None, got {band!r}")
    runs = history_runs(histories, labels=labels)
    if seed is not None:
        runs = {label: one for label, ds in runs.items() if (one := _one_seed(ds, seed, label)) is not None}
        if not runs:
            raise ValueError(f"no history holds seed={seed}")
    first = next(iter(runs.values()))
    names = list(metrics) if metrics is not None else trajectory_metrics(first)
    missing = [m for m in names if not any(m in h for h in runs.values())]
    if missing:
        raise ValueError(f"no history holds {missing}; the first holds {trajectory_metrics(first)}")
    if not names:
        raise ValueError("nothing to draw: the history holds no metric, accuracy or loss")
    cols = max(1, min(columns, len(names)))
    rows = math.ceil(len(names) / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[metric_title(m) for m in names],
        horizontal_spacing=0.07,
        vertical_spacing=min(0.12, 0.5 / rows),
    )
    colors = run_colors(len(runs))
    all_sets = _eval_sets(runs, eval_sets)
    dash_of = {s: _DASHES[i % len(_DASHES)] for i, s in enumerate(all_sets)}
    legend_done: set[str] = set()
    for i, name in enumerate(names):
        row, col = divmod(i, cols)
        row, col = row + 1, col + 1
        for (label, ds), color in zip(runs.items(), colors):
            if name not in ds:
                continue
            var = ds[name]
            sets = [s for s in all_sets if "eval_set" in var.dims and s in var["eval_set"].values.tolist()] or [None]
            for s in sets:
                series = var.sel(eval_set=s) if s is not None else var
                key = f"{label} · {s}" if s is not None else label
                _line(
                    fig,
                    series,
                    band,
                    key=key,
                    color=color,
                    dash=dash_of.get(s, "solid"),
                    show=key not in legend_done,
                    row=row,
                    col=col,
                    metric=name,
                )
                legend_done.add(key)
                _references(fig, ds, name, s, row=row, col=col)
        fig.update_yaxes(**metric_axis(name, log=name in log_metrics, full=name in _FULL), row=row, col=col)
        fig.update_xaxes(title_text="epoch" if row == rows else None, row=row, col=col)
    height = panel_height * rows + 160
    fig.update_layout(
        title=with_subtitle(title or "Training trajectories", _subtitle(runs, all_sets, seed, band, metrics, first)),
        width=fit_width(width, 330 * cols + 120),
        height=height,
        margin={"t": 110},
        template="plotly_white",
        hovermode="x unified",
        legend=legend_below(height, title="run · eval set"),
    )
    return fig


def _one_seed(ds: xr.Dataset, seed: int, label: str) -> xr.Dataset | None:
    """Seed ``seed`` of a multi-seed history (an error when absent); a single-seed run of another seed: None."""
    if "seed" in ds.dims:
        seeds = ds["seed"].values.tolist()
        if seed not in seeds:
            raise ValueError(f"{label!r} holds seeds {seeds}, not seed={seed}")
        return ds.sel(seed=seed)
    own = run_attrs(ds).get("seed")
    return None if own is not None and int(own) != int(seed) else ds


def _runs_text(runs: dict[str, xr.Dataset], limit: int = 80) -> str:
    """The runs' labels, or, when that is too long for one line, ``"8 runs: CoOp ×4, CoOp+NPT ×4"``."""
    text = ", ".join(runs)
    if len(text) <= limit:
        return text
    variants = [variant_label(run_attrs(ds), default=label) for label, ds in runs.items()]
    counts = {v: variants.count(v) for v in dict.fromkeys(variants)}
    return f"{len(runs)} runs: " + ", ".join(f"{v} ×{n}" if n > 1 else v for v, n in counts.items())


def _subtitle(runs, sets, seed, band, metrics, first) -> str:
    """Runs, evaluation sets, epochs and the seed handling, in words."""
    epochs = sorted({int(e) for ds in runs.values() for e in ds["epoch"].values.tolist()})
    parts = [_runs_text(runs), "eval sets " + ", ".join(sets) if sets else "", f"epochs {epochs[0]}–{epochs[-1]}"]
    n_seeds = {label: ds.sizes["seed"] for label, ds in runs.items() if "seed" in ds.dims and ds.sizes["seed"] > 1}
    if seed is not None:
        parts.append(f"seed {seed}")
    elif n_seeds:
        counts = sorted(set(n_seeds.values()))
        how = _BANDS[band] if band else "mean, no band"
        parts.append(f"{how} over {'/'.join(map(str, counts))} seeds")
    else:
        one = [str(run_attrs(ds).get("seed")) for ds in runs.values() if run_attrs(ds).get("seed") is not None]
        if one:
            parts.append("seed " + ", ".join(dict.fromkeys(one)))
    if metrics is None and frozen_image_tower(first):
        parts.append("image-only metrics left out: frozen image tower")
    return " · ".join(p for p in parts if p)


def _eval_sets(runs: dict[str, xr.Dataset], wanted: Sequence[str] | None) -> list[str]:
    have = list(dict.fromkeys(str(s) for ds in runs.values() if "eval_set" in ds.dims for s in ds["eval_set"].values))
    if wanted is None:
        return have
    unknown = [s for s in wanted if s not in have]
    if unknown:
        raise ValueError(f"eval sets {unknown} are not in the histories; they hold {have}")
    return list(wanted)


def _line(fig, series: xr.DataArray, band, *, key, color, dash, show, row, col, metric) -> None:
    extra = [d for d in series.dims if d not in ("epoch", "seed")]
    if extra:
        raise ValueError(f"{metric!r} has dimensions {extra} besides epoch/seed; trajectories draw scalars only")
    epochs = series["epoch"].values
    if "seed" in series.dims and series.sizes["seed"] > 1:
        mean = series.mean("seed", skipna=True).values
        spread = series.std("seed", ddof=0, skipna=True).values
        if band == "sem":
            spread = spread / np.sqrt(series.count("seed").values.clip(min=1))
        lower, upper = mean - spread, mean + spread
        if band == "minmax":
            lower, upper = series.min("seed", skipna=True).values, series.max("seed", skipna=True).values
        n_seeds = series.sizes["seed"]
    else:
        mean = (series.isel(seed=0) if "seed" in series.dims else series).values
        spread, n_seeds = None, 1
    if band and spread is not None:
        ok = np.isfinite(lower) & np.isfinite(upper)
        x = np.concatenate([epochs[ok], epochs[ok][::-1]])
        y = np.concatenate([upper[ok], lower[ok][::-1]])
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                fill="toself",
                mode="lines",
                line={"width": 0},
                fillcolor=_alpha(color, 0.18),
                legendgroup=key,
                showlegend=False,
                hoverinfo="skip",
            ),
            row=row,
            col=col,
        )
    hover = f"{key}<br>{metric} %{{y:.4g}}"
    if spread is not None:
        hover += " ± %{customdata:.2g}" + f" ({'sem' if band == 'sem' else 'std'}, {n_seeds} seeds)"
    fig.add_trace(
        go.Scatter(
            x=epochs,
            y=mean,
            mode="lines+markers",
            name=key,
            legendgroup=key,
            showlegend=show,
            line={"color": color, "dash": dash, "width": 2},
            marker={"size": 4},
            customdata=spread,
            hovertemplate=hover + "<extra></extra>",
        ),
        row=row,
        col=col,
    )


def _references(fig, ds: xr.Dataset, name: str, eval_set, *, row, col) -> None:
    if name == "nc2_max_cosine" and "class_count" in ds:
        counts = ds["class_count"]
        if eval_set is not None and "eval_set" in counts.dims:
            counts = counts.sel(eval_set=eval_set)
        counts = counts.isel({d: -1 for d in counts.dims if d != "class"})
        c = int((np.nan_to_num(counts.values) > 0).sum())
        if c >= 2:
            fig.add_hline(
                y=etf_cosine(c),
                line={"dash": "dot", "color": "#777", "width": 1},
                row=row,
                col=col,
                annotation_text=f"ETF, C={c}",
                annotation_font_size=9,
            )
    if name == "nc2_etf_error" and "nc2_etf_error_floor" in ds:
        floor = float(np.nanmax(ds["nc2_etf_error_floor"].values))
        if floor > 0:
            fig.add_hline(
                y=floor,
                line={"dash": "dot", "color": "#777", "width": 1},
                row=row,
                col=col,
                annotation_text="floor (C > D+1)",
                annotation_font_size=9,
            )


def _alpha(color: str, alpha: float) -> str:
    rgb = pcolors.hex_to_rgb(color) if color.startswith("#") else pcolors.unlabel_rgb(color)
    r, g, b = (int(round(v)) for v in rgb)
    return f"rgba({r},{g},{b},{alpha})"
