"""Readers for ten of the eleven CoOp benchmark datasets (ImageNet is in :mod:`.imagenet_datasets`).

Each reader takes the dataset folder (``$DATA/<folder>``, layouts in
:data:`ncprobe.data._reading.LAYOUTS`, from CoOp's ``DATASETS.md``) and returns
:class:`~ncprobe.data.pipeline.RawSplits`. Semantics follow ``KaiyangZhou/CoOp/datasets/<name>.py``:
the published ``split_zhou_<Name>.json`` is read when present; otherwise, only with
``create_split=True``, the split is rebuilt from the raw annotations the way CoOp built it (that
rebuilt split is random and will not equal the published one). FGVCAircraft has no split file:
its official train/val/test lists are read directly.
"""

from __future__ import annotations

import json
import random
import re
import warnings
from pathlib import Path

from ncprobe.data._reading import (
    CALTECH_IGNORED,
    CALTECH_NEW_CNAMES,
    EUROSAT_NEW_CNAMES,
    LAYOUTS,
    read_lines,
    require_path,
    split_or_create,
)
from ncprobe.data.errors import ClassNameMismatchError, SplitFileError
from ncprobe.data.items import Item, check_images_exist
from ncprobe.data.pipeline import RawSplits
from ncprobe.data.splits import read_and_split_data, split_trainval

__all__ = [
    "read_caltech101",
    "read_oxford_pets",
    "read_stanford_cars",
    "read_oxford_flowers",
    "read_food101",
    "read_fgvc_aircraft",
    "read_sun397",
    "read_dtd",
    "read_eurosat",
    "read_ucf101",
]

Splits3 = tuple[list[Item], list[Item], list[Item]]


def _split_or_folder(
    dataset_dir: Path,
    split_file: str,
    image_subdir: str,
    *,
    create_split: bool,
    split_seed: int,
    sort_listing: bool,
    verify_files: bool,
    **folder_options,
) -> RawSplits:
    """The published split file, or CoOp's ``read_and_split_data`` over one folder per class
    (``folder_options``: ``ignored``, ``new_cnames``)."""
    image_dir = dataset_dir / image_subdir
    return split_or_create(
        dataset_dir,
        split_file=split_file,
        image_subdir=image_subdir,
        make_split=lambda rng: read_and_split_data(image_dir, rng=rng, sort_listing=sort_listing, **folder_options),
        create_split=create_split,
        split_seed=split_seed,
        verify_files=verify_files,
    )


def read_caltech101(
    dataset_dir: Path,
    *,
    create_split: bool = False,
    split_seed: int = 1,
    sort_listing: bool = True,
    verify_files: bool = False,
) -> RawSplits:
    """Caltech101 (CoOp ``caltech101.py``): 100 classes; fallback 50/20/30 per class, 2 folders ignored."""
    return _split_or_folder(
        dataset_dir,
        "split_zhou_Caltech101.json",
        "101_ObjectCategories",
        create_split=create_split,
        split_seed=split_seed,
        sort_listing=sort_listing,
        verify_files=verify_files,
        ignored=CALTECH_IGNORED,
        new_cnames=CALTECH_NEW_CNAMES,
    )


def _read_pets_list(dataset_dir: Path, split_file: str) -> list[Item]:
    rows = []
    path = dataset_dir / "annotations" / split_file
    for line in read_lines(path, LAYOUTS["oxford_pets"]):
        parts = line.split(" ")
        if len(parts) != 4:
            raise SplitFileError(f"{path}: expected 'name class species breed_id', got {line!r}")
        imname, label = parts[0], parts[1]
        breed = "_".join(imname.split("_")[:-1]).lower()
        rows.append(Item(str(dataset_dir / "images" / f"{imname}.jpg"), int(label) - 1, breed))
    return rows


