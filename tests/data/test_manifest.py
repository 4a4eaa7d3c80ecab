"""Few-shot manifests and caches: CoOp's file name is never written, manifests are portable and checked,
damaged files are named, bad shot counts are refused, reprs stay short."""

from __future__ import annotations

import json
import pickle
import shutil
import warnings

import pytest

from ncprobe.data import (
    FewShotFileError,
    FewShotManifest,
    FewShotWarning,
    ImageItemDataset,
    ImbalanceSpec,
    ManifestMismatchError,
    export_manifest,
    fewshot_cache_path,
    fewshot_manifest_path,
    load_dataset,
    load_fewshot_cache,
    load_image_folder,
    load_manifest,
    sample_fewshot,
    save_fewshot_cache,
)
from ncprobe.data.items import Item


def _same(a, b) -> None:
    assert a.train == b.train and a.val == b.val and a.test == b.test and a.classnames == b.classnames


# ------------------------------------------------------------------------------------------ CoOp interop


def test_coop_cache_name_is_never_written(fake, data_root):
    fake.build("DescribableTextures")
    ds = load_dataset("dtd", data_root, num_shots=2, seed=1)
    folder = ds.dataset_dir / "split_fewshot"
    assert sorted(p.name for p in folder.iterdir()) == ["ncprobe_shot_2-seed_1.json"]
    assert not fewshot_cache_path(folder, num_shots=2, seed=1).exists()
    with pytest.raises(ValueError, match="never under CoOp's shot_K-seed_S.pkl name"):
        save_fewshot_cache(
            folder / "shot_2-seed_1.pkl",
            ds.train,
            ds.val,
            num_shots=2,
            seed=1,
            repeat=False,
            dataset_dir=ds.dataset_dir,
        )


def test_legacy_ncprobe_pickle_under_coop_name_is_ignored_with_warning(fake, data_root):
    fake.build("DescribableTextures")
    want = load_dataset("dtd", data_root, num_shots=2, seed=1, use_cache=False)
    legacy = data_root.resolve() / "dtd" / "split_fewshot" / "shot_2-seed_1.pkl"
    legacy.parent.mkdir(parents=True)
    rows = [("images/x.jpg", 0, want.classnames[0], 0)]
    blob = pickle.dumps(
        {
            "format": "ncprobe.fewshot",
            "version": 1,
            "num_shots": 2,
            "seed": 1,
            "repeat": False,
            "train": rows,
            "val": rows,
        }
    )
    legacy.write_bytes(blob)
    assert load_fewshot_cache(legacy, dataset_dir=want.dataset_dir)["format"] == "ncprobe-legacy"
    with pytest.warns(UserWarning, match="older ncprobe.*CoOp.*crash.*delete it"):
        got = load_dataset("dtd", data_root, num_shots=2, seed=1)
    _same(got, want)
    assert legacy.read_bytes() == blob  # not touched; the draw went to ncprobe's own file
    assert got.fewshot_cache.name == "ncprobe_shot_2-seed_1.json"


def test_damaged_caches_name_the_file(fake, data_root):
    fake.build("OxfordPets")
    ds = load_dataset("pets", data_root, num_shots=2, seed=1)
    own = ds.fewshot_cache
    own.write_text(own.read_text()[:200])  # truncated
    with pytest.raises(FewShotFileError, match="not a valid few-shot manifest") as info:
        load_dataset("pets", data_root, num_shots=2, seed=1)
    assert info.value.path == own and str(own) in str(info.value)
    own.unlink()
    coop = fewshot_cache_path(own.parent, num_shots=2, seed=1)
    coop.write_bytes(pickle.dumps({"train": [], "val": []})[:-3])  # a truncated CoOp pickle
    with pytest.raises(FewShotFileError, match="truncated") as info:
        load_dataset("pets", data_root, num_shots=2, seed=1)
    assert str(coop) in str(info.value)
    coop.write_text("not a pickle at all")
    with pytest.raises(FewShotFileError, match=str(coop).replace(".", r"\.")):
        load_dataset("pets", data_root, num_shots=2, seed=1)


# ------------------------------------------------------------------------------------------ manifests


