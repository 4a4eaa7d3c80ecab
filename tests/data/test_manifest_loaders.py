"""A dataset records the reader that built it, and its manifest calls that reader again.

The manifest module stands below the readers (``registry``, ``image_dataset`` import it), so it learns them
through :func:`ncprobe.data.manifest.register_manifest_loader` instead of importing them back.
"""

from __future__ import annotations

import pytest

from ncprobe.data import RawSplits, load_dataset, load_image_folder, prepare_dataset
from ncprobe.data.items import Item
from ncprobe.data.manifest import register_manifest_loader


def test_an_image_folder_named_like_a_benchmark_folder_is_recorded_as_an_image_folder(fake, tmp_path):
    # The folder name and dataset name of CoOp's OxfordPets: the old guess from DATASETS said "load_dataset",
    # and the manifest then looked for $DATA/oxford_pets/split_zhou_OxfordPets.json under the folder itself.
    root = tmp_path / "oxford_pets"
    fake.image_tree(root, {"abyssinian": 4, "beagle": 5})
    ds = load_image_folder(root, name="OxfordPets", num_shots=2, seed=1)
    assert ds.loader == "load_image_folder"
    manifest = ds.to_manifest()
    assert manifest.loader == "load_image_folder"
    again = manifest.load_dataset(root)
    assert again.train == ds.train and again.test == ds.test and again.loader == "load_image_folder"


def test_load_dataset_records_its_reader(fake, data_root):
    fake.build("OxfordPets")
    ds = load_dataset("pets", data_root, num_shots=2, seed=1)
    assert ds.loader == "load_dataset" and ds.to_manifest().loader == "load_dataset"
    again = ds.to_manifest().load_dataset(data_root)
    assert again.loader == "load_dataset" and again.train == ds.train


def test_prepare_dataset_called_directly_counts_as_an_image_folder_and_checks_the_name(tmp_path):
    items = [Item(str(tmp_path / f"{c}{i}.png"), c, f"class{c}") for c in range(2) for i in range(3)]
    raw = RawSplits(items, [], items, "none", "test")
    ds = prepare_dataset(raw, name="toy", dataset_dir=tmp_path, template="{}")
    assert ds.loader == "load_image_folder"
    with pytest.raises(ValueError, match="loader must be one of"):
        prepare_dataset(raw, name="toy", dataset_dir=tmp_path, template="{}", loader="load_folder")
    with pytest.raises(ValueError, match="loader must be one of"):
        register_manifest_loader("load_folder", lambda manifest, root: None)
