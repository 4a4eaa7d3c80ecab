"""Few-shot cache files: ``split_fewshot/shot_{K}-seed_{seed}.pkl``, ncprobe's own and CoOp's.

ncprobe writes built-in types only (item tuples with paths relative to the dataset folder),
atomically via :func:`ncprobe._io.atomic_path`. Files written by CoOp/Dassl hold pickled
``dassl.data.datasets.base_dataset.Datum`` objects; they are read through a restricted unpickler
that admits that one class (mapped to a local stand-in) and nothing else, so opening a cache can
never import or run other code. CoOp's absolute paths are re-rooted onto the local dataset
folder when they do not exist on this machine.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, Sequence

from ncprobe._io import atomic_path
from ncprobe.data.items import Item

__all__ = ["fewshot_cache_path", "read_coop_pickle", "load_fewshot_cache", "save_fewshot_cache"]

_FORMAT = "ncprobe.fewshot"
_VERSION = 1


def fewshot_cache_path(fewshot_dir: str | os.PathLike, *, num_shots: int, seed: int) -> Path:
    """``<fewshot_dir>/shot_{num_shots}-seed_{seed}.pkl`` (CoOp's file name)."""
    return Path(fewshot_dir) / f"shot_{num_shots}-seed_{seed}.pkl"


class _DasslDatum:
    """Stand-in for ``dassl.data.datasets.base_dataset.Datum`` when reading CoOp's pkl files."""

    _impath: str
    _label: int
    _classname: str
    _domain: int


class _CacheUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if name == "Datum" and module.split(".")[0] == "dassl":
            return _DasslDatum
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: few-shot caches may only hold built-in types or Dassl Datum"
        )


def _reroot(impath: str, dataset_dir: Path) -> str:
    """Map an absolute path from another machine onto ``dataset_dir`` when the original is gone."""
    if os.path.exists(impath):
        return impath
    marker = os.sep + dataset_dir.name + os.sep
    cut = impath.rfind(marker)
    if cut >= 0:
        candidate = dataset_dir / impath[cut + len(marker) :]
        if candidate.exists():
            return str(candidate)
    return impath


def _from_dassl(obj: Any, dataset_dir: Path) -> Item:
    state = getattr(obj, "__dict__", {})
    try:
        return Item(
            _reroot(str(state["_impath"]), dataset_dir),
            int(state["_label"]),
            str(state["_classname"]),
            int(state.get("_domain", 0)),
        )
    except KeyError as exc:
        raise pickle.UnpicklingError(f"Dassl Datum without attribute {exc}") from exc


def read_coop_pickle(path: str | os.PathLike, *, dataset_dir: str | os.PathLike) -> dict[str, list[Item] | None]:
    """Read a CoOp/Dassl pickle holding a dict of ``Datum`` lists (e.g. ImageNet's ``preprocessed.pkl``).

    Only ``Datum`` objects and built-in containers are admitted (restricted unpickler). Absolute
    paths that do not exist here are re-rooted onto ``dataset_dir`` when the dataset folder's name
    occurs in them.

    Returns
    -------
    dict
        ``{key: [Item, ...] or None}`` for every key of the pickled dict.

    Raises
    ------
    pickle.UnpicklingError
        The file holds other classes, or is not a dict of lists.
    """
    dataset_dir = Path(dataset_dir)
    with open(path, "rb") as f:
        data = _CacheUnpickler(f).load()
    if not isinstance(data, dict):
        raise pickle.UnpicklingError(f"{path}: expected a dict of Datum lists, got {type(data).__name__}")
    return {key: None if value is None else [_from_dassl(o, dataset_dir) for o in value] for key, value in data.items()}


def load_fewshot_cache(path: str | os.PathLike, *, dataset_dir: str | os.PathLike) -> dict[str, Any]:
    """Read a few-shot cache written by ncprobe or by CoOp.

    Parameters
    ----------
    path:
        The ``shot_{K}-seed_{seed}.pkl`` file.
    dataset_dir:
        Folder that relative paths (ncprobe caches) are joined to, and onto which CoOp's absolute
        paths are re-rooted when they do not exist on this machine.

    Returns
    -------
    dict
        ``{"train": [Item...], "val": [Item...] or None, "format": "ncprobe" | "dassl",
        "meta": {...}}``; ``meta`` holds ``num_shots``/``seed``/``repeat`` for ncprobe caches.

    Raises
    ------
    pickle.UnpicklingError
        The file holds anything other than built-in types or Dassl ``Datum`` objects.
    """
    dataset_dir = Path(dataset_dir)
    with open(path, "rb") as f:
        data = _CacheUnpickler(f).load()
    if not isinstance(data, dict) or "train" not in data:
        raise pickle.UnpicklingError(f"{path} is not a few-shot cache (expected a dict with 'train')")
    if data.get("format") == _FORMAT:

        def _items(rows: list | None) -> list[Item] | None:
            if rows is None:
                return None
            return [Item(str(dataset_dir / p) if not os.path.isabs(p) else p, lab, c, d) for p, lab, c, d in rows]

        meta = {k: data.get(k) for k in ("num_shots", "seed", "repeat", "version")}
        return {
            "train": _items(data["train"]),
            "val": _items(data.get("val")),
            "format": "ncprobe",
            "meta": meta,
        }
    val = data.get("val")
    return {
        "train": [_from_dassl(o, dataset_dir) for o in data["train"]],
        "val": None if val is None else [_from_dassl(o, dataset_dir) for o in val],
        "format": "dassl",
        "meta": {},
    }


def save_fewshot_cache(
    path: str | os.PathLike,
    train: Sequence[Item],
    val: Sequence[Item] | None,
    *,
    num_shots: int,
    seed: int,
    repeat: bool,
    dataset_dir: str | os.PathLike,
) -> None:
    """Write a few-shot cache atomically (``ncprobe._io.atomic_path``), built-in types only.

    Paths under ``dataset_dir`` are stored relative to it, so the cache survives moving the data.
    """
    base = str(Path(dataset_dir)) + os.sep

    def _rows(items: Sequence[Item] | None) -> list | None:
        if items is None:
            return None
        return [
            (
                it.impath[len(base) :] if it.impath.startswith(base) else it.impath,
                it.label,
                it.classname,
                it.domain,
            )
            for it in items
        ]

    payload = {
        "format": _FORMAT,
        "version": _VERSION,
        "num_shots": num_shots,
        "seed": seed,
        "repeat": repeat,
        "train": _rows(train),
        "val": _rows(val),
    }
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
