"""Fixed train/val/test splits: CoOp's ``split_zhou_*.json`` files and the fallbacks that made them.

Sources (semantics reproduced, code rewritten):

* ``read_split`` / ``save_split`` / ``split_trainval``: ``KaiyangZhou/CoOp/datasets/oxford_pets.py``
  (static methods of ``OxfordPets``).
* ``read_and_split_data``: ``KaiyangZhou/CoOp/datasets/dtd.py`` (``DescribableTextures``).

A split file is JSON ``{"train": [[relpath, label, classname], ...], "val": [...], "test": [...]}``
with paths relative to the dataset's image folder (StanfordCars: relative to the dataset folder).

The fallbacks draw from an explicit :class:`random.Random`. CoOp draws from the global ``random``
module right after ``set_random_seed(cfg.SEED)``, i.e. ``random.seed(seed)``; a ``random.Random(seed)``
instance yields the identical stream. (In CoOp the fallback runs in the same process as the
few-shot sampler, so a split created on the first run shifts that run's few-shot draw; later runs
read the saved file. ncprobe always samples few-shot sets from a fresh ``Random(seed)``.)
"""

from __future__ import annotations

import json
import os
import random
from collections import defaultdict
from pathlib import Path
from typing import Mapping, Sequence

from ncprobe._io import atomic_write_json
from ncprobe.data.errors import DatasetLayoutError, SplitFileError
from ncprobe.data.items import Item, listdir_nohidden

__all__ = ["read_split", "save_split", "read_and_split_data", "split_trainval"]

Splits = tuple[list[Item], list[Item], list[Item]]


def read_split(filepath: str | os.PathLike, path_prefix: str | os.PathLike, *, layout: str = "") -> Splits:
    """Read a ``split_zhou_*.json`` file (CoOp ``OxfordPets.read_split``).

    Parameters
    ----------
    filepath:
        The JSON split file.
    path_prefix:
        Folder the relative image paths are joined to (``os.path.join(path_prefix, relpath)``).
    layout:
        Expected dataset layout, quoted in the error when the file is missing.

    Returns
    -------
    (train, val, test):
        Lists of :class:`~ncprobe.data.items.Item`, in file order.

    Raises
    ------
    DatasetLayoutError
        The file does not exist.
    SplitFileError
        The file is not valid JSON or an entry is not ``[relpath, label, classname]``.
    """
    filepath = Path(filepath)
    if not filepath.is_file():
        raise DatasetLayoutError("split file", filepath, layout=layout)
    try:
        with open(filepath, encoding="utf-8") as f:
            split = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SplitFileError(f"split file {filepath} is not valid JSON (truncated or damaged?): {exc}") from exc
    if not isinstance(split, Mapping) or not {"train", "val", "test"} <= set(split):
        got = sorted(split) if isinstance(split, Mapping) else type(split).__name__
        raise SplitFileError(f"split file {filepath} must be an object with keys train/val/test; got {got}")
    prefix = str(path_prefix)
    out = []
    for name in ("train", "val", "test"):
        items = []
        for index, entry in enumerate(split[name]):
            try:
                relpath, label, classname = entry
                items.append(Item(os.path.join(prefix, relpath), int(label), str(classname)))
            except (TypeError, ValueError) as exc:
                raise SplitFileError(
                    f"split file {filepath}: {name}[{index}] = {entry!r} is not [relpath, label, classname]"
                ) from exc
        out.append(items)
    return out[0], out[1], out[2]


def save_split(
    train: Sequence[Item],
    val: Sequence[Item],
    test: Sequence[Item],
    filepath: str | os.PathLike,
    path_prefix: str | os.PathLike,
) -> None:
    """Write a split file in CoOp's format (CoOp ``OxfordPets.save_split``), atomically.

    Paths are made relative exactly as CoOp does: ``impath.replace(path_prefix, "")`` with one
    leading ``"/"`` removed. JSON is written with ``indent=4, separators=(",", ": ")`` like
    Dassl's ``write_json``.
    """
    prefix = str(path_prefix)

    def _extract(items: Sequence[Item]) -> list[list]:
        rows = []
        for item in items:
            rel = item.impath.replace(prefix, "")
            if rel.startswith("/"):
                rel = rel[1:]
            rows.append([rel, item.label, item.classname])
        return rows

    split = {"train": _extract(train), "val": _extract(val), "test": _extract(test)}
    atomic_write_json(filepath, split, indent=4, separators=(",", ": "))


