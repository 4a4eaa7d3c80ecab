"""The image record used everywhere in :mod:`ncprobe.data`, and helpers over lists of records.

:class:`Item` mirrors Dassl's ``Datum`` (``dassl/data/datasets/base_dataset.py``): an image path,
an integer label, a class name and a domain id. Unlike ``Datum`` it does not ``stat`` the file on
construction (ImageNet has 1.28M of them); :func:`check_images_exist` does that on demand.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from ncprobe.data.errors import ClassNameMismatchError, DatasetLayoutError

__all__ = [
    "Item",
    "listdir_nohidden",
    "split_by_label",
    "classnames_from_splits",
    "class_counts",
    "check_images_exist",
]


@dataclass(frozen=True, slots=True)
class Item:
    """One labelled image (Dassl ``Datum`` semantics).

    Attributes
    ----------
    impath:
        Path of the image file (absolute when produced by the readers).
    label:
        Integer class label, 0-based.
    classname:
        Human-readable class name, exactly as in the split file (underscores kept; prompt
        formatting replaces them, see :func:`ncprobe.data.templates.format_prompts`).
    domain:
        Domain id; 0 for every dataset here (Dassl's default).
    """

    impath: str
    label: int
    classname: str
    domain: int = 0


def listdir_nohidden(path: str | os.PathLike, *, sort: bool = False) -> list[str]:
    """Names in ``path`` that do not start with ``"."`` (Dassl ``dassl/utils/tools.py``).

    Parameters
    ----------
    path:
        Folder to list.
    sort:
        Sort the names. Dassl/CoOp call this **unsorted** in several readers, so their item order
        follows the file system's ``os.listdir`` order; ncprobe's readers pass ``sort=True`` unless
        asked otherwise, which makes the order (and hence seeded sampling) machine-independent.

    Returns
    -------
    list of str
    """
    names = [name for name in os.listdir(path) if not name.startswith(".")]
    if sort:
        names.sort()
    return names


def split_by_label(items: Iterable[Item]) -> dict[int, list[Item]]:
    """Group items by label, keeping **first-appearance order** of labels and of items.

    This is Dassl's ``DatasetBase.split_dataset_by_label`` (a ``defaultdict(list)``), whose
    iteration order is the order in which labels first occur in ``items``, not sorted order.
    The few-shot sampler's RNG consumption depends on this order.

    Returns
    -------
    dict
        ``{label: [items of that label, in input order]}`` in first-appearance order.
    """
    out: dict[int, list[Item]] = defaultdict(list)
    for item in items:
        out[item.label].append(item)
    return dict(out)


def classnames_from_splits(splits: Mapping[str, Sequence[Item]], *, source: str = "") -> list[str]:
    """Class names in label order, checked for consistency across all splits.

    Dassl's ``get_lab2cname`` reads the mapping from the training split only and silently keeps
    an arbitrary name when one label carries two names. Here every split is read and a conflict
    is an error.

    Parameters
    ----------
    splits:
        ``{"train": [...], "val": [...], "test": [...]}`` (any names; empty lists allowed).
    source:
        Where the items came from (a split file path, say), used in error messages.

    Returns
    -------
    list of str
        ``classnames[label]``.

    Raises
    ------
    ClassNameMismatchError
        If a label has two different names, or the labels are not exactly ``0..n-1``.
    """
    where = f" in {source}" if source else ""
    lab2cname: dict[int, str] = {}
    first_seen: dict[int, str] = {}
    for split_name, items in splits.items():
        for item in items:
            known = lab2cname.get(item.label)
            if known is None:
                lab2cname[item.label] = item.classname
                first_seen[item.label] = split_name
            elif known != item.classname:
                raise ClassNameMismatchError(
                    f"label {item.label} is named {known!r} in the {first_seen[item.label]} split but "
                    f"{item.classname!r} in the {split_name} split{where} ({item.impath})"
                )
    if not lab2cname:
        raise ClassNameMismatchError(f"no items{where}: cannot determine the classes")
    labels = sorted(lab2cname)
    if labels != list(range(len(labels))):
        missing = sorted(set(range(labels[-1] + 1)) - set(labels))[:10]
        raise ClassNameMismatchError(
            f"labels{where} must be 0..{len(labels) - 1} without gaps; got min {labels[0]}, "
            f"max {labels[-1]}, missing e.g. {missing}"
        )
    return [lab2cname[label] for label in labels]


def class_counts(items: Iterable[Item], num_classes: int | None = None) -> np.ndarray:
    """Number of items per label, as an int64 array of length ``num_classes`` (default: max label + 1)."""
    labels = np.fromiter((item.label for item in items), dtype=np.int64)
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    return np.bincount(labels, minlength=num_classes).astype(np.int64)


def check_images_exist(
    items: Sequence[Item], *, source: str, image_dir: str | Path, layout: str = "", verify_all: bool = False
) -> None:
    """Raise if images listed by ``source`` are missing on disk.

    By default only the first item is checked (a cheap test that ``root`` points at the right
    tree); ``verify_all=True`` checks every item, as Dassl's ``Datum`` constructor does.

    Raises
    ------
    DatasetLayoutError
        Naming the first missing image, how many are missing, and the expected layout.
    """
    if not items:
        return
    candidates = items if verify_all else items[:1]
    missing = [item.impath for item in candidates if not os.path.isfile(item.impath)]
    if missing:
        count = f"{len(missing)} of {len(candidates)} checked images" if verify_all else "the first image"
        raise DatasetLayoutError(
            "image listed in " + source,
            missing[0],
            layout=layout,
            hint=f"{count} listed in {source} are missing under {image_dir}.",
        )
