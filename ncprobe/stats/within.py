"""The correlation between conditions and within them: a correlation over runs of several conditions (e.g.
imbalance ratios or methods) split into the correlation of the condition means and the pooled correlation
of the deviations from them (Bland & Altman 1995)."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as sps

from ._common import check_confidence, prepare_pairs
from .correlation import CONSTANT_RTOL, CorrelationResult, correlation, correlation_p_value, fisher_interval

__all__ = ["WithinBetween", "within_between"]


@dataclass(frozen=True)
class WithinBetween:
    """The correlation between conditions (of condition means) and within them (see :func:`within_between`)."""

    between: CorrelationResult
    within: CorrelationResult

    def __iter__(self):
        return iter((self.between, self.within))

    def __str__(self) -> str:
        return f"{self.between}\n{self.within}"

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


def within_between(
    x, y, condition, *, method: str = "pearson", confidence: float = 0.95, nan_policy: str = "raise"
) -> WithinBetween:
    """Split a correlation over runs into its between-condition and within-condition parts.

    With N runs in G conditions (e.g. imbalance ratios, or methods), condition means ``x̄_g, ȳ_g``:

    * **between**: the correlation of the G condition means (n = G; :func:`correlation`, no bootstrap);
    * **within**: the pooled within-condition correlation of the deviations from the condition means,
      ``r_w = Σ (x − x̄_g)(y − ȳ_g) / √(Σ (x − x̄_g)² · Σ (y − ȳ_g)²)``, the repeated-measures correlation of
      Bland & Altman (1995), "Calculating correlation coefficients with repeated observations: Part 1 —
      correlation within subjects", *BMJ* 310, 446. Its test has ``df = N − G − 1`` (the residual degrees
      of freedom of y on x plus one intercept per condition): ``t = r_w √(df / (1 − r_w²))``. Its Fisher-z
      interval uses ``n_eff = df`` in place of n, ``se = 1 / √(N − G − 4)``, as the rmcorr package does
      (Bakdash & Marusich 2017, "Repeated measures correlation", *Front. Psychol.* 8, 456).

    ``method="spearman"`` ranks x and y over all N runs first (average ranks), then applies the same split to
    the ranks (the between part is the Spearman ρ of the condition means).

    A strong correlation over all runs can come from the conditions alone (between) while nothing within a
    condition follows it; reading both avoids that confusion (Simpson's paradox).

    Returns
    -------
    WithinBetween
        ``(between, within)``, each a :class:`CorrelationResult` (printed with its scope).

    Example
    -------
    >>> x = [1.0, 2.0, 3.0, 11.0, 12.0, 13.0, 21.0, 22.0, 23.0]
    >>> y = [3.0, 2.0, 1.0, 13.0, 12.0, 11.0, 23.0, 22.0, 21.0]
    >>> between, within = within_between(x, y, ["a"] * 3 + ["b"] * 3 + ["c"] * 3)
    >>> round(between.r, 2), between.n, round(within.r, 2), within.df
    (1.0, 3, -1.0, 5)
    """
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method must be 'pearson' or 'spearman', got {method!r}")
    confidence = check_confidence(confidence)
    x, y, codes = prepare_pairs(x, y, condition, nan_policy)
    if codes is None:
        raise ValueError("condition is required: one condition label per pair")
    g = int(codes.max()) + 1 if codes.size else 0
    counts = np.bincount(codes, minlength=g)
    mx, my = np.bincount(codes, x, g) / counts, np.bincount(codes, y, g) / counts
    between = correlation(mx, my, method=method, confidence=confidence, n_boot=0)
    between = replace(between, scope=f"between {g} conditions (means)")
    if method == "spearman":
        x, y = sps.rankdata(x).astype(np.float64), sps.rankdata(y).astype(np.float64)
        mx, my = np.bincount(codes, x, g) / counts, np.bincount(codes, y, g) / counts
    n, df = x.size, x.size - g - 1
    dx, dy = x - mx[codes], y - my[codes]
    interval = "Fisher z, n_eff = N − G − 1" + (", Bonett–Wright se" if method == "spearman" else "")
    scope = f"within {g} conditions"
    reason = f"df = N − G − 1 = {df} < 1" if df < 1 else None
    if reason is None:
        flat = [nm for nm, d, v in (("x", dx, x), ("y", dy, y)) if np.abs(d).max() <= CONSTANT_RTOL * np.abs(v).max()]
        reason = " and ".join(f"{nm} does not vary within conditions" for nm in flat) or None
    if reason:
        nan = float("nan")
        within = CorrelationResult(method, nan, n, nan, nan, nan, confidence, df, interval, scope=scope, reason=reason)
    else:
        r = float(np.clip((dx * dy).sum() / math.sqrt(float((dx * dx).sum() * (dy * dy).sum())), -1.0, 1.0))
        lo, hi = fisher_interval(r, df, confidence, spearman=method == "spearman")
        within = CorrelationResult(
            method, r, n, correlation_p_value(r, df), lo, hi, confidence, df, interval, scope=scope
        )
    return WithinBetween(between, within)
