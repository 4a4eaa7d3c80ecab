"""Correlations over runs with intervals that respect the number of runs.

Every result carries a Fisher-z interval and prints ``n``. A bootstrap interval is optional and only ever
printed beside the Fisher-z one: a percentile bootstrap over fewer than 20 runs is too narrow (it cannot
see beyond the few values it resamples), so the printed result then says "bootstrap over n < 20 runs: read
the Fisher-z interval". Runs that share a seed are not independent: ``clusters`` resamples whole seeds.
:func:`ncprobe.stats.within.within_between` separates what varies between conditions from what varies within them.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as sps

from ._common import check_confidence, fmt_p, prepare_pairs

__all__ = [
    "CorrelationResult",
    "correlation",
    "correlation_p_value",
    "fisher_interval",
    "is_constant",
    "CONSTANT_RTOL",
    "SMALL_BOOTSTRAP",
]

#: Values whose range is at most this fraction of their magnitude count as constant (float round-off, e.g.
#: 0.906 and 0.9060000000000001, is not variation): their correlation is undefined.
CONSTANT_RTOL = 1e-9
#: A bootstrap over fewer resampled units than this is never read alone.
SMALL_BOOTSTRAP = 20
_METHODS = ("pearson", "spearman")


def is_constant(values, axis: int = -1):
    """Whether the finite ``values`` are constant up to round-off: range ≤ :data:`CONSTANT_RTOL` × max |value|.

    >>> bool(is_constant([0.906, 0.9060000000000001, 0.906])), bool(is_constant([0.9, 0.91]))
    (True, False)
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[np.isfinite(v)]
        if v.size == 0:
            return True
    spread = np.ptp(v, axis=axis)
    scale = np.abs(v).max(axis=axis)
    return spread <= CONSTANT_RTOL * scale


def fisher_interval(r: float, n_eff: float, confidence: float = 0.95, *, spearman: bool = False):
    """Fisher-z interval ``tanh(atanh r ± q · se)`` with ``q`` the normal ``(1 + confidence)/2`` quantile.

    ``se = 1 / √(n_eff − 3)`` for Pearson r (Fisher 1921, "On the 'probable error' of a coefficient of
    correlation", *Metron* 1, 3–32; as ``scipy.stats.pearsonr(...).confidence_interval()``), and
    ``se = √((1 + r²/2) / (n_eff − 3))`` for Spearman ρ (Bonett & Wright 2000, "Sample size requirements for
    estimating Pearson, Kendall and Spearman correlations", *Psychometrika* 65, 23–28; Fieller, Hartley &
    Pearson 1957 proposed the constant 1.06 in place of 1 + r²/2). NaN when ``n_eff ≤ 3`` or r is NaN;
    ``(r, r)`` when |r| = 1.

    >>> [round(v, 4) for v in fisher_interval(0.5, 30)]
    [0.1704, 0.729]
    """
    if not np.isfinite(r) or n_eff <= 3:
        return float("nan"), float("nan")
    if abs(r) >= 1:
        return float(r), float(r)
    se = math.sqrt((1 + r * r / 2 if spearman else 1.0) / (n_eff - 3))
    q = float(sps.norm.ppf((1 + confidence) / 2))
    z = math.atanh(r)
    return math.tanh(z - q * se), math.tanh(z + q * se)


def correlation_p_value(r: float, df: int) -> float:
    """Two-sided p of ``t = r √(df / (1 − r²))`` with ``df`` degrees of freedom (as scipy's pearsonr):
    ``df = n − 2`` for a plain correlation, ``N − G − 1`` within G conditions.

    >>> round(correlation_p_value(0.5, 28), 4)
    0.0049
    """
    if not np.isfinite(r) or df < 1:
        return float("nan")
    if abs(r) >= 1:
        return 0.0
    t = r * math.sqrt(df / (1 - r * r))
    return float(2 * sps.t.sf(abs(t), df))


