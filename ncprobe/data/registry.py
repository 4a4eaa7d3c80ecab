"""Dataset registry and the one-call entry point :func:`load_dataset`.

Canonical names are CoOp's Dassl dataset class names (the keys of ``CUSTOM_TEMPLATES``). Lookup
ignores case and every non-alphanumeric character, and accepts the CoOp folder names and a few
short aliases, so ``"OxfordPets"``, ``"oxford_pets"`` and ``"pets"`` are the same dataset.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ncprobe.data._reading import LAYOUTS
from ncprobe.data.base_novel import Subsample
from ncprobe.data.coop_datasets import (
    read_caltech101,
    read_dtd,
    read_eurosat,
    read_fgvc_aircraft,
    read_food101,
    read_oxford_flowers,
    read_oxford_pets,
    read_stanford_cars,
    read_sun397,
    read_ucf101,
)
from ncprobe.data.errors import DatasetLayoutError, UnknownDatasetError
from ncprobe.data.imagenet_datasets import (
    IMAGENET_LAYOUTS,
    read_imagenet,
    read_imagenet_a,
    read_imagenet_r,
    read_imagenet_sketch,
    read_imagenetv2,
)
from ncprobe.data.imbalance import ImbalanceSpec
from ncprobe.data.manifest import FewShotManifest, register_manifest_loader
from ncprobe.data.pipeline import PreparedDataset, RawSplits, prepare_dataset
from ncprobe.data.templates import CUSTOM_TEMPLATES

__all__ = ["DatasetSpec", "DATASETS", "BENCHMARK_11", "DG_TARGETS", "resolve_name", "get_template", "load_dataset"]


@dataclass(frozen=True)
class DatasetSpec:
    """How to find and read one dataset.

    Attributes
    ----------
    name:
        Canonical (CoOp) name.
    folder:
        Folder under ``root`` (CoOp's ``dataset_dir``).
    reader:
        ``reader(dataset_dir, *, create_split, split_seed, sort_listing, verify_files) -> RawSplits``.
    num_classes:
        Class count of the full dataset (CoOp benchmark; the test-only -A/-R use 200).
    aliases:
        Extra accepted names.
    """

    name: str
    folder: str
    reader: Callable[..., RawSplits]
    num_classes: int
    aliases: tuple[str, ...] = ()

    @property
    def template(self) -> str:
        """CoOp ``CUSTOM_TEMPLATES[name]``."""
        return CUSTOM_TEMPLATES[self.name]

    @property
    def layout(self) -> str:
        """Expected folder layout (CoOp ``DATASETS.md``)."""
        return LAYOUTS.get(self.folder) or IMAGENET_LAYOUTS.get(self.folder, "")


_SPECS = (
    DatasetSpec("ImageNet", "imagenet", read_imagenet, 1000, ("imagenet1k", "ilsvrc2012")),
    DatasetSpec("Caltech101", "caltech-101", read_caltech101, 100, ("caltech",)),
    DatasetSpec("OxfordPets", "oxford_pets", read_oxford_pets, 37, ("pets", "oxfordiiitpet")),
    DatasetSpec("StanfordCars", "stanford_cars", read_stanford_cars, 196, ("cars",)),
    DatasetSpec("OxfordFlowers", "oxford_flowers", read_oxford_flowers, 102, ("flowers", "flowers102")),
    DatasetSpec("Food101", "food-101", read_food101, 101, ("food",)),
    DatasetSpec("FGVCAircraft", "fgvc_aircraft", read_fgvc_aircraft, 100, ("aircraft",)),
    DatasetSpec("SUN397", "sun397", read_sun397, 397, ("sun",)),
    DatasetSpec("DescribableTextures", "dtd", read_dtd, 47, ("textures",)),
    DatasetSpec("EuroSAT", "eurosat", read_eurosat, 10, ()),
    DatasetSpec("UCF101", "ucf101", read_ucf101, 101, ("ucf",)),
    DatasetSpec("ImageNetV2", "imagenetv2", read_imagenetv2, 1000, ()),
    DatasetSpec("ImageNetSketch", "imagenet-sketch", read_imagenet_sketch, 1000, ("sketch",)),
    DatasetSpec("ImageNetA", "imagenet-adversarial", read_imagenet_a, 200, ()),
    DatasetSpec("ImageNetR", "imagenet-rendition", read_imagenet_r, 200, ()),
)

#: Every dataset, by canonical name.
DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}
#: The 11 datasets of the CoOp benchmark (base-to-novel, few-shot, cross-dataset targets).
BENCHMARK_11: tuple[str, ...] = tuple(spec.name for spec in _SPECS[:11])
#: ImageNet domain-generalization targets.
DG_TARGETS: tuple[str, ...] = ("ImageNetV2", "ImageNetSketch", "ImageNetA", "ImageNetR")


def _key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


_LOOKUP: dict[str, str] = {}
for _spec in _SPECS:
    for _alias in (_spec.name, _spec.folder, *_spec.aliases):
        _LOOKUP[_key(_alias)] = _spec.name


def resolve_name(name: str) -> str:
    """Canonical dataset name for ``name`` (case, ``-``, ``_`` and spaces ignored).

    Raises
    ------
    UnknownDatasetError
        Listing the known canonical names and folder names.
    """
    canonical = _LOOKUP.get(_key(str(name)))
    if canonical is None:
        known = ", ".join(f"{s.name} ({s.folder})" for s in _SPECS)
        raise UnknownDatasetError(f"unknown dataset {name!r}; known datasets (folder): {known}")
    return canonical


def get_template(name: str) -> str:
    """The CoOp template for a dataset; ``name`` may be any alias known to :func:`ncprobe.data.load_dataset`.

    Raises
    ------
    UnknownDatasetError
        Unknown name (the message lists the known ones).
    """
    return CUSTOM_TEMPLATES[resolve_name(name)]


def load_dataset(
    name: str,
    root: str | Path,
    *,
    num_shots: int | None = None,
    seed: int | None = None,
    subsample: Subsample | None = None,
    imbalance: ImbalanceSpec | None = None,
    repeat: bool = False,
    use_cache: bool = True,
    fewshot_dir: str | Path | None = None,
    create_split: bool = False,
    split_seed: int = 1,
    sort_listing: bool = True,
    verify_files: bool = False,
    manifest: FewShotManifest | str | Path | None = None,
) -> PreparedDataset:
    """Load a CoOp-benchmark dataset with the protocol used by CoOp, CoCoOp, MaPLe and Craft.

    Same images as CoOp
    -------------------
    The few-shot draw is Dassl's algorithm with Dassl's random stream (tested against a mirror of
    the original code), so ``seed`` selects the same images as CoOp **exactly when the items are
    listed in the same order**:

    * always for the datasets read from CoOp's ``split_zhou_*.json`` files and for FGVCAircraft's
      official lists (the files fix the order), given the same split file;
    * always when CoOp's own ``split_fewshot/shot_K-seed_S.pkl`` is present: it is read as is;
    * ImageNet: when CoOp's ``preprocessed.pkl`` (its listing, frozen when CoOp first ran) is in the
      dataset folder; ncprobe reads it. Without it the order comes from the file system: CoOp lists
      each class folder in raw ``os.listdir`` order, which depends on the file system and even on
      the individual disk (ext4 hashes names with a per-file-system seed), so it differs between
      machines. The default ``sort_listing=True`` sorts the names: the same images on every
      machine, but CoOp's only if its listing happened to be sorted. ``sort_listing=False``
      reproduces CoOp on the same directory of the same disk only. The ImageNet variants and
      rebuilt splits (``create_split=True``) follow the same rule.

    To pin a selection across machines regardless of all this, export a manifest
    (``ds.to_manifest().to_json(path)``) and start later runs from it (``manifest=path``).

    Parameters
    ----------
    name:
        Dataset name or alias (see :data:`DATASETS`; e.g. ``"dtd"``, ``"OxfordPets"``, ``"imagenet-a"``).
    root:
        The ``$DATA`` folder holding one sub-folder per dataset (CoOp ``DATASET.ROOT``).
    num_shots:
        K shots per class in train (val: ``min(K, 4)``), a whole number; ``0`` = all images.
    seed:
        Few-shot seed (CoOp ``--seed``, an integer). Same seed ⇒ same images as CoOp only under the
        conditions above.
    subsample:
        ``"all"``, ``"base"`` or ``"novel"`` (base-to-novel protocol).
    imbalance:
        Optional :class:`~ncprobe.data.imbalance.ImbalanceSpec` applied to train after few-shot
        sampling and subsampling.
    repeat:
        For classes with fewer than K images: keep all (``False``, current Dassl) or draw K with
        replacement (``True``, older Dassl default).
    use_cache, fewshot_dir:
        Few-shot cache switch and folder (default ``<dataset folder>/split_fewshot``).
    create_split, split_seed:
        When ``split_zhou_*.json`` is missing: rebuild it from the raw annotations with
        ``random.Random(split_seed)`` (and save it) instead of raising. Not CoOp's split.
    sort_listing:
        Sort directory listings (reproducible across machines); ``False`` = CoOp's raw
        ``os.listdir`` order (only affects datasets read from folders: ImageNet and variants,
        and rebuilt splits).
    verify_files:
        Check every listed image exists (slow on ImageNet); default checks one per split.
    manifest:
        A :class:`~ncprobe.data.FewShotManifest` (or its JSON path) fixing train/val: the run uses
        exactly its images (checked against this dataset, see
        :func:`ncprobe.data.manifest.resolve_manifest`); ``num_shots``, ``seed``, ``subsample``,
        ``imbalance`` and ``repeat`` come from it and must otherwise be left at their defaults.

    Returns
    -------
    PreparedDataset

    Raises
    ------
    UnknownDatasetError
        Unknown ``name``.
    DatasetLayoutError
        Missing dataset folder, image folder, split file or annotation file (message names the
        expected path and layout).
    ClassNameMismatchError
        Class names disagree between splits or with the class-name list.
    ValueError
        Bad ``subsample``, ``num_shots < 0`` or imbalance options; settings that contradict ``manifest``.
    TypeError
        ``num_shots`` or ``seed`` is not a whole number (e.g. ``16.5``).
    FewShotFileError
        A few-shot cache or the manifest file is damaged (the message names the file).
    ManifestMismatchError
        ``manifest`` does not fit this dataset.
    """
    spec = DATASETS[resolve_name(name)]
    root = Path(root).expanduser().resolve()
    dataset_dir = root / spec.folder
    if not dataset_dir.is_dir():
        hint = f"root must be the folder that contains {spec.folder}/ (CoOp's $DATA)."
        if root.name == spec.folder:
            hint += f" You passed the dataset folder itself; pass its parent {root.parent} instead."
        raise DatasetLayoutError(f"{spec.name} dataset folder", dataset_dir, layout=spec.layout, hint=hint)
    raw = spec.reader(
        dataset_dir,
        create_split=create_split,
        split_seed=split_seed,
        sort_listing=sort_listing,
        verify_files=verify_files,
    )
    return prepare_dataset(
        raw,
        name=spec.name,
        dataset_dir=dataset_dir,
        template=spec.template,
        num_shots=num_shots,
        seed=seed,
        subsample=subsample,
        imbalance=imbalance,
        repeat=repeat,
        fewshot_dir=fewshot_dir,
        use_cache=use_cache,
        manifest=manifest,
        loader="load_dataset",
    )


def _load_manifest_dataset(manifest: FewShotManifest, root: str | os.PathLike, **options: Any) -> PreparedDataset:
    """A ``loader="load_dataset"`` manifest's dataset, under CoOp's ``$DATA`` folder ``root``."""
    return load_dataset(manifest.dataset, root, manifest=manifest, **options)


register_manifest_loader("load_dataset", _load_manifest_dataset)