def read_oxford_pets(
    dataset_dir: Path,
    *,
    create_split: bool = False,
    split_seed: int = 1,
    sort_listing: bool = True,
    verify_files: bool = False,
) -> RawSplits:
    """Oxford-IIIT Pets (CoOp ``oxford_pets.py``): 37 breeds; fallback = official trainval split 80/20."""

    def make(rng: random.Random) -> Splits3:
        trainval = _read_pets_list(dataset_dir, "trainval.txt")
        test = _read_pets_list(dataset_dir, "test.txt")
        train, val = split_trainval(trainval, rng=rng)
        return train, val, test

    return split_or_create(
        dataset_dir,
        split_file="split_zhou_OxfordPets.json",
        image_subdir="images",
        make_split=make,
        create_split=create_split,
        split_seed=split_seed,
        verify_files=verify_files,
    )


def _read_cars_mat(dataset_dir: Path, image_subdir: str, anno_file: Path, meta_file: Path) -> list[Item]:
    from scipy.io import loadmat

    layout = LAYOUTS["stanford_cars"]
    annotations = loadmat(str(require_path(anno_file, "annotation file", layout)))["annotations"][0]
    names = loadmat(str(require_path(meta_file, "annotation file", layout)))["class_names"][0]
    items = []
    for record in annotations:
        label = int(record["class"][0, 0]) - 1
        words = str(names[label][0]).split(" ")
        year = words.pop(-1)
        classname = " ".join([year, *words])  # CoOp moves the year to the front
        items.append(Item(str(dataset_dir / image_subdir / str(record["fname"][0])), label, classname))
    return items


def read_stanford_cars(
    dataset_dir: Path,
    *,
    create_split: bool = False,
    split_seed: int = 1,
    sort_listing: bool = True,
    verify_files: bool = False,
) -> RawSplits:
    """Stanford Cars (CoOp ``stanford_cars.py``): 196 classes; split paths relative to the dataset folder."""

    def make(rng: random.Random) -> Splits3:
        meta = dataset_dir / "devkit" / "cars_meta.mat"
        trainval = _read_cars_mat(dataset_dir, "cars_train", dataset_dir / "devkit" / "cars_train_annos.mat", meta)
        test = _read_cars_mat(dataset_dir, "cars_test", dataset_dir / "cars_test_annos_withlabels.mat", meta)
        train, val = split_trainval(trainval, rng=rng)
        return train, val, test

    return split_or_create(
        dataset_dir,
        split_file="split_zhou_StanfordCars.json",
        image_subdir=None,
        make_split=make,
        create_split=create_split,
        split_seed=split_seed,
        verify_files=verify_files,
    )


def read_oxford_flowers(
    dataset_dir: Path,
    *,
    create_split: bool = False,
    split_seed: int = 1,
    sort_listing: bool = True,
    verify_files: bool = False,
) -> RawSplits:
    """Oxford Flowers-102 (CoOp ``oxford_flowers.py``): 102 classes; fallback 50/20/30 per class."""
    layout = LAYOUTS["oxford_flowers"]

    def make(rng: random.Random) -> Splits3:
        from scipy.io import loadmat

        labels = loadmat(str(require_path(dataset_dir / "imagelabels.mat", "label file", layout)))["labels"][0]
        with open(require_path(dataset_dir / "cat_to_name.json", "class-name file", layout), encoding="utf-8") as f:
            lab2cname = json.load(f)
        tracker: dict[int, list[str]] = {}
        for i, label in enumerate(labels):
            tracker.setdefault(int(label), []).append(str(dataset_dir / "jpg" / f"image_{i + 1:05d}.jpg"))
        train, val, test = [], [], []
        for label, paths in tracker.items():
            if str(label) not in lab2cname:
                raise ClassNameMismatchError(f"label {label} of imagelabels.mat has no name in cat_to_name.json")
            rng.shuffle(paths)
            n_train, n_val = round(len(paths) * 0.5), round(len(paths) * 0.2)
            if min(n_train, n_val, len(paths) - n_train - n_val) <= 0:
                raise ValueError(f"flower class {label} has {len(paths)} images: too few for a 50/20/30 split")
            name = lab2cname[str(label)]
            train += [Item(p, label - 1, name) for p in paths[:n_train]]
            val += [Item(p, label - 1, name) for p in paths[n_train : n_train + n_val]]
            test += [Item(p, label - 1, name) for p in paths[n_train + n_val :]]
        return train, val, test

    return split_or_create(
        dataset_dir,
        split_file="split_zhou_OxfordFlowers.json",
        image_subdir="jpg",
        make_split=make,
        create_split=create_split,
        split_seed=split_seed,
        verify_files=verify_files,
    )