def test_manifest_round_trip_reproduces_the_run(fake, data_root, tmp_path):
    fake.build("DescribableTextures")
    spec = ImbalanceSpec("exp", 3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewShotWarning)
        ds = load_dataset("dtd", data_root, num_shots=4, seed=2, subsample="base", imbalance=spec)
    path = tmp_path / "run" / "manifest.json"
    manifest = export_manifest(ds, path)
    doc = json.loads(path.read_text())
    assert doc["format"] == "ncprobe.fewshot-manifest" and doc["num_shots"] == 4 and doc["seed"] == 2
    assert doc["subsample"] == "base" and doc["imbalance"]["profile"] == "exp" and doc["imbalance"]["ratio"] == 3.0
    assert doc["classnames"] == ds.classnames and len(doc["train"]) == len(ds.train)
    assert doc["shots_per_class"]["train"] == ds.class_counts("train").tolist()
    assert all(not row[0].startswith("/") for row in doc["train"])  # relative to the dataset folder
    assert load_manifest(path) == manifest
    for again in (
        load_dataset("dtd", data_root, manifest=path),
        manifest.load_dataset(data_root),
        load_dataset("dtd", data_root, num_shots=4, seed=2, manifest=manifest),  # agreeing settings are fine
    ):
        _same(again, ds)
        assert again.imbalance.groups.tolist() == ds.imbalance.groups.tolist()
        assert again.imbalance_spec == ds.imbalance_spec and again.num_shots == 4 and again.seed == 2
    with pytest.raises(ValueError, match="contradict the manifest.*num_shots=8"):
        load_dataset("dtd", data_root, num_shots=8, manifest=path)


def test_same_manifest_on_another_machine(fake, data_root, tmp_path):
    """Two copies of the data at different places: the same seed gives identical manifests, and a
    manifest exported on one copy selects the same files (by path and by bytes) on the other."""
    fake.build("OxfordPets")
    other = tmp_path / "elsewhere" / "DATA"
    shutil.copytree(data_root, other)
    here = load_dataset("pets", data_root, num_shots=2, seed=5)
    there = load_dataset("pets", other, num_shots=2, seed=5)
    assert here.to_manifest().to_dict() == there.to_manifest().to_dict()
    manifest = here.to_manifest(hash_files=True)
    assert set(manifest.file_sha256) == {rel for rel, _ in manifest.train} | {rel for rel, _ in manifest.val}
    moved = load_dataset("pets", other, manifest=manifest)
    assert [it.impath.replace(str(other.resolve()), "") for it in moved.train] == [
        it.impath.replace(str(data_root.resolve()), "") for it in here.train
    ]
    victim = other / "oxford_pets" / manifest.train[0][0]
    victim.write_bytes(victim.read_bytes() + b"\0")
    with pytest.raises(ManifestMismatchError, match="differ from the manifest's hashes"):
        load_dataset("pets", other, manifest=manifest)


def test_edited_or_foreign_manifest_is_refused(fake, data_root, tmp_path):
    fake.build("OxfordPets")
    path = export_manifest(load_dataset("pets", data_root, num_shots=2, seed=1), tmp_path / "m.json")
    assert isinstance(path, FewShotManifest)
    path = tmp_path / "m.json"
    doc = json.loads(path.read_text())
    doc["train"][0][1] = (doc["train"][0][1] + 1) % len(doc["classnames"])
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc))
    with pytest.raises(FewShotFileError, match="edited or damaged") as info:
        load_manifest(edited)
    assert info.value.path == edited
    (tmp_path / "foreign.json").write_text(json.dumps({"train": []}))
    with pytest.raises(FewShotFileError, match="not a few-shot manifest"):
        load_manifest(tmp_path / "foreign.json")
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(FewShotFileError, match="empty.json: empty file"):
        load_manifest(tmp_path / "empty.json")
    doc = json.loads(path.read_text())
    doc["train"][0][0] = "../../etc/passwd"
    (tmp_path / "escape.json").write_text(json.dumps(doc))
    with pytest.raises(FewShotFileError, match="not a relative '/'-separated path inside the dataset folder"):
        load_manifest(tmp_path / "escape.json")


