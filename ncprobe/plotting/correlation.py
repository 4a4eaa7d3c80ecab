"""The correlation view: an NC metric against accuracy (base, novel, HM) across runs and imbalance ratios,
with Pearson and Spearman coefficients, their Fisher-z intervals and n, and a seeded bootstrap interval
beside them (NPT's central observation: more text-to-image collapse, better generalisation). The numbers
come from :mod:`ncprobe.stats` (``docs/statistics.md``): a percentile bootstrap over fewer than 20 runs is
never shown alone, and is starred.

Input is a tidy ``pandas.DataFrame`` with one row per run (and seed); :func:`runs_table` builds it from
training histories (``docs/history.md``).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ncprobe.core import catalog

from ._common import (
    fit_width,
    header_note,
    legend_below,
    metric_axis,
    metric_title,
    run_attrs,
    run_colors,
    variant_label,
)
from .runs import history_runs
from .stats import correlate, is_constant

__all__ = ["runs_table", "correlation_figure", "correlation_table", "DEFAULT_ACCURACIES"]

DEFAULT_ACCURACIES = ("accuracy_base", "accuracy_novel", "hm")
_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star", "pentagon")


def runs_table(
    histories: Any,
    *,
    epoch: int | None = -1,
    nc_eval_set: str = "base",
    seed: int | None = None,
    labels: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per run and seed: the NC metrics, accuracies and settings of each history at one epoch.

    Columns: ``run`` (the run's unique label: :func:`ncprobe.plotting.runs.run_labels`, or the mapping's key),
    ``variant`` (method plus regularizers, e.g. ``"CoOp+NPT"``: what tells a regularized run from a plain
    one), ``method`` (the history's ``method`` attribute as stored), ``seed``, ``imbalance_ratio`` (from the
    history's attributes; a ``seed`` dimension gives one row per seed), ``epoch``, ``nc_eval_set``, every
    catalog scalar of
    ``nc_eval_set`` under its own name (``nc1``, ``t2i_text_etf_error``, …), ``accuracy_<set>`` for every
    evaluation set and ``hm`` when present. Values are copied, never recomputed.

    Parameters
    ----------
    histories:
        A list of histories, ``{label: history}`` or one history.
    epoch:
        The epoch coordinate to read; ``-1`` (default) the last one of each history.
    nc_eval_set:
        The evaluation set whose NC metrics fill the metric columns.
    seed:
        Keep only this seed of every history (default: one row per seed).
    labels, names:
        One label per history of a list, or the files they came from (see :func:`history_runs`).

    Returns
    -------
    pandas.DataFrame

    Example
    -------
    >>> # table = runs_table([h for h in histories], nc_eval_set="base")
    >>> # correlation_figure(table, metric="t2i_text_etf_error")
    """
    rows = []
    for label, ds in history_runs(histories, labels=labels, names=names).items():
        attrs = run_attrs(ds)
        at = ds.isel(epoch=-1) if epoch in (None, -1) else _select(ds, "epoch", epoch, label)
        seeds = list(at["seed"].values.tolist()) if "seed" in at.dims else [None]
        if seed is not None:
            if "seed" in at.dims:
                _select(at, "seed", seed, label)
                seeds = [seed]
            elif attrs.get("seed") is not None and int(attrs["seed"]) != int(seed):
                continue
        for s in seeds:
            one = at.sel(seed=s) if s is not None else at
            row: dict[str, Any] = {
                "run": label,
                "variant": variant_label(attrs, default=label),
                "method": str(attrs.get("method", label)),
                "seed": s if s is not None else attrs.get("seed", np.nan),
                "imbalance_ratio": float(attrs.get("imbalance_ratio", np.nan)),
                "epoch": int(one["epoch"].values),
                "nc_eval_set": nc_eval_set,
            }
            nc = _select(one, "eval_set", nc_eval_set, label) if "eval_set" in one.dims else one
            for name in catalog.names(kind="scalar"):
                if name in nc and nc[name].ndim == 0:
                    row[name] = float(nc[name].values)
            if "accuracy" in one:
                acc = one["accuracy"]
                for s in acc["eval_set"].values.tolist() if "eval_set" in acc.dims else ["all"]:
                    row[f"accuracy_{s}"] = float(acc.sel(eval_set=s).values if "eval_set" in acc.dims else acc.values)
            if "hm" in one:
                row["hm"] = float(one["hm"].values)
            rows.append(row)
    if not rows:
        raise ValueError(f"no history holds seed={seed}")
    return pd.DataFrame(rows)


