"""Helpers shared by the figure modules: inputs, class colours, axis ranges from the catalog.

Nothing here computes geometry. Inputs are an :class:`~ncprobe.core.report.NCReport`, a report's
``xarray.Dataset`` or a training history (``docs/history.md``); :func:`report_dataset` selects one report
out of a history (an epoch, an evaluation set, a seed: never the first seed by default) without changing any
value, and :func:`select_report` also says what it selected, for the figure's subtitle. :func:`variant_label`
names a run by method and regularizers; :func:`fit_width` and :func:`legend_below` keep figures within a
1,400 px window; :func:`header_note` writes a note above the plot area; :data:`LOG_AXIS` labels log ticks
with their values.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import plotly.colors as pcolors
import xarray as xr

from ncprobe.core import catalog
from ncprobe.core.report import NCReport, decode_attrs

__all__ = [
    "GROUP_SYMBOLS",
    "GROUP_COLORS",
    "LOG_AXIS",
    "MAX_WIDTH",
    "PRETTY_NAMES",
    "run_attrs",
    "variant_label",
    "as_dataset",
    "fit_width",
    "legend_below",
    "report_dataset",
    "select_report",
    "with_subtitle",
    "header_note",
    "class_labels",
    "class_groups",
    "class_colors",
    "run_colors",
    "metric_title",
    "metric_axis",
    "etf_cosine",
    "present_classes",
]

#: Marker symbol per head/medium/tail group (2-D; 3-D scenes map them to their own symbol set).
GROUP_SYMBOLS = {"head": "circle", "medium": "square", "tail": "diamond", "none": "x"}
SYMBOLS_3D = {"circle": "circle", "square": "square", "diamond": "diamond", "x": "x"}
#: Bar colour per group (colour-blind safe: Okabe–Ito).
GROUP_COLORS = {"head": "#0072B2", "medium": "#E69F00", "tail": "#D55E00", "none": "#999999"}

#: Widest default figure, in pixels: every figure fits a 1,400 px window (pass ``width=`` to override).
MAX_WIDTH = 1400

_ARROWS = {"lower": "↓", "higher": "↑", "target": "→", "none": ""}


def as_dataset(data: Any) -> xr.Dataset:
    """The ``xarray.Dataset`` behind ``data`` (an :class:`NCReport` or a Dataset)."""
    if isinstance(data, NCReport):
        return data.dataset
    if isinstance(data, xr.Dataset):
        return data
    raise TypeError(f"expected an NCReport or an xarray.Dataset, got {type(data).__name__}")


#: How method and regularizer names (lower case in ``history.attrs``) are written in legends.
PRETTY_NAMES = {
    "zeroshot": "zero-shot",
    "coop": "CoOp",
    "cocoop": "CoCoOp",
    "kgcoop": "KgCoOp",
    "maple": "MaPLe",
    "ivlp": "IVLP",
    "npt": "NPT",
    "craft": "Craft",
    "promptsrc": "PromptSRC",
}


def run_attrs(ds: xr.Dataset) -> dict:
    """A history's attributes with JSON-encoded values decoded (``regularizers`` as a list, …)."""
    try:
        return decode_attrs(dict(ds.attrs))
    except (ValueError, TypeError):
        return dict(ds.attrs)


def _pretty(name: str) -> str:
    return PRETTY_NAMES.get(name.lower(), name)


def variant_label(attrs: Mapping[str, Any], default: str = "run") -> str:
    """Method plus regularizers, e.g. ``"CoOp+NPT"`` (a regularizer already named in the method is not repeated).

    >>> variant_label({"method": "coop", "regularizers": ["npt", "kgcoop"]})
    'CoOp+NPT+KgCoOp'
    >>> variant_label({"method": "CoOp+NPT", "regularizers": ["npt"]})
    'CoOp+NPT'
    """
    method = attrs.get("method")
    if method is None or str(method) == "":
        return default
    label = _pretty(str(method))
    regs = attrs.get("regularizers") or []
    if isinstance(regs, str):
        regs = [r for r in regs.replace("+", ",").split(",") if r.strip()]
    have = {part.strip().lower() for part in label.split("+")}
    for reg in regs:
        if str(reg).lower() not in have:
            label += "+" + _pretty(str(reg))
            have.add(str(reg).lower())
    return label


def report_dataset(
    data: Any, *, epoch: int | None = -1, eval_set: str | None = None, seed: int | None = None
) -> xr.Dataset:
    """One report's variables out of a report or a history (``docs/history.md``).

    A plain report is returned as it is (an ``eval_set`` or ``seed`` it does not record is an error). From a
    history: ``epoch`` (a coordinate value; ``-1`` the last epoch), ``eval_set`` (required when the history
    holds several) and ``seed`` (required when it holds several: a single report is never the first seed by
    default; a seed the history does not hold, whether along a ``seed`` dimension or as the ``seed``
    attribute of a single-seed run, is a ``ValueError`` naming the seeds it holds); classes outside the
    chosen evaluation set (NaN ``class_count``) are dropped. :func:`select_report` also says what was
    selected.
    """
    return select_report(data, epoch=epoch, eval_set=eval_set, seed=seed)[0]


