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

The v3 tasks (``testbed-strokes``, ``testbed-colour``, ``testbed-shapes``; :mod:`ncprobe.testbed.benchmark_v3`)
go through the same pipeline: their few-shot pool is the task's ``train`` split and their evaluation sets its
``test`` split (``data.eval_split='val'``: its validation split). Their cross-dataset / domain-generalisation targets
and out-of-distribution targets are the other tasks with the same 20 classes (and ``sklearn-digits`` for
cross-dataset); the shapes task has none.

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
from ncprobe.testbed.benchmark_v3 import V3_TASKS, load_task, task_spec
from ncprobe.testbed.images import load_sklearn_digits

from .config import DataConfig
from .task_spec import EvalSet, Task, draw_subsample, imbalance_spec, num_shots, protocol_subsamples

__all__ = [
    "TESTBED_DATASETS",
    "TESTBED_TARGETS",
    "TESTBED_OOD_TARGETS",
    "is_testbed",
    "testbed_targets",
    "testbed_ood_targets",
    "build_testbed_task",
    "restyle",
    "random_shift",
]

#: The embedded datasets: v2's benchmark, then v3's downstream tasks.
TESTBED_DATASETS = ("testbed", *V3_TASKS)
#: Evaluation targets of the v2 testbed's cross-dataset and domain-generalisation protocols.
TESTBED_TARGETS = ("testbed-shifted", "sklearn-digits")
#: Unlabelled targets of out-of-distribution terms (``data.ood_target``) of the v2 testbed.
TESTBED_OOD_TARGETS = ("testbed-shifted",)


def is_testbed(dataset: str) -> bool:
    """Whether ``dataset`` is one of the embedded datasets (:data:`TESTBED_DATASETS`)."""
    return dataset in TESTBED_DATASETS


def _same_classes(dataset: str) -> tuple[str, ...]:
    """The other v3 tasks with the classes of ``dataset``."""
    source = task_spec(dataset).source
    return tuple(k for k, v in V3_TASKS.items() if v.source == source and k != dataset)


def testbed_targets(dataset: str, protocol: str | None = None) -> tuple[str, ...]:
    """Valid ``data.targets`` of an embedded dataset (``protocol``: only those of that protocol)."""
    if dataset == "testbed":
        return TESTBED_TARGETS
    others = _same_classes(dataset)
    digits = ("sklearn-digits",) if task_spec(dataset).source == "garments_digits" else ()
    if protocol == "cross_dataset":
        return digits
    if protocol == "domain_generalization":
        return others
    return others + digits


def testbed_ood_targets(dataset: str) -> tuple[str, ...]:
    """Valid ``data.ood_target`` values of an embedded dataset."""
    return TESTBED_OOD_TARGETS if dataset == "testbed" else _same_classes(dataset)


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
    """Items ``testbed/<split>/<index>`` read from uint8 image tensors (grey or RGB), optionally transformed."""

    def __init__(self, items: Sequence[Item], images: dict[str, torch.Tensor], transform=None):
        self.items = list(items)
        self.images = images
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        item = self.items[index]
        _, split, idx = item.impath.split("/")
        image = self.images[split][int(idx)]
        x = to_model_input(image) if image.ndim == 2 else to_model_input(image.unsqueeze(0))[0]
        return (self.transform(x) if self.transform is not None else x), item.label


def _items(split: str, labels: torch.Tensor, classnames: list[str]) -> list[Item]:
    return [Item(f"testbed/{split}/{i:05d}", int(y), classnames[int(y)]) for i, y in enumerate(labels.tolist())]


def _labels(items: Sequence[Item]) -> torch.Tensor:
    return torch.tensor([it.label for it in items], dtype=torch.int64)


