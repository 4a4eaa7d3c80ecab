"""Paired per-seed differences: the mean difference with its t interval, the paired t test and the sign-flip
permutation test.

A notebook that compares two settings over the same units (e.g. CoOp against zero-shot base accuracy per
(tower seed, prompt seed) unit, or ρ = 16 against ρ = 1 per seed) passes the two per-unit values; the unit
of replication is the pair, so the test is on the differences ``d_i = a_i − b_i``. No pair is ever dropped
silently: a NaN in either value is an error that names the pair.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as sps

from ._common import as_labeled_vector, as_pairs, check_confidence, decimals_for, fmt_fixed, fmt_p, fmt_signed

__all__ = ["PairedDifference", "SignFlipTest", "paired_difference", "sign_flip_test", "EXACT_MAX_N"]

#: Up to this many differences the sign-flip test enumerates all 2^n sign patterns (65,536 at n = 16);
#: above it, it draws ``n_permutations`` seeded random patterns.
EXACT_MAX_N = 16

_ALTERNATIVES = ("two-sided", "greater", "less")


@dataclass(frozen=True)
class SignFlipTest:
    """The sign-flip permutation test of a mean difference (see :func:`sign_flip_test`)."""

    n: int
    statistic: float  # mean of the differences
    p_value: float
    exact: bool  # all 2^n sign patterns enumerated (else seeded Monte Carlo with the +1 correction)
    n_patterns: int  # 2^n when exact, else the number of random patterns drawn
    alternative: str

    def __str__(self) -> str:
        how = f"exact, {self.n_patterns} sign patterns" if self.exact else f"Monte Carlo, {self.n_patterns} patterns"
        return f"sign-flip p = {fmt_p(self.p_value)} ({self.alternative}, {how}, n = {self.n})"


def _finite_differences(d, what: str = "differences") -> np.ndarray:
    d, labels = as_labeled_vector(d, what)
    bad = [labels[i] for i in np.flatnonzero(~np.isfinite(d))]
    if bad:
        raise ValueError(f"{what} hold NaN or inf at {bad}: drop or fill those units explicitly")
    if d.size < 2:
        raise ValueError(f"need at least 2 {what}, got {d.size}")
    return d


def sign_flip_test(
    differences, *, alternative: str = "two-sided", n_permutations: int = 9999, seed: int = 0
) -> SignFlipTest:
    """Sign-flip (paired permutation) test of mean difference zero.

    Under the null hypothesis each paired difference is symmetric about zero, so every pattern of signs
    ``s ∈ {−1, +1}^n`` is equally likely. The statistic is ``T = mean(d)``; the p-value is the share of
    sign patterns whose ``T* = mean(s · d)`` is at least as extreme:

    * two-sided ``P(|T*| ≥ |T|)``, greater ``P(T* ≥ T)``, less ``P(T* ≤ T)``;
    * **exact** for ``n ≤ EXACT_MAX_N`` (16): all ``2^n`` patterns are enumerated and ``p = count / 2^n``
      (the observed pattern is one of them, so ``p ≥ 1 / 2^n``; two-sided ``p ≥ 2 / 2^n``);
    * **Monte Carlo** above that: ``n_permutations`` random patterns from ``numpy.random.default_rng(seed)``
      and ``p = (count + 1) / (n_permutations + 1)``, which counts the observed pattern and never gives 0
      (Phipson & Smyth 2010, "Permutation p-values should never be zero").

    Ties are compared with a relative tolerance of 100 machine epsilons, as ``scipy.stats.permutation_test``
    does, so round-off never decides a tie. The exact two-sided value equals that of
    ``scipy.stats.permutation_test(..., permutation_type="samples")``. Source: Fisher (1935), *The Design of
    Experiments*, §21; Good (2005), *Permutation, Parametric and Bootstrap Tests of Hypotheses*, §3.

    Parameters
    ----------
    differences:
        The per-unit differences (list, numpy array, pandas Series or xarray DataArray); NaN is an error.
    alternative:
        ``"two-sided"`` (default), ``"greater"`` (mean > 0) or ``"less"``.
    n_permutations, seed:
        Random patterns and their seed when ``n > EXACT_MAX_N``.

    Returns
    -------
    SignFlipTest

    Example
    -------
    >>> t = sign_flip_test([0.1, 0.2, 0.15, 0.3])
    >>> t.p_value, t.exact, t.n_patterns
    (0.125, True, 16)
    """
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {_ALTERNATIVES}, got {alternative!r}")
    d = _finite_differences(differences)
    n = d.size
    observed = float(d.mean())
    gamma = abs(observed) * 100 * np.finfo(np.float64).eps

    def count(null: np.ndarray) -> int:
        if alternative == "two-sided":
            return int((np.abs(null) >= abs(observed) - gamma).sum())
        if alternative == "greater":
            return int((null >= observed - gamma).sum())
        return int((null <= observed + gamma).sum())

    if n <= EXACT_MAX_N:
        bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
        null = ((1 - 2 * bits) @ d) / n
        return SignFlipTest(n, observed, count(null) / 2**n, True, 2**n, alternative)
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be at least 1, got {n_permutations}")
    rng = np.random.default_rng(seed)
    hits, left = 0, int(n_permutations)
    while left:
        m = min(left, 10_000)
        signs = 1 - 2 * rng.integers(0, 2, size=(m, n))
        hits += count((signs @ d) / n)
        left -= m
    return SignFlipTest(n, observed, (hits + 1) / (n_permutations + 1), False, int(n_permutations), alternative)


@dataclass(frozen=True)
class PairedDifference:
    """A paired comparison over units: mean difference ``a − b``, its t interval, the paired t test and the
    sign-flip permutation test (see :func:`paired_difference`)."""

    n: int
    mean: float
    std: float  # sample standard deviation of the differences (ddof = 1)
    se: float  # std / sqrt(n)
    ci_low: float
    ci_high: float
    confidence: float
    t: float
    df: int
    p_t: float  # two-sided paired t test
    p_perm: float  # two-sided sign-flip permutation test
    perm_exact: bool
    n_patterns: int
    names: tuple[str, str] = ("a", "b")
    differences: np.ndarray = field(default=None, repr=False, compare=False)
    labels: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def __str__(self) -> str:
        dec = decimals_for(self.ci_high - self.ci_low if self.se > 0 else abs(self.mean))
        perm = f"exact, {self.n_patterns} sign patterns" if self.perm_exact else f"{self.n_patterns} random signs"
        head = "" if self.names == ("a", "b") else f"{self.names[0]} − {self.names[1]}: "
        return (
            f"{head}Δ = {fmt_signed(self.mean, dec)} [{fmt_fixed(self.ci_low, dec)}, {fmt_fixed(self.ci_high, dec)}]"
            f" ({100 * self.confidence:g} % t, n = {self.n}), p_t = {fmt_p(self.p_t)},"
            f" p_perm = {fmt_p(self.p_perm)} ({perm})"
        )

    def _repr_html_(self) -> str:
        return f"<span style='font-family:monospace'>{html.escape(str(self))}</span>"


def paired_difference(
    a,
    b,
    *,
    confidence: float = 0.95,
    n_permutations: int = 9999,
    seed: int = 0,
    names: tuple[str, str] | None = None,
) -> PairedDifference:
    """Mean paired difference ``a − b`` over units, with a t interval, a t test and a sign-flip test.

    With ``d_i = a_i − b_i`` (i = 1..n), ``d̄ = mean(d)``, ``s = std(d, ddof=1)``, ``se = s / √n``:

    * interval ``d̄ ± t_{(1+confidence)/2, n−1} · se`` (Student 1908; the paired t interval);
    * ``t = d̄ / se`` with ``n − 1`` degrees of freedom, two-sided ``p_t = 2 · P(T_{n−1} ≥ |t|)`` (as
      ``scipy.stats.ttest_rel``; differences all equal and non-zero give ``t = ±inf``, ``p_t = 0``, all zero
      give NaN);
    * ``p_perm``: the two-sided sign-flip permutation test of :func:`sign_flip_test` (exact for n ≤ 16, else
      seeded Monte Carlo), which does not assume normal differences.

    Pairs are matched by index when ``a`` and ``b`` are both pandas Series, by coordinates when both are
    xarray DataArrays (e.g. dims ``tower_seed × prompt_seed``), else by position.

    Parameters
    ----------
    a, b:
        Per-unit values of the two settings; NaN or inf in a pair is a ``ValueError`` naming the pair (drop
        such units explicitly before the call), as are differing lengths and fewer than 2 pairs.
    confidence:
        Level of the two-sided t interval.
    n_permutations, seed:
        Monte Carlo settings of the sign-flip test when n > 16.
    names:
        The two settings' names, printed as ``"a − b: Δ = …"``.

    Returns
    -------
    PairedDifference

    Example
    -------
    >>> d = paired_difference([0.71, 0.74, 0.70, 0.73], [0.65, 0.69, 0.66, 0.66], names=("CoOp", "ZS"))
    >>> print(d)
    CoOp − ZS: Δ = +0.055 [0.034, 0.076] (95 % t, n = 4), p_t = 0.0034, p_perm = 0.12 (exact, 16 sign patterns)
    """
    confidence = check_confidence(confidence)
    names = tuple(names) if names is not None else ("a", "b")
    if len(names) != 2:
        raise ValueError(f"names must be two names, got {names!r}")
    x, y, labels = as_pairs(a, b, names)
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        which = [f"{labels[i]} ({names[0]}={x[i]:g}, {names[1]}={y[i]:g})" for i in np.flatnonzero(bad)]
        raise ValueError(f"NaN or inf in {int(bad.sum())} pair(s): {which}; drop or fill those units explicitly")
    if x.size < 2:
        raise ValueError(f"need at least 2 pairs, got {x.size}")
    d = x - y
    n = d.size
    mean = float(d.mean())
    std = float(d.std(ddof=1))
    se = std / np.sqrt(n)
    df = n - 1
    if se > 0:
        t = mean / se
        p_t = float(2 * sps.t.sf(abs(t), df))
    else:
        t = float(np.sign(mean) * np.inf) if mean != 0 else float("nan")
        p_t = 0.0 if mean != 0 else float("nan")
    half = float(sps.t.ppf((1 + confidence) / 2, df) * se)
    perm = sign_flip_test(d, n_permutations=n_permutations, seed=seed)
    return PairedDifference(
        n=n,
        mean=mean,
        std=std,
        se=float(se),
        ci_low=mean - half,
        ci_high=mean + half,
        confidence=confidence,
        t=float(t),
        df=df,
        p_t=p_t,
        p_perm=perm.p_value,
        perm_exact=perm.exact,
        n_patterns=perm.n_patterns,
        names=names,
        differences=d,
        labels=tuple(labels),
    )