def select_report(
    data: Any,
    *,
    epoch: int | None = -1,
    eval_set: str | None = None,
    seed: int | None = None,
    keep_seeds: bool = False,
) -> tuple[xr.Dataset, str]:
    """:func:`report_dataset` plus a description of the selection for a figure's subtitle.

    The description names the run (``method`` and regularizers from the attributes), the evaluation set, the
    epoch and the seed, e.g. ``"CoOp+NPT · eval set base · epoch 10 (last) · seed 1"``. With
    ``keep_seeds=True`` and ``seed=None`` a ``seed`` dimension is kept (the caller averages over it and says
    so) instead of raising.
    """
    ds = as_dataset(data)
    if "layer" in ds.dims:
        raise ValueError("this dataset stacks reports along 'layer': draw it with layers_figure")
    attrs = run_attrs(ds)
    history = "epoch" in ds.dims
    run = eval_text = epoch_text = seed_text = ""
    if attrs.get("method"):
        run = variant_label(attrs)
    if history:
        last = ds["epoch"].values[-1].item()
        ds = ds.isel(epoch=-1) if epoch in (None, -1) else _sel(ds, "epoch", epoch)
        chosen = ds["epoch"].values.item()
        epoch_text = f"epoch {chosen}" + (" (last)" if chosen == last else f" of 0–{last}")
    if "eval_set" in ds.dims:
        sets = [str(s) for s in ds["eval_set"].values]
        if eval_set is None:
            if len(sets) > 1:
                raise ValueError(f"this history holds eval sets {sets}; pass eval_set= to choose one")
            eval_set = sets[0]
        if str(eval_set) not in sets:
            raise ValueError(f"eval_set={eval_set!r} is not in this history; it holds eval sets {sets}")
        ds = ds.sel(eval_set=eval_set)
        eval_text = f"eval set {eval_set}"
    elif eval_set is not None:
        raise ValueError(f"eval_set={eval_set!r}: this dataset has a single evaluation set (no 'eval_set' dimension)")
    if "seed" in ds.dims:
        seeds = ds["seed"].values.tolist()
        if seed is not None:
            if seed not in seeds:
                raise ValueError(f"seed={seed!r} is not in this history; it holds seeds {seeds}")
            ds = ds.sel(seed=seed)
            seed_text = f"seed {seed} of {seeds}" if len(seeds) > 1 else f"seed {seed}"
        elif len(seeds) == 1:
            ds = ds.isel(seed=0)
            seed_text = f"seed {seeds[0]}"
        elif not keep_seeds:
            raise ValueError(f"this history holds seeds {seeds}; pass seed= to choose one")
    else:
        own = attrs.get("seed")  # a single-seed run: its seed is an attribute
        if seed is not None and own is None:
            raise ValueError(f"seed={seed!r}: this dataset records no seed (no 'seed' dimension or attribute)")
        if seed is not None and not _same_seed(own, seed):
            raise ValueError(f"seed={seed!r} is not in this history; it holds seeds [{own}]")
        if own is not None and (history or seed is not None):
            seed_text = f"seed {own}"
    if "class_count" in ds:
        counts = ds["class_count"]
        if counts.ndim >= 1 and counts.dims[-1] == "class":
            values = counts.values.astype(float).reshape(-1, counts.sizes["class"])
            present = ~np.isnan(values).all(axis=0)
            if not present.all():
                ds = ds.isel({"class": present})
                if "class_other" in ds.dims:
                    ds = ds.isel(class_other=present)
    return ds, " · ".join(p for p in (run, eval_text, epoch_text, seed_text) if p)


def _same_seed(own: Any, seed: Any) -> bool:
    try:
        return int(own) == int(seed)
    except (TypeError, ValueError):
        return str(own) == str(seed)


def with_subtitle(title: str, subtitle: str) -> dict:
    """A layout title with a smaller second line (``layout.title.subtitle``) when ``subtitle`` is not empty."""
    out: dict[str, Any] = {"text": title}
    if subtitle:
        out["subtitle"] = {"text": subtitle}
    return out


def header_note(
    fig: Any,
    text: str,
    *,
    align: str = "left",
    yshift: float = 34,
    y: float = 1.0,
    size: int = 12,
    color: str | None = None,
    name: str | None = None,
) -> None:
    """Add a one-line note above the plot area: at the left (``align="left"``) or right edge, anchored at its
    bottom ``yshift`` px above paper height ``y``, no arrow (the groups figure's "no groups" note, the
    correlation figure's interval note, the geometry figure's marker key)."""
    font: dict[str, Any] = {"size": size}
    if color:
        font["color"] = color
    fig.add_annotation(
        text=text,
        xref="paper",
        yref="paper",
        x=0.0 if align == "left" else 1.0,
        y=y,
        yshift=yshift,
        xanchor=align,
        yanchor="bottom",
        showarrow=False,
        font=font,
        **({"name": name} if name else {}),
    )


