"""Tiny ``open_clip`` models for the ``ncprobe.models`` tests (random init; the MiniLM text tower is real).

Every model is small (width ≤ 64, 2 layers, 32-px images) and built once per session; the tests
never touch the network (the root conftest sets ``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import pytest
import torch

from ncprobe.models import load_clip
from tests._helpers.models import CUSTOM_TEXT_CFG, NATIVE_CFG, minilm_cfg


def _load(name: str, cfg: dict, seed: int = 0):
    torch.manual_seed(seed)
    bundle = load_clip(name, model_cfg=cfg)
    with torch.no_grad():  # a non-trivial temperature, so logit tests see the scale
        bundle.model.logit_scale.fill_(2.0)
    return bundle


@pytest.fixture(scope="session")
def native_bundle():
    return _load("ncprobe-test-native", NATIVE_CFG)


@pytest.fixture(scope="session")
def custom_text_bundle():
    return _load("ncprobe-test-custom-text", CUSTOM_TEXT_CFG)


@pytest.fixture(scope="session")
def hf_bundle():
    return _load("ncprobe-test-minilm-mean", minilm_cfg("mean_pooler"))


@pytest.fixture(scope="session")
def hf_cls_bundle():
    return _load("ncprobe-test-minilm-cls", minilm_cfg("cls_pooler"))


@pytest.fixture(params=["native", "hf"])
def any_bundle(request):
    """The native CLIP and the MiniLM CustomTextCLIP, one after the other."""
    return request.getfixturevalue("native_bundle" if request.param == "native" else "hf_bundle")


@pytest.fixture
def images():
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.fixture(autouse=True)
def _single_thread():
    """Tiny models run fastest on one thread (and do not fight other test processes for cores)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
