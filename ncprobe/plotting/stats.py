"""Correlation statistics for the correlation view, computed by :mod:`ncprobe.stats` (``docs/statistics.md``).

Every coefficient comes with its Fisher-z interval and n; the seeded percentile bootstrap (pairs
resampled, or whole clusters such as seeds) is reported beside it, never alone, and flagged when it
resamples fewer than 20 units. Non-finite pairs are left out here (the figure prints the n it used).
``tests/plotting`` checks the values against ``scipy.stats.pearsonr``, ``spearmanr`` and ``bootstrap``.
"""

from __future__ import annotations

from ncprobe.stats import CorrelationResult, correlation, is_constant

__all__ = ["Correlation", "pearson", "spearman", "bootstrap_ci", "correlate", "is_constant"]

#: The result of :func:`correlate`: :class:`ncprobe.stats.CorrelationResult` (r, p-value, Fisher-z interval
#: ``ci_low``/``ci_high``, bootstrap interval ``boot_low``/``boot_high``, n).
Correlation = CorrelationResult


def pearson(x, y) -> tuple[float, float]:
    """Pearson r and its two-sided p-value (t test with n − 2 degrees of freedom), non-finite pairs
    dropped; ``(nan, nan)`` with fewer than 3 pairs or a constant input.

    >>> round(pearson([1, 2, 3, 4], [1, 3, 2, 5])[0], 4)
    0.8315
    """
    c = correlation(x, y, method="pearson", n_boot=0, nan_policy="omit")
    return c.r, c.p_value


def spearman(x, y) -> tuple[float, float]:
    """Spearman ρ (Pearson r of average ranks) and its p-value (same t approximation as scipy).

    >>> spearman([1, 2, 3, 4], [1, 3, 2, 5])[0]
    0.8
    """
    c = correlation(x, y, method="spearman", n_boot=0, nan_policy="omit")
    return c.r, c.p_value


def bootstrap_ci(
    x, y, *, method: str = "pearson", confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the correlation (pairs resampled together).

    Resamples are drawn with ``numpy.random.default_rng(seed)``, so the interval is reproducible.
    Resamples where a variable is constant (coefficient undefined) are left out. Over fewer than 20 pairs
    this interval is too narrow to be read alone: show it beside the Fisher-z interval of :func:`correlate`.

    >>> lo, hi = bootstrap_ci([1, 2, 3, 4, 5, 6], [1, 3, 2, 5, 4, 6], seed=0)
    >>> bool(lo < 0.83 < hi)
    True
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    c = correlation(x, y, method=method, confidence=confidence, n_boot=n_resamples, seed=seed, nan_policy="omit")
    return c.boot_low, c.boot_high


def correlate(
    x,
    y,
    *,
    method: str = "pearson",
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    clusters=None,
) -> CorrelationResult:
    """Coefficient, p-value, Fisher-z interval and bootstrap interval (:func:`ncprobe.stats.correlation`,
    non-finite pairs left out; ``clusters``: one label per pair, e.g. the seed, to resample whole clusters).

    >>> c = correlate([1, 2, 3, 4, 5, 6], [1, 3, 2, 5, 4, 6], method="spearman")
    >>> c.method, round(c.r, 3), c.n
    ('spearman', 0.886, 6)
    >>> c.label()
    'Spearman ρ = 0.89 [0.07, 0.99], boot [0.20, 1.00]*, p = 0.019 (n = 6)'
    """
    return correlation(
        x,
        y,
        method=method,
        confidence=confidence,
        clusters=clusters,
        n_boot=n_resamples,
        seed=seed,
        nan_policy="omit",
    )