def read_and_split_data(
    image_dir: str | os.PathLike,
    *,
    rng: random.Random,
    p_trn: float = 0.5,
    p_val: float = 0.2,
    ignored: Sequence[str] = (),
    new_cnames: Mapping[str, str] | None = None,
    sort_listing: bool = True,
) -> Splits:
    """Split a ``image_dir/<class>/<image>`` tree per class (CoOp ``DTD.read_and_split_data``).

    Classes are the sorted sub-folder names minus ``ignored``; label = position in that order.
    For each class the image list is shuffled with ``rng`` and cut into
    ``round(n·p_trn)`` train, ``round(n·p_val)`` val and the rest test (Python's ``round``,
    i.e. half-to-even, as in CoOp). ``new_cnames`` renames classes (Caltech101, EuroSAT).

    Parameters
    ----------
    image_dir:
        Folder with one sub-folder per class.
    rng:
        Random source; ``random.Random(seed)`` reproduces CoOp's ``random.seed(seed)``.
    p_trn, p_val:
        Train and val fractions; test gets the rest.
    ignored:
        Class folders to skip (CoOp Caltech101: ``BACKGROUND_Google``, ``Faces_easy``).
    new_cnames:
        ``{folder_name: class_name}`` renames.
    sort_listing:
        Sort each class's file list before shuffling. CoOp uses the unsorted ``os.listdir``
        order, which differs between file systems; ``False`` reproduces CoOp on the same machine.

    Returns
    -------
    (train, val, test)

    Raises
    ------
    DatasetLayoutError
        ``image_dir`` does not exist.
    ValueError
        A class is too small to give every split at least one image.
    """
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise DatasetLayoutError("image folder", image_dir)
    categories = [c for c in listdir_nohidden(image_dir) if c not in set(ignored) and (image_dir / c).is_dir()]
    categories.sort()
    if not categories:
        raise DatasetLayoutError("class sub-folders", image_dir / "<class>", hint=f"{image_dir} has none.")
    train: list[Item] = []
    val: list[Item] = []
    test: list[Item] = []
    for label, category in enumerate(categories):
        category_dir = image_dir / category
        images = [str(category_dir / name) for name in listdir_nohidden(category_dir, sort=sort_listing)]
        rng.shuffle(images)
        n_total = len(images)
        n_train = round(n_total * p_trn)
        n_val = round(n_total * p_val)
        n_test = n_total - n_train - n_val
        if n_train <= 0 or n_val <= 0 or n_test <= 0:
            raise ValueError(
                f"class folder {category_dir} has {n_total} images: too few for a "
                f"{p_trn:.0%}/{p_val:.0%}/{1 - p_trn - p_val:.0%} split (got {n_train}/{n_val}/{n_test})"
            )
        name = new_cnames.get(category, category) if new_cnames else category
        train.extend(Item(p, label, name) for p in images[:n_train])
        val.extend(Item(p, label, name) for p in images[n_train : n_train + n_val])
        test.extend(Item(p, label, name) for p in images[n_train + n_val :])
    return train, val, test


def split_trainval(
    trainval: Sequence[Item], *, rng: random.Random, p_val: float = 0.2
) -> tuple[list[Item], list[Item]]:
    """Split a trainval list per class into train and val (CoOp ``OxfordPets.split_trainval``).

    Classes are visited in first-appearance order; each class's index list is shuffled with
    ``rng`` and its first ``round(n·p_val)`` items go to val.

    Returns
    -------
    (train, val)

    Raises
    ------
    ValueError
        A class would get no validation item.
    """
    tracker: dict[int, list[int]] = defaultdict(list)
    for idx, item in enumerate(trainval):
        tracker[item.label].append(idx)
    train: list[Item] = []
    val: list[Item] = []
    for label, idxs in tracker.items():
        n_val = round(len(idxs) * p_val)
        if n_val <= 0:
            raise ValueError(f"class {label} has {len(idxs)} trainval items: too few for p_val={p_val}")
        rng.shuffle(idxs)
        for n, idx in enumerate(idxs):
            (val if n < n_val else train).append(trainval[idx])
    return train, val
