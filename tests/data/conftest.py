"""Tiny fake dataset trees in the CoOp layouts (``KaiyangZhou/CoOp/DATASETS.md``), built in ``tmp_path``.

Every builder writes real (8x8 JPEG) image files for every path it lists, and returns the
expected class names (label order) and split sizes, so the reader tests compare against what
was written rather than against the reader's own logic.
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _tiny_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (12, 8), (200, 40, 90)).save(buf, format="JPEG")
    return buf.getvalue()


TINY_JPEG = _tiny_jpeg()


def write_image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(TINY_JPEG)
    return path


@dataclass
class Expected:
    """What a builder wrote: class names in label order and per-class counts of each split."""

    dataset_dir: Path
    classnames: list[str]
    counts: dict[str, list[int]]
    split_file: Path | None = None
    extra: dict = field(default_factory=dict)

    def total(self, split: str) -> int:
        return sum(self.counts[split])


#: Per-class split sizes used by the split-file builders: class k gets 5+k train, 4 val, 2 test.
def _sizes(k: int) -> tuple[int, int, int]:
    return 5 + k, 4, 2


def build_split_dataset(
    root: Path,
    *,
    folder: str,
    split_file: str | None,
    image_base: str | None,
    classes: list[tuple[str, str]],
    relpath,
    shuffle_train: bool = True,
) -> Expected:
    """Write images and a ``split_zhou`` JSON for ``classes = [(folder_key, classname), ...]``.

    ``relpath(key, label, i)`` gives the path of image ``i`` of a class relative to
    ``image_base`` (which is relative to the dataset folder; ``None`` = the dataset folder).
    The train list is shuffled (seeded) so labels do not appear in sorted order, which makes
    the first-appearance class order of Dassl's sampler observable.
    """
    dataset_dir = root / folder
    base = dataset_dir / image_base if image_base else dataset_dir
    split: dict[str, list] = {"train": [], "val": [], "test": []}
    counts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for label, (key, name) in enumerate(classes):
        n_tr, n_va, n_te = _sizes(label)
        paths = [relpath(key, label, i) for i in range(n_tr + n_va + n_te)]
        for rel in paths:
            write_image(base / rel)
        split["train"] += [[p, label, name] for p in paths[:n_tr]]
        split["val"] += [[p, label, name] for p in paths[n_tr : n_tr + n_va]]
        split["test"] += [[p, label, name] for p in paths[n_tr + n_va :]]
        for s, n in zip(("train", "val", "test"), (n_tr, n_va, n_te)):
            counts[s].append(n)
    if shuffle_train:
        random.Random(0).shuffle(split["train"])
    split_path = None
    if split_file:
        split_path = dataset_dir / split_file
        split_path.write_text(json.dumps(split, indent=4))
    return Expected(dataset_dir, [name for _, name in classes], counts, split_path)


SPLIT_DATASETS = {
    "Caltech101": dict(
        folder="caltech-101",
        split_file="split_zhou_Caltech101.json",
        image_base="101_ObjectCategories",
        classes=[
            ("Faces", "face"),
            ("accordion", "accordion"),
            ("airplanes", "airplane"),
            ("yin_yang", "yin_yang"),
        ],
        relpath=lambda key, label, i: f"{key}/image_{i + 1:04d}.jpg",
    ),
    "OxfordPets": dict(
        folder="oxford_pets",
        split_file="split_zhou_OxfordPets.json",
        image_base="images",
        classes=[
            ("Abyssinian", "abyssinian"),
            ("american_bulldog", "american_bulldog"),
            ("Bengal", "bengal"),
        ],
        relpath=lambda key, label, i: f"{key}_{i + 1}.jpg",
    ),
    "StanfordCars": dict(
        folder="stanford_cars",
        split_file="split_zhou_StanfordCars.json",
        image_base=None,
        classes=[("a", "2012 Tesla Model S"), ("b", "2012 BMW M3 coupe"), ("c", "1993 Volvo 240 Sedan")],
        relpath=lambda key, label, i: f"cars_train/{label:02d}{i:03d}.jpg",
    ),
    "OxfordFlowers": dict(
        folder="oxford_flowers",
        split_file="split_zhou_OxfordFlowers.json",
        image_base="jpg",
        classes=[("1", "pink primrose"), ("2", "hard-leaved pocket orchid"), ("3", "canterbury bells")],
        relpath=lambda key, label, i: f"image_{label * 100 + i + 1:05d}.jpg",
    ),
    "Food101": dict(
        folder="food-101",
        split_file="split_zhou_Food101.json",
        image_base="images",
        classes=[("apple_pie", "apple_pie"), ("baby_back_ribs", "baby_back_ribs"), ("waffles", "waffles")],
        relpath=lambda key, label, i: f"{key}/{1000 + i}.jpg",
    ),
    "SUN397": dict(
        folder="sun397",
        split_file="split_zhou_SUN397.json",
        image_base="SUN397",
        classes=[("a/abbey", "abbey"), ("a/apartment_building/outdoor", "outdoor apartment_building")],
        relpath=lambda key, label, i: f"{key}/sun_{i:04d}.jpg",
    ),
    "DescribableTextures": dict(
        folder="dtd",
        split_file="split_zhou_DescribableTextures.json",
        image_base="images",
        classes=[
            ("banded", "banded"),
            ("blotchy", "blotchy"),
            ("braided", "braided"),
            ("bubbly", "bubbly"),
            ("bumpy", "bumpy"),
        ],
        relpath=lambda key, label, i: f"{key}/{key}_{i:04d}.jpg",
    ),
    "EuroSAT": dict(
        folder="eurosat",
        split_file="split_zhou_EuroSAT.json",
        image_base="2750",
        classes=[("AnnualCrop", "Annual Crop Land"), ("Forest", "Forest"), ("SeaLake", "Sea or Lake")],
        relpath=lambda key, label, i: f"{key}/{key}_{i + 1}.jpg",
    ),
    "UCF101": dict(
        folder="ucf101",
        split_file="split_zhou_UCF101.json",
        image_base="UCF-101-midframes",
        classes=[("Apply_Eye_Makeup", "Apply_Eye_Makeup"), ("Archery", "Archery"), ("Yo_Yo", "Yo_Yo")],
        relpath=lambda key, label, i: f"{key}/v_{key.replace('_', '')}_g{i:02d}_c01.jpg",
    ),
}


def build_aircraft(root: Path) -> Expected:
    dataset_dir = root / "fgvc_aircraft"
    variants = ["707-320", "A300B4", "Cessna 172"]
    (dataset_dir / "images").mkdir(parents=True)
    (dataset_dir / "variants.txt").write_text("\n".join(variants) + "\n")
    counts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    lines: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    image_id = 1000000
    for label, name in enumerate(variants):
        for split, n in zip(("train", "val", "test"), _sizes(label)):
            for _ in range(n):
                image_id += 1
                write_image(dataset_dir / "images" / f"{image_id}.jpg")
                lines[split].append(f"{image_id} {name}")
            counts[split].append(n)
    for split in lines:
        random.Random(1).shuffle(lines[split])
        (dataset_dir / f"images_variant_{split}.txt").write_text("\n".join(lines[split]) + "\n")
    return Expected(dataset_dir, variants, counts)


IMAGENET_CLASSES = [
    ("n01440764", "tench"),
    ("n01443537", "goldfish"),
    ("n01484850", "great white shark"),
    ("n01491361", "tiger shark"),
    ("n01494475", "hammerhead shark"),
]


def write_classnames(dataset_dir: Path) -> None:
    dataset_dir.mkdir(parents=True, exist_ok=True)
    (dataset_dir / "classnames.txt").write_text("".join(f"{w} {n}\n" for w, n in IMAGENET_CLASSES))


def build_imagenet(root: Path, n_train: int = 6, n_val: int = 3) -> Expected:
    dataset_dir = root / "imagenet"
    write_classnames(dataset_dir)
    for wnid, _ in IMAGENET_CLASSES:
        for i in range(n_train):
            write_image(dataset_dir / "images" / "train" / wnid / f"{wnid}_{i}.JPEG")
        for i in range(n_val):
            write_image(dataset_dir / "images" / "val" / wnid / f"ILSVRC2012_val_{wnid}_{i}.JPEG")
    k = len(IMAGENET_CLASSES)
    counts = {"train": [n_train] * k, "val": [n_val] * k, "test": [n_val] * k}
    return Expected(dataset_dir, [n for _, n in IMAGENET_CLASSES], counts)


def build_variant(root: Path, name: str) -> Expected:
    """ImageNet-V2 (all 5 classes) or Sketch/-A/-R (a 3-class subset, as -A/-R are subsets)."""
    folder, subdir = {
        "ImageNetV2": ("imagenetv2", "imagenetv2-matched-frequency-format-val"),
        "ImageNetSketch": ("imagenet-sketch", "images"),
        "ImageNetA": ("imagenet-adversarial", "imagenet-a"),
        "ImageNetR": ("imagenet-rendition", "imagenet-r"),
    }[name]
    dataset_dir = root / folder
    write_classnames(dataset_dir)
    if name == "ImageNetV2":
        chosen = list(range(len(IMAGENET_CLASSES)))
        dirs = [str(i) for i in chosen]
    else:
        chosen = [4, 0, 2]  # written out of order; readers sort the wnid folders
        dirs = [IMAGENET_CLASSES[i][0] for i in chosen]
        (dataset_dir / subdir).mkdir(parents=True)
        (dataset_dir / subdir / "README.txt").write_text("not a class")
    for n, d in enumerate(dirs):
        for i in range(3 + n):
            write_image(dataset_dir / subdir / d / f"img_{i}.jpg")
    order = sorted(range(len(chosen)), key=lambda j: dirs[j]) if name != "ImageNetV2" else range(len(chosen))
    classnames = [IMAGENET_CLASSES[chosen[j]][1] for j in order]
    counts_test = [3 + j for j in order]
    indices = [chosen[j] for j in order]
    counts = {"train": counts_test, "val": [0] * len(counts_test), "test": counts_test}
    return Expected(dataset_dir, classnames, counts, extra={"imagenet_indices": indices})


class FakeData:
    """Builders bound to one temporary ``$DATA`` root."""

    def __init__(self, root: Path) -> None:
        self.root = root

    write_image = staticmethod(write_image)

    def split_dataset(self, name: str, **overrides) -> Expected:
        return build_split_dataset(self.root, **{**SPLIT_DATASETS[name], **overrides})

    def build(self, name: str) -> Expected:
        if name in SPLIT_DATASETS:
            return self.split_dataset(name)
        if name == "FGVCAircraft":
            return build_aircraft(self.root)
        if name == "ImageNet":
            return build_imagenet(self.root)
        return build_variant(self.root, name)

    def image_tree(self, folder: Path, classes: dict[str, int], *, ext: str = ".jpg") -> None:
        for cls, n in classes.items():
            for i in range(n):
                write_image(folder / cls / f"{cls}_{i:03d}{ext}")

    def mat(self, path: Path, variables: dict) -> None:
        from scipy.io import savemat

        path.parent.mkdir(parents=True, exist_ok=True)
        savemat(str(path), variables)

    @staticmethod
    def cars_annotations(records: list[tuple[str, int]]) -> np.ndarray:
        arr = np.empty((1, len(records)), dtype=[("fname", "O"), ("class", "O")])
        for i, (fname, cls) in enumerate(records):
            arr[0, i] = (fname, np.array([[cls]], dtype=np.uint8))
        return arr


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "DATA"
    root.mkdir()
    return root


@pytest.fixture
def fake(data_root: Path) -> FakeData:
    return FakeData(data_root)
