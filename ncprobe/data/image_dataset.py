"""Torch datasets over :class:`~ncprobe.data.items.Item` lists, and a generic image-folder reader.

``ImageItemDataset`` plays the role of Dassl's ``DatasetWrapper`` (``dassl/data/data_manager.py``):
it opens each image with PIL, converts it to RGB (Dassl ``read_image``) and applies a transform,
returning ``(image_tensor, label)``.
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from PIL import Image
from torch.utils.data import Dataset

from ncprobe.data.base_novel import Subsample
from ncprobe.data.errors import ClassNameMismatchError, DatasetLayoutError
from ncprobe.data.imbalance import ImbalanceSpec
from ncprobe.data.items import Item, listdir_nohidden
from ncprobe.data.manifest import FewShotManifest, register_manifest_loader
from ncprobe.data.pipeline import PreparedDataset, RawSplits, prepare_dataset
from ncprobe.data.splits import read_and_split_data
from ncprobe.data.transforms import build_test_transform

__all__ = [
    "IMAGE_EXTENSIONS",
    "IMAGE_FOLDER_LAYOUT",
    "read_image",
    "ImageItemDataset",
    "read_image_folder",
    "load_image_folder",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".webp",
    ".tif",
    ".tiff",
    ".ppm",
)
IMAGE_FOLDER_LAYOUT = (
    "either\n<root>/\n|-- train/<class>/*.jpg\n|-- val/<class>/*.jpg    (optional)\n"
    "|-- test/<class>/*.jpg   (optional; at least one of val/test)\n"
    "or\n<root>/<class>/*.jpg   (all images are the test set unless split=(p_train, p_val) is given)\n"
)
_RESERVED = ("split_fewshot",)


def read_image(path: str | os.PathLike) -> Image.Image:
    """Open an image as RGB (Dassl ``read_image``), raising ``FileNotFoundError`` naming the path."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no image file at {path}")
    with Image.open(path) as img:
        return img.convert("RGB")