def fit_width(width: int | None, natural: float) -> int:
    """``width`` when given, else the figure's natural width capped at :data:`MAX_WIDTH` (a 1,400 px window)."""
    return int(width) if width else int(min(natural, MAX_WIDTH))


def legend_below(height: float, *, title: str | None = None, gap: float = 60) -> dict:
    """A horizontal legend under the plot area (entries wrap to the figure's width), ``gap`` px below it."""
    plot_height = max(height - 200, 100)
    out: dict[str, Any] = {"orientation": "h", "x": 0, "xanchor": "left", "y": -gap / plot_height, "yanchor": "top"}
    if title:
        out["title"] = {"text": title, "side": "top left"}
    return out


def _sel(ds: xr.Dataset, dim: str, value: Any) -> xr.Dataset:
    values = list(ds[dim].values.tolist())
    if value not in values:
        raise ValueError(f"{dim}={value!r} is not in this dataset; it holds {values}")
    return ds.sel({dim: value})


def class_labels(ds: xr.Dataset) -> list[str]:
    """Class names when the dataset has them, else ``"class <id>"``."""
    if "class_name" in ds.coords:
        return [str(n) for n in ds["class_name"].values]
    return [f"class {c}" for c in ds["class"].values.tolist()]


def class_groups(ds: xr.Dataset) -> list[str] | None:
    """Each class's head/medium/tail group, or ``None`` when the report has no groups (no ``class_group``, or
    every class ``"none"``: a balanced run's history)."""
    if "class_group" not in ds.coords:
        return None
    groups = [str(g) for g in ds["class_group"].values]
    return None if all(g == "none" for g in groups) else groups


def class_colors(n: int) -> list[str]:
    """``n`` distinct colours, one per class, the same in every panel of a figure.

    Up to 10 classes: Plotly's D3 palette; up to 26: the Alphabet palette; beyond: evenly spaced
    samples of the Turbo colour scale.
    """
    if n <= 10:
        return list(pcolors.qualitative.D3[:n])
    if n <= 26:
        return list(pcolors.qualitative.Alphabet[:n])
    return pcolors.sample_colorscale("Turbo", [i / max(n - 1, 1) for i in range(n)])


def run_colors(n: int) -> list[str]:
    """Colours of overlaid runs (colour-blind-safe Okabe–Ito for up to 8)."""
    okabe = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
    return okabe[:n] if n <= len(okabe) else class_colors(n)


def metric_title(name: str) -> str:
    """``name`` with an arrow saying which way means collapse (from the catalog), e.g. ``"nc1 ↓"``."""
    try:
        spec = catalog.get(name)
    except KeyError:
        return f"{name} ↑" if name in ("hm", "train_accuracy") or name.startswith("accuracy") else name
    arrow = _ARROWS.get(spec.direction, "")
    return f"{name} {arrow}".strip()


def metric_axis(name: str, *, log: bool = False, full: bool = False) -> dict:
    """Plotly axis settings for metric ``name`` from its catalog range.

    By default the axis autoranges to the data but is clipped to the catalog's range
    (``autorangeoptions.clipmin`` / ``clipmax``), so a bounded metric is never drawn outside its possible
    values and small changes stay visible; ``full=True`` shows the whole range (e.g. accuracies on [0, 1]);
    ``log`` a log axis.
    Accuracy-like names outside the catalog (``accuracy``, ``hm``, ``accuracy_<set>``) use [0, 1].
    """
    try:
        lo, hi = catalog.get(name).range
    except KeyError:
        if name in ("hm", "train_accuracy") or name.startswith("accuracy"):
            lo, hi = 0.0, 1.0
        else:
            return LOG_AXIS if log else {}
    if log:
        return LOG_AXIS
    if full and math.isfinite(lo) and math.isfinite(hi):
        pad = 0.02 * (hi - lo)
        return {"range": [lo - pad if lo < 0 else lo, hi + pad]}
    bounds = {}
    if math.isfinite(lo):
        bounds["clipmin"] = lo
    if math.isfinite(hi):
        bounds["clipmax"] = hi + 0.02 * (hi - lo) if math.isfinite(lo) else hi
    return {"autorangeoptions": bounds} if bounds else {}


#: Log axes label every tick with its full value (".2~g": 0.02, 0.05, 0.1, 1e-05), never Plotly's bare
#: minor digits (a lone "2" or "5" between decades).
LOG_AXIS = {"type": "log", "tickformat": ".2~g", "minor": {"ticks": "outside", "showgrid": False}}


def etf_cosine(num_classes: int) -> float:
    """The off-diagonal cosine −1/(C−1) of a simplex ETF with C classes (the ideal Gram's constant)."""
    if num_classes < 2:
        raise ValueError("an ETF needs at least two classes")
    return -1.0 / (num_classes - 1)


def present_classes(ds: xr.Dataset) -> np.ndarray:
    """Boolean mask of the classes that have samples (``class_count > 0``)."""
    if "class_count" not in ds:
        return np.ones(ds.sizes["class"], dtype=bool)
    counts = np.nan_to_num(ds["class_count"].values.astype(float))
    return counts > 0
