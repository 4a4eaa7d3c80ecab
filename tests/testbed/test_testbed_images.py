"""Readers of the three image sources and the model-input transform."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from ncprobe.testbed import images as img


def test_fashion_mnist_reader_shapes_and_labels():
    for split, n in (("train", 60000), ("test", 10000)):
        x, y = img.load_fashion_mnist(split)
        assert x.shape == (n, 28, 28) and x.dtype == torch.uint8
        assert y.shape == (n,) and y.dtype == torch.int64
        assert torch.equal(torch.bincount(y), torch.full((10,), n // 10))


def test_mnist_subset_reader_and_its_cache():
    x, y = img.load_mnist_subset()
    assert x.shape == (5000, 28, 28) and x.dtype == torch.uint8
    assert torch.equal(torch.bincount(y), torch.full((10,), 500))
    assert int(x.max()) == 255 and int(x.min()) == 0
    img.load_mnist_subset.cache_clear()  # the second read comes from the .npz cache
    x2, y2 = img.load_mnist_subset()
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_sklearn_digits_reader():
    x, y = img.load_sklearn_digits()
    assert x.shape == (1797, 28, 28) and x.dtype == torch.uint8
    assert sorted(y.unique().tolist()) == list(range(10))
    assert int(x[:, :4].max()) == 0 and int(x[:, 24:].max()) == 0  # MNIST-like empty frame


def test_read_idx_roundtrip_and_errors(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "a-idx3-ubyte.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(bytes([0, 0, 8, 3]) + struct.pack(">III", 2, 3, 4) + arr.tobytes())
    assert np.array_equal(img.read_idx(path), arr)
    bad = tmp_path / "bad-idx"
    bad.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"abc")
    with pytest.raises(ValueError, match="holds 3 bytes"):
        img.read_idx(bad)
    bad.write_bytes(b"\x00\x00\x0d\x01abcd")
    with pytest.raises(ValueError, match="not an unsigned-byte"):
        img.read_idx(bad)


def test_missing_fashion_mnist_names_apt_package(tmp_path, monkeypatch):
    monkeypatch.setenv("NCPROBE_FASHION_MNIST_DIR", str(tmp_path))
    with pytest.raises(img.MissingSourceError, match="apt-get install dataset-fashion-mnist"):
        img.load_fashion_mnist("train")
    with pytest.raises(ValueError):
        img.load_fashion_mnist("validation")


def test_missing_mlxtend_names_pip_package(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mlxtend", None)
    with pytest.raises(img.MissingSourceError, match="pip install mlxtend"):
        img.check_mlxtend()


def test_to_model_input():
    raw = torch.zeros(2, 28, 28, dtype=torch.uint8)
    raw[1, 10:18, 10:18] = 255
    x = img.to_model_input(raw)
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32
    mean = torch.tensor(img.IMAGE_MEAN).view(3, 1, 1)
    std = torch.tensor(img.IMAGE_STD).view(3, 1, 1)
    torch.testing.assert_close(x[0], (torch.zeros(3, 32, 32) - mean) / std)
    torch.testing.assert_close(x[1, :, 12, 12], ((1 - mean) / std).flatten())  # shifted by the 2-px pad
    assert img.to_model_input(raw[1]).shape == (3, 32, 32)
    with pytest.raises(ValueError):
        img.to_model_input(torch.zeros(2, 32, 32, dtype=torch.uint8))
