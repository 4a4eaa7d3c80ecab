"""Bad input gives errors that name the expected path, layout or value."""

from __future__ import annotations

import json
import shutil

import pytest

from ncprobe.data import (
    ClassNameMismatchError,
    DatasetLayoutError,
    SplitFileError,
    UnknownDatasetError,
    load_dataset,
)


def test_unknown_dataset_lists_known_ones(data_root):
    with pytest.raises(UnknownDatasetError) as err:
        load_dataset("cifar10", data_root)
    msg = str(err.value)
    assert "'cifar10'" in msg and "DescribableTextures (dtd)" in msg
    assert "ImageNetR (imagenet-rendition)" in msg
    assert isinstance(err.value, ValueError)


def test_missing_dataset_folder_names_path_and_layout(data_root):
    with pytest.raises(DatasetLayoutError) as err:
        load_dataset("dtd", data_root)
    msg = str(err.value)
    assert str(data_root.resolve() / "dtd") in msg
    assert "split_zhou_DescribableTextures.json" in msg and "Expected layout" in msg
    assert isinstance(err.value, FileNotFoundError)


def test_dataset_folder_passed_as_root(fake, data_root):
    fake.build("EuroSAT")
    with pytest.raises(DatasetLayoutError, match="pass its parent"):
        load_dataset("eurosat", data_root / "eurosat")


def test_missing_split_file(fake, data_root):
    exp = fake.build("Food101")
    exp.split_file.unlink()
    with pytest.raises(DatasetLayoutError) as err:
        load_dataset("food101", data_root)
    msg = str(err.value)
    assert f"split file not found: expected {exp.split_file.resolve()}" in msg
    assert "create_split=True" in msg and "food-101/" in msg


def test_missing_image_folder(fake, data_root):
    exp = fake.build("UCF101")
    shutil.rmtree(exp.dataset_dir / "UCF-101-midframes")
    with pytest.raises(DatasetLayoutError, match=r"image folder not found: expected .*UCF-101-midframes"):
        load_dataset("ucf101", data_root)


def test_images_listed_in_split_but_absent(fake, data_root):
    exp = fake.build("OxfordPets")
    shutil.rmtree(exp.dataset_dir / "images")
    (exp.dataset_dir / "images").mkdir()
    with pytest.raises(DatasetLayoutError, match="image listed in .*split_zhou_OxfordPets.json"):
        load_dataset("pets", data_root)


def test_corrupt_split_files(fake, data_root):
    exp = fake.build("DescribableTextures")
    exp.split_file.write_text("{not json")
    with pytest.raises(SplitFileError, match="not valid JSON"):
        load_dataset("dtd", data_root)
    exp.split_file.write_text(json.dumps({"train": [], "test": []}))
    with pytest.raises(SplitFileError, match="keys train/val/test"):
        load_dataset("dtd", data_root)
    exp.split_file.write_text(json.dumps({"train": [["a.jpg", 0]], "val": [], "test": []}))
    with pytest.raises(SplitFileError, match=r"train\[0\]"):
        load_dataset("dtd", data_root)


def test_class_names_disagree_within_split_file(fake, data_root):
    exp = fake.build("DescribableTextures")
    split = json.loads(exp.split_file.read_text())
    split["test"][0][2] = "stripy"  # label 0 is "banded" elsewhere
    exp.split_file.write_text(json.dumps(split))
    pattern = "label 0 is named 'banded' in the train split but 'stripy'"
    with pytest.raises(ClassNameMismatchError, match=pattern):
        load_dataset("dtd", data_root)


def test_label_gap_in_split_file(fake, data_root):
    exp = fake.build("DescribableTextures")
    split = json.loads(exp.split_file.read_text())
    for name in split:
        split[name] = [row for row in split[name] if row[1] != 2]
    exp.split_file.write_text(json.dumps(split))
    with pytest.raises(ClassNameMismatchError, match="without gaps.*missing e.g. \\[2\\]"):
        load_dataset("dtd", data_root)


def test_imagenet_class_name_file_problems(fake, data_root):
    exp = fake.build("ImageNet")
    names = exp.dataset_dir / "classnames.txt"
    lines = names.read_text().splitlines()
    names.write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(ClassNameMismatchError, match="n01440764 has no entry in .*classnames.txt"):
        load_dataset("imagenet", data_root)
    names.unlink()
    with pytest.raises(DatasetLayoutError, match="class-name file not found"):
        load_dataset("imagenet", data_root)


def test_imagenet_val_must_have_class_folders(fake, data_root):
    exp = fake.build("ImageNet")
    val = exp.dataset_dir / "images" / "val"
    shutil.rmtree(val / "n01440764")
    with pytest.raises(ClassNameMismatchError, match="same class folders"):
        load_dataset("imagenet", data_root)
    shutil.rmtree(val)
    val.mkdir()
    (val / "ILSVRC2012_val_00000001.JPEG").write_bytes(b"")
    with pytest.raises(DatasetLayoutError, match="class sub-folders"):
        load_dataset("imagenet", data_root)


def test_imagenetv2_missing_class_folder(fake, data_root):
    exp = fake.build("ImageNetV2")
    shutil.rmtree(exp.dataset_dir / "imagenetv2-matched-frequency-format-val" / "3")
    with pytest.raises(DatasetLayoutError, match="folders 0..4 expected"):
        load_dataset("imagenetv2", data_root)


def test_aircraft_unknown_variant_and_missing_list(fake, data_root):
    exp = fake.build("FGVCAircraft")
    (exp.dataset_dir / "variants.txt").write_text("707-320\nA300B4\n")
    with pytest.raises(ClassNameMismatchError, match="'Cessna 172'.*not in variants.txt"):
        load_dataset("aircraft", data_root)
    (exp.dataset_dir / "variants.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="annotation file not found: expected .*variants.txt"):
        load_dataset("aircraft", data_root)


def test_flowers_label_without_name(fake, data_root):
    import numpy as np

    d = data_root / "oxford_flowers"
    fake.mat(d / "imagelabels.mat", {"labels": np.array([[1] * 10 + [2] * 10])})
    (d / "cat_to_name.json").write_text(json.dumps({"1": "pink primrose"}))
    (d / "jpg").mkdir()
    with pytest.raises(ClassNameMismatchError, match="label 2 of imagelabels.mat"):
        load_dataset("flowers", data_root, create_split=True)
