"""Portable few-shot manifests: exactly which images a run used, the same on every machine.

A seed alone does not pin a few-shot set: the draw depends on the order in which items are listed
(see :func:`ncprobe.data.load_dataset` for when ncprobe's order equals CoOp's), on the split file's
version and on the sampler. A manifest records the outcome instead: the selected images, so that
"the same manifest" means "the same images" wherever the dataset folder is.

File format (JSON, ``format = "ncprobe.fewshot-manifest"``, ``version = 1``)
--------------------------------------------------------------------------
``dataset``, ``loader`` (``"load_dataset"`` or ``"load_image_folder"``), ``template``,
``classnames`` (label order, after base/novel subsampling), ``num_shots``, ``seed``, ``repeat``,
``subsample``, ``val_mode`` (``"separate"``, ``"test"`` = ImageNet's val is its test set, ``"none"``),
``imbalance`` (``null``, or the :class:`~ncprobe.data.ImbalanceSpec` fields plus the per-class
``labels``, ``ranks``, ``target_counts``, ``counts`` and ``groups`` of the result),
``shots_per_class`` (``{"train": [...], "val": [...] | null}``, per label), ``train`` and ``val``
(``[[path, label], ...]`` with ``path`` relative to the dataset folder, ``/``-separated, in the run's
order), ``test_digest`` (SHA-256 of the test split's ``path<TAB>label`` lines: the evaluation set is
fixed by the split file, the digest detects a different one), ``file_sha256`` (``null``, or the SHA-256
of every selected image's bytes, when exported with ``hash_files=True``) and ``content_sha256``.

``content_sha256`` is the SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of every
other field. :meth:`FewShotManifest.from_json` recomputes it and refuses a file whose content does
not match (edited by hand, truncated, damaged) with :class:`~ncprobe.data.FewShotFileError`, which
names the file. Domain ids are not recorded: every reader here produces domain 0.

API
---
* ``FewShotManifest.from_dataset(ds, root=None, *, hash_files=False)`` — from a
  :class:`~ncprobe.data.PreparedDataset` (also ``ds.to_manifest()``, and
  :func:`export_manifest` which writes it);
* ``manifest.to_json(path)`` (atomic) / ``FewShotManifest.from_json(path)`` (validated) /
  :func:`load_manifest`;
* ``manifest.load_dataset(root, **options)`` — the dataset again: the manifest's images for train
  and val, the split's test set; equivalently ``load_dataset(name, root, manifest=path)`` or
  ``load_image_folder(root, manifest=path)``. Applying a manifest checks that it fits: same dataset
  and class names, every image listed by the dataset's split, the same test split, and the recorded
  file hashes when present; otherwise :class:`~ncprobe.data.ManifestMismatchError` says what differs.

The same format caches ncprobe's own few-shot draws next to the data
(``<dataset>/split_fewshot/ncprobe_shot_K-seed_S.json``, :func:`fewshot_manifest_path`): ncprobe
never writes CoOp's ``shot_K-seed_S.pkl``, which CoOp, MaPLe and Craft would try to unpickle.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Literal, Mapping, NamedTuple, Protocol, Sequence

import numpy as np

from ncprobe._io import CorruptFileError, atomic_write_text, file_sha256, read_json
from ncprobe.data.base_novel import SUBSAMPLE_CHOICES, subsample_classes
from ncprobe.data.errors import FewShotFileError, ManifestMismatchError
from ncprobe.data.imbalance import ImbalanceResult, ImbalanceSpec
from ncprobe.data.items import Item, class_counts, classnames_from_splits


class PreparedLike(Protocol):
    """What a manifest reads of a prepared dataset, by attribute (:class:`ncprobe.data.pipeline.PreparedDataset`,
    which the pipeline builds on this module, has them all; naming the protocol here keeps the data flowing one
    way: pipeline -> manifest)."""

    name: str
    dataset_dir: Path
    train: list[Item]
    val: list[Item]
    test: list[Item]
    classnames: list[str]
    template: str
    num_shots: int
    seed: int | None
    subsample: str
    imbalance: ImbalanceResult | None
    loader: str


class SplitsLike(Protocol):
    """What :func:`resolve_manifest` reads of a reader's full splits (:class:`ncprobe.data.pipeline.RawSplits`)."""

    train: list[Item]
    val: list[Item]
    test: list[Item]
    val_mode: str
    source: str


