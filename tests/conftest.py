"""Test-session settings shared by every test module.

* Every cache (features, few-shot splits, the embedded model) goes to a fresh temporary folder,
  unless ``NCPROBE_CACHE`` is already set, so tests never read stale files from a user's cache.
* Hugging Face libraries are kept offline: nothing in the test suite may touch the network.
"""

import os
import tempfile

os.environ.setdefault("NCPROBE_CACHE", tempfile.mkdtemp(prefix="ncprobe-test-cache-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
