"""Tasks on the embedded testbed, through the same data pipeline as the CoOp datasets.

The testbed's images become :class:`ncprobe.data.Item` s with paths ``testbed/<split>/<index>`` so that
:func:`ncprobe.data.prepare_dataset` draws the K shots (Dassl's sampler, same seed ⇒ same indices), splits
base/novel and applies the imbalance profile exactly as for a CoOp dataset. Targets of the testbed:

* ``testbed-shifted`` — the test images restyled (strokes thickened by a 3×3 max filter, then Gaussian pixel
  noise of standard deviation 40 from a fixed seed): the same 20 classes in another domain, on which the fast
  testbed keeps about three quarters of its 20-way zero-shot accuracy (0.30 against 0.41; inverting the
  intensities instead left 0.04, below chance, which would make the target uninformative). Used for domain
  generalisation and, built from the *training* images without labels, as the unlabelled target of
  out-of-distribution terms such as Craft's MMD;
* ``sklearn-digits`` — scikit-learn's 1,797 8×8 digits upsampled to 28×28: another digit dataset with the
  testbed's digit class names (cross-dataset transfer).

Augmentation (``data.augment_views > 0``): pad 2 pixels and crop 32×32 at a random offset (the standard
small-image augmentation), drawn from torch's generator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ncprobe.data import Item, RawSplits, prepare_dataset
from ncprobe.testbed import EmbeddedBenchmark, to_model_input
from ncprobe.testbed.images import load_sklearn_digits

from .config import DataConfig
from .task_spec import EvalSet, Task, draw_subsample, imbalance_spec, num_shots, protocol_subsamples

__all__ = ["TESTBED_TARGETS", "TESTBED_OOD_TARGETS", "build_testbed_task", "restyle", "random_shift"]

#: Evaluation targets of the testbed's cross-dataset and domain-generalisation protocols.
TESTBED_TARGETS = ("testbed-shifted", "sklearn-digits")
#: Unlabelled targets of out-of-distribution terms (``data.ood_target``).
TESTBED_OOD_TARGETS = ("testbed-shifted",)
_DIGITS = (
    "digit zero",
    "digit one",
    "digit two",
    "digit three",
    "digit four",
    "digit five",
    "digit six",
    "digit seven",
    "digit eight",
    "digit nine",
)


def restyle(images: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
    """The ``testbed-shifted`` domain of uint8 (N, 28, 28) images: thicker strokes and pixel noise (σ = 40)."""
    x = images.to(torch.float32).unsqueeze(1)
    thick = F.max_pool2d(x, kernel_size=3, stride=1, padding=1).squeeze(1)
    noise = 40.0 * torch.randn(thick.shape, generator=torch.Generator().manual_seed(seed))
    return (thick + noise).clamp(0, 255).to(torch.uint8)


def random_shift(image: torch.Tensor) -> torch.Tensor:
    """Pad 2 pixels (with the image's background value) and crop back at a random offset."""
    pad = 2
    padded = F.pad(image.unsqueeze(0), (pad, pad, pad, pad), mode="replicate").squeeze(0)
    i, j = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,)))
    return padded[:, i : i + image.shape[-2], j : j + image.shape[-1]]


class _Images(Dataset):
    """Items ``testbed/<split>/<index>`` read from uint8 image tensors, optionally transformed."""

    def __init__(self, items: Sequence[Item], images: dict[str, torch.Tensor], transform=None):
        self.items = list(items)
        self.images = images
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        item = self.items[index]
        _, split, idx = item.impath.split("/")
        x = to_model_input(self.images[split][int(idx)])
        return (self.transform(x) if self.transform is not None else x), item.label


def _items(split: str, labels: torch.Tensor, classnames: list[str]) -> list[Item]:
    return [Item(f"testbed/{split}/{i:05d}", int(y), classnames[int(y)]) for i, y in enumerate(labels.tolist())]


def _labels(items: Sequence[Item]) -> torch.Tensor:
    return torch.tensor([it.label for it in items], dtype=torch.int64)