class ImageItemDataset(Dataset):
    """A map-style torch dataset over items: ``ds[i] == (transform(image_i), label_i)``.

    Parameters
    ----------
    items:
        The items (e.g. ``PreparedDataset.train``).
    transform:
        Callable on a PIL RGB image; default :func:`~ncprobe.data.transforms.build_test_transform`
        (224 px, CLIP normalisation).

    Feature caches identify the dataset by :attr:`cache_id` (no image is decoded for it beyond
    three probes).
    """

    def __init__(self, items: Sequence[Item], *, transform: Callable | None = None) -> None:
        self.items = list(items)
        self.transform = transform if transform is not None else build_test_transform()

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        n_cls = len({item.label for item in self.items})
        return f"ImageItemDataset({len(self.items)} images, {n_cls} classes, transform={type(self.transform).__name__})"

    @property
    def cache_id(self) -> dict:
        """Identity for :func:`ncprobe.models.features.extract_features`'s cache.

        A digest of every item's path, label, file size and modification time (so a different
        selection, relabelling or an image rewritten in place gives a new identity), the
        transform's ``repr`` (sizes, interpolation, normalisation), and digests of the transformed
        first, middle and last images: a random transform (training augmentation) makes those
        differ on every call, so such features are never reused from the cache.
        """
        digest = hashlib.sha256()
        for item in self.items:
            try:
                st = os.stat(item.impath)
                stamp = f"{st.st_size}:{st.st_mtime_ns}"
            except OSError:
                stamp = "missing"
            digest.update(f"{item.impath}\t{item.label}\t{stamp}\n".encode())
        n = len(self.items)
        probes = []
        for i in sorted({0, n // 2, n - 1}) if n else []:
            image = self[i][0]
            if isinstance(image, torch.Tensor):
                t = image.detach().cpu().contiguous()
                probes.append(
                    f"{t.dtype}{tuple(t.shape)}:"
                    + hashlib.sha256(t.reshape(-1).view(torch.uint8).numpy()).hexdigest()[:16]
                )
            else:
                probes.append(repr(image))
        return {
            "class": "ncprobe.data.ImageItemDataset",
            "items": digest.hexdigest(),
            "transform": repr(self.transform),
            "probes": probes,
        }

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        item = self.items[index]
        return self.transform(read_image(item.impath)), item.label

    @property
    def labels(self) -> torch.Tensor:
        """All labels as an int64 tensor (no image is read)."""
        return torch.tensor([item.label for item in self.items], dtype=torch.int64)


def _class_folders(folder: Path) -> list[str]:
    return sorted(name for name in listdir_nohidden(folder) if (folder / name).is_dir() and name not in _RESERVED)


def _images(folder: Path, extensions: Sequence[str], sort_listing: bool) -> list[str]:
    exts = tuple(e.lower() for e in extensions)
    return [str(folder / name) for name in listdir_nohidden(folder, sort=sort_listing) if name.lower().endswith(exts)]


def read_image_folder(
    root: str | os.PathLike,
    *,
    split: tuple[float, float] | None = None,
    split_seed: int = 1,
    sort_listing: bool = True,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
) -> RawSplits:
    """Read a generic class-per-folder tree (layouts in :data:`IMAGE_FOLDER_LAYOUT`).

    Parameters
    ----------
    root:
        The dataset folder.
    split:
        Only for the flat ``<root>/<class>`` layout: ``(p_train, p_val)`` splits each class with
        CoOp's ``read_and_split_data`` (test gets the rest). Without it every image is test (and
        train, so few-shot sampling can draw from it), with no val.
    split_seed:
        Seed of that split.
    sort_listing:
        Sort file listings before use (reproducible).
    extensions:
        Image file suffixes accepted (case-insensitive). Not applied with ``split``, whose
        CoOp semantics take every file.

    Returns
    -------
    RawSplits
        Labels = positions of the sorted class-folder names (of ``train/`` in the split layout);
        class names = folder names.

    Raises
    ------
    DatasetLayoutError
        ``root`` (or its class folders) is missing.
    ClassNameMismatchError
        ``val/`` or ``test/`` holds a class folder that ``train/`` lacks.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError("image-folder dataset", root, layout=IMAGE_FOLDER_LAYOUT)
    if (root / "train").is_dir():
        classes = _class_folders(root / "train")
        if not classes:
            raise DatasetLayoutError("class folders", root / "train" / "<class>", layout=IMAGE_FOLDER_LAYOUT)
        index = {c: i for i, c in enumerate(classes)}
        splits: dict[str, list[Item]] = {}
        for name in ("train", "val", "test"):
            folder = root / name
            if not folder.is_dir():
                continue
            folders = _class_folders(folder)
            unknown = sorted(set(folders) - set(index))
            if unknown:
                raise ClassNameMismatchError(f"{folder} has class folders missing from {root / 'train'}: {unknown[:5]}")
            splits[name] = [
                Item(p, index[c], c) for c in folders for p in _images(folder / c, extensions, sort_listing)
            ]
        if "val" not in splits and "test" not in splits:
            raise DatasetLayoutError("val/ or test/ folder", root / "test", layout=IMAGE_FOLDER_LAYOUT)
        if "val" in splits and "test" in splits:
            return RawSplits(splits["train"], splits["val"], splits["test"], "separate", str(root))
        test = splits.get("test", splits.get("val", []))
        return RawSplits(splits["train"], [], test, "test", str(root))
    classes = _class_folders(root)
    if not classes:
        raise DatasetLayoutError("class folders", root / "<class>", layout=IMAGE_FOLDER_LAYOUT)
    if split is not None:
        train, val, test = read_and_split_data(
            root,
            rng=random.Random(split_seed),
            p_trn=split[0],
            p_val=split[1],
            ignored=_RESERVED,
            sort_listing=sort_listing,
        )
        return RawSplits(train, val, test, "separate", str(root))
    data = [Item(p, i, c) for i, c in enumerate(classes) for p in _images(root / c, extensions, sort_listing)]
    return RawSplits(list(data), [], data, "none", str(root))


def load_image_folder(
    root: str | os.PathLike,
    *,
    name: str | None = None,
    template: str = "a photo of a {}.",
    num_shots: int | None = None,
    seed: int | None = None,
    subsample: Subsample | None = None,
    imbalance: ImbalanceSpec | None = None,
    repeat: bool = False,
    use_cache: bool = True,
    fewshot_dir: str | os.PathLike | None = None,
    split: tuple[float, float] | None = None,
    split_seed: int = 1,
    sort_listing: bool = True,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
    manifest: FewShotManifest | str | os.PathLike | None = None,
) -> PreparedDataset:
    """Any class-per-folder image tree as a :class:`~ncprobe.data.pipeline.PreparedDataset`.

    Same protocol as :func:`ncprobe.data.load_dataset` (few-shot with the
    ``<root>/split_fewshot`` cache, base/novel, imbalance, ``manifest=``); reading options as in
    :func:`read_image_folder`. ``name`` defaults to the folder name (or the manifest's dataset
    name), ``template`` to ``"a photo of a {}."`` (or the manifest's).
    """
    raw = read_image_folder(root, split=split, split_seed=split_seed, sort_listing=sort_listing, extensions=extensions)
    root = Path(root)
    if manifest is not None and not isinstance(manifest, FewShotManifest):
        manifest = FewShotManifest.from_json(manifest)
    if manifest is not None:
        name = name or manifest.dataset
        template = manifest.template if manifest.template is not None and template == "a photo of a {}." else template
    return prepare_dataset(
        raw,
        name=name or root.name,
        dataset_dir=root,
        template=template,
        num_shots=num_shots,
        seed=seed,
        subsample=subsample,
        imbalance=imbalance,
        repeat=repeat,
        fewshot_dir=fewshot_dir,
        use_cache=use_cache,
        manifest=manifest,
        loader="load_image_folder",
    )


def _load_manifest_dataset(manifest: FewShotManifest, root: str | os.PathLike, **options: Any) -> PreparedDataset:
    """A ``loader="load_image_folder"`` manifest's dataset, from the dataset folder ``root`` itself."""
    return load_image_folder(root, manifest=manifest, **options)


register_manifest_loader("load_image_folder", _load_manifest_dataset)
