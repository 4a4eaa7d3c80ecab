"""Few-shot cache files: CoOp's ``split_fewshot/shot_{K}-seed_{S}.pkl`` (read only) and ncprobe's own (JSON).

Who writes what
---------------
* **CoOp, CoCoOp, MaPLe, Craft** (Dassl) write ``split_fewshot/shot_{K}-seed_{S}.pkl``: a pickled
  ``{"train": [Datum, ...], "val": [Datum, ...]}`` (ImageNet: ``train`` only), and *unpickle any file
  with that name* on their next run. ncprobe reads these files but **never writes that name**: an
  ncprobe-format file there made every CoOp/MaPLe/Craft run sharing the data folder crash.
* **ncprobe** writes its draw as a :class:`~ncprobe.data.FewShotManifest` (JSON, relative paths, a
  content hash) named ``split_fewshot/ncprobe_shot_{K}-seed_{S}[-repeat].json``
  (:func:`~ncprobe.data.fewshot_manifest_path`), atomically.
* Older ncprobe versions wrote their own pickle format under CoOp's name. Such a file is still
  readable here (``format="ncprobe-legacy"``); the sampler ignores it with a warning that asks to
  delete it (it breaks CoOp runs).

CoOp's pickles hold ``dassl.data.datasets.base_dataset.Datum`` objects; they are read through a
restricted unpickler that admits that one class (mapped to a local stand-in) and nothing else, so
opening a cache can never import or run other code. CoOp's absolute paths are re-rooted onto the
local dataset folder when they do not exist on this machine.

Every read failure (truncated file, foreign content, a class other than ``Datum``, a manifest whose
content hash does not match) raises :class:`~ncprobe.data.FewShotFileError` naming the file.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any, Sequence

from ncprobe._io import CorruptFileError
from ncprobe.data.errors import FewShotFileError
from ncprobe.data.items import Item
from ncprobe.data.manifest import FewShotManifest, relative_image_path

__all__ = ["fewshot_cache_path", "read_coop_pickle", "load_fewshot_cache", "save_fewshot_cache"]

_LEGACY_FORMAT = "ncprobe.fewshot"
_COOP_NAME = re.compile(r"shot_\d+-seed_-?\d+\.pkl")


def fewshot_cache_path(fewshot_dir: str | os.PathLike, *, num_shots: int, seed: int) -> Path:
    """``<fewshot_dir>/shot_{num_shots}-seed_{seed}.pkl``: CoOp's cache file (read by ncprobe, never written)."""
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


def _unpickle(path: str | os.PathLike, what: str, error: type[CorruptFileError]) -> Any:
    try:
        with open(path, "rb") as f:
            return _CacheUnpickler(f).load()
    except FileNotFoundError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        problem = str(exc) or type(exc).__name__
        if isinstance(exc, EOFError):
            problem = "the file ends early (truncated or empty)"
        raise error(path, f"not a readable {what}: {problem}") from None


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


