"""Base-to-novel class split (CoCoOp protocol).

Source: ``KaiyangZhou/CoOp/datasets/oxford_pets.py``, ``OxfordPets.subsample_classes``, used by
every CoOp dataset after few-shot sampling (so the base training set is the base-class part of
the seed's K-shot set, and base/novel runs share one ``split_fewshot`` cache file).
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

from ncprobe.data.items import Item

__all__ = ["SUBSAMPLE_CHOICES", "base_novel_labels", "subsample_classes"]

Subsample = Literal["all", "base", "novel"]
SUBSAMPLE_CHOICES: tuple[str, ...] = ("all", "base", "novel")


def base_novel_labels(labels: Sequence[int]) -> tuple[list[int], list[int]]:
    """Split label ids into base (first ``ceil(n/2)`` of the sorted unique ids) and novel (the rest)."""
    unique = sorted(set(labels))
    m = math.ceil(len(unique) / 2)
    return unique[:m], unique[m:]


def subsample_classes(*splits: Sequence[Item], subsample: Subsample = "all") -> tuple[list[Item], ...]:
    """Keep the base or the novel half of the classes and relabel them ``0..m-1``.

    The classes are read from the **first** split (CoOp passes ``train``): its sorted unique
    labels, of which base = the first ``ceil(n/2)`` and novel = the rest. Every split is filtered
    to the selected labels and relabelled by position in the selection; class names travel with
    the items, so ``classnames`` of the result follow automatically.

    Parameters
    ----------
    *splits:
        Lists of items, e.g. ``train, val, test``.
    subsample:
        ``"all"`` (returns the splits unchanged, as lists), ``"base"`` or ``"novel"``.

    Returns
    -------
    tuple of list of Item
        One list per input split, in the same order.

    Raises
    ------
    ValueError
        ``subsample`` is not one of ``"all"``, ``"base"``, ``"novel"``, or no split was given.
    """
    if subsample == "new":
        raise ValueError("subsample='new' is CoOp's name for the novel classes; ncprobe calls them 'novel'")
    if subsample not in SUBSAMPLE_CHOICES:
        raise ValueError(f"subsample must be one of {SUBSAMPLE_CHOICES}, got {subsample!r}")
    if not splits:
        raise ValueError("subsample_classes needs at least one split")
    if subsample == "all":
        return tuple(list(s) for s in splits)
    base, novel = base_novel_labels([item.label for item in splits[0]])
    selected = base if subsample == "base" else novel
    relabel = {old: new_label for new_label, old in enumerate(selected)}
    return tuple(
        [Item(it.impath, relabel[it.label], it.classname, it.domain) for it in split if it.label in relabel]
        for split in splits
    )