def build_testbed_task(cfg: DataConfig, *, protocol: str, seed: int, targets: Sequence[str] = ()) -> Task:
    """The task of ``cfg`` on the embedded benchmark (see the module docstring)."""
    train_b = EmbeddedBenchmark("train", subset="all")
    test_b = EmbeddedBenchmark("test", subset="all")
    names = list(train_b.classnames)
    images = {"train": train_b.raw_images, "test": test_b.raw_images}
    raw = RawSplits(
        _items("train", train_b.labels, names),
        [],
        _items("test", test_b.labels, names),
        val_mode="none",
        source="ncprobe embedded benchmark",
    )
    train_sub, eval_pairs = protocol_subsamples(protocol)
    common = dict(
        name="EmbeddedBenchmark",
        dataset_dir=Path("testbed"),
        template=train_b.template,
        num_shots=num_shots(cfg),
        seed=seed,
        use_cache=False,
    )
    ds = prepare_dataset(raw, subsample=train_sub, imbalance=imbalance_spec(cfg, seed), manifest=cfg.manifest, **common)
    aug = random_shift if cfg.augment_views > 0 else None
    eval_sets: list[EvalSet] = []
    classnames, split = list(ds.classnames), ["base" if protocol == "base_to_novel" else "all"] * ds.num_classes
    for eval_name, sub in eval_pairs:
        part = ds if sub == train_sub else prepare_dataset(raw, subsample=sub, **common)
        if sub == "novel":
            index = np.arange(len(classnames), len(classnames) + part.num_classes)
            classnames += list(part.classnames)
            split += ["novel"] * part.num_classes
        else:
            index = np.arange(part.num_classes)
        eval_sets.append(
            EvalSet(
                eval_name, _Images(part.test, images), _labels(part.test), list(part.classnames), index, part.template
            )
        )
    if protocol in ("cross_dataset", "domain_generalization"):
        default = ["sklearn-digits"] if protocol == "cross_dataset" else ["testbed-shifted"]
        for target in list(targets) or default:
            eval_sets.append(_target(target, names, offset=len(classnames)))
            classnames += eval_sets[-1].classnames
            split += [target] * eval_sets[-1].num_classes

    def draw_train(shots: int | None, classes: str) -> tuple[Dataset, torch.Tensor]:
        count = common["num_shots"] if shots is None else int(shots)
        part = prepare_dataset(raw, subsample=draw_subsample(train_sub, classes), **{**common, "num_shots": count})
        return _Images(part.train, images), _labels(part.train)

    ood = None
    if cfg.ood_target:
        if cfg.ood_target not in TESTBED_OOD_TARGETS:
            raise ValueError(f"unknown testbed ood_target {cfg.ood_target!r}; valid: {', '.join(TESTBED_OOD_TARGETS)}")
        shifted = {"train": restyle(images["train"])}
        pool = _items("train", train_b.labels, names)
        rng = np.random.default_rng(seed + 7919)
        pick = sorted(rng.choice(len(pool), size=len(ds.train), replace=False).tolist())
        ood = _Images([pool[i] for i in pick], shifted, aug)
    task = Task(
        dataset="testbed",
        protocol=protocol,
        train=_Images(ds.train, images),
        train_augmented=None if aug is None else _Images(ds.train, images, aug),
        train_labels=_labels(ds.train),
        train_classnames=list(ds.classnames),
        train_class_index=np.arange(ds.num_classes),
        templates=ds.template,
        eval_sets=eval_sets,
        classnames=classnames,
        class_split=split,
        selection=ds.to_manifest(),
        ood=ood,
        draw_train=draw_train,
    )
    if cfg.class_text == "descriptions":
        _attach_descriptions(task, train_b)
    return task


def _attach_descriptions(task: Task, bench: EmbeddedBenchmark) -> None:
    """Give the task and each evaluation set the benchmark's class descriptions (the description protocol)."""
    describe = getattr(bench, "class_texts", None)
    if describe is None:
        raise ValueError("this embedded benchmark has no class descriptions; use data.class_text='names'")
    by_name = dict(zip(bench.classnames, describe("descriptions")))
    task.train_class_texts = [by_name[n] for n in task.train_classnames]
    for es in task.eval_sets:
        es.class_texts = [by_name[n] for n in es.classnames]


def _target(name: str, classnames: list[str], *, offset: int) -> EvalSet:
    template = EmbeddedBenchmark("test").template
    if name == "testbed-shifted":
        test_b = EmbeddedBenchmark("test", subset="all")
        items = _items("test", test_b.labels, classnames)
        ds = _Images(items, {"test": restyle(test_b.raw_images)})
        return EvalSet(name, ds, test_b.labels, list(classnames), np.arange(offset, offset + len(classnames)), template)
    if name == "sklearn-digits":
        imgs, labels = load_sklearn_digits()
        items = _items("digits", labels, list(_DIGITS))
        return EvalSet(
            name,
            _Images(items, {"digits": imgs}),
            labels.to(torch.int64),
            list(_DIGITS),
            np.arange(offset, offset + 10),
            template,
        )
    raise ValueError(f"unknown testbed target {name!r}; valid targets: {', '.join(TESTBED_TARGETS)}")
