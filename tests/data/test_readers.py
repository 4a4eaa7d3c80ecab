"""Each reader on a fake tree in its CoOp layout: classes, labels, counts, template, val semantics."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ncprobe.data import (
    BENCHMARK_11,
    CUSTOM_TEMPLATES,
    DATASETS,
    DG_TARGETS,
    load_dataset,
    resolve_name,
)

ALL = list(BENCHMARK_11) + list(DG_TARGETS)


def test_registry_covers_the_coop_benchmark():
    assert len(BENCHMARK_11) == 11 and len(DG_TARGETS) == 4
    assert set(DATASETS) == set(CUSTOM_TEMPLATES)
    expected = {
        "ImageNet": 1000,
        "Caltech101": 100,
        "OxfordPets": 37,
        "StanfordCars": 196,
        "OxfordFlowers": 102,
        "Food101": 101,
        "FGVCAircraft": 100,
        "SUN397": 397,
        "DescribableTextures": 47,
        "EuroSAT": 10,
        "UCF101": 101,
        "ImageNetA": 200,
        "ImageNetR": 200,
    }
    for name, n in expected.items():
        assert DATASETS[name].num_classes == n


@pytest.mark.parametrize(
    "alias, canonical",
    [
        ("dtd", "DescribableTextures"),
        ("oxford_pets", "OxfordPets"),
        ("Flowers102", "OxfordFlowers"),
        ("imagenet-a", "ImageNetA"),
        ("caltech-101", "Caltech101"),
        ("imagenet_sketch", "ImageNetSketch"),
        ("FOOD-101", "Food101"),
        ("fgvc aircraft", "FGVCAircraft"),
        ("imagenet-rendition", "ImageNetR"),
    ],
)
def test_aliases(alias, canonical):
    assert resolve_name(alias) == canonical


@pytest.mark.parametrize("name", ALL)
def test_reader_classes_labels_counts(fake, data_root, name):
    exp = fake.build(name)
    ds = load_dataset(name, data_root)
    assert ds.name == name
    assert ds.classnames == exp.classnames
    assert ds.num_classes == len(exp.classnames)
    assert ds.template == CUSTOM_TEMPLATES[name]
    assert ds.dataset_dir == exp.dataset_dir.resolve()
    for split in ("train", "test"):
        assert ds.class_counts(split).tolist() == exp.counts[split], split
    if name in DG_TARGETS:
        assert ds.val == []
    elif name == "ImageNet":
        assert ds.val is ds.test  # CoOp: the official val set is both val and test
    else:
        assert ds.class_counts("val").tolist() == exp.counts["val"]
    for split in (ds.train, ds.val, ds.test):
        for item in split:
            assert ds.classnames[item.label] == item.classname
            assert os.path.isfile(item.impath)
    assert ds.fewshot_cache is None and ds.imbalance is None and ds.groups is None


def test_split_file_paths_joined_to_image_dir(fake, data_root):
    exp = fake.build("OxfordPets")
    ds = load_dataset("pets", data_root)
    assert all(it.impath.startswith(str(exp.dataset_dir.resolve() / "images") + os.sep) for it in ds.train)
    # StanfordCars paths hang from the dataset folder itself
    fake.build("StanfordCars")
    cars = load_dataset("cars", data_root)
    assert all("/stanford_cars/cars_train/" in it.impath for it in cars.test)


def test_caltech_and_sun_names(fake, data_root):
    fake.build("Caltech101")
    fake.build("SUN397")
    assert load_dataset("caltech101", data_root).classnames[:3] == ["face", "accordion", "airplane"]
    assert load_dataset("sun397", data_root).classnames == ["abbey", "outdoor apartment_building"]


def test_imagenet_variants_map_to_imagenet_labels(fake, data_root):
    for name in ("ImageNetA", "ImageNetR", "ImageNetSketch"):
        exp = fake.build(name)
        ds = load_dataset(name, data_root)
        assert ds.extra["imagenet_indices"] == exp.extra["imagenet_indices"]
        assert sorted(ds.extra["wnids"]) == ds.extra["wnids"]
        assert len(ds.train) == len(ds.test)  # test-only: train = all images (for few-shot draws)
    fake.build("ImageNetV2")
    v2 = load_dataset("imagenetv2", data_root)
    assert v2.extra["imagenet_indices"] == list(range(5))


def test_imagenet_labels_follow_sorted_wnid_folders(fake, data_root):
    fake.build("ImageNet")
    ds = load_dataset("imagenet", data_root)
    wnids = [os.path.basename(os.path.dirname(it.impath)) for it in ds.train]
    labels = [it.label for it in ds.train]
    order = sorted(set(wnids))
    assert labels == [order.index(w) for w in wnids]


def test_prompts_replace_underscores(fake, data_root):
    fake.build("UCF101")
    ds = load_dataset("ucf101", data_root)
    assert ds.prompts()[0] == "a photo of a person doing Apply Eye Makeup."
    assert ds.lab2cname == dict(enumerate(ds.classnames))


def test_verify_files_checks_every_image(fake, data_root):
    exp = fake.build("DescribableTextures")
    victim = sorted((exp.dataset_dir / "images" / "bumpy").iterdir())[-1]
    victim.unlink()
    load_dataset("dtd", data_root)  # default: one image per split is checked
    with pytest.raises(FileNotFoundError, match="1 of .* checked images"):
        load_dataset("dtd", data_root, verify_files=True)


def test_class_counts_shape(fake, data_root):
    fake.build("EuroSAT")
    ds = load_dataset("eurosat", data_root)
    counts = ds.class_counts("train")
    assert isinstance(counts, np.ndarray) and counts.shape == (3,)