def _select(ds, dim: str, value, label: str):
    values = ds[dim].values.tolist()
    if value not in values:
        raise ValueError(f"{label!r}: {dim}={value!r} is not in the history; it holds {values}")
    return ds.sel({dim: value})


def correlation_table(
    table: pd.DataFrame,
    *,
    metric: str,
    accuracies: Sequence[str] = DEFAULT_ACCURACIES,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    clusters: str | None = None,
) -> pd.DataFrame:
    """Pearson and Spearman coefficients of ``metric`` with each accuracy column: one row per (accuracy,
    method), what :func:`correlation_figure` annotates (:func:`ncprobe.stats.correlation`, rows with a
    non-finite value left out and ``n`` counting the rest).

    Columns: ``accuracy``, ``method``, ``r``, ``p_value`` (two-sided t test), ``ci_low``/``ci_high`` (the
    Fisher-z interval; Spearman with the Bonett–Wright standard error), ``interval`` (its name), ``n``,
    ``confidence``, ``boot_low``/``boot_high`` (seeded percentile bootstrap, ``n_resamples`` resamples; whole
    clusters when ``clusters`` names a column such as ``"seed"``), ``bootstrap`` (``"percentile"`` or
    ``"cluster"``), ``boot_units`` (runs or clusters resampled), ``small_bootstrap`` (fewer than 20 units:
    read the Fisher-z interval) and ``label`` (the panel's text).
    """
    _check_columns(table, metric, accuracies, clusters)
    groups = table[clusters] if clusters else None
    rows = []
    for acc in accuracies:
        for method in ("pearson", "spearman"):
            c = correlate(
                table[metric],
                table[acc],
                method=method,
                confidence=confidence,
                n_resamples=n_resamples,
                seed=seed,
                clusters=groups,
            )
            rows.append(
                {
                    "accuracy": acc,
                    "method": method,
                    "r": c.r,
                    "p_value": c.p_value,
                    "ci_low": c.ci_low,
                    "ci_high": c.ci_high,
                    "interval": c.interval,
                    "n": c.n,
                    "confidence": confidence,
                    "boot_low": c.boot_low,
                    "boot_high": c.boot_high,
                    "bootstrap": c.boot,
                    "boot_units": c.n_units,
                    "small_bootstrap": c.small_bootstrap,
                    "label": c.label(n=False),
                }
            )
    return pd.DataFrame(rows)


def _check_columns(table: pd.DataFrame, metric: str, accuracies: Sequence[str], clusters: str | None = None) -> None:
    missing = [c for c in (metric, *accuracies, *([clusters] if clusters else [])) if c not in table.columns]
    if missing:
        raise ValueError(f"the table has no columns {missing}; it has {list(table.columns)}")


