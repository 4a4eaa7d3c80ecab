"""The data side of a run: which images train, which evaluate, under which class names.

A :class:`Task` holds the training split (after Dassl's seeded K-shot draw, the base/novel subsampling and
the optional imbalance profile, all from :mod:`ncprobe.data`), the evaluation sets of the protocol, a global
class index shared by the history's ``class`` dimension, and the few-shot selection as a portable
:class:`~ncprobe.data.FewShotManifest` (written to the run's ``manifest.json``; ``data.manifest`` starts a run
from one, and a manifest of another selection — other shots, seed, classes or images — is refused). Protocols:

* ``few_shot`` — train and evaluate on all classes (``"all"``);
* ``base_to_novel`` — train on the base half (first ``ceil(C/2)`` labels), evaluate ``"base"`` among base
  names and ``"novel"`` among novel names (CoCoOp protocol; HM of the two);
* ``cross_dataset`` — train on every class of the source, evaluate each target dataset among its own names;
* ``domain_generalization`` — train on the source, evaluate domain-shifted versions of its classes.

The embedded testbed goes through the same :func:`ncprobe.data.prepare_dataset` pipeline as the CoOp
datasets (:mod:`.testbed_tasks`), so both share one sampler, one base/novel rule and one imbalance rule.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ncprobe.data import (
    BENCHMARK_11,
    DG_TARGETS,
    ImageItemDataset,
    build_test_transform,
    build_train_transform,
    load_dataset,
    resolve_name,
)

from .config import DataConfig
from .task_spec import DEFAULT_SHOTS, EvalSet, Task, draw_subsample, imbalance_spec, num_shots, protocol_subsamples
from .testbed_tasks import build_testbed_task, is_testbed

__all__ = [
    "DEFAULT_SHOTS",
    "EvalSet",
    "Task",
    "build_task",
    "protocol_subsamples",
    "imbalance_spec",
    "draw_subsample",
    "num_shots",
]


def build_task(cfg: DataConfig, *, protocol: str, seed: int, image_size: int) -> Task:
    """The task of ``cfg`` for one seed (dispatching to the testbed or to the CoOp datasets).

    ``cfg.targets`` are the evaluated targets of the cross-dataset and domain-generalisation protocols (none
    given: the protocol's default targets).
    """
    if num_shots(cfg) < 1:
        raise ValueError(f"num_shots must be at least 1, got {cfg.num_shots}")
    if is_testbed(cfg.dataset):
        return build_testbed_task(cfg, protocol=protocol, seed=seed, targets=cfg.targets)
    return _build_coop_task(cfg, protocol=protocol, seed=seed, image_size=image_size, targets=cfg.targets)


def _image_dataset(items, transform) -> ImageItemDataset:
    return ImageItemDataset(items, transform=transform)


def _labels(items) -> torch.Tensor:
    return torch.tensor([it.label for it in items], dtype=torch.int64)


def _build_coop_task(cfg: DataConfig, *, protocol: str, seed: int, image_size: int, targets: Sequence[str]) -> Task:
    if cfg.root is None:
        raise ValueError(f"data.root is required for dataset {cfg.dataset!r} (the folder holding the CoOp datasets)")
    name = resolve_name(cfg.dataset)
    test_tf = build_test_transform(size=image_size)
    train_tf = build_train_transform(size=image_size) if cfg.augment_views > 0 else None
    train_sub, eval_pairs = protocol_subsamples(protocol)
    imb = imbalance_spec(cfg, seed)
    shots, reading = num_shots(cfg), {"create_split": cfg.create_split}
    ds = load_dataset(
        name, cfg.root, num_shots=shots, seed=seed, subsample=train_sub, imbalance=imb, manifest=cfg.manifest, **reading
    )
    classnames, split = list(ds.classnames), ["base" if protocol == "base_to_novel" else "all"] * ds.num_classes
    eval_sets: list[EvalSet] = []
    for eval_name, sub in eval_pairs:
        part = (
            ds
            if sub == train_sub
            else load_dataset(name, cfg.root, num_shots=shots, seed=seed, subsample=sub, **reading)
        )
        if sub == "novel":
            index = np.arange(len(classnames), len(classnames) + part.num_classes)
            classnames += list(part.classnames)
            split += ["novel"] * part.num_classes
        else:
            index = np.arange(part.num_classes)
        eval_sets.append(
            EvalSet(
                eval_name,
                _image_dataset(part.test, test_tf),
                _labels(part.test),
                list(part.classnames),
                index,
                part.template,
            )
        )
    if protocol in ("cross_dataset", "domain_generalization"):
        names = list(targets) or [t for t in (BENCHMARK_11 if protocol == "cross_dataset" else DG_TARGETS) if t != name]
        for target in names:
            part = load_dataset(target, cfg.root, num_shots=0, subsample="all", **reading)
            index = np.arange(len(classnames), len(classnames) + part.num_classes)
            classnames += list(part.classnames)
            split += [part.name] * part.num_classes
            eval_sets.append(
                EvalSet(
                    part.name,
                    _image_dataset(part.test, test_tf),
                    _labels(part.test),
                    list(part.classnames),
                    index,
                    part.template,
                )
            )

    def draw_train(num_shots: int | None, classes: str) -> tuple[Dataset, torch.Tensor]:
        sub = draw_subsample(train_sub, classes)
        count = shots if num_shots is None else int(num_shots)
        part = load_dataset(name, cfg.root, num_shots=count, seed=seed, subsample=sub, **reading)
        return _image_dataset(part.train, test_tf), _labels(part.train)

    ood = None
    if cfg.ood_target:
        target = load_dataset(cfg.ood_target, cfg.root, num_shots=0, subsample="all", **reading)
        pool = target.train or target.test
        rng = np.random.default_rng(seed)
        pick = sorted(rng.choice(len(pool), size=min(len(pool), len(ds.train)), replace=False).tolist())
        ood = _image_dataset([pool[i] for i in pick], train_tf or test_tf)
    return Task(
        dataset=ds.name,
        protocol=protocol,
        train=_image_dataset(ds.train, test_tf),
        train_augmented=None if train_tf is None else _image_dataset(ds.train, train_tf),
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


def apply_transform_dataset(
    images: torch.Tensor, labels: torch.Tensor, transform: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> Dataset:
    """A dataset over already-decoded image tensors (N, 3, H, W), with an optional tensor transform."""
    return _TensorImages(images, labels, transform)


class _TensorImages(Dataset):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform=None):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        x = self.images[i]
        return (self.transform(x) if self.transform is not None else x), int(self.labels[i])
