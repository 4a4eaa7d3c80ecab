"""Multiple testing: the Holm–Bonferroni step-down correction across the tests a notebook reports."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["holm", "holm_adjust"]


def _p_vector(p_values, names) -> tuple[np.ndarray, list[str]]:
    if isinstance(p_values, dict):
        if names is not None:
            raise ValueError("names come from the mapping's keys; pass either a mapping or names")
        names, p_values = list(map(str, p_values)), list(p_values.values())
    p = np.asarray(p_values, dtype=np.float64).ravel()
    names = [f"test {i + 1}" for i in range(p.size)] if names is None else [str(n) for n in names]
    if len(names) != p.size:
        raise ValueError(f"{len(names)} names for {p.size} p-values")
    bad = [names[i] for i in np.flatnonzero(~((p >= 0) & (p <= 1)))]  # NaN fails both comparisons
    if bad:
        raise ValueError(f"p-values must lie in [0, 1]; not so for {bad}")
    if p.size == 0:
        raise ValueError("no p-values to correct")
    return p, names


def holm_adjust(p_values) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values, in the input order.

    With the m p-values sorted ascending, ``p_(1) ≤ … ≤ p_(m)``, the adjusted value of the i-th is
    ``max_{j ≤ i} min(1, (m − j + 1) · p_(j))``: step-down, monotone in the sorted order, capped at 1.
    Rejecting every test with adjusted p ≤ α controls the family-wise error rate at α under any dependence
    between the tests. Source: Holm (1979), "A simple sequentially rejective multiple test procedure",
    *Scand. J. Statist.* 6, 65–70; the adjusted-p form as in Wright (1992), *Biometrics* 48, 1005–1013.

    >>> holm_adjust([0.01, 0.04, 0.03, 0.005]).tolist()
    [0.03, 0.06, 0.06, 0.02]
    """
    p, _ = _p_vector(p_values, None)
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.maximum.accumulate(stepped)
    return out


def holm(p_values, *, names=None, alpha: float = 0.05) -> pd.DataFrame:
    """The Holm–Bonferroni correction as a table: one row per test, in the input order.

    Parameters
    ----------
    p_values:
        A sequence of p-values, or ``{name: p}``.
    names:
        One name per p-value of a sequence (default ``"test 1"``, ``"test 2"``, …).
    alpha:
        Family-wise error rate; ``reject`` is ``p_holm ≤ alpha``.

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``p``, ``p_holm`` (:func:`holm_adjust`), ``reject``; ``attrs["alpha"]`` and
        ``attrs["m"]`` (the number of tests) record the settings.

    Example
    -------
    >>> t = holm({"ρ16 vs ρ1": 0.004, "NPT vs CoOp": 0.03, "Craft vs CoOp": 0.2})
    >>> t[["name", "p_holm", "reject"]].to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
    [{'name': 'ρ16 vs ρ1', 'p_holm': 0.012, 'reject': True},
     {'name': 'NPT vs CoOp', 'p_holm': 0.06, 'reject': False},
     {'name': 'Craft vs CoOp', 'p_holm': 0.2, 'reject': False}]
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    p, names = _p_vector(p_values, names)
    adjusted = holm_adjust(p)
    table = pd.DataFrame({"name": names, "p": p, "p_holm": adjusted, "reject": adjusted <= alpha})
    table.attrs.update(alpha=float(alpha), m=int(p.size), method="holm")
    return table