def correlation_figure(
    table: pd.DataFrame,
    *,
    metric: str,
    accuracies: Sequence[str] = DEFAULT_ACCURACIES,
    color: str = "imbalance_ratio",
    symbol: str = "variant",
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    clusters: str | None = None,
    fit: bool = True,
    title: str | None = None,
    width: int | None = None,
    height: int = 520,
) -> go.Figure:
    """Scatter of ``metric`` (x) against each accuracy column (one panel each), with Pearson r and Spearman ρ
    written in each panel: the coefficient, its Fisher-z interval, the seeded bootstrap interval beside it
    (``boot […]``, starred when it resamples fewer than 20 runs or clusters: read the Fisher-z interval), the
    p-value, and n in the panel's title (:func:`correlation_table`).

    Parameters
    ----------
    table:
        One row per run (see :func:`runs_table`), with the ``metric`` and ``accuracies`` columns.
    metric:
        The NC metric column on the x axis (catalog name: its range and direction label the axis).
    accuracies:
        Accuracy columns, one panel each (default base, novel, HM; absent ones are an error).
    color, symbol:
        Columns mapped to marker colour (default the imbalance ratio) and symbol (default the ``variant``:
        method plus regularizers; a table without that column falls back to ``method``).
    confidence, n_resamples, seed:
        Interval level, bootstrap resamples and their seed (:func:`ncprobe.stats.correlation`).
    clusters:
        A column (e.g. ``"seed"``) whose values the bootstrap resamples whole (runs of one seed are not
        independent); default: runs resampled one by one.
    fit:
        Draw the least-squares line over all points of a panel (never when x or y is constant: the panel
        then says the correlation is undefined, and its axis spans ±5 % around the constant).
    title, width, height:
        Figure title and size in pixels (width default: 420 per panel, at most 1,400). The subtitle names the
        runs' variants, the epoch, the NC evaluation set and how seeds enter (one point per run and seed).

    Returns
    -------
    plotly.graph_objects.Figure

    Example
    -------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"nc1": [0.1, 0.2, 0.4, 0.8], "hm": [0.8, 0.7, 0.65, 0.5],
    ...                   "imbalance_ratio": [1, 4, 16, 16], "method": ["CoOp"] * 4})
    >>> fig = correlation_figure(t, metric="nc1", accuracies=["hm"])
    >>> "Pearson r = -0.98" in fig.layout.annotations[0].text
    True
    """
    _check_columns(table, metric, accuracies)
    if symbol == "variant" and "variant" not in table.columns:
        symbol = "method"
    stats = correlation_table(
        table,
        metric=metric,
        accuracies=accuracies,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
        clusters=clusters,
    )
    x_all = table[metric].to_numpy(float)
    titles = []
    for acc in accuracies:
        rows = stats[stats["accuracy"] == acc]
        n = int(rows["n"].iloc[0])
        lines = "<br>".join(rows["label"])
        flat = _constant_names(x_all, table[acc].to_numpy(float), metric, acc)
        if flat:
            lines = f"correlation undefined: {flat}"
        titles.append(f"<b>{_acc_title(acc)}</b> (n = {n})<br><span style='font-size:11px'>{lines}</span>")
    fig = make_subplots(rows=1, cols=len(accuracies), subplot_titles=titles, horizontal_spacing=0.07)
    col_values = _categories(table, color)
    sym_values = _categories(table, symbol)
    colors = dict(zip(col_values, run_colors(len(col_values))))
    symbols = {v: _SYMBOLS[i % len(_SYMBOLS)] for i, v in enumerate(sym_values)}
    hover_cols = [c for c in ("run", "variant", "seed", "imbalance_ratio") if c in table.columns]
    for col, acc in enumerate(accuracies, start=1):
        for cv in col_values:
            for sv in sym_values:
                sub = table[_match(table, color, cv) & _match(table, symbol, sv)]
                if sub.empty:
                    continue
                name = " · ".join(f"{k}={_fmt(v)}" for k, v in ((color, cv), (symbol, sv)) if v is not None)
                fig.add_trace(
                    go.Scatter(
                        x=sub[metric],
                        y=sub[acc],
                        mode="markers",
                        name=name or "runs",
                        legendgroup=name,
                        showlegend=col == 1,
                        marker={
                            "size": 11,
                            "color": colors[cv],
                            "symbol": symbols[sv],
                            "opacity": 0.85,
                            "line": {"color": "#333", "width": 1},
                        },
                        customdata=sub[hover_cols].astype(str).values if hover_cols else None,
                        hovertemplate="<br>".join(
                            [f"{c}: %{{customdata[{i}]}}" for i, c in enumerate(hover_cols)]
                            + [f"{metric} %{{x:.4g}}", f"{acc} %{{y:.3f}}"]
                        )
                        + "<extra></extra>",
                    ),
                    row=1,
                    col=col,
                )
        y_all = table[acc].to_numpy(float)
        if fit and not _constant_names(x_all, y_all, metric, acc):
            _fit_line(fig, x_all, y_all, row=1, col=col)
        fig.update_xaxes(title_text=metric_title(metric), **_axis(metric, x_all, metric_axis(metric)), row=1, col=col)
        fig.update_yaxes(
            **_axis(acc, y_all, metric_axis(acc)), title_text="accuracy" if col == 1 else None, row=1, col=col
        )
    level = f"{100 * confidence:g} %"
    ci = f"[…]: {level} Fisher-z interval (ρ: Bonett–Wright se); p: two-sided t test"
    how = f"whole {clusters}s resampled" if clusters else "runs resampled"
    ci += f"<br>boot […]: {level} percentile-bootstrap interval, {how}, {n_resamples} resamples, seed {seed}"
    if stats["small_bootstrap"].any():
        units = f"{clusters}s" if clusters else "runs"
        ci += f"<br>* bootstrap over fewer than 20 {units}: read the Fisher-z interval"
    fig.update_layout(
        title={"text": title or f"{metric} against accuracy across runs", "subtitle": {"text": _subtitle(table)}},
        width=fit_width(width, 420 * len(accuracies) + 120),
        height=height,
        template="plotly_white",
        margin={"t": 190, "b": 90},
        legend=legend_below(height, gap=70),
    )
    header_note(fig, ci, align="right", yshift=118, size=11, color="#555")
    return fig


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)