@dataclass(frozen=True)
class CorrelationResult:
    """A correlation coefficient with its p-value, Fisher-z interval and, optionally, a bootstrap interval."""

    method: str  # "pearson" or "spearman"
    r: float
    n: int  # observations used
    p_value: float  # two-sided t test with df degrees of freedom
    ci_low: float  # Fisher-z interval
    ci_high: float
    confidence: float
    df: int  # n − 2 (within conditions: N − G − 1)
    interval: str = "Fisher z"
    boot_low: float = float("nan")
    boot_high: float = float("nan")
    boot: str | None = None  # None, "percentile" (pairs resampled) or "cluster" (whole clusters resampled)
    n_boot: int = 0
    n_units: int = 0  # units the bootstrap resampled: n runs, or the number of clusters
    scope: str = ""  # "between G conditions (means)" / "within G conditions" (within.within_between)
    reason: str | None = None  # why r is undefined

    @property
    def small_bootstrap(self) -> bool:
        """A bootstrap over fewer than :data:`SMALL_BOOTSTRAP` units: never to be read alone."""
        return self.boot is not None and self.n_units < SMALL_BOOTSTRAP

    @property
    def symbol(self) -> str:
        return "r" if self.method == "pearson" else "ρ"

    def bootstrap_note(self) -> str:
        """The warning printed beside a bootstrap over fewer than 20 units (``""`` otherwise)."""
        if not self.small_bootstrap:
            return ""
        if self.boot == "cluster":
            return f"bootstrap over {self.n_units} < {SMALL_BOOTSTRAP} clusters: read the Fisher-z interval too"
        return f"bootstrap over n < {SMALL_BOOTSTRAP} runs: read the Fisher-z interval"

    def label(self, *, n: bool = True, boot: bool = True) -> str:
        """Short text, e.g. ``"Pearson r = 0.82 [0.61, 0.93], p = 0.002 (n = 12)"`` (Fisher-z interval; the
        bootstrap interval follows as ``"boot […]"``, starred when over fewer than 20 units)."""
        name = self.method.capitalize()
        tail = f" (n = {self.n})" if n else ""
        if not np.isfinite(self.r):
            return f"{name} {self.symbol} undefined{tail}"
        text = f"{name} {self.symbol} = {self.r:.2f} {self._ci(self.ci_low, self.ci_high)}"
        if boot and self.boot is not None:
            text += f", boot {self._boot_ci()}" + ("*" if self.small_bootstrap else "")
        return f"{text}, p = {fmt_p(self.p_value)}{tail}"

    @staticmethod
    def _ci(lo: float, hi: float) -> str:
        return f"[{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) and np.isfinite(hi) else "[interval needs n ≥ 4]"

    def _boot_ci(self) -> str:
        ok = np.isfinite(self.boot_low) and np.isfinite(self.boot_high)
        return self._ci(self.boot_low, self.boot_high) if ok else "[undefined: one unit, or every resample constant]"

    def __str__(self) -> str:
        name = self.method.capitalize()
        scope = f" {self.scope}" if self.scope else ""
        if not np.isfinite(self.r):
            return f"{name} {self.symbol}{scope} undefined (n = {self.n}): {self.reason}"
        level = f"{100 * self.confidence:g} %"
        text = (
            f"{name} {self.symbol}{scope} = {self.r:.2f} {self._ci(self.ci_low, self.ci_high)}"
            f" ({level} {self.interval}, n = {self.n}{'' if self.df == self.n - 2 else f', df = {self.df}'}),"
            f" p = {fmt_p(self.p_value)}"
        )
        if self.boot is not None:
            kind = (
                "percentile bootstrap" if self.boot == "percentile" else f"cluster bootstrap ({self.n_units} clusters)"
            )
            text += f"; {kind} {self._boot_ci()} ({self.n_boot} resamples)"
            if self.small_bootstrap:
                text += f" — {self.bootstrap_note()}"
        return text

    def _repr_html_(self) -> str:
        return f"<span style='font-family:monospace'>{html.escape(str(self))}</span>"


