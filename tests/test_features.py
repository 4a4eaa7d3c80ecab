"""Tests for ncprobe.models.features on a tiny random open_clip CLIP (no testbed, no MiniLM needed)."""

from __future__ import annotations

import open_clip
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, TensorDataset

from ncprobe.models.bundle import CLIPBundle
from ncprobe.models.features import dataset_identity, extract_features, feature_cache_path, text_features


@pytest.fixture(scope="module")
def tiny_bundle() -> CLIPBundle:
    torch.manual_seed(0)
    model = open_clip.CLIP(
        embed_dim=16,
        vision_cfg={"image_size": 32, "patch_size": 8, "width": 32, "layers": 1, "head_width": 16},
        text_cfg={"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    ).eval()
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=16)
    return CLIPBundle(model, tokenizer, None, "tiny-test-clip", pretrained=None, extra={"seed": 0})


@pytest.fixture()
def images() -> TensorDataset:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(37, 3, 32, 32, generator=g)
    y = torch.arange(37) % 5
    return TensorDataset(x, y)


class _Counting(Dataset):
    """A dataset with its own cache_id."""

    def __init__(self, base: TensorDataset, name: str) -> None:
        self.base, self.name = base, name

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i):
        x, y = self.base[i]
        return x, int(y)

    @property
    def cache_id(self) -> dict:
        return {"name": self.name}


def test_extract_matches_direct_encode_image(tiny_bundle, images):
    feats, labels = extract_features(tiny_bundle, images, batch_size=8, cache=False, progress=False)
    x, y = images.tensors
    with torch.no_grad():
        direct = tiny_bundle.model.encode_image(x[:5])
    assert feats.shape == (37, 16) and feats.dtype == torch.float32
    assert labels.dtype == torch.int64 and torch.equal(labels, y)
    torch.testing.assert_close(feats[:5], direct, rtol=1e-5, atol=1e-5)


def test_normalize_flag(tiny_bundle, images):
    raw, _ = extract_features(tiny_bundle, images, cache=False, progress=False)
    unit, _ = extract_features(tiny_bundle, images, cache=False, progress=False, normalize=True)
    torch.testing.assert_close(unit, F.normalize(raw, dim=-1))
    assert not torch.allclose(raw.norm(dim=-1), torch.ones(len(raw)))


def test_cache_hit_does_not_run_model(tiny_bundle, images, monkeypatch):
    first, labels = extract_features(tiny_bundle, images, split_name="test", progress=False)
    path, _ = feature_cache_path(tiny_bundle, images, split_name="test")
    assert path.is_file()

    def boom(*args, **kwargs):
        raise AssertionError("the model ran on a cache hit")

    monkeypatch.setattr(tiny_bundle.model, "encode_image", boom)
    second, labels2 = extract_features(tiny_bundle, images, split_name="test", progress=False)
    assert torch.equal(first, second) and torch.equal(labels, labels2)
    with pytest.raises(AssertionError, match="cache hit"):  # a different split name is a different key
        extract_features(tiny_bundle, images, split_name="train", progress=False)


def test_cache_key_separates_models_and_data(tiny_bundle, images):
    other = CLIPBundle(tiny_bundle.model, tiny_bundle.tokenizer, None, "tiny-test-clip", extra={"seed": 1})
    p1, _ = feature_cache_path(tiny_bundle, images)
    p2, _ = feature_cache_path(other, images)
    p3, _ = feature_cache_path(tiny_bundle, images, transform_name="flip")
    x, y = images.tensors
    p4, _ = feature_cache_path(tiny_bundle, TensorDataset(x + 1, y))
    assert len({p1, p2, p3, p4}) == 4


def test_dataset_identity_uses_cache_id(images):
    a = dataset_identity(_Counting(images, "a"), split_name="test")
    b = dataset_identity(_Counting(images, "b"), split_name="test")
    assert a["dataset"] == {"name": "a"} and "fingerprint" not in a and a != b
    plain = dataset_identity(images)
    assert "fingerprint" in plain and plain["n"] == 37


def test_model_mode_restored_and_no_grad(tiny_bundle, images):
    tiny_bundle.model.train()
    try:
        feats, _ = extract_features(tiny_bundle, images, cache=False, progress=False)
        assert tiny_bundle.model.training
        assert not feats.requires_grad
    finally:
        tiny_bundle.model.eval()


def test_int_labels_from_dataset_with_cache_id(tiny_bundle, images):
    feats, labels = extract_features(tiny_bundle, _Counting(images, "ints"), batch_size=10, progress=False)
    assert feats.shape == (37, 16) and labels.tolist() == (torch.arange(37) % 5).tolist()


def test_text_features_single_template(tiny_bundle):
    names = ["cat", "dog", "ankle boot"]
    got = text_features(tiny_bundle, names, "a photo of a {}.")
    with torch.no_grad():
        direct = tiny_bundle.model.encode_text(tiny_bundle.tokenizer([f"a photo of a {n}." for n in names]))
    torch.testing.assert_close(got, F.normalize(direct, dim=-1))
    raw = text_features(tiny_bundle, names, "a photo of a {}.", normalize=False)
    torch.testing.assert_close(raw, direct)


def test_text_features_ensemble_equals_manual_mean(tiny_bundle):
    names = ["cat", "dog", "ankle boot", "the digit seven"]
    templates = ["a photo of a {}.", "a blurry photo of the {}.", "itap of a {}."]
    got = text_features(tiny_bundle, names, templates)
    with torch.no_grad():
        per = [
            F.normalize(tiny_bundle.model.encode_text(tiny_bundle.tokenizer([t.format(n) for n in names])), dim=-1)
            for t in templates
        ]
    manual = F.normalize(torch.stack(per).mean(0), dim=-1)
    assert got.shape == (4, 16)
    torch.testing.assert_close(got, manual)
    # the ensemble is not simply the first template
    assert not torch.allclose(got, per[0])
    torch.testing.assert_close(text_features(tiny_bundle, names, templates, normalize=False), torch.stack(per).mean(0))


def test_text_features_callable_template_and_batching(tiny_bundle):
    names = [f"class {i}" for i in range(7)]
    a = text_features(tiny_bundle, names, lambda c: f"a photo of a {c}.", batch_size=3)
    b = text_features(tiny_bundle, names, "a photo of a {}.")
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError):
        text_features(tiny_bundle, names, [])