def _constant_names(x: np.ndarray, y: np.ndarray, metric: str, acc: str) -> str:
    """``"<acc> is constant (0.906)"`` (and/or the metric) when a panel's x or y does not vary, else ``""``."""
    ok = np.isfinite(x) & np.isfinite(y)
    out = [
        f"{name} is constant ({v[ok][0]:.4g})" for name, v in ((metric, x), (acc, y)) if ok.any() and is_constant(v[ok])
    ]
    return " and ".join(out)


def _axis(name: str, values: np.ndarray, settings: dict) -> dict:
    """Axis settings with a readable tick format; a constant axis spans ±5 % (at least ±0.01) of its value."""
    settings = {**settings, "tickformat": ".3~g"}
    v = values[np.isfinite(values)]
    if v.size and is_constant(v):
        c = float(v[0])
        pad = max(0.05 * abs(c), 0.01)
        settings.pop("autorangeoptions", None)
        settings["range"] = [c - pad, c + pad]
    return settings


def _subtitle(table: pd.DataFrame) -> str:
    """Variants, epoch, NC evaluation set and how seeds enter, from the table's columns."""
    parts = []
    if "variant" in table.columns or "method" in table.columns:
        parts.append(", ".join(str(v) for v in pd.unique(table.get("variant", table.get("method")))))
    if "run" in table.columns:
        parts.append(f"{table['run'].nunique()} runs")
    if "epoch" in table.columns:
        epochs = sorted({int(e) for e in table["epoch"].dropna()})
        if epochs:
            parts.append(("epoch " if len(epochs) == 1 else "epochs ") + ", ".join(map(str, epochs)))
    if "nc_eval_set" in table.columns:
        parts.append("NC on eval set " + ", ".join(str(v) for v in pd.unique(table["nc_eval_set"])))
    if "seed" in table.columns:
        seeds = pd.unique(table["seed"].dropna())
        parts.append(f"one point per run and seed ({len(seeds)} seed{'s' if len(seeds) != 1 else ''})")
    return " · ".join(parts)


def _acc_title(name: str) -> str:
    return {"hm": "harmonic mean (HM)"}.get(name, name.replace("accuracy_", "accuracy: "))


def _categories(table: pd.DataFrame, column: str | None) -> list:
    if not column or column not in table.columns:
        return [None]
    return list(pd.unique(table[column].dropna())) + ([np.nan] if table[column].isna().any() else [])


def _match(table: pd.DataFrame, column: str | None, value) -> pd.Series:
    if value is None:
        return pd.Series(True, index=table.index)
    if isinstance(value, float) and np.isnan(value):
        return table[column].isna()
    return table[column] == value


def _fit_line(fig: go.Figure, x: np.ndarray, y: np.ndarray, *, row: int, col: int) -> None:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2 or np.ptp(x[ok]) == 0:
        return
    slope, intercept = np.polyfit(x[ok], y[ok], 1)
    xs = np.array([x[ok].min(), x[ok].max()])
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=slope * xs + intercept,
            mode="lines",
            line={"color": "#888", "dash": "dot"},
            name="least squares",
            showlegend=col == 1,
            legendgroup="fit",
            hoverinfo="skip",
        ),
        row=row,
        col=col,
    )
