"""Shared helpers of :mod:`ncprobe.stats`: one-dimensional float64 vectors from numpy, lists, pandas and
xarray (with a label per element, for error messages), and the number formats of the printed results."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = [
    "as_labeled_vector",
    "as_pairs",
    "decimals_for",
    "fmt_p",
    "fmt_signed",
    "fmt_fixed",
    "check_confidence",
    "prepare_pairs",
]


def _is_series(values) -> bool:
    return type(values).__module__.startswith("pandas") and hasattr(values, "index") and getattr(values, "ndim", 0) == 1


def _is_dataarray(values) -> bool:
    return type(values).__module__.startswith("xarray") and hasattr(values, "dims") and hasattr(values, "coords")


def _dataarray_labels(da) -> list[str]:
    """``"dim=value, dim=value"`` of every element of ``da`` in C order (position where a dim has no coord)."""
    coords = [da[d].values.tolist() if d in da.coords else list(range(da.sizes[d])) for d in da.dims]
    return [
        ", ".join(f"{d}={coords[k][i]}" for k, (d, i) in enumerate(zip(da.dims, ix))) for ix in np.ndindex(da.shape)
    ]


def as_labeled_vector(values, what: str = "values") -> tuple[np.ndarray, list[str]]:
    """``(float64 vector, one label per element)`` of a list, numpy array, pandas Series or xarray DataArray.

    A Series is labelled by its index, a DataArray by its coordinates (raveled in C order), anything else
    by position. Non-numeric input is a ``ValueError`` naming ``what``.

    >>> as_labeled_vector([0.5, 1])
    (array([0.5, 1. ]), ['#0', '#1'])
    """
    if _is_series(values):
        labels = [str(i) for i in values.index]
        raw = values.to_numpy()
    elif _is_dataarray(values):
        labels = _dataarray_labels(values)
        raw = values.values
    else:
        raw = values
        labels = None
    try:
        v = np.asarray(raw, dtype=np.float64).ravel()
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must be numbers: {err}") from None
    if labels is None:
        labels = [f"#{i}" for i in range(v.size)]
    return v, labels


def as_pairs(a, b, names: tuple[str, str] = ("a", "b")) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(a, b, labels)`` as aligned float64 vectors: two Series are paired by index, two DataArrays by
    coordinates (``xarray.align(join="exact")``); anything else by position. Lengths must agree.

    >>> as_pairs([1, 2], [3, 4])[2]
    ['#0', '#1']
    """
    if _is_series(a) and _is_series(b):
        if not a.index.is_unique or not b.index.is_unique:
            raise ValueError(f"{names[0]} and {names[1]} are paired by index, which must be unique")
        if set(a.index) != set(b.index):
            only_a = [str(i) for i in a.index.difference(b.index)]
            only_b = [str(i) for i in b.index.difference(a.index)]
            raise ValueError(
                f"{names[0]} and {names[1]} are paired by index and their indices differ: "
                f"only in {names[0]}: {only_a}, only in {names[1]}: {only_b}"
            )
        b = b.reindex(a.index)
    elif _is_dataarray(a) and _is_dataarray(b):
        import xarray as xr

        try:
            a, b = xr.align(a, b, join="exact")
        except ValueError as err:
            raise ValueError(f"{names[0]} and {names[1]} are paired by coordinates, which differ: {err}") from None
        if set(a.dims) != set(b.dims):
            raise ValueError(f"{names[0]} has dims {a.dims}, {names[1]} has {b.dims}")
        b = b.transpose(*a.dims)
    x, labels = as_labeled_vector(a, names[0])
    y, _ = as_labeled_vector(b, names[1])
    if x.size != y.size:
        raise ValueError(f"{names[0]} and {names[1]} differ in length: {x.size} vs {y.size}")
    return x, y, labels


def check_confidence(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(confidence)


def decimals_for(width: float) -> int:
    """Decimals that show an interval of this width with about two significant digits (0 to 8).

    >>> decimals_for(0.042), decimals_for(0.5), decimals_for(30.0)
    (3, 2, 0)
    """
    if not np.isfinite(width) or width <= 0:
        return 3
    return int(min(8, max(0, 1 - math.floor(math.log10(width)))))


def fmt_fixed(value: float, decimals: int) -> str:
    return "nan" if not np.isfinite(value) else f"{value:.{decimals}f}"


def fmt_signed(value: float, decimals: int) -> str:
    return "nan" if not np.isfinite(value) else f"{value:+.{decimals}f}"


def fmt_p(p: float) -> str:
    """A p-value with two significant digits: ``0.00031``, ``0.002``, ``1.2e-05``, ``1``.

    >>> fmt_p(0.00031), fmt_p(2 / 1024), fmt_p(1.0)
    ('0.00031', '0.002', '1')
    """
    if not np.isfinite(p):
        return "nan"
    return f"{p:.2g}"


def prepare_pairs(x, y, clusters=None, nan_policy: str = "raise"):
    """``(x, y, cluster codes or None)`` as float64 vectors (see :func:`as_pairs`); non-finite pairs raise
    a ``ValueError`` naming them (``nan_policy="raise"``) or are left out (``"omit"``); cluster labels are
    factorized to ``0..G−1`` (a missing label is an error).

    >>> prepare_pairs([1, 2, float("nan")], [3, 4, 5], ["s0", "s1", "s1"], nan_policy="omit")[2].tolist()
    [0, 1]
    """
    if nan_policy not in ("raise", "omit"):
        raise ValueError(f"nan_policy must be 'raise' or 'omit', got {nan_policy!r}")
    x, y, labels = as_pairs(x, y, ("x", "y"))
    codes = None
    if clusters is not None:
        codes, _ = pd.factorize(np.asarray(clusters, dtype=object).ravel(), use_na_sentinel=True)
        if codes.size != x.size:
            raise ValueError(f"clusters has {codes.size} labels for {x.size} pairs")
        if (codes < 0).any():
            raise ValueError(f"clusters has missing labels at {[labels[i] for i in np.flatnonzero(codes < 0)]}")
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.all():
        if nan_policy == "raise":
            bad = [labels[i] for i in np.flatnonzero(~ok)]
            raise ValueError(f"NaN or inf in x or y at {bad}; drop them explicitly or pass nan_policy='omit'")
        x, y = x[ok], y[ok]
        if codes is not None:
            codes = pd.factorize(codes[ok])[0]
    return x, y, codes
