"""Correlation statistics for the correlation view: Pearson and Spearman coefficients with p-values and
seeded percentile-bootstrap confidence intervals (pairs resampled with replacement).

Plain numpy (and ``scipy.stats`` for ranks and the t distribution); ``tests/plotting`` checks every value
against ``scipy.stats.pearsonr``, ``spearmanr`` and ``bootstrap``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

__all__ = ["Correlation", "pearson", "spearman", "bootstrap_ci", "correlate", "is_constant"]

#: Values whose range is at most this fraction of their magnitude count as constant (float round-off, e.g.
#: 0.906 and 0.9060000000000001, is not variation): their correlation is undefined.
CONSTANT_RTOL = 1e-9


def is_constant(values, axis: int = -1):
    """Whether the finite ``values`` are constant up to round-off: range ≤ :data:`CONSTANT_RTOL` × max |value|.

    >>> bool(is_constant([0.906, 0.9060000000000001, 0.906])), bool(is_constant([0.9, 0.91]))
    (True, False)
    """
    v = np.asarray(values, dtype=float)
    if v.ndim == 1:
        v = v[np.isfinite(v)]
        if v.size == 0:
            return True
    spread = np.ptp(v, axis=axis)
    scale = np.abs(v).max(axis=axis)
    return spread <= CONSTANT_RTOL * scale


@dataclass(frozen=True)
class Correlation:
    """One correlation coefficient with its two-sided p-value and bootstrap confidence interval."""

    method: str
    r: float
    p_value: float
    ci_low: float
    ci_high: float
    n: int
    confidence: float
    n_resamples: int

    def label(self, *, n: bool = True) -> str:
        """A short text, e.g. ``"Pearson r = 0.82 [0.61, 0.93], p = 0.002 (n = 12)"``."""
        sym = "r" if self.method == "pearson" else "ρ"
        name = self.method.capitalize()
        tail = f" (n = {self.n})" if n else ""
        if not np.isfinite(self.r):
            return f"{name} {sym} undefined{tail}"
        return f"{name} {sym} = {self.r:.2f} [{self.ci_low:.2f}, {self.ci_high:.2f}], p = {self.p_value:.2g}{tail}"


def _pairs(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {x.size} vs {y.size}")
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair of (B, n) arrays (NaN where a row is constant, :func:`is_constant`)."""
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    den = np.sqrt((xc * xc).sum(-1) * (yc * yc).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(-1) / den
    r[(den <= 0) | is_constant(x) | is_constant(y)] = np.nan
    return np.clip(r, -1.0, 1.0)


def pearson(x, y) -> tuple[float, float]:
    """Pearson r and its two-sided p-value (t test with n − 2 degrees of freedom), non-finite pairs
    dropped; ``(nan, nan)`` with fewer than 3 pairs or a constant input.

    >>> round(pearson([1, 2, 3, 4], [1, 3, 2, 5])[0], 4)
    0.8315
    """
    x, y = _pairs(x, y)
    if x.size < 3:
        return float("nan"), float("nan")
    r = float(_rowwise_pearson(x[None], y[None])[0])
    return r, _p_value(r, x.size)


def spearman(x, y) -> tuple[float, float]:
    """Spearman ρ (Pearson r of average ranks) and its p-value (same t approximation as scipy).

    >>> spearman([1, 2, 3, 4], [1, 3, 2, 5])[0]
    0.8
    """
    x, y = _pairs(x, y)
    if x.size < 3:
        return float("nan"), float("nan")
    return pearson(sps.rankdata(x), sps.rankdata(y))


def _p_value(r: float, n: int) -> float:
    if not np.isfinite(r):
        return float("nan")
    if abs(r) >= 1.0:
        return 0.0
    t = r * np.sqrt((n - 2) / (1.0 - r * r))
    return float(2 * sps.t.sf(abs(t), n - 2))


def bootstrap_ci(
    x, y, *, method: str = "pearson", confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the correlation (pairs resampled together).

    Resamples are drawn with ``numpy.random.default_rng(seed)``, so the interval is reproducible.
    Resamples where a variable is constant (coefficient undefined) are left out.

    >>> lo, hi = bootstrap_ci([1, 2, 3, 4, 5, 6], [1, 3, 2, 5, 4, 6], seed=0)
    >>> bool(lo < 0.83 < hi)
    True
    """
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method must be 'pearson' or 'spearman', got {method!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x, y = _pairs(x, y)
    n = x.size
    if n < 3:
        return float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, n, size=(int(n_resamples), n))
    xb, yb = x[idx], y[idx]
    if method == "spearman":
        xb, yb = sps.rankdata(xb, axis=1), sps.rankdata(yb, axis=1)
    r = _rowwise_pearson(xb, yb)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return float("nan"), float("nan")
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(r, [alpha, 1 - alpha])
    return float(lo), float(hi)


def correlate(
    x, y, *, method: str = "pearson", confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> Correlation:
    """Coefficient, p-value and bootstrap interval in one :class:`Correlation`.

    >>> c = correlate([1, 2, 3, 4, 5, 6], [1, 3, 2, 5, 4, 6], method="spearman")
    >>> c.method, round(c.r, 3), c.n
    ('spearman', 0.886, 6)
    """
    func = {"pearson": pearson, "spearman": spearman}.get(method)
    if func is None:
        raise ValueError(f"method must be 'pearson' or 'spearman', got {method!r}")
    r, p = func(x, y)
    lo, hi = bootstrap_ci(x, y, method=method, confidence=confidence, n_resamples=n_resamples, seed=seed)
    n = _pairs(x, y)[0].size
    return Correlation(method, r, p, lo, hi, n, confidence, int(n_resamples))