class _Source:
    """What a testbed task is built from: uint8 images and labels of the few-shot pool and the evaluation split."""

    def __init__(self, cfg: DataConfig):
        self.dataset = cfg.dataset
        if cfg.dataset == "testbed":
            if cfg.eval_split != "test":
                raise ValueError("the v2 testbed has no validation split; data.eval_split='val' needs a v3 task")
            train_b, test_b = EmbeddedBenchmark("train", subset="all"), EmbeddedBenchmark("test", subset="all")
            self.name, self.template = "EmbeddedBenchmark", train_b.template
            self.classnames = list(train_b.classnames)
            self.images = {"train": train_b.raw_images, "test": test_b.raw_images}
            self.labels = {"train": train_b.labels, "test": test_b.labels}
            describe = getattr(train_b, "class_texts", None)
            self.descriptions = None if describe is None else describe("descriptions")
        else:
            pool, held_out = load_task(cfg.dataset, "train"), load_task(cfg.dataset, cfg.eval_split)
            self.name, self.template = cfg.dataset, pool.template
            self.classnames = list(pool.classnames)
            self.images = {"train": pool.images, "test": held_out.images}
            self.labels = {"train": pool.labels, "test": held_out.labels}
            self.descriptions = [list(d) for d in pool.descriptions]


def build_testbed_task(cfg: DataConfig, *, protocol: str, seed: int, targets: Sequence[str] = ()) -> Task:
    """The task of ``cfg`` on an embedded dataset (see the module docstring)."""
    src = _Source(cfg)
    names, images = src.classnames, src.images
    raw = RawSplits(
        _items("train", src.labels["train"], names),
        [],
        _items("test", src.labels["test"], names),
        val_mode="none",
        source=f"ncprobe embedded benchmark ({src.dataset})",
    )
    train_sub, eval_pairs = protocol_subsamples(protocol)
    common = dict(
        name=src.name,
        dataset_dir=Path("testbed"),
        template=src.template,
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
        if src.dataset == "testbed":
            default = ["sklearn-digits"] if protocol == "cross_dataset" else ["testbed-shifted"]
        else:
            default = list(testbed_targets(src.dataset, protocol))
        chosen = list(targets) or default
        if not chosen:
            raise ValueError(f"{src.dataset} has no {protocol} target; valid protocols: few_shot, base_to_novel")
        for target in chosen:
            eval_sets.append(_target(target, names, offset=len(classnames), split=cfg.eval_split))
            classnames += eval_sets[-1].classnames
            split += [target] * eval_sets[-1].num_classes

    def draw_train(shots: int | None, classes: str) -> tuple[Dataset, torch.Tensor]:
        count = common["num_shots"] if shots is None else int(shots)
        part = prepare_dataset(raw, subsample=draw_subsample(train_sub, classes), **{**common, "num_shots": count})
        return _Images(part.train, images), _labels(part.train)

    ood = None
    if cfg.ood_target:
        valid = testbed_ood_targets(src.dataset)
        if cfg.ood_target not in valid:
            raise ValueError(f"unknown testbed ood_target {cfg.ood_target!r}; valid: {', '.join(valid) or 'none'}")
        if src.dataset == "testbed":
            shifted = {"train": restyle(images["train"])}
        else:  # the other task's few-shot pool, unlabelled (same images, other style)
            shifted = {"train": load_task(cfg.ood_target, "train").images}
        pool = _items("train", src.labels["train"], names)
        rng = np.random.default_rng(seed + 7919)
        pick = sorted(rng.choice(len(pool), size=len(ds.train), replace=False).tolist())
        ood = _Images([pool[i] for i in pick], shifted, aug)
    task = Task(
        dataset=src.dataset,
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
        _attach_descriptions(task, src)
    return task


def _attach_descriptions(task: Task, src: _Source) -> None:
    """Give the task and each evaluation set the benchmark's class descriptions (the description protocol)."""
    if src.descriptions is None:
        raise ValueError("this embedded benchmark has no class descriptions; use data.class_text='names'")
    by_name = dict(zip(src.classnames, src.descriptions))
    task.train_class_texts = [by_name[n] for n in task.train_classnames]
    for es in task.eval_sets:
        es.class_texts = [by_name[n] for n in es.classnames]


def _target(name: str, classnames: list[str], *, offset: int, split: str = "test") -> EvalSet:
    template = EmbeddedBenchmark("test").template
    if name in V3_TASKS:
        data = load_task(name, split)
        ds = _Images(_items("test", data.labels, list(data.classnames)), {"test": data.images})
        index = np.arange(offset, offset + len(data.classnames))
        return EvalSet(name, ds, data.labels, list(data.classnames), index, data.template)
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
