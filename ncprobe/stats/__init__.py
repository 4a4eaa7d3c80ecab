"""Statistics for the notebooks' claims: paired per-seed differences, correlations over runs, the Holm
correction, and claims that check themselves. Plain numpy, scipy and pandas; see ``docs/statistics.md``.

* :func:`paired_difference` (:class:`PairedDifference`) — mean paired difference with a t interval, the
  paired t test and the sign-flip permutation test (:func:`sign_flip_test`, exact for n ≤ 16);
* :func:`holm` / :func:`holm_adjust` — Holm–Bonferroni step-down across the tests a notebook reports;
* :func:`correlation` (:class:`CorrelationResult`) — Pearson / Spearman with a Fisher-z interval, and a
  bootstrap (clustered by seed when ``clusters`` is given) that is never read alone over fewer than 20 units;
* :func:`within_between` — the correlation between condition means and the pooled one within conditions;
* :func:`claim` and helpers — assert a sentence; fail with the sentence and its numbers (:class:`ClaimError`).
"""

from .claims import ClaimError, Confirmed, claim, claim_between, claim_interval_excludes_zero, claim_significant
from .correlation import CorrelationResult, correlation, correlation_p_value, fisher_interval, is_constant
from .multiple import holm, holm_adjust
from .paired import PairedDifference, SignFlipTest, paired_difference, sign_flip_test
from .within import WithinBetween, within_between

__all__ = [
    "ClaimError",
    "Confirmed",
    "CorrelationResult",
    "PairedDifference",
    "SignFlipTest",
    "WithinBetween",
    "claim",
    "claim_between",
    "claim_interval_excludes_zero",
    "claim_significant",
    "correlation",
    "correlation_p_value",
    "fisher_interval",
    "holm",
    "holm_adjust",
    "is_constant",
    "paired_difference",
    "sign_flip_test",
    "within_between",
]
