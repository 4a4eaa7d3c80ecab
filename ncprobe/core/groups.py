"""The one head / medium / tail rule, shared by :func:`ncprobe.measure` and the data layer.

Classes are ranked by their sample count, descending (a stable sort, so ties keep class order). With
C classes the first ``round(C/3)`` ranks are ``"head"``, ranks ``round(C/3)`` to ``round(2C/3)`` are
``"medium"`` and the rest ``"tail"``: thirds of the classes, head and tail always of equal size (C = 10
gives 3/4/3, C = 11 gives 4/3/4). The alternative ``method="log_count"`` cuts the log-count range
into thirds instead, ``t = log(n/n_min)/log(n_max/n_min)``: ``t > 2/3`` head, ``t < 1/3`` tail, else medium,
and every class is ``"medium"`` when all counts are equal (so a step profile yields head and tail only).

Equal counts carry no head/medium/tail information: ranking them would only split the classes by index (a
base-to-novel testbed would make its last classes, the novel ones, the "tail"). So ``measure(groups="counts")``
(or ``"rank"``/``"log_count"``) on classes whose counts are all equal forms **no** groups: it warns
(:class:`EqualCountsWarning`) and the report's attribute ``groups_note`` says why (:func:`equal_counts_note`).
Classes without samples (count 0) are not counted: they belong to no group either way.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal, Mapping, Sequence

import numpy as np

__all__ = [
    "GROUP_NAMES",
    "EqualCountsWarning",
    "GroupMethod",
    "assign_groups",
    "equal_counts_note",
    "resolve_groups",
    "group_order",
]

GROUP_NAMES: tuple[str, ...] = ("head", "medium", "tail")
GroupMethod = Literal["rank", "log_count"]


def assign_groups(counts: Sequence[float] | np.ndarray, *, method: GroupMethod = "rank") -> np.ndarray:
    """Head / medium / tail label of each class from its count (see the module docstring).

    Parameters
    ----------
    counts:
        Samples (or training items) per class, index = class.
    method:
        ``"rank"`` (default; thirds of the classes) or ``"log_count"`` (thirds of the log-count range).

    Returns
    -------
    numpy.ndarray of str, ``groups[k]`` in ``{"head", "medium", "tail"}``.

    >>> assign_groups([100, 5, 50, 10, 80, 1]).tolist()
    ['head', 'tail', 'medium', 'medium', 'head', 'tail']
    >>> [int((assign_groups(np.arange(10)) == g).sum()) for g in GROUP_NAMES]
    [3, 4, 3]
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1:
        raise ValueError(f"counts must be one-dimensional, got shape {counts.shape}")
    k = counts.size
    groups = np.empty(k, dtype="<U6")
    if k == 0:
        return groups
    if method == "rank":
        order = np.argsort(-counts, kind="stable")
        a, b = round(k / 3), round(2 * k / 3)
        groups[order[:a]] = "head"
        groups[order[a:b]] = "medium"
        groups[order[b:]] = "tail"
        return groups
    if method == "log_count":
        if np.any(counts <= 0):
            raise ValueError("log_count grouping needs every class count > 0")
        lo, hi = counts.min(), counts.max()
        groups[:] = "medium"
        if hi == lo:
            return groups
        t = np.log(counts / lo) / np.log(hi / lo)
        groups[t > 2 / 3] = "head"
        groups[t < 1 / 3] = "tail"
        return groups
    raise ValueError(f"group method must be 'rank' or 'log_count', got {method!r}")


class EqualCountsWarning(UserWarning):
    """``groups="counts"`` met classes with equal counts: no head/medium/tail groups were formed."""


def equal_counts_note(counts: Sequence[float] | np.ndarray) -> str | None:
    """Why count-based groups are undefined for ``counts``, or ``None`` when the counts differ.

    The counts of the classes that have samples (count > 0) are compared; when they are all equal (or at most
    one class has samples) the note names the common count.

    >>> equal_counts_note([50, 50, 0, 50])
    'no head/medium/tail groups: every class has 50 samples (equal counts)'
    >>> equal_counts_note([50, 10]) is None
    True
    """
    counts = np.asarray(counts, dtype=np.float64).ravel()
    present = counts[counts > 0]
    if present.size and np.ptp(present) > 0:
        return None
    n = f"{present[0]:g}" if present.size else "0"
    return f"no head/medium/tail groups: every class has {n} samples (equal counts)"


def resolve_groups(groups: Any, *, class_ids: np.ndarray, counts: np.ndarray) -> np.ndarray | None:
    """Per-class group labels from what a user passed to ``measure(groups=...)``.

    ``None`` → no groups; ``"counts"`` (or ``"rank"``/``"log_count"``) → :func:`assign_groups` of the class
    counts, or ``None`` with an :class:`EqualCountsWarning` when the counts are all equal
    (:func:`equal_counts_note`); a mapping ``{class_label: group}``; or a sequence with one group name per class.
    """
    if groups is None:
        return None
    if isinstance(groups, str):
        methods = {"counts": "rank", "rank": "rank", "log_count": "log_count"}
        if groups not in methods:
            raise ValueError(f"groups must be 'counts', 'log_count', a per-class sequence or a mapping, got {groups!r}")
        note = equal_counts_note(counts)
        if note is not None:
            warnings.warn(f"groups={groups!r}: {note}", EqualCountsWarning, stacklevel=3)
            return None
        return assign_groups(counts, method=methods[groups])
    if isinstance(groups, Mapping):
        missing = [c for c in class_ids.tolist() if c not in groups]
        if missing:
            raise ValueError(f"groups mapping has no entry for classes {missing[:10]}")
        return np.asarray([str(groups[c]) for c in class_ids.tolist()])
    arr = np.asarray(groups).astype(str)
    if arr.shape != (len(class_ids),):
        raise ValueError(f"groups must have one entry per class ({len(class_ids)}), got shape {arr.shape}")
    return arr


def group_order(group_labels: np.ndarray) -> list[str]:
    """Group names present, head/medium/tail first, then any others sorted."""
    present = set(group_labels.tolist())
    order = list(dict.fromkeys([*GROUP_NAMES, *sorted(present)]))
    return [g for g in order if g in present]
