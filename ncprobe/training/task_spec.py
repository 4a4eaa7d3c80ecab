"""What every task builder shares: the :class:`Task` and :class:`EvalSet` it returns, and the settings it
reads from the :class:`~.config.DataConfig` (shots, imbalance, the protocol's subsamples).

:mod:`.tasks` builds the CoOp datasets' tasks and :mod:`.testbed_tasks` the embedded benchmark's; both stand
on this module, and :func:`.tasks.build_task` dispatches to either, so imports run one way
(``task_spec`` ← ``testbed_tasks`` ← ``tasks``). See :mod:`.tasks` for the protocols.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from ncprobe.data import DATASETS, FewShotManifest, ImbalanceSpec, resolve_name
from ncprobe.testbed.benchmark import CLASSES as TESTBED_CLASSES
from ncprobe.testbed.benchmark_v3 import V3_TASKS
from ncprobe.testbed.benchmark_v3 import num_classes as v3_num_classes

from .config import DataConfig

__all__ = [
    "DEFAULT_SHOTS",
    "EvalSet",
    "Task",
    "num_shots",
    "imbalance_spec",
    "protocol_subsamples",
    "draw_subsample",
    "training_class_count",
]


#: Shots per class when neither the config nor a manifest gives them (CoOp's 16).
DEFAULT_SHOTS = 16


@dataclass
class EvalSet:
    """One evaluation set: its images, its own class names (labels ``0..k-1``) and their global indices."""

    name: str
    dataset: Dataset
    labels: torch.Tensor
    classnames: list[str]
    class_index: np.ndarray
    templates: str | list[str]
    class_texts: list[list[str]] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classnames)


@dataclass
class Task:
    """Everything a run needs from the data (see the module docstring)."""

    dataset: str
    protocol: str
    train: Dataset
    train_augmented: Dataset | None
    train_labels: torch.Tensor
    train_classnames: list[str]
    train_class_index: np.ndarray
    templates: str | list[str]
    eval_sets: list[EvalSet]
    classnames: list[str]
    class_split: list[str]
    selection: FewShotManifest
    train_class_texts: list[list[str]] | None = None
    ood: Dataset | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: ``draw_train(num_shots, classes)`` → ``(images, labels)``: the source's training split drawn again with
    #: ``num_shots`` images per class (``None``: the run's own) over the run's training classes (``"train"``)
    #: or every class of the dataset (``"all"``: labels are the global class index, base classes first), with
    #: the run's seed and the evaluation transform and without an imbalance profile. For terms that need more
    #: than the run's few-shot set, e.g. Craft's original static anchors (up to 200 images per class, novel
    #: classes included); ``None`` when the task cannot provide it.
    draw_train: Callable[[int | None, str], tuple[Dataset, torch.Tensor]] | None = None

    @property
    def train_counts(self) -> np.ndarray:
        return np.bincount(self.train_labels.numpy(), minlength=len(self.train_classnames))

    def eval_set(self, name: str) -> EvalSet:
        for es in self.eval_sets:
            if es.name == name:
                return es
        raise KeyError(f"no evaluation set {name!r}; this task has {[e.name for e in self.eval_sets]}")


def num_shots(cfg: DataConfig) -> int:
    """The config's shots per class (``None``: :data:`DEFAULT_SHOTS`; a resolved config holds the manifest's)."""
    return DEFAULT_SHOTS if cfg.num_shots is None else int(cfg.num_shots)


def imbalance_spec(cfg: DataConfig, seed: int) -> ImbalanceSpec | None:
    """The imbalance of ``cfg`` (``None``: balanced; ratio ``None`` counts as 1 and profile ``None`` as exp)."""
    ratio = 1.0 if cfg.imbalance_ratio is None else float(cfg.imbalance_ratio)
    if ratio < 1:
        raise ValueError(f"imbalance_ratio must be >= 1 (n_max/n_min), got {cfg.imbalance_ratio}")
    if ratio == 1:
        return None
    order = seed if cfg.class_order_seed is None else cfg.class_order_seed
    return ImbalanceSpec(profile=cfg.imbalance_profile or "exp", ratio=ratio, seed=int(order))


def protocol_subsamples(protocol: str) -> tuple[str, list[tuple[str, str]]]:
    """The training subsample and the (eval name, subsample) pairs of a within-dataset protocol."""
    if protocol == "base_to_novel":
        return "base", [("base", "base"), ("novel", "novel")]
    return "all", [("all", "all")]


def draw_subsample(train_subsample: str, classes: str) -> str:
    """The subsample of :attr:`Task.draw_train`'s ``classes`` (``"train"`` or ``"all"``)."""
    if classes not in ("train", "all"):
        raise ValueError(f"classes must be 'train' or 'all', got {classes!r}")
    return train_subsample if classes == "train" else "all"


def training_class_count(data: DataConfig) -> int | None:
    """How many classes a run of ``data`` trains on, known without reading the data: the dataset's classes, or the
    base half (the first ``ceil(C/2)``, CoOp's split) under base-to-novel; ``None`` for an unregistered dataset."""
    if data.dataset == "testbed":
        total = len(TESTBED_CLASSES)
    elif data.dataset in V3_TASKS:
        total = v3_num_classes(data.dataset)
    else:
        spec = DATASETS.get(resolve_name(data.dataset))
        if spec is None:
            return None
        total = spec.num_classes
    return math.ceil(total / 2) if data.protocol == "base_to_novel" else total