def read_food101(
    dataset_dir: Path,
    *,
    create_split: bool = False,
    split_seed: int = 1,
    sort_listing: bool = True,
    verify_files: bool = False,
) -> RawSplits:
    """Food-101 (CoOp ``food101.py``): 101 classes; fallback 50/20/30 per class."""
    return _split_or_folder(
        dataset_dir,
        "split_zhou_Food101.json",
        "images",
        create_split=create_split,
        split_seed=split_seed,
        sort_listing=sort_listing,
        verify_files=verify_files,
    )


def read_fgvc_aircraft(
    dataset_dir: Path,
    *,
    create_split: bool = False,
    split_seed: int = 1,
    sort_listing: bool = True,
    verify_files: bool = False,
) -> RawSplits:
    """FGVC-Aircraft (CoOp ``fgvc_aircraft.py``): 100 variants, official train/val/test lists, no split file.

    ``create_split`` and ``split_seed`` are accepted for a uniform signature and ignored.
    """
    layout = LAYOUTS["fgvc_aircraft"]
    image_dir = require_path(dataset_dir / "images", "image folder", layout)
    classnames = read_lines(dataset_dir / "variants.txt", layout)
    cname2lab = {name: label for label, name in enumerate(classnames)}
    splits = []
    for split in ("train", "val", "test"):
        path = dataset_dir / f"images_variant_{split}.txt"
        items = []
        for line in read_lines(path, layout):
            imname, _, classname = line.partition(" ")
            if classname not in cname2lab:
                raise ClassNameMismatchError(f"{path}: class {classname!r} (line {line!r}) is not in variants.txt")
            items.append(Item(str(image_dir / f"{imname}.jpg"), cname2lab[classname], classname))
        check_images_exist(items, source=str(path), image_dir=image_dir, layout=layout, verify_all=verify_files)
        splits.append(items)
    return RawSplits(splits[0], splits[1], splits[2], "separate", str(dataset_dir / "images_variant_*.txt"))


def read_sun397(
    dataset_dir: Path,
    *,
    create_split: bool = False,
    split_seed: int = 1,
    sort_listing: bool = True,
    verify_files: bool = False,
) -> RawSplits:
    """SUN397 (CoOp ``sun397.py``): 397 scenes; names like ``"outdoor apartment_building"``."""
    layout = LAYOUTS["sun397"]
    image_dir = dataset_dir / "SUN397"

    def read_list(text_file: str, cname2lab: dict[str, int]) -> list[Item]:
        items = []
        for line in read_lines(dataset_dir / text_file, layout):
            imname = line[1:]  # drop the leading "/"
            folder = imname.rsplit("/", 1)[0]
            if folder not in cname2lab:
                raise ClassNameMismatchError(f"{dataset_dir / text_file}: {folder!r} is not in ClassName.txt")
            name = " ".join(folder.split("/")[1:][::-1])  # drop the letter, put indoor/outdoor first
            items.append(Item(str(image_dir / imname), cname2lab[folder], name))
        return items

    def make(rng: random.Random) -> Splits3:
        classnames = [line[1:] for line in read_lines(dataset_dir / "ClassName.txt", layout)]
        cname2lab = {name: label for label, name in enumerate(classnames)}
        trainval = read_list("Training_01.txt", cname2lab)
        test = read_list("Testing_01.txt", cname2lab)
        train, val = split_trainval(trainval, rng=rng)
        return train, val, test

    return split_or_create(
        dataset_dir,
        split_file="split_zhou_SUN397.json",
        image_subdir="SUN397",
        make_split=make,
        create_split=create_split,
        split_seed=split_seed,
        verify_files=verify_files,
    )