def test_manifest_that_does_not_fit_the_data(fake, data_root, tmp_path):
    fake.build("OxfordPets")
    fake.build("DescribableTextures")
    pets = load_dataset("pets", data_root, num_shots=2, seed=1)
    manifest = pets.to_manifest()
    with pytest.raises(ManifestMismatchError, match="describes dataset 'OxfordPets', not 'DescribableTextures'"):
        load_dataset("dtd", data_root, manifest=manifest)
    # the split file changed: an image of the manifest is no longer listed
    split = pets.dataset_dir / "split_zhou_OxfordPets.json"
    doc = json.loads(split.read_text())
    gone = manifest.train[0][0].removeprefix("images/")  # split paths hang from images/
    doc["train"] = [row for row in doc["train"] if row[0] != gone]
    split.write_text(json.dumps(doc))
    with pytest.raises(ManifestMismatchError, match="1 train image.*not in OxfordPets's train split"):
        load_dataset("pets", data_root, manifest=manifest)


def test_imagenet_manifest_keeps_val_equal_to_test(fake, data_root, tmp_path):
    fake.build("ImageNet")
    ds = load_dataset("imagenet", data_root, num_shots=2, seed=1, subsample="novel")
    manifest = ds.to_manifest()
    assert manifest.val is None and manifest.val_mode == "test"
    again = FewShotManifest.from_json(manifest.to_json(tmp_path / "m.json")).load_dataset(data_root)
    _same(again, ds)
    assert again.val is again.test


def test_image_folder_manifest(fake, tmp_path):
    root = tmp_path / "mydata"
    fake.image_tree(root, {"cat": 5, "dog": 6, "emu": 4})
    ds = load_image_folder(root, num_shots=2, seed=3, template="a blurry photo of a {}.")
    manifest = ds.to_manifest()
    assert manifest.loader == "load_image_folder" and manifest.template == "a blurry photo of a {}."
    again = manifest.load_dataset(root)
    _same(again, ds)
    assert again.template == ds.template and again.name == "mydata"


# ------------------------------------------------------------------------------------------ validation, repr


@pytest.mark.parametrize("bad", [-1, 16.5, 2.0, True, "4"])
def test_bad_num_shots_are_refused(fake, data_root, bad):
    fake.build("EuroSAT")
    error = ValueError if bad == -1 else TypeError
    message = r"num_shots must be >= 0 \(0 = every image; Dassl's -1" if bad == -1 else "whole number"
    with pytest.raises(error, match=message):
        load_dataset("eurosat", data_root, num_shots=bad)
    items = [Item(f"/x/{i}.jpg", i % 2, "ab"[i % 2]) for i in range(6)]
    with pytest.raises((ValueError, TypeError), match="num_shots"):
        sample_fewshot(items, None, num_shots=bad, seed=1)
    with pytest.raises(TypeError, match="seed must be an integer"):
        load_dataset("eurosat", data_root, num_shots=1, seed=1.5)


def test_reprs_are_short(fake, data_root):
    fake.build("DescribableTextures")
    ds = load_dataset("dtd", data_root)
    many = type(ds)(**{**{f: getattr(ds, f) for f in ds.__dataclass_fields__}, "train": ds.train * 20})
    assert len(many.train) >= 180
    text = repr(many)
    assert len(text) < 300 and "classes=5" in text and f"train={len(many.train)}" in text and "Item(" not in text
    shots = load_dataset("dtd", data_root, num_shots=2, seed=1)
    assert "shots=2, seed=1" in repr(shots)
    assert repr(ImageItemDataset(many.train)).startswith(f"ImageItemDataset({len(many.train)} images, 5 classes")
    assert "Item(" not in repr(shots.to_manifest()) and len(repr(shots.to_manifest())) < 300


def test_fewshot_manifest_path_names():
    assert fewshot_manifest_path("/d", num_shots=16, seed=1).name == "ncprobe_shot_16-seed_1.json"
    assert fewshot_manifest_path("/d", num_shots=16, seed=1, repeat=True).name == "ncprobe_shot_16-seed_1-repeat.json"
