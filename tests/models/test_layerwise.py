"""Layer-wise features: the last block, through the tower's head, equals the model's own encoders; hooks
capture each block; unsupported towers and bad layer indices are refused."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from ncprobe.models.layerwise import (
    extract_layer_features,
    image_blocks,
    resolve_layers,
    text_blocks,
    text_layer_features,
)
from tests._helpers.models import CLASSNAMES, prompts_for

BUNDLES = ["native_bundle", "custom_text_bundle", "hf_bundle", "hf_cls_bundle"]
#: torch's thread count before tests/models' single-thread fixture: the testbed build below may be the
#: session's first, and tests/testbed compares a rebuild made at the default thread count with it bitwise.
DEFAULT_THREADS = torch.get_num_threads()


@pytest.fixture
def image_set(images):
    return TensorDataset(images, torch.tensor([0, 1, 0]))


@pytest.mark.parametrize("name", BUNDLES)
def test_last_image_block_through_the_head_is_encode_image(name, request, images, image_set):
    bundle = request.getfixturevalue(name)
    feats = extract_layer_features(bundle, image_set, project=True, batch_size=2, progress=False)
    assert sorted(feats) == list(range(len(image_blocks(bundle.model))))
    with torch.no_grad():
        want = bundle.model.encode_image(images)
    last, labels = feats[max(feats)]
    torch.testing.assert_close(last, want, rtol=1e-5, atol=1e-5)
    assert labels.tolist() == [0, 1, 0]


@pytest.mark.parametrize("name", ["native_bundle", "hf_bundle"])
def test_raw_image_features_are_the_class_token_of_each_block(name, request, images, image_set):
    bundle = request.getfixturevalue(name)
    visual = bundle.model.visual
    feats = extract_layer_features(bundle, image_set, layers=[0, -1], progress=False)
    assert sorted(feats) == [0, len(visual.transformer.resblocks) - 1]
    with torch.no_grad():  # re-run the tower by hand: embeddings, then the blocks one by one
        x = visual.conv1(images).flatten(2).transpose(1, 2)
        x = torch.cat([visual.class_embedding.expand(x.shape[0], 1, -1), x], dim=1) + visual.positional_embedding
        x = visual.ln_pre(x)
        outs = []
        for block in visual.transformer.resblocks:
            x = block(x)
            outs.append(x[:, 0])
    torch.testing.assert_close(feats[0][0], outs[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(feats[max(feats)][0], outs[-1], rtol=1e-5, atol=1e-5)
    assert feats[0][0].shape == (3, visual.transformer.width)


@pytest.mark.parametrize("name", BUNDLES)
def test_last_text_block_through_the_head_is_encode_text(name, request):
    bundle = request.getfixturevalue(name)
    prompts = prompts_for(CLASSNAMES)
    feats = text_layer_features(bundle, prompts, project=True, batch_size=3)
    assert sorted(feats) == list(range(len(text_blocks(bundle.model))))
    with torch.no_grad():
        want = bundle.model.encode_text(bundle.tokenizer(prompts))
    if name == "hf_cls_bundle":  # BERT's pooler (dense + tanh) belongs to the last layer only: not used here
        assert feats[max(feats)].shape == want.shape
        return
    torch.testing.assert_close(feats[max(feats)], want, rtol=1e-5, atol=1e-5)


def test_hf_text_layers_are_mean_pooled_hidden_states(hf_bundle):
    prompts = prompts_for(CLASSNAMES)
    feats = text_layer_features(hf_bundle, prompts, layers=[0, 2])
    tokens = hf_bundle.tokenizer(prompts)
    text = hf_bundle.model.text
    mask = (tokens != text.config.pad_token_id).long()
    with torch.no_grad():
        hidden = text.transformer(input_ids=tokens, attention_mask=mask, output_hidden_states=True).hidden_states
    for i in (0, 2):  # hidden_states[0] is the embedding output, [i + 1] the output of block i
        h = hidden[i + 1]
        want = (h * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
        torch.testing.assert_close(feats[i], want, rtol=1e-5, atol=1e-5)


def test_native_text_layers_take_the_end_of_text_token(native_bundle):
    prompts = prompts_for(CLASSNAMES)
    feats = text_layer_features(native_bundle, prompts, layers=[0])
    model = native_bundle.model
    tokens = native_bundle.tokenizer(prompts)
    with torch.no_grad():
        x = model.token_embedding(tokens) + model.positional_embedding
        x = model.transformer.resblocks[0](x, attn_mask=model.attn_mask)
    torch.testing.assert_close(feats[0], x[torch.arange(len(prompts)), tokens.argmax(-1)], rtol=1e-5, atol=1e-5)


def test_layer_indices_and_hooks_are_cleaned_up(native_bundle, image_set):
    assert resolve_layers(None, 3) == [0, 1, 2] and resolve_layers(-1, 3) == [2] and resolve_layers([1, 1], 3) == [1]
    with pytest.raises(IndexError, match="2 blocks"):
        extract_layer_features(native_bundle, image_set, layers=[5], progress=False)
    extract_layer_features(native_bundle, image_set, layers=[0], progress=False)
    assert all(not b._forward_hooks for b in image_blocks(native_bundle.model))
    feats = extract_layer_features(native_bundle, image_set, layers=[1], normalize=True, progress=False)
    torch.testing.assert_close(feats[1][0].norm(dim=1), torch.ones(3))


def test_testbed_layers_feed_measure_and_the_layers_figure():
    import ncprobe
    from ncprobe.plotting import layers_figure
    from ncprobe.testbed import EmbeddedBenchmark, load_testbed

    bundle = load_testbed("fast", num_threads=DEFAULT_THREADS, progress=False)
    test = EmbeddedBenchmark("test")
    base, novel = test.subset("base"), test.subset("novel")
    small = [torch.utils.data.Subset(s, range(0, len(s), 5)) for s in (base, novel)]
    per_split = [extract_layer_features(bundle, s, project=True, progress=False) for s in small]
    with torch.no_grad():
        images = torch.stack([small[0][i][0] for i in range(len(small[0]))])
        want = bundle.model.encode_image(images)
    torch.testing.assert_close(per_split[0][max(per_split[0])][0], want, rtol=1e-4, atol=1e-5)
    reports = {
        f"block {i}": {s: ncprobe.measure(*feats[i]) for s, feats in zip(("base", "novel"), per_split)}
        for i in per_split[0]
    }
    fig = layers_figure(reports)
    assert len(fig.data) == 6 and list(fig.data[0].x) == [f"block {i}" for i in per_split[0]]
    text = text_layer_features(bundle, ["a photo of a sandal.", "a photo of the digit seven."], project=True)
    with torch.no_grad():
        want = bundle.model.encode_text(bundle.tokenizer(["a photo of a sandal.", "a photo of the digit seven."]))
    torch.testing.assert_close(text[max(text)], want, rtol=1e-4, atol=1e-5)
