"""ImageNet and its domain-generalization targets (ImageNet-V2, -Sketch, -A, -R).

Sources: ``KaiyangZhou/CoOp/datasets/imagenet.py``, ``imagenetv2.py``, ``imagenet_sketch.py``,
``imagenet_a.py``, ``imagenet_r.py``.

* ImageNet: labels = positions of the **sorted** WordNet-id folders of ``images/train``; names
  from ``classnames.txt`` (``"<wnid> <name>"`` per line, CLIP's names). The official val set is
  the test set, and CoOp also uses it as val (``val_mode="test"``). CoOp caches the listing in
  ``preprocessed.pkl``; when that file exists it is read (so the item order, which the few-shot
  draw depends on, is CoOp's), otherwise the folders are listed.
* The variants are test-only (``val_mode="none"``). ImageNet-V2 folders are ``0..999`` (label =
  folder number, name = ``classnames.txt`` line); Sketch, -A and -R use sorted WordNet-id folders,
  so -A and -R get labels ``0..199`` over their 200-class subsets. ``extra["imagenet_indices"]``
  maps each label to its index in the 1000-class ImageNet label space.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from ncprobe.data.errors import ClassNameMismatchError, DatasetLayoutError
from ncprobe.data.fewshot_cache import read_coop_pickle
from ncprobe.data.items import Item, check_images_exist, listdir_nohidden
from ncprobe.data.pipeline import RawSplits

__all__ = [
    "IMAGENET_LAYOUTS",
    "read_classnames",
    "read_imagenet",
    "read_imagenetv2",
    "read_imagenet_sketch",
    "read_imagenet_a",
    "read_imagenet_r",
]

IMAGENET_LAYOUTS: dict[str, str] = {
    "imagenet": "imagenet/\n|-- images/\n|   |-- train/  # 1,000 folders like n01440764\n"
    "|   |-- val/    # 1,000 folders like n01440764 (class folders, not a flat folder)\n|-- classnames.txt\n",
    "imagenetv2": "imagenetv2/\n|-- imagenetv2-matched-frequency-format-val/  # folders 0..999\n"
    "|-- classnames.txt  # copied from imagenet/\n",
    "imagenet-sketch": "imagenet-sketch/\n|-- images/  # 1,000 folders like n01440764\n"
    "|-- classnames.txt  # copied from imagenet/\n",
    "imagenet-adversarial": "imagenet-adversarial/\n|-- imagenet-a/  # 200 folders like n01498041\n"
    "|-- classnames.txt  # copied from imagenet/\n",
    "imagenet-rendition": "imagenet-rendition/\n|-- imagenet-r/  # 200 folders like n01443537\n"
    "|-- classnames.txt  # copied from imagenet/\n",
}


def read_classnames(text_file: str | Path, *, layout: str = "") -> OrderedDict[str, str]:
    """``{wnid: classname}`` from a CoOp ``classnames.txt`` (CoOp ``ImageNet.read_classnames``).

    Raises
    ------
    DatasetLayoutError
        The file is missing.
    """
    text_file = Path(text_file)
    if not text_file.is_file():
        raise DatasetLayoutError(
            "class-name file",
            text_file,
            layout=layout,
            hint="Download classnames.txt from the link in CoOp's DATASETS.md (ImageNet section).",
        )
    names: OrderedDict[str, str] = OrderedDict()
    with open(text_file, encoding="utf-8") as f:
        for line in f:
            parts = line.strip().split(" ")
            if parts and parts[0]:
                names[parts[0]] = " ".join(parts[1:])
    return names


def _class_dirs(folder: Path, layout: str) -> list[str]:
    if not folder.is_dir():
        raise DatasetLayoutError("image folder", folder, layout=layout)
    dirs = sorted(name for name in listdir_nohidden(folder) if (folder / name).is_dir())
    if not dirs:
        raise DatasetLayoutError(
            "class sub-folders", folder / "<wnid>", layout=layout, hint=f"{folder} contains no class folders."
        )
    return dirs


def _read_folders(
    image_dir: Path, folders: list[str], names: dict[str, str], *, sort_listing: bool, source: Path
) -> list[Item]:
    items = []
    for label, folder in enumerate(folders):
        if folder not in names:
            raise ClassNameMismatchError(f"class folder {image_dir / folder} has no entry in {source}")
        class_dir = image_dir / folder
        for name in listdir_nohidden(class_dir, sort=sort_listing):
            items.append(Item(str(class_dir / name), label, names[folder]))
    return items


def read_imagenet(
    dataset_dir: Path,
    *,
    create_split: bool = False,
    split_seed: int = 1,
    sort_listing: bool = True,
    verify_files: bool = False,
) -> RawSplits:
    """ImageNet-1k (CoOp ``imagenet.py``). ``create_split``/``split_seed`` are ignored (fixed split).

    ``sort_listing=False`` lists images in ``os.listdir`` order, as CoOp does when it creates
    ``preprocessed.pkl``; the default sorts them for machine-independent few-shot draws.
    """
    layout = IMAGENET_LAYOUTS["imagenet"]
    names_file = dataset_dir / "classnames.txt"
    names = read_classnames(names_file, layout=layout)
    preprocessed = dataset_dir / "preprocessed.pkl"
    if preprocessed.is_file():
        data = read_coop_pickle(preprocessed, dataset_dir=dataset_dir)
        train, test = data.get("train") or [], data.get("test") or []
        source = str(preprocessed)
    else:
        train_dir, val_dir = dataset_dir / "images" / "train", dataset_dir / "images" / "val"
        train_folders = _class_dirs(train_dir, layout)
        val_folders = _class_dirs(val_dir, layout)
        if train_folders != val_folders:
            only = sorted(set(train_folders) ^ set(val_folders))[:5]
            raise ClassNameMismatchError(
                f"{train_dir} and {val_dir} must hold the same class folders (labels are their sorted "
                f"positions); they differ in e.g. {only}"
            )
        train = _read_folders(train_dir, train_folders, names, sort_listing=sort_listing, source=names_file)
        test = _read_folders(val_dir, val_folders, names, sort_listing=sort_listing, source=names_file)
        source = str(dataset_dir / "images")
    for items in (train, test):
        check_images_exist(
            items, source=source, image_dir=dataset_dir / "images", layout=layout, verify_all=verify_files
        )
    return RawSplits(train, [], test, "test", source)


def _variant(
    dataset_dir: Path,
    image_subdir: str,
    *,
    folders: list[str] | None,
    sort_listing: bool,
    verify_files: bool,
    ignored: tuple[str, ...] = (),
) -> RawSplits:
    layout = IMAGENET_LAYOUTS[dataset_dir.name] if dataset_dir.name in IMAGENET_LAYOUTS else ""
    names_file = dataset_dir / "classnames.txt"
    names = read_classnames(names_file, layout=layout)
    wnid_index = {wnid: i for i, wnid in enumerate(names)}
    image_dir = dataset_dir / image_subdir
    if folders is None:  # Sketch / -A / -R: sorted WordNet-id folders
        folders = [f for f in _class_dirs(image_dir, layout) if f not in ignored]
        data = _read_folders(image_dir, folders, names, sort_listing=sort_listing, source=names_file)
        wnids = folders
    else:  # V2: folder "<label>" holds class wnids[label]
        if not image_dir.is_dir():
            raise DatasetLayoutError("image folder", image_dir, layout=layout)
        wnids = list(names)
        data = []
        for label, folder in enumerate(folders):
            class_dir = image_dir / folder
            if not class_dir.is_dir():
                raise DatasetLayoutError(
                    "class folder",
                    class_dir,
                    layout=layout,
                    hint=f"classnames.txt lists {len(wnids)} classes: folders 0..{len(wnids) - 1} expected.",
                )
            data += [
                Item(str(class_dir / n), label, names[wnids[label]])
                for n in listdir_nohidden(class_dir, sort=sort_listing)
            ]
    check_images_exist(data, source=str(image_dir), image_dir=image_dir, layout=layout, verify_all=verify_files)
    extra = {"wnids": list(wnids), "imagenet_indices": [wnid_index[w] for w in wnids]}
    return RawSplits(list(data), [], data, "none", str(image_dir), extra)


def read_imagenetv2(
    dataset_dir: Path,
    *,
    create_split: bool = False,
    split_seed: int = 1,
    sort_listing: bool = True,
    verify_files: bool = False,
) -> RawSplits:
    """ImageNet-V2 matched-frequency (CoOp ``imagenetv2.py``): class folders ``0..N-1``."""
    names = read_classnames(dataset_dir / "classnames.txt", layout=IMAGENET_LAYOUTS["imagenetv2"])
    return _variant(
        dataset_dir,
        "imagenetv2-matched-frequency-format-val",
        folders=[str(i) for i in range(len(names))],
        sort_listing=sort_listing,
        verify_files=verify_files,
    )


def read_imagenet_sketch(
    dataset_dir: Path,
    *,
    create_split: bool = False,
    split_seed: int = 1,
    sort_listing: bool = True,
    verify_files: bool = False,
) -> RawSplits:
    """ImageNet-Sketch (CoOp ``imagenet_sketch.py``): 1000 classes, test only."""
    return _variant(dataset_dir, "images", folders=None, sort_listing=sort_listing, verify_files=verify_files)


def read_imagenet_a(
    dataset_dir: Path,
    *,
    create_split: bool = False,
    split_seed: int = 1,
    sort_listing: bool = True,
    verify_files: bool = False,
) -> RawSplits:
    """ImageNet-A (CoOp ``imagenet_a.py``): 200-class subset, labels 0..199 in sorted-wnid order."""
    return _variant(
        dataset_dir,
        "imagenet-a",
        folders=None,
        sort_listing=sort_listing,
        verify_files=verify_files,
        ignored=("README.txt",),
    )


def read_imagenet_r(
    dataset_dir: Path,
    *,
    create_split: bool = False,
    split_seed: int = 1,
    sort_listing: bool = True,
    verify_files: bool = False,
) -> RawSplits:
    """ImageNet-R (CoOp ``imagenet_r.py``): 200-class subset, labels 0..199 in sorted-wnid order."""
    return _variant(
        dataset_dir,
        "imagenet-r",
        folders=None,
        sort_listing=sort_listing,
        verify_files=verify_files,
        ignored=("README.txt",),
    )