__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_VERSION",
    "LOADERS",
    "Loader",
    "FewShotManifest",
    "ResolvedManifest",
    "export_manifest",
    "fewshot_manifest_path",
    "load_manifest",
    "register_manifest_loader",
    "relative_image_path",
    "resolve_manifest",
    "split_digest",
]

MANIFEST_FORMAT = "ncprobe.fewshot-manifest"
MANIFEST_VERSION = 1

_VAL_MODES = ("separate", "test", "none")
#: The readers a manifest can name (its ``loader`` field, :attr:`~ncprobe.data.PreparedDataset.loader`).
Loader = Literal["load_dataset", "load_image_folder"]
LOADERS: tuple[str, ...] = ("load_dataset", "load_image_folder")
#: ``{loader: load(manifest, root, **options)}``, filled by the modules that define the readers
#: (:mod:`ncprobe.data.registry`, :mod:`ncprobe.data.image_dataset`) through :func:`register_manifest_loader`:
#: they stand on this module, so this module cannot import them. ``import ncprobe.data`` imports both.
_MANIFEST_LOADERS: dict[str, Callable[..., PreparedLike]] = {}
_IMBALANCE_SPEC_KEYS = ("profile", "ratio", "mu", "seed", "n_max", "group_method")
_IMBALANCE_ARRAY_KEYS = ("labels", "ranks", "target_counts", "counts", "groups")

Row = tuple[str, int]


def fewshot_manifest_path(fewshot_dir: str | os.PathLike, *, num_shots: int, seed: int, repeat: bool = False) -> Path:
    """``<fewshot_dir>/ncprobe_shot_{K}-seed_{S}[-repeat].json``: where ncprobe caches its own draw.

    The name differs from CoOp's ``shot_{K}-seed_{S}.pkl`` on purpose (CoOp would unpickle any file
    with its name), and ``repeat=True`` draws get their own file.
    """
    return Path(fewshot_dir) / f"ncprobe_shot_{num_shots}-seed_{seed}{'-repeat' if repeat else ''}.json"


def relative_image_path(impath: str | os.PathLike, root: str | os.PathLike) -> str | None:
    """``impath`` relative to ``root``, ``/``-separated, or ``None`` when it does not lie under ``root``."""
    try:
        rel = Path(os.path.abspath(impath)).relative_to(os.path.abspath(root))
    except ValueError:
        return None
    return rel.as_posix()


def split_digest(items: Sequence[Item], root: str | os.PathLike) -> str:
    """SHA-256 of ``path<TAB>label`` lines (paths relative to ``root`` where possible), in order."""
    digest = hashlib.sha256()
    for item in items:
        rel = relative_image_path(item.impath, root) or str(item.impath)
        digest.update(f"{rel}\t{item.label}\n".encode())
    return digest.hexdigest()


