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


# ---------------------------------------------------------------------------------------------- stale weights
def _fresh_bundle(seed: int) -> CLIPBundle:
    """Same name, same ``pretrained`` (None), different random weights."""
    torch.manual_seed(seed)
    model = open_clip.CLIP(
        embed_dim=16,
        vision_cfg={"image_size": 32, "patch_size": 8, "width": 32, "layers": 1, "head_width": 16},
        text_cfg={"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    ).eval()
    return CLIPBundle(model, open_clip.tokenizer.SimpleTokenizer(context_length=16), None, "stale-test-clip")


def _direct(bundle, images) -> torch.Tensor:
    with torch.no_grad():
        return bundle.model.encode_image(images.tensors[0])


def test_two_random_initialisations_do_not_share_a_cache_entry(images):
    a, b = _fresh_bundle(1), _fresh_bundle(2)
    assert a.cache_key(weights=False) == b.cache_key(weights=False)  # provenance alone cannot tell them apart
    fa, _ = extract_features(a, images, progress=False)
    fb, _ = extract_features(b, images, progress=False)
    torch.testing.assert_close(fb, _direct(b, images))
    assert not torch.allclose(fa, fb)
    assert feature_cache_path(a, images)[0] != feature_cache_path(b, images)[0]
    assert a.cache_key()["weights_digest"] != b.cache_key()["weights_digest"]


def test_model_fine_tuned_in_place_gets_fresh_features(images):
    bundle = _fresh_bundle(3)
    before, _ = extract_features(bundle, images, progress=False)
    path_before = feature_cache_path(bundle, images)[0]
    with torch.no_grad():  # one "epoch" of training, in place, through autograd-visible ops
        bundle.model.visual.conv1.weight.mul_(1.5)
    after, _ = extract_features(bundle, images, progress=False)
    torch.testing.assert_close(after, _direct(bundle, images))
    assert not torch.allclose(before, after) and feature_cache_path(bundle, images)[0] != path_before
    bundle.model.visual.proj.data[0, 0] += 1.0  # through .data, invisible to version counters
    again, _ = extract_features(bundle, images, progress=False)
    torch.testing.assert_close(again, _direct(bundle, images))
    # training the text side does not invalidate cached image features (they do not depend on it)
    path = feature_cache_path(bundle, images)[0]
    with torch.no_grad():
        bundle.model.token_embedding.weight.add_(1.0)
    assert feature_cache_path(bundle, images)[0] == path


def test_checkpoint_rewritten_at_the_same_path(images, tmp_path):
    from tests._helpers.models import NATIVE_CFG

    cfg = {**NATIVE_CFG, "vision_cfg": {**NATIVE_CFG["vision_cfg"], "layers": 1}}
    ckpt = tmp_path / "ckpt.pt"
    from ncprobe.models import load_clip, register_model_config

    register_model_config("ncprobe-test-ckpt", cfg)
    for seed in (5, 6):
        torch.manual_seed(seed)
        torch.save(open_clip.create_model("ncprobe-test-ckpt").state_dict(), ckpt)
        bundle = load_clip("ncprobe-test-ckpt", ckpt)
        feats, _ = extract_features(bundle, images, progress=False)
        torch.testing.assert_close(feats, _direct(bundle, images))
        if seed == 5:
            first = feats
    assert not torch.allclose(first, feats)


def test_damaged_cache_file_is_recomputed_with_a_warning(images):
    bundle = _fresh_bundle(7)
    want, _ = extract_features(bundle, images, progress=False)
    path, _ = feature_cache_path(bundle, images)
    path.write_bytes(path.read_bytes()[:-100])  # truncated by something outside ncprobe
    with pytest.warns(UserWarning, match=f"feature cache {path} is damaged"):
        got, labels = extract_features(bundle, images, progress=False)
    torch.testing.assert_close(got, want)
    assert labels.tolist() == images.tensors[1].tolist()
    path.write_bytes(b"\x00" * 64)  # foreign bytes
    with pytest.warns(UserWarning, match="damaged or not a feature cache"):
        got, _ = extract_features(bundle, images, progress=False)
    torch.testing.assert_close(got, want)
    extract_features(bundle, images, progress=False)  # the replaced file is a clean hit again


def test_cache_key_names_compute_mode(tiny_bundle, images):
    _, key = feature_cache_path(tiny_bundle, images)
    assert key["compute"] == "cpu:no-autocast" and key["version"] == 2
    assert key["model"]["weights_scope"] == "visual" and len(key["model"]["weights_digest"]) == 64
