"""Claims that check themselves: every sentence of a notebook that states a direction, a size or a
significance is followed by a cell that computes it and asserts it through :func:`claim`.

A claim that holds returns a one-line confirmation (displayed by the cell); one that does not raises
:class:`ClaimError` with the sentence and the numbers, so a re-run notebook whose results moved fails at
the sentence that is no longer true.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ClaimError", "Confirmed", "claim", "claim_interval_excludes_zero", "claim_significant", "claim_between"]


class ClaimError(AssertionError):
    """A sentence of a notebook that its numbers do not support."""


class Confirmed(str):
    """The confirmation of a claim that holds; a notebook cell shows it as plain text (no quotes)."""

    def __repr__(self) -> str:
        return str.__str__(self)


def _fmt(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    if isinstance(value, (tuple, list)) and all(isinstance(v, (int, float, np.number)) for v in value):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    if isinstance(value, np.ndarray):
        return np.array2string(value, precision=4, separator=", ")
    return str(value)


def claim(sentence: str, holds, **numbers) -> Confirmed:
    """Assert a sentence of a notebook: return ``"✓ <sentence> (name = value, …)"`` if ``holds`` is true,
    else raise :class:`ClaimError` whose message is the sentence, then one ``name = value`` line per number.

    ``holds`` must be a bool (``numpy.bool_`` too): passing a number or an array by mistake is a
    ``TypeError``, not a silently true claim. Numbers print with 4 significant digits; results of
    :mod:`ncprobe.stats` print as their one-line summary.

    >>> claim("Accuracy rises with ρ.", 0.71 > 0.65, rho16=0.71, rho1=0.65)
    ✓ Accuracy rises with ρ. (rho16 = 0.71, rho1 = 0.65)
    >>> claim("Accuracy falls with ρ.", 0.71 < 0.65, rho16=0.71, rho1=0.65)
    Traceback (most recent call last):
    ...
    ncprobe.stats.claims.ClaimError: Accuracy falls with ρ.
      rho16 = 0.71
      rho1 = 0.65
    """
    if not isinstance(holds, (bool, np.bool_)):
        raise TypeError(f"holds must be a bool (the claim's test), got {type(holds).__name__}: {holds!r}")
    shown = {k: _fmt(v) for k, v in numbers.items()}
    if not holds:
        raise ClaimError("\n".join([sentence, *(f"  {k} = {v}" for k, v in shown.items())]))
    tail = f" ({', '.join(f'{k} = {v}' for k, v in shown.items())})" if shown else ""
    return Confirmed(f"✓ {sentence}{tail}")


def claim_interval_excludes_zero(sentence: str, result, direction: str = "+") -> Confirmed:
    """The confidence interval of ``result`` (a :class:`~ncprobe.stats.PairedDifference`, a
    :class:`~ncprobe.stats.CorrelationResult` or anything with ``ci_low``/``ci_high``) lies above zero
    (``direction="+"``), below it (``"-"``) or on either side of it but not across (``"any"``).

    >>> from ncprobe.stats import paired_difference
    >>> d = paired_difference([0.71, 0.74, 0.70, 0.73], [0.65, 0.69, 0.66, 0.66])
    >>> print(claim_interval_excludes_zero("CoOp beats zero-shot on base classes.", d))  # doctest: +ELLIPSIS
    ✓ CoOp beats zero-shot on base classes. (result = Δ = +0.055 [0.034, 0.076] (95 % t, n = 4), ...)
    """
    if direction not in ("+", "-", "any"):
        raise ValueError(f"direction must be '+', '-' or 'any', got {direction!r}")
    lo, hi = float(result.ci_low), float(result.ci_high)
    above, below = lo > 0, hi < 0  # NaN bounds make both false: the claim fails
    holds = {"+": above, "-": below, "any": above or below}[direction]
    return claim(sentence, bool(holds), result=result, ci=(lo, hi), direction=direction)


def claim_significant(sentence: str, p: float, alpha: float = 0.05) -> Confirmed:
    """``p ≤ alpha`` (a NaN p fails). Pass a Holm-adjusted p (:func:`~ncprobe.stats.holm`) when the notebook
    reports several tests.

    >>> claim_significant("NPT's gain survives the Holm correction.", 0.012)
    ✓ NPT's gain survives the Holm correction. (p = 0.012, alpha = 0.05)
    """
    p = float(p)
    return claim(sentence, bool(p <= alpha), p=p, alpha=alpha)


def claim_between(sentence: str, value: float, low: float, high: float) -> Confirmed:
    """``low ≤ value ≤ high`` (a NaN value fails).

    >>> claim_between("About two thirds of the gap closes.", 0.64, 0.55, 0.75)
    ✓ About two thirds of the gap closes. (value = 0.64, low = 0.55, high = 0.75)
    """
    value = float(value)
    return claim(sentence, bool(low <= value <= high), value=value, low=low, high=high)