def _canonical_bytes(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _rows(items: Sequence[Item], root: Path, split: str) -> tuple[Row, ...]:
    rows = []
    for item in items:
        rel = relative_image_path(item.impath, root)
        if rel is None:
            raise ValueError(
                f"{split} image {item.impath} lies outside the dataset folder {root}; a manifest records paths "
                "relative to that folder (pass root= the folder that holds every image)"
            )
        if item.domain != 0:
            raise ValueError(f"{split} image {item.impath} has domain {item.domain}; manifests record domain 0 only")
        rows.append((rel, int(item.label)))
    return tuple(rows)


def _dumps(doc: Mapping[str, Any]) -> str:
    """Standard JSON with one top-level field per line and one list row / hash entry per line."""

    def one(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)

    parts = []
    for key, value in doc.items():
        if isinstance(value, list) and key in ("train", "val") and value:
            body = "[\n" + ",\n".join(f"  {one(row)}" for row in value) + "\n ]"
        elif isinstance(value, dict) and key == "file_sha256" and value:
            body = "{\n" + ",\n".join(f"  {one(k)}: {one(v)}" for k, v in value.items()) + "\n }"
        else:
            body = one(value)
        parts.append(f" {one(key)}: {body}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def _plain(value: Any) -> Any:
    """numpy scalars → Python numbers (JSON)."""
    return value.item() if isinstance(value, np.generic) else value


def _counts(rows: Sequence[Row] | None, num_classes: int) -> list[int] | None:
    if rows is None:
        return None
    return np.bincount(np.asarray([label for _, label in rows], dtype=np.int64), minlength=num_classes).tolist()


@dataclass(frozen=True, repr=False)
class FewShotManifest:
    """Which images a run trains (and validates) on, portable across machines (see the module docstring).

    Attributes
    ----------
    dataset:
        Dataset name (canonical CoOp name, or the image-folder dataset's name).
    classnames:
        Class names in label order (after base/novel subsampling).
    train, val:
        ``(path, label)`` rows, paths relative to the dataset folder and ``/``-separated, in the
        order the run used them. ``val`` is ``None`` unless ``val_mode == "separate"``.
    val_mode:
        ``"separate"``, ``"test"`` (the val set is the test set, ImageNet) or ``"none"``.
    num_shots, seed, repeat, subsample:
        The protocol settings that produced the selection (``seed`` is ``None`` for ``num_shots=0``).
    imbalance:
        ``None``, or the imbalance spec fields and per-class result arrays (module docstring).
    template:
        The dataset's prompt template.
    loader:
        ``"load_dataset"`` (a CoOp benchmark dataset under ``$DATA``) or ``"load_image_folder"``.
    test_digest:
        :func:`split_digest` of the test split, or ``None`` (not checked).
    file_sha256:
        ``{path: sha256}`` of the selected images, or ``None``.
    """

    dataset: str
    classnames: tuple[str, ...]
    train: tuple[Row, ...]
    val: tuple[Row, ...] | None = None
    val_mode: str = "separate"
    num_shots: int = 0
    seed: int | None = None
    repeat: bool = False
    subsample: str = "all"
    imbalance: dict | None = None
    template: str | None = None
    loader: str = "load_dataset"
    test_digest: str | None = None
    file_sha256: dict | None = None

    # ------------------------------------------------------------------ derived
    @property
    def num_classes(self) -> int:
        return len(self.classnames)

    @property
    def shots_per_class(self) -> dict[str, list[int] | None]:
        """Selected images per label: ``{"train": [...], "val": [...] or None}``."""
        return {"train": _counts(self.train, self.num_classes), "val": _counts(self.val, self.num_classes)}

    def _content(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "dataset": self.dataset,
            "loader": self.loader,
            "template": self.template,
            "classnames": list(self.classnames),
            "num_shots": self.num_shots,
            "seed": self.seed,
            "repeat": self.repeat,
            "subsample": self.subsample,
            "val_mode": self.val_mode,
            "imbalance": self.imbalance,
            "shots_per_class": self.shots_per_class,
            "train": [list(row) for row in self.train],
            "val": None if self.val is None else [list(row) for row in self.val],
            "test_digest": self.test_digest,
            "file_sha256": self.file_sha256,
        }

    @property
    def content_sha256(self) -> str:
        """SHA-256 of the canonical JSON of every field (what ``content_sha256`` in the file must equal)."""
        return hashlib.sha256(_canonical_bytes(self._content())).hexdigest()

    def __repr__(self) -> str:
        shots = "all" if self.num_shots == 0 else self.num_shots
        val = "test split" if self.val_mode == "test" else (len(self.val) if self.val is not None else "none")
        imb = "" if self.imbalance is None else f", imbalance={self.imbalance['profile']} ρ={self.imbalance['ratio']}"
        return (
            f"FewShotManifest(dataset={self.dataset!r}, classes={self.num_classes}, shots={shots}, seed={self.seed}, "
            f"subsample={self.subsample!r}{imb}, train={len(self.train)} images, val={val}, "
            f"content_sha256={self.content_sha256[:12]}…)"
        )

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """The JSON document, ``content_sha256`` included."""
        doc = self._content()
        doc["content_sha256"] = self.content_sha256
        return doc

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write the manifest atomically (``ncprobe._io.atomic_write_text``); returns the path.

        One field per line and one image per line, so that manifests diff well.
        """
        return atomic_write_text(path, _dumps(self.to_dict()))

    @classmethod
    def from_dict(cls, doc: Any, *, path: str | os.PathLike = "<manifest>") -> "FewShotManifest":
        """Validate a manifest document (types, ranges, ``content_sha256``) and build the manifest.

        Raises
        ------
        FewShotFileError
            Naming ``path`` and the first problem found.
        """

        def bad(problem: str) -> FewShotFileError:
            return FewShotFileError(path, problem)

        if not isinstance(doc, Mapping):
            raise bad(f"not a few-shot manifest (a JSON {type(doc).__name__}, expected an object)")
        if doc.get("format") != MANIFEST_FORMAT:
            raise bad(f"not a few-shot manifest (format {doc.get('format')!r}, expected {MANIFEST_FORMAT!r})")
        version = doc.get("version")
        if version != MANIFEST_VERSION:
            newer = isinstance(version, int) and version > MANIFEST_VERSION
            raise bad(
                f"manifest version {version!r} is not supported (this ncprobe reads version {MANIFEST_VERSION}"
                + ("; it was written by a newer ncprobe)" if newer else ")")
            )
        missing = [k for k in (*cls._required_keys(), "content_sha256") if k not in doc]
        if missing:
            raise bad(f"manifest lacks the fields {missing} (truncated or hand-made?)")

        def check(ok: bool, problem: str) -> None:
            if not ok:
                raise bad(problem)

        classnames = doc["classnames"]
        check(
            isinstance(classnames, list) and bool(classnames) and all(isinstance(c, str) for c in classnames),
            "'classnames' must be a non-empty list of strings",
        )
        n_cls = len(classnames)

        def rows(key: str) -> tuple[Row, ...] | None:
            value = doc[key]
            if value is None and key == "val":
                return None
            check(isinstance(value, list), f"'{key}' must be a list of [path, label] rows")
            out = []
            for i, row in enumerate(value):
                ok = isinstance(row, list) and len(row) == 2 and isinstance(row[0], str)
                ok = ok and type(row[1]) is int and 0 <= row[1] < n_cls
                check(ok, f"'{key}' row {i} must be [relative path, label in 0..{n_cls - 1}], got {row!r}")
                parts = PurePosixPath(row[0]).parts
                check(
                    bool(parts) and not row[0].startswith("/") and ".." not in parts and "\\" not in row[0],
                    f"'{key}' row {i}: {row[0]!r} is not a relative '/'-separated path inside the dataset folder",
                )
                out.append((row[0], row[1]))
            return tuple(out)

        num_shots, seed = doc["num_shots"], doc["seed"]
        check(type(num_shots) is int and num_shots >= 0, f"'num_shots' must be an integer >= 0, got {num_shots!r}")
        check(seed is None or type(seed) is int, f"'seed' must be an integer or null, got {seed!r}")
        check(isinstance(doc["repeat"], bool), "'repeat' must be true or false")
        check(doc["subsample"] in SUBSAMPLE_CHOICES, f"'subsample' must be one of {SUBSAMPLE_CHOICES}")
        check(doc["val_mode"] in _VAL_MODES, f"'val_mode' must be one of {_VAL_MODES}")
        check(doc["loader"] in LOADERS, f"'loader' must be one of {LOADERS}")
        check(isinstance(doc["dataset"], str) and bool(doc["dataset"]), "'dataset' must be a non-empty string")
        check(doc["template"] is None or isinstance(doc["template"], str), "'template' must be a string or null")
        for key in ("test_digest",):
            check(doc[key] is None or isinstance(doc[key], str), f"'{key}' must be a string or null")
        hashes = doc["file_sha256"]
        check(
            hashes is None
            or (isinstance(hashes, dict) and all(isinstance(v, str) and len(v) == 64 for v in hashes.values())),
            "'file_sha256' must be null or an object {path: sha256 hex}",
        )
        imbalance = doc["imbalance"]
        if imbalance is not None:
            keys = (*_IMBALANCE_SPEC_KEYS, *_IMBALANCE_ARRAY_KEYS)
            check(
                isinstance(imbalance, dict) and all(k in imbalance for k in keys),
                f"'imbalance' must be null or an object with {list(keys)}",
            )
            lengths = {len(imbalance[k]) if isinstance(imbalance[k], list) else -1 for k in _IMBALANCE_ARRAY_KEYS}
            check(len(lengths) == 1 and -1 not in lengths, "'imbalance' arrays must be lists of one length")
        train, val = rows("train"), rows("val")
        check(
            (val is not None) == (doc["val_mode"] == "separate"),
            "'val' must be a list exactly when val_mode is 'separate'",
        )
        manifest = cls(
            dataset=doc["dataset"],
            classnames=tuple(classnames),
            train=train,
            val=val,
            val_mode=doc["val_mode"],
            num_shots=num_shots,
            seed=seed,
            repeat=doc["repeat"],
            subsample=doc["subsample"],
            imbalance=imbalance,
            template=doc["template"],
            loader=doc["loader"],
            test_digest=doc["test_digest"],
            file_sha256=hashes,
        )
        if doc.get("shots_per_class") != manifest.shots_per_class:
            raise bad("'shots_per_class' does not match the listed images (edited or damaged)")
        if doc["content_sha256"] != manifest.content_sha256:
            raise bad(
                "content hash mismatch: the manifest was edited or damaged after it was written "
                f"(recorded {str(doc['content_sha256'])[:16]}…, content gives {manifest.content_sha256[:16]}…)"
            )
        return manifest

    @staticmethod
    def _required_keys() -> tuple[str, ...]:
        return (
            "dataset",
            "loader",
            "template",
            "classnames",
            "num_shots",
            "seed",
            "repeat",
            "subsample",
            "val_mode",
            "imbalance",
            "shots_per_class",
            "train",
            "val",
            "test_digest",
            "file_sha256",
        )

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "FewShotManifest":
        """Read and validate a manifest file.

        Raises
        ------
        FileNotFoundError
            No such file.
        FewShotFileError
            The file is empty, truncated, not JSON, not a manifest, of an unsupported version, or its
            content does not match its ``content_sha256``; the message names the file.
        """
        try:
            doc = read_json(path, what="few-shot manifest (JSON)")
        except CorruptFileError as exc:
            raise FewShotFileError(exc.path, exc.problem) from None
        return cls.from_dict(doc, path=path)

    # ------------------------------------------------------------------ from / to datasets
    @classmethod
    def from_dataset(
        cls, dataset: PreparedLike, root: str | os.PathLike | None = None, *, hash_files: bool = False
    ) -> "FewShotManifest":
        """The manifest of a prepared dataset's train (and val) selection.

        Parameters
        ----------
        dataset:
            A :class:`~ncprobe.data.PreparedDataset` (``load_dataset``, ``load_image_folder``).
        root:
            Folder the recorded paths are relative to; default (and the only value that
            :meth:`load_dataset` understands) ``dataset.dataset_dir``.
        hash_files:
            Also record the SHA-256 of every selected image (read once now, checked whenever the
            manifest is applied): "same manifest, same bytes" instead of "same paths".
        """
        root = Path(dataset.dataset_dir if root is None else root)
        val_mode = getattr(dataset, "val_mode", "separate")
        train = _rows(dataset.train, root, "train")
        val = _rows(dataset.val, root, "val") if val_mode == "separate" else None
        imbalance = None
        if dataset.imbalance is not None:
            spec = getattr(dataset, "imbalance_spec", None)
            result = dataset.imbalance
            imbalance = {k: None for k in _IMBALANCE_SPEC_KEYS}
            if spec is not None:
                imbalance.update({k: _plain(getattr(spec, k)) for k in _IMBALANCE_SPEC_KEYS})
            imbalance.update(
                labels=result.labels.tolist(),
                ranks=result.ranks.tolist(),
                target_counts=result.target_counts.tolist(),
                counts=result.counts.tolist(),
                groups=[str(g) for g in result.groups],
            )
        hashes = None
        if hash_files:
            paths = sorted({rel for rel, _ in train} | {rel for rel, _ in (val or ())})
            hashes = {rel: file_sha256(root / rel) for rel in paths}
        return cls(
            dataset=dataset.name,
            classnames=tuple(dataset.classnames),
            train=train,
            val=val,
            val_mode=val_mode,
            num_shots=int(dataset.num_shots),
            seed=dataset.seed,
            repeat=bool(getattr(dataset, "repeat", False)),
            subsample=dataset.subsample,
            imbalance=imbalance,
            template=dataset.template,
            loader=dataset.loader,
            test_digest=split_digest(dataset.test, root),
            file_sha256=hashes,
        )

    def items(self, split: str, root: str | os.PathLike) -> list[Item] | None:
        """The ``"train"`` or ``"val"`` rows as :class:`~ncprobe.data.Item` objects under ``root``."""
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        rows = self.train if split == "train" else self.val
        if rows is None:
            return None
        root = Path(root)
        return [
            Item(str(root.joinpath(*PurePosixPath(rel).parts)), label, self.classnames[label]) for rel, label in rows
        ]

    def load_dataset(self, root: str | os.PathLike, **options: Any) -> PreparedLike:
        """The dataset this manifest describes, read from ``root``.

        ``root`` is CoOp's ``$DATA`` for ``loader="load_dataset"`` manifests and the dataset folder
        itself for ``loader="load_image_folder"`` ones; ``options`` go to that loader (e.g.
        ``sort_listing``, ``verify_files``). Train and val are the manifest's images, test is the
        dataset's test split; see :func:`resolve_manifest` for the checks.
        """
        if self.loader not in _MANIFEST_LOADERS:
            raise RuntimeError(
                f"no reader is registered for loader {self.loader!r}: import ncprobe.data, which registers "
                f"{', '.join(LOADERS)}"
            )
        return _MANIFEST_LOADERS[self.loader](self, root, **options)


def register_manifest_loader(loader: Loader, load: Callable[..., PreparedLike]) -> None:
    """Register ``load(manifest, root, **options)`` as the reader of manifests whose ``loader`` is ``loader``.

    Called once by each reader's own module (``load_dataset`` by :mod:`ncprobe.data.registry`,
    ``load_image_folder`` by :mod:`ncprobe.data.image_dataset`).
    """
    if loader not in LOADERS:
        raise ValueError(f"loader must be one of {LOADERS}, got {loader!r}")
    _MANIFEST_LOADERS[loader] = load


def load_manifest(path: str | os.PathLike) -> FewShotManifest:
    """:meth:`FewShotManifest.from_json`: read and validate a manifest file."""
    return FewShotManifest.from_json(path)


def export_manifest(
    dataset: PreparedLike,
    path: str | os.PathLike,
    *,
    root: str | os.PathLike | None = None,
    hash_files: bool = False,
) -> FewShotManifest:
    """Write the manifest of ``dataset`` to ``path`` (atomically) and return it.

    See :meth:`FewShotManifest.from_dataset` for ``root`` and ``hash_files``.
    """
    manifest = FewShotManifest.from_dataset(dataset, root, hash_files=hash_files)
    manifest.to_json(path)
    return manifest


class ResolvedManifest(NamedTuple):
    """A manifest applied to a dataset's full splits (:func:`resolve_manifest`)."""

    train: list[Item]
    val: list[Item]
    test: list[Item]
    imbalance: ImbalanceResult | None
    imbalance_spec: ImbalanceSpec | None


def _first(items: Sequence[Any], n: int = 5) -> str:
    listed = ", ".join(repr(x) for x in list(items)[:n])
    return listed + (f", ... ({len(items)} in all)" if len(items) > n else "")


def resolve_manifest(
    manifest: FewShotManifest,
    raw: SplitsLike,
    *,
    name: str,
    dataset_dir: str | os.PathLike,
    check_name: bool = True,
) -> ResolvedManifest:
    """Apply ``manifest`` to a reader's full splits: its train/val images, the split's test set.

    Checks, each failing with :class:`~ncprobe.data.ManifestMismatchError` that says what differs:
    the dataset name (``check_name``), the class names after ``manifest.subsample``, that every
    manifest image is listed (with that label) by the dataset's own train / val split, the test
    split's :func:`split_digest` (when recorded) and every recorded file hash.
    """
    root = Path(dataset_dir)
    if check_name and manifest.dataset != name:
        raise ManifestMismatchError(f"the manifest describes dataset {manifest.dataset!r}, not {name!r}")
    if raw.val_mode != manifest.val_mode:
        raise ManifestMismatchError(
            f"the manifest's val_mode is {manifest.val_mode!r} but {name} has val_mode {raw.val_mode!r}"
        )
    if raw.val_mode == "separate":
        full_train, full_val, test = subsample_classes(raw.train, raw.val, raw.test, subsample=manifest.subsample)
    else:
        full_train, test = subsample_classes(raw.train, raw.test, subsample=manifest.subsample)
        full_val = []
    names = classnames_from_splits({"train": full_train, "val": full_val, "test": test}, source=raw.source)
    if tuple(names) != manifest.classnames:
        diff = [f"{i}: {a!r} vs {b!r}" for i, (a, b) in enumerate(zip(manifest.classnames, names)) if a != b]
        raise ManifestMismatchError(
            f"class names differ between the manifest ({manifest.num_classes} classes) and {name} after "
            f"subsample={manifest.subsample!r} ({len(names)} classes); label: manifest vs dataset: {_first(diff)}"
        )
    for split, rows, listed in (("train", manifest.train, full_train), ("val", manifest.val, full_val)):
        if rows is None:
            continue
        known = {(relative_image_path(it.impath, root), it.label) for it in listed}
        unknown = [row for row in rows if row not in known]
        if unknown:
            raise ManifestMismatchError(
                f"{len(unknown)} {split} image(s) of the manifest are not in {name}'s {split} split under {root} "
                f"with that label (another split file or dataset version?): {_first(unknown)}"
            )
    if manifest.test_digest is not None and split_digest(test, root) != manifest.test_digest:
        raise ManifestMismatchError(
            f"{name}'s test split ({len(test)} images, from {raw.source}) differs from the one the manifest was "
            "made with (another split file or dataset version)"
        )
    if manifest.file_sha256:
        changed = []
        for rel, recorded in manifest.file_sha256.items():
            path = root.joinpath(*PurePosixPath(rel).parts)
            actual = file_sha256(path) if path.is_file() else "missing"
            if actual != recorded:
                changed.append(f"{rel} ({'missing' if actual == 'missing' else 'other bytes'})")
        if changed:
            raise ManifestMismatchError(
                f"{len(changed)} image file(s) under {root} differ from the manifest's hashes: {_first(changed)}"
            )
    train = manifest.items("train", root)
    val = manifest.items("val", root) if manifest.val_mode == "separate" else (test if raw.val_mode == "test" else [])
    imbalance, spec = None, None
    if manifest.imbalance is not None:
        imbalance, spec = _imbalance_from(manifest, train)
    return ResolvedManifest(train, val, test, imbalance, spec)


def _imbalance_from(manifest: FewShotManifest, train: list[Item]) -> tuple[ImbalanceResult, ImbalanceSpec | None]:
    data = manifest.imbalance
    assert data is not None
    counts = np.asarray(data["counts"], dtype=np.int64)
    labels = np.asarray(data["labels"], dtype=np.int64)
    actual = class_counts(train, manifest.num_classes)[labels]
    if not np.array_equal(actual, counts):
        raise ManifestMismatchError("the manifest's imbalance counts do not match its train images")
    result = ImbalanceResult(
        items=train,
        labels=labels,
        ranks=np.asarray(data["ranks"], dtype=np.int64),
        target_counts=np.asarray(data["target_counts"], dtype=np.int64),
        counts=counts,
        groups=np.asarray(data["groups"], dtype="<U6"),
    )
    spec = None
    if data.get("profile") is not None:
        spec = ImbalanceSpec(**{k: data[k] for k in _IMBALANCE_SPEC_KEYS})
    return result, spec