def read_dtd(
    dataset_dir: Path,
    *,
    create_split: bool = False,
    split_seed: int = 1,
    sort_listing: bool = True,
    verify_files: bool = False,
) -> RawSplits:
    """Describable Textures (CoOp ``dtd.py``): 47 textures; fallback 50/20/30 per class."""
    return _split_or_folder(
        dataset_dir,
        "split_zhou_DescribableTextures.json",
        "images",
        create_split=create_split,
        split_seed=split_seed,
        sort_listing=sort_listing,
        verify_files=verify_files,
    )


def read_eurosat(
    dataset_dir: Path,
    *,
    create_split: bool = False,
    split_seed: int = 1,
    sort_listing: bool = True,
    verify_files: bool = False,
) -> RawSplits:
    """EuroSAT (CoOp ``eurosat.py``): 10 land-cover classes under their renamed descriptive names.

    A split file whose class names are the raw folder names (``"AnnualCrop"``) is read as is but
    triggers a warning, since CoOp's published split uses :data:`EUROSAT_NEW_CNAMES`.
    """
    raw = _split_or_folder(
        dataset_dir,
        "split_zhou_EuroSAT.json",
        "2750",
        create_split=create_split,
        split_seed=split_seed,
        sort_listing=sort_listing,
        verify_files=verify_files,
        new_cnames=EUROSAT_NEW_CNAMES,
    )
    raw_names = {it.classname for it in raw.train} & {k for k, v in EUROSAT_NEW_CNAMES.items() if k != v}
    if raw_names:
        warnings.warn(
            f"EuroSAT split {raw.source} uses raw folder names {sorted(raw_names)}; CoOp's split and "
            "template use the renamed classes (e.g. 'Annual Crop Land')",
            stacklevel=2,
        )
    return raw


def read_ucf101(
    dataset_dir: Path,
    *,
    create_split: bool = False,
    split_seed: int = 1,
    sort_listing: bool = True,
    verify_files: bool = False,
) -> RawSplits:
    """UCF101 mid-frames (CoOp ``ucf101.py``): 101 actions, names like ``"Apply_Eye_Makeup"``."""
    layout = LAYOUTS["ucf101"]
    image_dir = dataset_dir / "UCF-101-midframes"

    def read_list(text_file: str, cname2lab: dict[str, int]) -> list[Item]:
        items = []
        for line in read_lines(dataset_dir / "ucfTrainTestlist" / text_file, layout):
            action, filename = line.split(" ")[0].split("/")
            if action not in cname2lab:
                raise ClassNameMismatchError(f"{text_file}: action {action!r} is not in classInd.txt")
            renamed = "_".join(re.findall("[A-Z][^A-Z]*", action))
            impath = image_dir / renamed / filename.replace(".avi", ".jpg")
            items.append(Item(str(impath), cname2lab[action], renamed))
        return items

    def make(rng: random.Random) -> Splits3:
        cname2lab = {}
        for line in read_lines(dataset_dir / "ucfTrainTestlist" / "classInd.txt", layout):
            label, classname = line.split(" ")
            cname2lab[classname] = int(label) - 1
        trainval = read_list("trainlist01.txt", cname2lab)
        test = read_list("testlist01.txt", cname2lab)
        train, val = split_trainval(trainval, rng=rng)
        return train, val, test

    return split_or_create(
        dataset_dir,
        split_file="split_zhou_UCF101.json",
        image_subdir="UCF-101-midframes",
        make_split=make,
        create_split=create_split,
        split_seed=split_seed,
        verify_files=verify_files,
    )