def _ranks(x: np.ndarray) -> np.ndarray:
    return sps.rankdata(x).astype(np.float64)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    xc, yc = x - x.mean(), y - y.mean()
    den = math.sqrt(float((xc * xc).sum() * (yc * yc).sum()))
    return float(np.clip((xc * yc).sum() / den, -1.0, 1.0)) if den > 0 else float("nan")


def _constant_reason(x: np.ndarray, y: np.ndarray, names=("x", "y")) -> str | None:
    flat = [f"{nm} is constant ({v[0]:.4g})" for nm, v in zip(names, (x, y)) if is_constant(v)]
    return " and ".join(flat) or None


def _drawn_constant(v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per row of ``w`` (B, n): whether the values drawn (w > 0) of ``v`` ((n,) or (B, n)) are constant."""
    v = np.broadcast_to(v, w.shape)
    drawn = w > 0
    spread = np.where(drawn, v, -np.inf).max(1) - np.where(drawn, v, np.inf).min(1)
    return spread <= CONSTANT_RTOL * np.where(drawn, np.abs(v), 0.0).max(1)


def _weighted_r(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Pearson r per row of weights ``w`` (B, n): the r of the sample that repeats (x_i, y_i) w_i times
    (x, y of shape (n,) or (B, n)); NaN where the drawn x or y are constant (:func:`is_constant`)."""
    tot = w.sum(1, keepdims=True)
    xc = x - (w * x).sum(1, keepdims=True) / tot
    yc = y - (w * y).sum(1, keepdims=True) / tot
    sxx, syy, sxy = (w * xc * xc).sum(1), (w * yc * yc).sum(1), (w * xc * yc).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = sxy / np.sqrt(sxx * syy)
    r[_drawn_constant(x, w) | _drawn_constant(y, w)] = np.nan
    return np.clip(r, -1.0, 1.0)


def _weighted_ranks(v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Average ranks of v_i in the sample that repeats each v_j w_j times, per row of ``w`` (B, n)."""
    below = (v[:, None] < v[None, :]).astype(np.float64)  # below[j, i]: v_j < v_i
    equal = (v[:, None] == v[None, :]).astype(np.float64)
    return w @ below + (w @ equal + 1) / 2


def _bootstrap(x, y, codes, n_clusters, *, method, confidence, n_boot, seed) -> tuple[float, float]:
    """Percentile interval of r over resamples of whole clusters (each observation its own cluster for
    the plain bootstrap). A resample repeats cluster g ``c_g`` times, ``c ~ Multinomial(G, 1/G)``; its r is
    the r of that repeated sample (weighted by the counts), undefined resamples (x or y constant) left out."""
    if n_clusters < 2:  # one cluster resampled is always the same sample
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    lows = []
    for start in range(0, n_boot, 1000):
        b = min(1000, n_boot - start)
        draws = rng.integers(0, n_clusters, size=(b, n_clusters))
        counts = np.bincount((np.arange(b)[:, None] * n_clusters + draws).ravel(), minlength=b * n_clusters)
        w = counts.reshape(b, n_clusters)[:, codes].astype(np.float64)
        if method == "spearman":
            r = _weighted_r(_weighted_ranks(x, w), _weighted_ranks(y, w), w)
        else:
            r = _weighted_r(x, y, w)
        lows.append(r)
    r = np.concatenate(lows)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return float("nan"), float("nan")
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(r, [alpha, 1 - alpha])
    return float(lo), float(hi)


def correlation(
    x,
    y,
    *,
    method: str = "pearson",
    confidence: float = 0.95,
    clusters=None,
    n_boot: int = 2000,
    seed: int = 0,
    nan_policy: str = "raise",
) -> CorrelationResult:
    """Pearson r or Spearman ρ with its p-value, Fisher-z interval and a seeded bootstrap interval.

    * r: Pearson's product-moment coefficient; ρ: Pearson r of the average ranks (ties averaged), as
      ``scipy.stats.pearsonr`` / ``spearmanr``;
    * p: two-sided t test ``t = r √((n − 2) / (1 − r²))`` with n − 2 degrees of freedom (exact for Pearson
      under bivariate normality; the usual approximation for Spearman, as scipy);
    * interval: Fisher z, :func:`fisher_interval` (Spearman with the Bonett–Wright standard error);
    * bootstrap (``n_boot > 0``): percentile interval over ``n_boot`` resamples drawn with
      ``numpy.random.default_rng(seed)`` (Efron & Tibshirani 1993, ch. 13). Without ``clusters`` the pairs
      are resampled; with ``clusters`` (e.g. the seed of each run) whole clusters are resampled (Field &
      Welsh 2007, "Bootstrapping clustered data", *JRSS B* 69, 369–390), and the number of clusters is
      reported. A bootstrap over fewer than 20 units is flagged in the printed result, which always
      shows the Fisher-z interval first.

    Parameters
    ----------
    x, y:
        Paired values (lists, numpy arrays, pandas Series paired by index, xarray DataArrays by coordinates).
    method:
        ``"pearson"`` or ``"spearman"``.
    confidence:
        Level of both intervals.
    clusters:
        One cluster label per pair (in x's order), for the cluster bootstrap.
    n_boot, seed:
        Bootstrap resamples (0: no bootstrap) and their seed.
    nan_policy:
        ``"raise"`` (default: a NaN names its pair) or ``"omit"`` (such pairs left out; ``n`` counts the rest).

    Returns
    -------
    CorrelationResult
        r is NaN, with a ``reason``, for fewer than 3 pairs or a constant variable.

    Example
    -------
    >>> c = correlation([0.1, 0.2, 0.4, 0.8, 0.5, 0.3], [0.8, 0.7, 0.65, 0.5, 0.6, 0.72])
    >>> print(c)  # doctest: +NORMALIZE_WHITESPACE
    Pearson r = -0.97 [-1.00, -0.78] (95 % Fisher z, n = 6), p = 0.00097; percentile bootstrap [-1.00, -0.82]
    (2000 resamples) — bootstrap over n < 20 runs: read the Fisher-z interval
    """
    if method not in _METHODS:
        raise ValueError(f"method must be 'pearson' or 'spearman', got {method!r}")
    confidence = check_confidence(confidence)
    if n_boot < 0:
        raise ValueError(f"n_boot must be ≥ 0, got {n_boot}")
    x, y, codes = prepare_pairs(x, y, clusters, nan_policy)
    n = x.size
    interval = "Fisher z" if method == "pearson" else "Fisher z, Bonett–Wright se"
    reason = "fewer than 3 pairs" if n < 3 else _constant_reason(x, y)
    if reason:
        nan = float("nan")
        return CorrelationResult(method, nan, n, nan, nan, nan, confidence, max(n - 2, 0), interval, reason=reason)
    r = _pearson(_ranks(x), _ranks(y)) if method == "spearman" else _pearson(x, y)
    lo, hi = fisher_interval(r, n, confidence, spearman=method == "spearman")
    result = CorrelationResult(method, r, n, correlation_p_value(r, n - 2), lo, hi, confidence, n - 2, interval)
    if n_boot:
        if codes is None:
            units, codes, kind = n, np.arange(n), "percentile"
        else:
            units, kind = int(codes.max()) + 1, "cluster"
        blo, bhi = _bootstrap(x, y, codes, units, method=method, confidence=confidence, n_boot=n_boot, seed=seed)
        result = replace(result, boot_low=blo, boot_high=bhi, boot=kind, n_boot=int(n_boot), n_units=units)
    return result
