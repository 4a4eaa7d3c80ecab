"""Transforms (Dassl protocol), the torch dataset over items, and the generic image-folder reader."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms as T

from ncprobe.data import (
    CLIP_MEAN,
    CLIP_STD,
    ClassNameMismatchError,
    DatasetLayoutError,
    ImageItemDataset,
    Item,
    build_test_transform,
    build_train_transform,
    build_transform,
    load_dataset,
    load_image_folder,
    read_image,
)


def _image(w=300, h=200, color=(128, 64, 32)):
    return Image.new("RGB", (w, h), color)


def test_train_transform_protocol_and_shape():
    tf = build_train_transform()
    steps = tf.transforms
    assert isinstance(steps[0], T.RandomResizedCrop)
    assert steps[0].scale == (0.08, 1.0) and steps[0].size == (224, 224)
    assert steps[0].interpolation == T.InterpolationMode.BICUBIC
    assert isinstance(steps[1], T.RandomHorizontalFlip)
    assert isinstance(steps[-1], T.Normalize) and tuple(steps[-1].mean) == CLIP_MEAN
    out = tf(_image())
    assert out.shape == (3, 224, 224) and out.dtype == torch.float32


def test_test_transform_resizes_shorter_side_then_center_crops():
    tf = build_test_transform()
    resize, crop = tf.transforms[0], tf.transforms[1]
    assert isinstance(resize, T.Resize) and resize.size == 224
    assert resize.interpolation == T.InterpolationMode.BICUBIC
    assert isinstance(crop, T.CenterCrop) and tuple(crop.size) == (224, 224)
    out = tf(_image(500, 250))
    assert out.shape == (3, 224, 224)
    # a constant image normalises to (value/255 - mean) / std in every pixel
    expected = torch.tensor([(c / 255 - m) / s for c, m, s in zip((128, 64, 32), CLIP_MEAN, CLIP_STD)])
    assert torch.allclose(out.mean(dim=(1, 2)), expected, atol=1e-4)


def test_transform_options():
    half = (0.5, 0.5, 0.5)
    tf = build_test_transform(size=(32, 48), mean=half, std=half, interpolation="bilinear")
    out = tf(_image(100, 100, (255, 255, 255)))
    assert out.shape == (3, 32, 48) and torch.allclose(out, torch.ones_like(out))
    train = build_train_transform(size=64, scale=(0.5, 1.0), hflip=False)
    assert not any(isinstance(s, T.RandomHorizontalFlip) for s in train.transforms)
    assert train(_image()).shape == (3, 64, 64)
    assert isinstance(build_transform("val").transforms[1], T.CenterCrop)
    with pytest.raises(ValueError, match="interpolation"):
        build_test_transform(interpolation="lanczos3")
    with pytest.raises(ValueError, match="size"):
        build_train_transform(size=(0, 3))
    with pytest.raises(ValueError, match="split"):
        build_transform("holdout")


def test_image_item_dataset_batches(fake, data_root):
    fake.build("DescribableTextures")
    ds = load_dataset("dtd", data_root, num_shots=2, seed=1)
    torch_ds = ImageItemDataset(ds.train, transform=build_test_transform(size=32))
    image, label = torch_ds[3]
    assert image.shape == (3, 32, 32) and label == ds.train[3].label
    images, labels = next(iter(DataLoader(torch_ds, batch_size=4)))
    assert images.shape == (4, 3, 32, 32) and labels.tolist() == [it.label for it in ds.train[:4]]
    assert torch_ds.labels.tolist() == [it.label for it in ds.train] and len(torch_ds) == len(ds.train)
    default = ImageItemDataset(ds.test[:1])  # default transform = 224 test transform
    assert default[0][0].shape == (3, 224, 224)


def test_read_image_converts_to_rgb_and_names_missing_path(tmp_path):
    Image.new("L", (5, 5), 7).save(tmp_path / "gray.png")
    assert read_image(tmp_path / "gray.png").mode == "RGB"
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        ImageItemDataset([Item(str(tmp_path / "nope.jpg"), 0, "x")])[0]


def test_image_folder_with_split_dirs(fake, tmp_path):
    root = tmp_path / "mydata"
    fake.image_tree(root / "train", {"cat": 5, "dog": 6, "emu": 4})
    fake.image_tree(root / "val", {"cat": 2, "dog": 2, "emu": 2})
    fake.image_tree(root / "test", {"cat": 3, "dog": 1}, ext=".PNG")
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    ds = load_image_folder(root, num_shots=2, seed=1)
    assert ds.name == "mydata" and ds.classnames == ["cat", "dog", "emu"]
    assert ds.class_counts("train").tolist() == [2, 2, 2] and ds.class_counts("val").tolist() == [2, 2, 2]
    assert ds.class_counts("test").tolist() == [3, 1, 0]
    assert ds.template == "a photo of a {}." and ds.prompts()[1] == "a photo of a dog."
    assert (root / "split_fewshot" / "ncprobe_shot_2-seed_1.json").is_file()
    assert not (root / "split_fewshot" / "shot_2-seed_1.pkl").exists()
    only_test = tmp_path / "two"
    fake.image_tree(only_test / "train", {"a": 3, "b": 3})
    fake.image_tree(only_test / "test", {"a": 1, "b": 1})
    two = load_image_folder(only_test, template="{} texture.")
    assert two.val is two.test and two.prompts() == ["a texture.", "b texture."]


def test_image_folder_flat_layout(fake, tmp_path):
    root = tmp_path / "flat"
    fake.image_tree(root, {"b_class": 10, "a_class": 10})
    ds = load_image_folder(root, num_shots=3, seed=2)  # flat: all images are test; train draws from them
    assert ds.classnames == ["a_class", "b_class"] and len(ds.test) == 20 and ds.val == []
    assert ds.class_counts("train").tolist() == [3, 3]
    again = load_image_folder(root)  # the split_fewshot folder is not mistaken for a class
    assert again.classnames == ["a_class", "b_class"]
    split = load_image_folder(root, split=(0.5, 0.2), split_seed=0)
    assert split.class_counts("train").tolist() == [5, 5] and split.class_counts("val").tolist() == [2, 2]


def test_image_folder_errors(fake, tmp_path):
    with pytest.raises(DatasetLayoutError, match="missing_root"):
        load_image_folder(tmp_path / "missing_root")
    root = tmp_path / "bad"
    fake.image_tree(root / "train", {"a": 2})
    with pytest.raises(DatasetLayoutError, match="val/ or test/"):
        load_image_folder(root)
    fake.image_tree(root / "test", {"a": 1, "zebra": 1})
    with pytest.raises(ClassNameMismatchError, match="zebra"):
        load_image_folder(root)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match="class folders"):
        load_image_folder(tmp_path / "empty")


def test_image_item_dataset_cache_id_tracks_items_and_files(fake, tmp_path):
    root = tmp_path / "imgs"
    fake.image_tree(root, {"cat": 3, "dog": 3})
    items = [Item(str(p), int(p.parent.name == "dog"), p.parent.name) for p in sorted(root.rglob("*.jpg"))]
    ds = ImageItemDataset(items)
    first = ds.cache_id
    assert ImageItemDataset(list(items)).cache_id == first  # deterministic transform: stable identity
    assert ImageItemDataset(items[:-1]).cache_id != first
    relabelled = [Item(it.impath, 1 - it.label, it.classname) for it in items]
    assert ImageItemDataset(relabelled).cache_id != first
    victim = Path(items[2].impath)  # an image rewritten in place (same path, other bytes)
    victim.write_bytes(victim.read_bytes() + b"\0\0")
    assert ImageItemDataset(items).cache_id != first
