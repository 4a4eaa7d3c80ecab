"""Check the split sizes quoted in data_cards/*.md against ncprobe's readers on generated dataset trees.

CoOp built its ``split_zhou_*.json`` files with the rules that ``load_dataset(..., create_split=True)``
reimplements (per class: 50/20/30 of the images, or 80/20 of an official trainval list). For the
datasets whose per-class image counts are public and given below, this script writes a tree of empty
image files in CoOp's layout, runs the reader with ``create_split=True`` and compares the train / val
/ test sizes with the data card. The other cards' sizes depend on per-class counts not listed here
and stay marked as unverified in the cards.

    python scripts/verify_data_card_splits.py            # about 170,000 empty files in a temp folder
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

from ncprobe.data import load_dataset

#: EuroSAT RGB (Helber et al. 2019): images per class folder of 2750/.
EUROSAT = {
    "AnnualCrop": 3000,
    "Forest": 3000,
    "HerbaceousVegetation": 3000,
    "Highway": 2500,
    "Industrial": 2500,
    "Pasture": 2000,
    "PermanentCrop": 2500,
    "Residential": 3000,
    "River": 2500,
    "SeaLake": 3000,
}

#: (train, val, test) as printed in data_cards/<card>.md.
CARDS = {
    "DescribableTextures": (2820, 1128, 1692),
    "Food101": (50500, 20200, 30300),
    "EuroSAT": (13500, 5400, 8100),
    "SUN397": (15880, 3970, 19850),
}


def _touch_tree(folder: Path, counts: dict[str, int], ext: str = ".jpg") -> None:
    for name, n in counts.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (folder / name / f"{name}_{i:05d}{ext}").touch()


def build(root: Path) -> None:
    _touch_tree(root / "dtd" / "images", {f"texture{k:02d}": 120 for k in range(47)})  # DTD: 47 x 120
    _touch_tree(root / "food-101" / "images", {f"dish{k:03d}": 1000 for k in range(101)})  # Food-101: 101 x 1000
    _touch_tree(root / "eurosat" / "2750", EUROSAT)
    sun = root / "sun397"  # SUN397 partition 01: 50 training + 50 testing images per class
    classes = [f"/a/scene{k:03d}" for k in range(397)]
    (sun).mkdir(parents=True)
    (sun / "ClassName.txt").write_text("".join(f"{c}\n" for c in classes))
    for part, offset in (("Training_01.txt", 0), ("Testing_01.txt", 50)):
        lines = [f"{c}/sun_{offset + i:04d}.jpg" for c in classes for i in range(50)]
        (sun / part).write_text("".join(f"{line}\n" for line in lines))
        for line in lines:
            path = sun / "SUN397" / line[1:]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()


def main() -> None:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ncprobe-card-check-") as tmp:
        root = Path(tmp)
        build(root)
        print(f"generated trees in {time.perf_counter() - start:.1f} s\n")
        print(f"{'dataset':<20} | {'reader: train / val / test':>28} | {'card':>24} | match")
        print("-" * 86)
        for name, card in CARDS.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "created a new split (not CoOp's)"
                ds = load_dataset(name, root, create_split=True)
            got = (len(ds.train), len(ds.val), len(ds.test))
            print(
                f"{name:<20} | {' / '.join(f'{n:,}' for n in got):>28} | {' / '.join(f'{n:,}' for n in card):>24} | "
                f"{'yes' if got == card else 'NO'}"
            )


if __name__ == "__main__":
    main()
