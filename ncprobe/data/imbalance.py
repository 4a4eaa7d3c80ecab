"""Class-imbalanced training sets, carved out of a (few-shot) training split.

The NPT paper evaluates prompt tuning "under class imbalance" but its construction is not public
(the reference notes on methods and protocols, §8, open question 2). ncprobe therefore uses
the two standard long-tail profiles of the imbalance literature (Cao et al., LDAM, NeurIPS 2019;
Cui et al., CVPR 2019), applied **after** few-shot sampling by subsampling each class's shots:

* ``profile="exp"``: the class at rank ``k`` (``k = 0..K-1``) keeps
  ``n_k = floor(n_max · ρ^(−k/(K−1)))`` items;
* ``profile="step"``: the last ``floor(μ·K)`` ranks (minority, ``μ = 0.5`` by default) keep
  ``max(1, floor(n_max/ρ))`` items, the others keep ``n_max``;

with imbalance ratio ``ρ = n_max/n_min ≥ 1``. Counts are floored with a ``1e-9`` tolerance (so
``16·16^(−1)`` gives 1, not 0) and never drop below 1, so no class disappears. The rank of each
class comes from a seeded permutation of the sorted labels; which items a class keeps is a seeded
``random.sample`` of its indices (kept in their original order). Both draws use
``random.Random(f"ncprobe.imbalance:{seed}")``, independent of the few-shot stream.

Group labels (``"head"``, ``"medium"``, ``"tail"``) per class feed the per-group diagnostics in
``ncprobe.measure``; both use the one rule of :func:`ncprobe.core.groups.assign_groups`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from ncprobe.core.groups import GROUP_NAMES, GroupMethod, assign_groups
from ncprobe.data.items import Item

__all__ = [
    "GROUP_NAMES",
    "ImbalanceSpec",
    "ImbalanceResult",
    "imbalance_counts",
    "budget_matched_shots",
    "assign_groups",
    "apply_imbalance",
]

Profile = Literal["exp", "step"]
_EPS = 1e-9


def _validate(profile: str, ratio: float, mu: float) -> None:
    if profile not in ("exp", "step"):
        raise ValueError(f"imbalance profile must be 'exp' or 'step', got {profile!r}")
    if not math.isfinite(ratio) or ratio < 1:
        raise ValueError(f"imbalance ratio ρ = n_max/n_min must be a finite number >= 1, got {ratio!r}")
    if not 0.0 <= mu <= 1.0:
        raise ValueError(f"step-profile minority fraction mu must be in [0, 1], got {mu!r}")


@dataclass(frozen=True)
class ImbalanceSpec:
    """Options for :func:`apply_imbalance`, as accepted by :func:`ncprobe.data.load_dataset`.

    Attributes
    ----------
    profile:
        ``"exp"`` or ``"step"``.
    ratio:
        ``ρ = n_max / n_min``, at least 1 (``ValueError`` otherwise).
    mu:
        Fraction of minority classes for ``"step"``.
    seed:
        Seed of the class permutation and within-class subsampling; ``None`` means "use the
        dataset's few-shot seed".
    n_max:
        Head-class count; ``None`` means the largest class count in the split (``num_shots``
        after K-shot sampling).
    group_method:
        How head/medium/tail are assigned, see :func:`assign_groups`.
    """

    profile: Profile
    ratio: float
    mu: float = 0.5
    seed: int | None = None
    n_max: int | None = None
    group_method: GroupMethod = "rank"

    def __post_init__(self) -> None:
        _validate(self.profile, self.ratio, self.mu)
        if self.n_max is not None and self.n_max < 1:
            raise ValueError(f"n_max must be >= 1, got {self.n_max}")
        if self.group_method not in ("rank", "log_count"):
            raise ValueError(f"group_method must be 'rank' or 'log_count', got {self.group_method!r}")


def imbalance_counts(num_classes: int, *, n_max: int, ratio: float, profile: Profile, mu: float = 0.5) -> list[int]:
    """Target item count for each class **rank** ``0..num_classes-1`` (rank 0 = largest).

    Parameters
    ----------
    num_classes:
        ``K``.
    n_max:
        Count of rank 0.
    ratio:
        ``ρ >= 1``.
    profile:
        ``"exp"``: ``floor(n_max·ρ^(−k/(K−1)))``; ``"step"``: ``n_max`` for the first
        ``K − floor(μK)`` ranks, ``max(1, floor(n_max/ρ))`` for the rest.
    mu:
        Minority fraction for ``"step"``.

    Returns
    -------
    list of int
        Non-increasing, every entry ``>= 1``.

    Raises
    ------
    ValueError
        ``ratio < 1``, unknown profile, ``mu`` outside [0, 1], ``n_max < 1`` or ``num_classes < 1``.
    """
    _validate(profile, ratio, mu)
    if n_max < 1 or num_classes < 1:
        raise ValueError(f"need n_max >= 1 and num_classes >= 1, got {n_max} and {num_classes}")
    if profile == "exp":
        if num_classes == 1:
            return [n_max]
        return [max(1, math.floor(n_max * ratio ** (-k / (num_classes - 1)) + _EPS)) for k in range(num_classes)]
    n_minor = math.floor(mu * num_classes + _EPS)
    n_low = max(1, math.floor(n_max / ratio + _EPS))
    return [n_max] * (num_classes - n_minor) + [n_low] * n_minor


def budget_matched_shots(
    num_classes: int, *, shots: int, ratio: float, profile: Profile = "exp", mu: float = 0.5
) -> int:
    """The head count ``n_max`` whose imbalanced counts hold as many images as ``shots`` per class, balanced.

    Comparing imbalance ratios at a fixed ``n_max`` also changes the amount of data: at ``ρ = 16`` over 10 classes
    the exp profile keeps 53 of 160 images. To separate imbalance from the amount of data, draw ``n_max`` shots
    and impose the profile: the largest ``n_max`` with
    ``sum(imbalance_counts(num_classes, n_max=n_max, ...)) <= shots · num_classes``.

    >>> budget_matched_shots(10, shots=16, ratio=16.0)
    46
    >>> imbalance_counts(10, n_max=46, ratio=16.0, profile="exp")
    [46, 33, 24, 18, 13, 9, 7, 5, 3, 2]
    >>> budget_matched_shots(10, shots=16, ratio=1.0)
    16

    Raises
    ------
    ValueError
        ``shots < 1`` or ``num_classes < 1``, and the errors of :func:`imbalance_counts`.
    """
    if shots < 1 or num_classes < 1:
        raise ValueError(f"need shots >= 1 and num_classes >= 1, got {shots} and {num_classes}")
    budget = shots * num_classes
    n_max = shots
    while sum(imbalance_counts(num_classes, n_max=n_max + 1, ratio=ratio, profile=profile, mu=mu)) <= budget:
        n_max += 1
    return n_max


@dataclass(frozen=True, repr=False)
class ImbalanceResult:
    """Output of :func:`apply_imbalance`. Arrays are indexed like ``labels`` (sorted label ids).

    Attributes
    ----------
    items:
        The kept items, in their original relative order.
    labels:
        Sorted label ids present in the input.
    ranks:
        ``ranks[i]`` = rank of class ``labels[i]`` in the seeded permutation (0 = head).
    target_counts:
        Profile count for each class.
    counts:
        Achieved count (``min(target, available)``).
    groups:
        Head/medium/tail per class, from ``counts`` (see :func:`assign_groups`).
    """

    items: list[Item]
    labels: np.ndarray
    ranks: np.ndarray
    target_counts: np.ndarray
    counts: np.ndarray
    groups: np.ndarray

    def __repr__(self) -> str:
        return (
            f"ImbalanceResult({len(self.items)} items, {len(self.labels)} classes, counts "
            f"{int(self.counts.max(initial=0))}..{int(self.counts.min(initial=self.counts.max(initial=0)))}, groups "
            + ", ".join(f"{g}={int((self.groups == g).sum())}" for g in GROUP_NAMES)
            + ")"
        )


def apply_imbalance(
    items: Sequence[Item],
    *,
    profile: Profile,
    ratio: float,
    seed: int,
    mu: float = 0.5,
    n_max: int | None = None,
    group_method: GroupMethod = "rank",
) -> ImbalanceResult:
    """Subsample each class of ``items`` to an imbalanced profile (see the module docstring).

    Parameters
    ----------
    items:
        A (few-shot) training split.
    profile, ratio, mu:
        See :func:`imbalance_counts`.
    seed:
        Seed of the class permutation and the within-class draws.
    n_max:
        Head count; default: the largest class count in ``items``.
    group_method:
        See :func:`assign_groups`.

    Returns
    -------
    ImbalanceResult

    Raises
    ------
    ValueError
        Bad ``profile``/``ratio``/``mu``, or ``items`` is empty.
    """
    _validate(profile, ratio, mu)
    by_label: dict[int, list[int]] = {}
    for index, item in enumerate(items):
        by_label.setdefault(item.label, []).append(index)
    if not by_label:
        raise ValueError("apply_imbalance got no items")
    labels = sorted(by_label)
    if n_max is None:
        n_max = max(len(group) for group in by_label.values())
    targets_by_rank = imbalance_counts(len(labels), n_max=n_max, ratio=ratio, profile=profile, mu=mu)
    rng = random.Random(f"ncprobe.imbalance:{seed}")
    order = list(labels)
    rng.shuffle(order)
    rank_of = {label: r for r, label in enumerate(order)}
    keep: set[int] = set()  # positions in ``items``
    targets, achieved = [], []
    for label in labels:
        group = by_label[label]
        target = targets_by_rank[rank_of[label]]
        take = min(target, len(group))
        keep.update(rng.sample(group, take))
        targets.append(target)
        achieved.append(take)
    kept = [item for index, item in enumerate(items) if index in keep]
    counts = np.asarray(achieved, dtype=np.int64)
    return ImbalanceResult(
        items=kept,
        labels=np.asarray(labels, dtype=np.int64),
        ranks=np.asarray([rank_of[label] for label in labels], dtype=np.int64),
        target_counts=np.asarray(targets, dtype=np.int64),
        counts=counts,
        groups=assign_groups(counts, method=group_method),
    )
