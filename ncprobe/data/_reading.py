"""Shared pieces of the CoOp dataset readers: expected layouts, class renames, split-file handling.

Sources: ``KaiyangZhou/CoOp/DATASETS.md`` (folder layouts) and ``KaiyangZhou/CoOp/datasets/*.py``
(``IGNORED``/``NEW_CNAMES`` of ``caltech101.py``, ``NEW_CNAMES`` of ``eurosat.py``, and the
"read ``split_zhou_*.json`` if present, else build and save it" logic every reader repeats).
"""

from __future__ import annotations

import random
import warnings
from pathlib import Path
from typing import Callable

from ncprobe.data.errors import DatasetLayoutError
from ncprobe.data.items import Item, check_images_exist
from ncprobe.data.pipeline import RawSplits
from ncprobe.data.splits import read_split, save_split

__all__ = [
    "LAYOUTS",
    "CALTECH_IGNORED",
    "CALTECH_NEW_CNAMES",
    "EUROSAT_NEW_CNAMES",
    "require_path",
    "read_lines",
    "split_or_create",
]

#: Class folders CoOp drops from Caltech101, and its renames (``CoOp/datasets/caltech101.py``).
CALTECH_IGNORED: tuple[str, ...] = ("BACKGROUND_Google", "Faces_easy")
CALTECH_NEW_CNAMES: dict[str, str] = {
    "airplanes": "airplane",
    "Faces": "face",
    "Leopards": "leopard",
    "Motorbikes": "motorbike",
}
#: EuroSAT folder names → the descriptive names in CoOp's split (``CoOp/datasets/eurosat.py``).
EUROSAT_NEW_CNAMES: dict[str, str] = {
    "AnnualCrop": "Annual Crop Land",
    "Forest": "Forest",
    "HerbaceousVegetation": "Herbaceous Vegetation Land",
    "Highway": "Highway or Road",
    "Industrial": "Industrial Buildings",
    "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land",
    "Residential": "Residential Buildings",
    "River": "River",
    "SeaLake": "Sea or Lake",
}

#: Expected folder layout per dataset folder (quoted in error messages).
LAYOUTS: dict[str, str] = {
    "caltech-101": "caltech-101/\n|-- 101_ObjectCategories/<class>/*.jpg\n|-- split_zhou_Caltech101.json\n",
    "oxford_pets": "oxford_pets/\n|-- images/*.jpg\n|-- annotations/ (trainval.txt, test.txt)\n"
    "|-- split_zhou_OxfordPets.json\n",
    "stanford_cars": "stanford_cars/\n|-- cars_train/\n|-- cars_test/\n|-- cars_test_annos_withlabels.mat\n"
    "|-- devkit/ (cars_train_annos.mat, cars_meta.mat)\n|-- split_zhou_StanfordCars.json\n",
    "oxford_flowers": "oxford_flowers/\n|-- jpg/image_#####.jpg\n|-- imagelabels.mat\n|-- cat_to_name.json\n"
    "|-- split_zhou_OxfordFlowers.json\n",
    "food-101": "food-101/\n|-- images/<class>/*.jpg\n|-- meta/\n|-- split_zhou_Food101.json\n",
    "fgvc_aircraft": "fgvc_aircraft/   (the data/ folder of fgvc-aircraft-2013b, renamed)\n|-- images/*.jpg\n"
    "|-- variants.txt\n|-- images_variant_train.txt\n|-- images_variant_val.txt\n"
    "|-- images_variant_test.txt\n",
    "sun397": "sun397/\n|-- SUN397/<letter>/<class>[/<sub>]/*.jpg\n|-- split_zhou_SUN397.json\n"
    "|-- ClassName.txt, Training_01.txt, Testing_01.txt (Partitions.zip)\n",
    "dtd": "dtd/\n|-- images/<class>/*.jpg\n|-- imdb/\n|-- labels/\n|-- split_zhou_DescribableTextures.json\n",
    "eurosat": "eurosat/\n|-- 2750/<class>/*.jpg\n|-- split_zhou_EuroSAT.json\n",
    "ucf101": "ucf101/\n|-- UCF-101-midframes/<Action_Name>/*.jpg\n|-- split_zhou_UCF101.json\n"
    "|-- ucfTrainTestlist/ (classInd.txt, trainlist01.txt, testlist01.txt; only to rebuild the split)\n",
}

Splits3 = tuple[list[Item], list[Item], list[Item]]


def require_path(path: Path, what: str, layout: str, hint: str = "") -> Path:
    """Return ``path``, or raise :class:`DatasetLayoutError` naming it and ``layout`` if it is missing."""
    if not path.exists():
        raise DatasetLayoutError(what, path, layout=layout, hint=hint)
    return path


def split_or_create(
    dataset_dir: Path,
    *,
    split_file: str,
    image_subdir: str | None,
    make_split: Callable[[random.Random], Splits3],
    create_split: bool,
    split_seed: int,
    verify_files: bool,
) -> RawSplits:
    """Read ``dataset_dir/split_file``, or (``create_split=True``) rebuild it with ``make_split`` and save it.

    Parameters
    ----------
    dataset_dir:
        The dataset folder.
    split_file:
        ``split_zhou_<Name>.json``.
    image_subdir:
        Folder the split's relative paths hang from (``None``: the dataset folder, StanfordCars).
    make_split:
        ``make_split(rng) -> (train, val, test)`` from the raw annotations (CoOp's fallback).
    create_split, split_seed:
        Whether a missing split file is rebuilt (with ``random.Random(split_seed)``) or an error.
    verify_files:
        Check every image exists instead of one per split.

    Returns
    -------
    RawSplits
        ``val_mode="separate"``.

    Raises
    ------
    DatasetLayoutError
        Missing image folder, split file (when not rebuilding) or listed image.
    """
    layout = LAYOUTS[dataset_dir.name] if dataset_dir.name in LAYOUTS else ""
    image_dir = dataset_dir / image_subdir if image_subdir else dataset_dir
    if image_subdir:
        require_path(image_dir, "image folder", layout)
    split_path = dataset_dir / split_file
    if split_path.is_file():
        train, val, test = read_split(split_path, image_dir, layout=layout)
    elif create_split:
        train, val, test = make_split(random.Random(split_seed))
        save_split(train, val, test, split_path, image_dir)
        warnings.warn(
            f"created a new split {split_path} (seed {split_seed}); it is NOT CoOp's published split, "
            "so results are not comparable with the papers",
            stacklevel=3,
        )
    else:
        raise DatasetLayoutError(
            "split file",
            split_path,
            layout=layout,
            hint=f"Download {split_file} (links in CoOp's DATASETS.md), or pass create_split=True to "
            "rebuild a split from the raw annotations (it will differ from the published one).",
        )
    for items in (train, val, test):
        check_images_exist(items, source=str(split_path), image_dir=image_dir, layout=layout, verify_all=verify_files)
    return RawSplits(train, val, test, "separate", str(split_path))


def read_lines(path: Path, layout: str) -> list[str]:
    """Non-empty, stripped lines of an annotation file (``DatasetLayoutError`` if it is missing)."""
    require_path(path, "annotation file", layout)
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]