def _from_dassl(obj: Any, dataset_dir: Path, path: str | os.PathLike, error: type[CorruptFileError]) -> Item:
    state = getattr(obj, "__dict__", None)
    if not isinstance(state, dict):
        raise error(path, f"expected Dassl Datum objects, found a {type(obj).__name__}")
    try:
        return Item(
            _reroot(str(state["_impath"]), dataset_dir),
            int(state["_label"]),
            str(state["_classname"]),
            int(state.get("_domain", 0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise error(path, f"a Dassl Datum lacks or mangles attribute {exc}") from None


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
    CorruptFileError
        Naming the file: truncated, holds other classes, or is not a dict of ``Datum`` lists.
    """
    dataset_dir = Path(dataset_dir)
    data = _unpickle(path, "CoOp pickle", CorruptFileError)
    if not isinstance(data, dict):
        raise CorruptFileError(path, f"expected a dict of Datum lists, got a {type(data).__name__}")
    out: dict[str, list[Item] | None] = {}
    for key, value in data.items():
        if value is not None and not isinstance(value, list):
            raise CorruptFileError(path, f"entry {key!r} is a {type(value).__name__}, expected a list of Datum")
        out[key] = None if value is None else [_from_dassl(o, dataset_dir, path, CorruptFileError) for o in value]
    return out


def load_fewshot_cache(path: str | os.PathLike, *, dataset_dir: str | os.PathLike) -> dict[str, Any]:
    """Read a few-shot cache: ncprobe's JSON manifest, CoOp's pickle, or an older ncprobe pickle.

    Parameters
    ----------
    path:
        ``ncprobe_shot_{K}-seed_{S}.json`` (ncprobe) or ``shot_{K}-seed_{S}.pkl`` (CoOp).
    dataset_dir:
        Folder that relative paths are joined to, and onto which CoOp's absolute paths are re-rooted
        when they do not exist on this machine.

    Returns
    -------
    dict
        ``{"train": [Item...], "val": [Item...] or None, "format": "ncprobe" | "dassl" |
        "ncprobe-legacy", "meta": {...}}``; ``meta`` holds ``num_shots``/``seed``/``repeat`` for
        ncprobe files (and ``"manifest"``, the :class:`~ncprobe.data.FewShotManifest`, for JSON ones).

    Raises
    ------
    FewShotFileError
        Naming the file: truncated or damaged, foreign content, classes other than Dassl ``Datum``,
        or a manifest whose content hash does not match.
    """
    dataset_dir = Path(dataset_dir)
    if Path(path).suffix == ".json":
        manifest = FewShotManifest.from_json(path)
        meta = {
            "num_shots": manifest.num_shots,
            "seed": manifest.seed,
            "repeat": manifest.repeat,
            "subsample": manifest.subsample,
            "manifest": manifest,
        }
        return {
            "train": manifest.items("train", dataset_dir),
            "val": manifest.items("val", dataset_dir),
            "format": "ncprobe",
            "meta": meta,
        }
    data = _unpickle(path, "few-shot cache (pickle)", FewShotFileError)
    if not isinstance(data, dict) or "train" not in data:
        got = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise FewShotFileError(path, f"not a few-shot cache (expected a dict with 'train', got {got})")
    if data.get("format") == _LEGACY_FORMAT:

        def _items(rows: list | None) -> list[Item] | None:
            if rows is None:
                return None
            try:
                return [
                    Item(str(dataset_dir / p) if not os.path.isabs(p) else p, int(lab), str(c), int(d))
                    for p, lab, c, d in rows
                ]
            except (TypeError, ValueError) as exc:
                raise FewShotFileError(path, f"damaged ncprobe few-shot rows ({exc})") from None

        meta = {k: data.get(k) for k in ("num_shots", "seed", "repeat", "version")}
        return {
            "train": _items(data["train"]),
            "val": _items(data.get("val")),
            "format": "ncprobe-legacy",
            "meta": meta,
        }
    val = data.get("val")
    for key in ("train", "val"):
        if data.get(key) is not None and not isinstance(data[key], list):
            raise FewShotFileError(path, f"'{key}' is a {type(data[key]).__name__}, expected a list of Datum")
    return {
        "train": [_from_dassl(o, dataset_dir, path, FewShotFileError) for o in data["train"]],
        "val": None if val is None else [_from_dassl(o, dataset_dir, path, FewShotFileError) for o in val],
        "format": "dassl",
        "meta": {},
    }


def _classnames(*splits: Sequence[Item] | None) -> tuple[str, ...]:
    """Class names by label from the items (labels absent from the draw get ``""``)."""
    names: dict[int, str] = {}
    for items in splits:
        for item in items or ():
            names.setdefault(item.label, item.classname)
    return tuple(names.get(label, "") for label in range(max(names) + 1)) if names else ()


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
    """Write a few-shot draw as a :class:`~ncprobe.data.FewShotManifest` JSON file, atomically.

    Paths are stored relative to ``dataset_dir`` (every item must lie under it), so the file
    survives moving the data. ``path`` should come from :func:`~ncprobe.data.fewshot_manifest_path`.

    Raises
    ------
    ValueError
        ``path`` is a pickle / CoOp's ``shot_K-seed_S.pkl`` name (CoOp, MaPLe and Craft would try to
        unpickle it), or an item lies outside ``dataset_dir``.
    """
    path = Path(path)
    if path.suffix != ".json" or _COOP_NAME.fullmatch(path.name):
        raise ValueError(
            f"refusing to write {path}: ncprobe writes few-shot caches as JSON manifests (use "
            "fewshot_manifest_path(...)), never under CoOp's shot_K-seed_S.pkl name, which CoOp/MaPLe/Craft unpickle"
        )
    root = Path(dataset_dir)

    def rows(items: Sequence[Item] | None, split: str) -> tuple[tuple[str, int], ...] | None:
        if items is None:
            return None
        out = []
        for it in items:
            rel = relative_image_path(it.impath, root)
            if rel is None:
                raise ValueError(f"{split} image {it.impath} lies outside the dataset folder {root}")
            out.append((rel, int(it.label)))
        return tuple(out)

    manifest = FewShotManifest(
        dataset=root.name,
        classnames=_classnames(train, val),
        train=rows(train, "train"),
        val=rows(val, "val"),
        val_mode="separate" if val is not None else "test",
        num_shots=int(num_shots),
        seed=int(seed),
        repeat=bool(repeat),
    )
    manifest.to_json(path)
