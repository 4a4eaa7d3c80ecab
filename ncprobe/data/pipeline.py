"""The dataset object returned by the readers, and the CoOp pipeline that builds it.

Pipeline (order as in every ``KaiyangZhou/CoOp/datasets/*.py`` constructor, plus ncprobe's
optional imbalance step):

1. read the full train/val/test lists (split file or reader) and check the class names agree;
2. K-shot sampling with the ``split_fewshot`` cache (:mod:`ncprobe.data.fewshot`);
3. base/novel class subsampling (:mod:`ncprobe.data.base_novel`);
4. optional class imbalance of the training split (:mod:`ncprobe.data.imbalance`).

With a :class:`~ncprobe.data.FewShotManifest` (``manifest=``), steps 2–4 are replaced by the
manifest's recorded selection, checked against the full splits of step 1
(:func:`ncprobe.data.manifest.resolve_manifest`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ncprobe.data.base_novel import SUBSAMPLE_CHOICES, Subsample, subsample_classes
from ncprobe.data.fewshot import check_num_shots, check_seed, load_or_sample_fewshot
from ncprobe.data.imbalance import ImbalanceResult, ImbalanceSpec, apply_imbalance
from ncprobe.data.items import Item, class_counts, classnames_from_splits
from ncprobe.data.manifest import LOADERS, FewShotManifest, Loader, load_manifest, resolve_manifest
from ncprobe.data.templates import format_prompts

__all__ = ["ValMode", "RawSplits", "PreparedDataset", "prepare_dataset"]

#: How a dataset's validation split is formed: its own split sampled with ``min(K, 4)`` shots
#: (``"separate"``), the test split itself (``"test"``, ImageNet), or absent (``"none"``, the
#: test-only ImageNet variants).
ValMode = Literal["separate", "test", "none"]


@dataclass
class RawSplits:
    """Full (not yet few-shot) splits as produced by a reader.

    Attributes
    ----------
    train, val, test:
        Item lists. ``val`` is ignored unless ``val_mode == "separate"``.
    val_mode:
        See :data:`ValMode`.
    source:
        Where the items came from (split file, annotation files), for error messages.
    extra:
        Reader-specific metadata (e.g. ImageNet-A's WordNet ids), copied to the dataset.
    """

    train: list[Item]
    val: list[Item]
    test: list[Item]
    val_mode: ValMode = "separate"
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"RawSplits(train={len(self.train)}, val={len(self.val)}, test={len(self.test)} items, "
            f"val_mode={self.val_mode!r}, source={self.source!r})"
        )


@dataclass(frozen=True, repr=False)
class PreparedDataset:
    """A dataset ready for prompt tuning: item lists, class names in label order, and its template.

    Attributes
    ----------
    name:
        Canonical (CoOp) dataset name, e.g. ``"OxfordPets"``.
    dataset_dir:
        The dataset folder (``$DATA/<folder>``).
    train, val, test:
        Item lists after few-shot sampling, base/novel subsampling and imbalance. For ImageNet
        ``val`` **is** ``test`` (CoOp evaluates on the official val set); for the test-only
        ImageNet variants ``val`` is empty.
    classnames:
        ``classnames[label]``, after relabelling.
    template:
        The CoOp ``CUSTOM_TEMPLATES`` entry (``"{}"`` placeholder).
    num_shots, seed, subsample:
        The protocol settings used (``num_shots=0``: all images).
    fewshot_cache:
        The few-shot cache file read or written (CoOp's ``shot_K-seed_S.pkl`` or ncprobe's
        ``ncprobe_shot_K-seed_S.json``), the manifest applied, or ``None``.
    imbalance:
        The :class:`~ncprobe.data.imbalance.ImbalanceResult` when an imbalance was applied.
    extra:
        Reader metadata (``"wnids"``, ``"imagenet_indices"`` for the ImageNet variants, ...).
    val_mode:
        How ``val`` was formed (:data:`ValMode`).
    repeat:
        The few-shot ``repeat`` setting used.
    imbalance_spec:
        The :class:`~ncprobe.data.ImbalanceSpec` applied (its ``seed`` resolved), or ``None``.
    loader:
        The reader that built it, ``"load_dataset"`` (a CoOp benchmark under ``$DATA``) or
        ``"load_image_folder"`` (any class-per-folder tree, and :func:`prepare_dataset` called directly):
        its manifest records it, so :meth:`FewShotManifest.load_dataset` calls the same reader again.

    The ``repr`` is one line of counts and settings (the item lists can hold millions of entries);
    :meth:`to_manifest` records exactly which images were selected.
    """

    name: str
    dataset_dir: Path
    train: list[Item]
    val: list[Item]
    test: list[Item]
    classnames: list[str]
    template: str
    num_shots: int = 0
    seed: int | None = None
    subsample: str = "all"
    fewshot_cache: Path | None = None
    imbalance: ImbalanceResult | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    val_mode: ValMode = "separate"
    repeat: bool = False
    imbalance_spec: ImbalanceSpec | None = None
    loader: Loader = "load_image_folder"

    def __repr__(self) -> str:
        shots = "all" if self.num_shots == 0 else self.num_shots
        val = "= test" if self.val_mode == "test" and self.val is self.test else len(self.val)
        imb = ""
        if self.imbalance_spec is not None:
            imb = f", imbalance={self.imbalance_spec.profile} ρ={self.imbalance_spec.ratio:g}"
        return (
            f"PreparedDataset(name={self.name!r}, classes={self.num_classes}, train={len(self.train)}, "
            f"val={val}, test={len(self.test)}, shots={shots}, seed={self.seed}, subsample={self.subsample!r}"
            f"{imb}, dataset_dir='{self.dataset_dir}')"
        )

    def to_manifest(self, root: str | os.PathLike | None = None, *, hash_files: bool = False) -> FewShotManifest:
        """The :class:`~ncprobe.data.FewShotManifest` of this dataset's train/val selection
        (:meth:`FewShotManifest.from_dataset`); ``.to_json(path)`` writes it."""
        return FewShotManifest.from_dataset(self, root, hash_files=hash_files)

    @property
    def num_classes(self) -> int:
        """Number of classes (``len(classnames)``)."""
        return len(self.classnames)

    @property
    def lab2cname(self) -> dict[int, str]:
        """``{label: classname}`` (Dassl ``DatasetBase.lab2cname``)."""
        return dict(enumerate(self.classnames))

    @property
    def groups(self) -> np.ndarray | None:
        """Per-class ``"head"``/``"medium"``/``"tail"`` labels when imbalanced, else ``None``."""
        return None if self.imbalance is None else self.imbalance.groups

    def prompts(self, template: str | None = None) -> list[str]:
        """One prompt per class: ``template`` (default: the dataset's) filled with the class name."""
        return format_prompts(template or self.template, self.classnames)

    def class_counts(self, split: Literal["train", "val", "test"] = "train") -> np.ndarray:
        """Items per class in ``split`` (length ``num_classes``)."""
        return class_counts(getattr(self, split), self.num_classes)


def prepare_dataset(
    raw: RawSplits,
    *,
    name: str,
    dataset_dir: str | Path,
    template: str,
    num_shots: int | None = None,
    seed: int | None = None,
    subsample: Subsample | None = None,
    imbalance: ImbalanceSpec | None = None,
    repeat: bool = False,
    fewshot_dir: str | Path | None = None,
    use_cache: bool = True,
    manifest: FewShotManifest | str | os.PathLike | None = None,
    loader: Loader = "load_image_folder",
) -> PreparedDataset:
    """Run the CoOp pipeline (module docstring) on a reader's output.

    Parameters
    ----------
    raw:
        The reader's full splits.
    name, dataset_dir, template:
        Copied to the result; ``dataset_dir`` also anchors the few-shot cache.
    num_shots:
        Shots per class for ``train`` (and ``min(num_shots, 4)`` for a separate ``val``); a whole
        number, ``0`` keeps every image. ``None``: 0, or the manifest's.
    seed:
        Few-shot seed (CoOp's ``--seed``; papers use 1, 2, 3) and default imbalance seed. ``None``: 1,
        or the manifest's.
    subsample:
        ``"all"``, ``"base"`` or ``"novel"``. ``None``: ``"all"``, or the manifest's.
    imbalance:
        Applied to ``train`` after subsampling, so ``ρ`` spans exactly the trained classes.
    repeat, fewshot_dir, use_cache:
        See :func:`ncprobe.data.fewshot.load_or_sample_fewshot`.
    manifest:
        A :class:`~ncprobe.data.FewShotManifest` or its JSON path: train/val are the manifest's
        images (checked against ``raw``), and ``num_shots``/``seed``/``subsample``/``imbalance``/
        ``repeat`` come from it. Passing one of those with a value other than the manifest's raises
        ``ValueError`` (``seed=1`` against a seed-2 manifest included: only ``None``, ``imbalance=None``
        and ``repeat=False`` mean "not given").
    loader:
        The reader calling (:attr:`PreparedDataset.loader`): ``"load_dataset"`` or ``"load_image_folder"``.

    Returns
    -------
    PreparedDataset

    Raises
    ------
    ClassNameMismatchError
        Class names disagree between the splits.
    ValueError
        ``subsample`` is not ``"all"``, ``"base"`` or ``"novel"``; ``num_shots`` is negative;
        settings contradict ``manifest``.
    TypeError
        ``num_shots`` or ``seed`` is not a whole number (e.g. ``16.5``).
    ManifestMismatchError
        ``manifest`` does not fit ``raw`` (see :func:`ncprobe.data.manifest.resolve_manifest`).
    """
    given = {"num_shots": num_shots, "seed": seed, "subsample": subsample, "imbalance": imbalance, "repeat": repeat}
    num_shots = check_num_shots(0 if num_shots is None else num_shots)
    seed = check_seed(1 if seed is None else seed)
    subsample = "all" if subsample is None else subsample
    if loader not in LOADERS:
        raise ValueError(f"loader must be one of {LOADERS}, got {loader!r}")
    if subsample not in SUBSAMPLE_CHOICES:
        raise ValueError(f"subsample must be one of {SUBSAMPLE_CHOICES}, got {subsample!r}")
    classnames_from_splits({"train": raw.train, "val": raw.val, "test": raw.test}, source=raw.source)
    if manifest is not None:
        return _prepare_from_manifest(
            raw,
            manifest,
            name=name,
            dataset_dir=dataset_dir,
            template=template,
            loader=loader,
            requested={key: value for key, value in given.items() if value is not None and value is not False},
        )
    sample_val = raw.val if raw.val_mode == "separate" else None
    shots = load_or_sample_fewshot(
        raw.train,
        sample_val,
        num_shots=num_shots,
        seed=seed,
        dataset_dir=dataset_dir,
        repeat=repeat,
        fewshot_dir=fewshot_dir,
        use_cache=use_cache,
    )
    if raw.val_mode == "separate":
        train, val, test = subsample_classes(shots.train, shots.val or [], raw.test, subsample=subsample)
    else:
        train, test = subsample_classes(shots.train, raw.test, subsample=subsample)
        val = test if raw.val_mode == "test" else []
    result, spec = None, None
    if imbalance is not None:
        spec = dataclasses.replace(imbalance, seed=seed if imbalance.seed is None else imbalance.seed)
        result = apply_imbalance(
            train,
            profile=spec.profile,
            ratio=spec.ratio,
            seed=spec.seed,
            mu=spec.mu,
            n_max=spec.n_max,
            group_method=spec.group_method,
        )
        train = result.items
    classnames = classnames_from_splits({"train": train, "val": val, "test": test}, source=raw.source)
    return PreparedDataset(
        name=name,
        dataset_dir=Path(dataset_dir),
        train=train,
        val=val,
        test=test,
        classnames=classnames,
        template=template,
        num_shots=num_shots,
        seed=seed if num_shots >= 1 else None,
        subsample=subsample,
        fewshot_cache=shots.cache_path,
        imbalance=result,
        extra=dict(raw.extra),
        val_mode=raw.val_mode,
        repeat=bool(repeat),
        imbalance_spec=spec,
        loader=loader,
    )


def _prepare_from_manifest(
    raw: RawSplits,
    manifest: FewShotManifest | str | os.PathLike,
    *,
    name: str,
    dataset_dir: str | Path,
    template: str,
    loader: Loader,
    requested: dict[str, Any],
) -> PreparedDataset:
    path = None
    if not isinstance(manifest, FewShotManifest):
        path = Path(manifest)
        manifest = load_manifest(path)
    resolved = resolve_manifest(manifest, raw, name=name, dataset_dir=dataset_dir)
    recorded = {
        "num_shots": manifest.num_shots,
        "seed": manifest.seed,
        "subsample": manifest.subsample,
        "imbalance": resolved.imbalance_spec,
        "repeat": manifest.repeat,
    }
    clash = [
        f"{key}={value!r} (manifest: {recorded[key]!r})" for key, value in requested.items() if value != recorded[key]
    ]
    if clash:
        raise ValueError(
            "these settings contradict the manifest, which fixes them: " + ", ".join(clash) + "; omit them"
        )
    return PreparedDataset(
        name=name,
        dataset_dir=Path(dataset_dir),
        train=resolved.train,
        val=resolved.val,
        test=resolved.test,
        classnames=list(manifest.classnames),  # resolve_manifest checked them against the splits
        template=template,
        num_shots=manifest.num_shots,
        seed=manifest.seed,
        subsample=manifest.subsample,
        fewshot_cache=path,
        imbalance=resolved.imbalance,
        extra=dict(raw.extra),
        val_mode=raw.val_mode,
        repeat=manifest.repeat,
        imbalance_spec=resolved.imbalance_spec,
        loader=loader,
    )
