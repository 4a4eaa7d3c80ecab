"""Rebuilding a split from raw annotations (``create_split=True``), and split-file round trips."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest

from ncprobe.data import (
    Item,
    load_dataset,
    read_and_split_data,
    read_split,
    save_split,
    split_trainval,
)


def _coop_read_and_split_data(image_dir, seed, p_trn=0.5, p_val=0.2, ignored=(), new_cnames=None):
    """Mirror of CoOp ``DTD.read_and_split_data`` after ``random.seed(seed)`` (sorted listing)."""
    random.seed(seed)
    categories = sorted(c for c in os.listdir(image_dir) if not c.startswith(".") and c not in ignored)
    train, val, test = [], [], []
    for label, category in enumerate(categories):
        category_dir = os.path.join(image_dir, category)
        images = [os.path.join(category_dir, im) for im in sorted(os.listdir(category_dir))]
        random.shuffle(images)
        n_total = len(images)
        n_train, n_val = round(n_total * p_trn), round(n_total * p_val)
        name = new_cnames.get(category, category) if new_cnames else category
        train += [(im, label, name) for im in images[:n_train]]
        val += [(im, label, name) for im in images[n_train : n_train + n_val]]
        test += [(im, label, name) for im in images[n_train + n_val :]]
    return train, val, test


def _triples(items):
    return [(it.impath, it.label, it.classname) for it in items]


def test_missing_split_rebuilt_like_coop_and_saved(fake, data_root):
    image_dir = data_root / "dtd" / "images"
    fake.image_tree(image_dir, {"banded": 10, "blotchy": 7, "zigzagged": 13})
    with pytest.warns(UserWarning, match="NOT CoOp's published split"):
        ds = load_dataset("dtd", data_root, create_split=True, split_seed=4)
    want = _coop_read_and_split_data(str(image_dir.resolve()), 4)
    assert (_triples(ds.train), _triples(ds.val), _triples(ds.test)) == want
    assert ds.class_counts("train").tolist() == [5, 4, 6]  # round(n/2), half-to-even: 7*0.5 -> 4
    assert ds.class_counts("val").tolist() == [2, 1, 3]
    split_path = data_root / "dtd" / "split_zhou_DescribableTextures.json"
    saved = json.loads(split_path.read_text())
    assert saved["train"][0][0] == os.path.relpath(ds.train[0].impath, image_dir.resolve())
    again = load_dataset("dtd", data_root)  # now read from the saved file, no warning needed
    assert again.train == ds.train and again.test == ds.test


def test_caltech_fallback_ignores_and_renames(fake, data_root):
    image_dir = data_root / "caltech-101" / "101_ObjectCategories"
    fake.image_tree(image_dir, {"BACKGROUND_Google": 6, "Faces": 6, "Faces_easy": 6, "Leopards": 6, "ant": 6})
    with pytest.warns(UserWarning):
        ds = load_dataset("caltech101", data_root, create_split=True)
    assert ds.classnames == ["face", "leopard", "ant"]


def test_eurosat_fallback_renames(fake, data_root):
    fake.image_tree(data_root / "eurosat" / "2750", {"AnnualCrop": 5, "SeaLake": 5})
    with pytest.warns(UserWarning):
        ds = load_dataset("eurosat", data_root, create_split=True)
    assert ds.classnames == ["Annual Crop Land", "Sea or Lake"]


def test_eurosat_raw_names_in_split_warn(fake, data_root):
    fake.split_dataset("EuroSAT", classes=[("AnnualCrop", "AnnualCrop"), ("Forest", "Forest")])
    with pytest.warns(UserWarning, match="raw folder names"):
        load_dataset("eurosat", data_root)


def test_pets_fallback_from_annotations(fake, data_root):
    d = data_root / "oxford_pets"
    breeds = [("Abyssinian", 1), ("american_bulldog", 2)]
    trainval, test = [], []
    for breed, cls in breeds:
        for i in range(10):
            fake_line = f"{breed}_{i} {cls} 1 1"
            (trainval if i < 7 else test).append(fake_line)
            fake.write_image(d / "images" / f"{breed}_{i}.jpg")
    (d / "annotations").mkdir()
    (d / "annotations" / "trainval.txt").write_text("\n".join(trainval) + "\n")
    (d / "annotations" / "test.txt").write_text("\n".join(test) + "\n")
    with pytest.warns(UserWarning):
        ds = load_dataset("pets", data_root, create_split=True, split_seed=0)
    assert ds.classnames == ["abyssinian", "american_bulldog"]
    assert ds.class_counts("val").tolist() == [1, 1]  # round(7 * 0.2)
    assert ds.class_counts("train").tolist() == [6, 6] and ds.class_counts("test").tolist() == [3, 3]


def test_split_trainval_mirrors_coop():
    items = [Item(f"/x/{i}.jpg", (i * 7) % 3, "abc"[(i * 7) % 3]) for i in range(30)]
    train, val = split_trainval(items, rng=random.Random(9))
    random.seed(9)  # CoOp OxfordPets.split_trainval on the global stream
    tracker = {}
    for idx, item in enumerate(items):
        tracker.setdefault(item.label, []).append(idx)
    want_train, want_val = [], []
    for idxs in tracker.values():
        n_val = round(len(idxs) * 0.2)
        random.shuffle(idxs)
        for n, idx in enumerate(idxs):
            (want_val if n < n_val else want_train).append(items[idx])
    assert train == want_train and val == want_val


def test_ucf_sun_flowers_cars_fallbacks(fake, data_root):
    write_image = fake.write_image
    # UCF101
    u = data_root / "ucf101"
    (u / "ucfTrainTestlist").mkdir(parents=True)
    (u / "ucfTrainTestlist" / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 YoYo\n")
    lines = {"train": [], "test": []}
    for action, renamed, cls in (("ApplyEyeMakeup", "Apply_Eye_Makeup", 1), ("YoYo", "Yo_Yo", 2)):
        for i in range(8):
            write_image(u / "UCF-101-midframes" / renamed / f"v_{action}_g{i:02d}_c01.jpg")
            split = "train" if i < 6 else "test"
            suffix = f" {cls}" if split == "train" else ""
            lines[split].append(f"{action}/v_{action}_g{i:02d}_c01.avi{suffix}")
    (u / "ucfTrainTestlist" / "trainlist01.txt").write_text("\n".join(lines["train"]))
    (u / "ucfTrainTestlist" / "testlist01.txt").write_text("\n".join(lines["test"]))
    # SUN397
    s = data_root / "sun397"
    s.mkdir()
    (s / "ClassName.txt").write_text("/a/abbey\n/a/apartment_building/outdoor\n")
    sun = {"Training_01.txt": [], "Testing_01.txt": []}
    for folder in ("a/abbey", "a/apartment_building/outdoor"):
        for i in range(6):
            write_image(s / "SUN397" / folder / f"sun_{i}.jpg")
            sun["Training_01.txt" if i < 5 else "Testing_01.txt"].append(f"/{folder}/sun_{i}.jpg")
    for name, rows in sun.items():
        (s / name).write_text("\n".join(rows) + "\n")
    # Flowers: labels 1..2 from imagelabels.mat, names from cat_to_name.json
    f = data_root / "oxford_flowers"
    labels = np.array([[1, 2] * 6])
    fake.mat(f / "imagelabels.mat", {"labels": labels})
    (f / "cat_to_name.json").write_text(json.dumps({"1": "pink primrose", "2": "globe thistle"}))
    for i in range(12):
        write_image(f / "jpg" / f"image_{i + 1:05d}.jpg")
    # Stanford Cars: .mat annotations, year moved to the front of the class name
    c = data_root / "stanford_cars"
    names = np.empty((1, 2), dtype="O")
    names[0, 0], names[0, 1] = "Tesla Model S Sedan 2012", "Volvo 240 Sedan 1993"
    fake.mat(c / "devkit" / "cars_meta.mat", {"class_names": names})
    train_rec = [(f"{i:05d}.jpg", i % 2 + 1) for i in range(10)]
    test_rec = [(f"{i:05d}.jpg", i % 2 + 1) for i in range(4)]
    fake.mat(c / "devkit" / "cars_train_annos.mat", {"annotations": fake.cars_annotations(train_rec)})
    fake.mat(c / "cars_test_annos_withlabels.mat", {"annotations": fake.cars_annotations(test_rec)})
    for fname, _ in train_rec:
        write_image(c / "cars_train" / fname)
    for fname, _ in test_rec:
        write_image(c / "cars_test" / fname)

    with pytest.warns(UserWarning):
        ucf = load_dataset("ucf101", data_root, create_split=True)
        sun397 = load_dataset("sun397", data_root, create_split=True)
        flowers = load_dataset("flowers", data_root, create_split=True)
        cars = load_dataset("cars", data_root, create_split=True)
    assert ucf.classnames == ["Apply_Eye_Makeup", "Yo_Yo"]
    assert ucf.class_counts("test").tolist() == [2, 2] and ucf.class_counts("val").tolist() == [1, 1]
    assert sun397.classnames == ["abbey", "outdoor apartment_building"]
    assert flowers.classnames == ["pink primrose", "globe thistle"]
    assert flowers.class_counts("train").tolist() == [3, 3]  # round(6 * 0.5)
    assert cars.classnames == ["2012 Tesla Model S Sedan", "1993 Volvo 240 Sedan"]
    assert cars.class_counts("test").tolist() == [2, 2] and cars.class_counts("val").tolist() == [1, 1]
    assert (c / "split_zhou_StanfordCars.json").is_file()
    first = json.loads((c / "split_zhou_StanfordCars.json").read_text())["test"][0][0]
    assert first == "cars_test/00000.jpg"  # relative to the dataset folder, as CoOp saves it


def test_split_round_trip(tmp_path):
    prefix = tmp_path / "imgs"
    items = [Item(str(prefix / "a" / f"{i}.jpg"), i % 2, "ab"[i % 2]) for i in range(6)]
    save_split(items[:2], items[2:4], items[4:], tmp_path / "split.json", prefix)
    raw = (tmp_path / "split.json").read_text()
    assert raw.startswith('{\n    "train": [')  # Dassl write_json: indent=4
    assert read_split(tmp_path / "split.json", prefix) == (items[:2], items[2:4], items[4:])


def test_too_small_class_for_split(tmp_path, fake):
    fake.image_tree(tmp_path / "imgs", {"tiny": 2, "ok": 10})
    with pytest.raises(ValueError, match="too few"):
        read_and_split_data(tmp_path / "imgs", rng=random.Random(0))


def test_dtd_rebuilt_split_has_the_data_card_sizes(data_root):
    """data_cards/dtd.md: 47 classes x 120 images, CoOp's 50/20/30 rule -> 2,820 / 1,128 / 1,692."""
    images = data_root / "dtd" / "images"
    for k in range(47):
        (images / f"texture{k:02d}").mkdir(parents=True)
        for i in range(120):
            (images / f"texture{k:02d}" / f"t{i:03d}.jpg").touch()
    with pytest.warns(UserWarning, match="NOT CoOp's published split"):
        ds = load_dataset("dtd", data_root, create_split=True)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (2820, 1128, 1692)
