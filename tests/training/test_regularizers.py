"""The NPT, Craft and PromptSRC loss terms against plain references written from their formulas (numpy), Craft's
MMD against the public code's ``MMD`` (transcribed below), Gaussian prompt aggregation, and bad options."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from ncprobe.training import get_preset, validate_config
from ncprobe.training.regularizers import REGULARIZERS, StepOutput, build_regularizer
from ncprobe.training.regularizers.promptsrc import gpa_weights

C, D, B = 5, 8, 12


def _rows(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _etf_gram(c):
    return np.eye(c) * c / (c - 1) - 1.0 / (c - 1)


def _ce(z, y):
    z = z - z.max(1, keepdims=True)
    return float(-(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(1))).mean())


def _log_softmax(z):
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


@pytest.fixture
def batch():
    g = np.random.default_rng(0)
    text = g.normal(size=(C, D)) + 2.0  # a common offset, as CLIP's cone
    image = _rows(g.normal(size=(B, D)) - 1.0)
    labels = np.array([0, 1, 1, 2, 2, 2, 0, 1, 0, 2, 1, 0])  # classes 3 and 4 absent from the batch
    memory = _rows(g.normal(size=(C, D)))
    return SimpleNamespace(text=text, image=image, labels=labels, memory=memory, g=g)


def _out(b, *, model=None, logits=None, target=None, images=None, scale=10.0):
    x = torch.from_numpy(b.image)
    t = torch.nn.functional.normalize(torch.from_numpy(b.text), dim=-1)
    return StepOutput(
        image_features=x,
        text_features=t,
        logits=torch.from_numpy(logits) if logits is not None else scale * x @ t.T,
        labels=torch.from_numpy(b.labels),
        logit_scale=torch.tensor(scale, dtype=torch.float64),
        model=model,
        classnames=[f"class {k}" for k in range(C)],
        target_features=None if target is None else torch.from_numpy(target),
        images=images,
    )


def _npt(b, **options):
    reg = build_regularizer("npt", options)
    reg.num_classes, reg.dim = C, D
    reg.memory = torch.from_numpy(b.memory.copy())
    return reg


def _memory_h(b):
    """The memory with the batch's classes replaced by their batch means (the Gram family's image means)."""
    h = b.memory.copy()
    for k in np.unique(b.labels):
        h[k] = b.image[b.labels == k].mean(0)
    return h


# ------------------------------------------------------------------ NPT
@pytest.mark.parametrize("center", [True, False])
def test_npt_gram_text_term_is_the_mean_squared_deviation_from_the_etf_gram(batch, center):
    t = _rows(batch.text)
    if center:
        t = _rows(t - t.mean(0))
    expected = ((t @ t.T - _etf_gram(C)) ** 2).mean()
    terms = _npt(batch, center=center)(_out(batch))
    assert float(terms["text"]) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("target", ["cross", "etf", "text"])
@pytest.mark.parametrize("means", ["memory", "batch"])
def test_npt_gram_image_term(batch, target, means):
    t = _rows(batch.text)
    t = _rows(t - t.mean(0))
    e = _etf_gram(C)
    if means == "memory":
        h = _memory_h(batch)
        h = _rows(h - h.mean(0))
        p = np.arange(C)
    else:
        p = np.unique(batch.labels)
        h = np.stack([batch.image[batch.labels == k].mean(0) for k in p])
        h = _rows(h - batch.memory.mean(0))
    gram = {"cross": h @ t[p].T, "etf": h @ h.T, "text": h @ h.T}[target]
    ref = t[p] @ t[p].T if target == "text" else e[np.ix_(p, p)]
    expected = ((gram - ref) ** 2).mean()
    terms = _npt(batch, image_target=target, image_means=means)(_out(batch))
    assert float(terms["image"]) == pytest.approx(expected, rel=1e-10)


def test_npt_memory_moves_toward_the_batch_means(batch):
    reg = _npt(batch, memory_momentum=0.75)
    reg(_out(batch))
    expected = batch.memory.copy()
    for k in np.unique(batch.labels):
        expected[k] = 0.75 * batch.memory[k] + 0.25 * batch.image[batch.labels == k].mean(0)
    np.testing.assert_allclose(reg.memory.numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("loss", ["dr", "cosine"])
@pytest.mark.parametrize("center", [True, False])
def test_npt_anchored_terms_pull_text_and_image_to_the_same_vertex(batch, loss, center):
    g = np.random.default_rng(1)
    q, _ = np.linalg.qr(g.normal(size=(D, C)))
    m = np.sqrt(C / (C - 1)) * (q @ (np.eye(C) - 1.0 / C)).T  # Yang et al.'s ETF construction, rows = vertices
    reg = _npt(batch, family="anchored", loss=loss, center=center)
    reg.etf = torch.from_numpy(m)
    t = _rows(batch.text)
    x = batch.image
    if center:
        t, x = t - t.mean(0), x - batch.memory.mean(0)
    cos_t = (_rows(t) * m).sum(1)
    cos_x = (_rows(x) * m[batch.labels]).sum(1)
    f = (lambda c: 0.5 * (c - 1) ** 2) if loss == "dr" else (lambda c: 1 - c)
    terms = reg(_out(batch))
    assert float(terms["text"]) == pytest.approx(f(cos_t).mean(), rel=1e-10)
    assert float(terms["image"]) == pytest.approx(f(cos_x).mean(), rel=1e-10)


def test_npt_weights_and_zero_weight_terms(batch):
    reg = _npt(batch, text_weight=0.0, image_weight=3.0)
    assert set(reg(_out(batch))) == {"image"} and reg.term_weight("image") == 3.0


def test_npt_near_etf_when_classes_exceed_dimension_plus_one(monkeypatch):
    """C > D + 1: the anchored family uses the core's near-ETF, the Gram family records the floor; both say so."""
    import ncprobe.training.regularizers.npt as npt

    c, d = 7, 3
    monkeypatch.setattr(npt, "handwritten_class_features", lambda *a, **k: torch.randn(c, d, dtype=torch.float64))
    labels = torch.arange(c).repeat(2)
    ctx = SimpleNamespace(
        model=SimpleNamespace(bundle=None),
        task=SimpleNamespace(train_classnames=[str(k) for k in range(c)], templates="{}"),
        train_features=(torch.nn.functional.normalize(torch.randn(2 * c, d), dim=1), labels),
        encode_frozen_images=None,
        device=torch.device("cpu"),
        seed=3,
        method="coop",
    )
    anchored = build_regularizer("npt", {"family": "anchored", "etf": "random"})
    anchored.setup(ctx)
    info = anchored.info()
    assert info["near_etf"] is True and info["etf_exists"] is False and info["etf_seed"] == 3
    assert info["etf_error_floor"] == pytest.approx(math.sqrt(2 - 2 * math.sqrt(d / (c - 1))))
    assert anchored.etf.shape == (c, d) and torch.allclose(anchored.etf.norm(dim=1), torch.ones(c))
    gram = build_regularizer("npt", {})
    gram.setup(ctx)
    assert gram.info()["near_etf"] is True and gram.info()["family"] == "gram"


def test_npt_given_etf_is_checked_before_any_work(tmp_path):
    from ncprobe.core.geometry import simplex_etf

    cfg = get_preset("testbed-coop-b2n")  # 10 base classes, 384-d testbed embeddings
    good = tmp_path / "etf.npy"
    np.save(good, simplex_etf(10, 384, seed=0).numpy())
    validate_config(cfg.replace(regularizers=[{"name": "npt", "options": {"family": "anchored", "etf": str(good)}}]))
    wrong_classes = tmp_path / "etf11.npy"
    np.save(wrong_classes, simplex_etf(11, 384, seed=0).numpy())
    wrong_dim = tmp_path / "etf.pt"
    torch.save(simplex_etf(10, 512, seed=0), wrong_dim)
    not_etf = tmp_path / "rand.npy"
    np.save(not_etf, np.random.default_rng(0).normal(size=(10, 384)))
    for path, match in [
        (wrong_classes, "etf has 11 rows but the config trains 10 classes"),
        (wrong_dim, "etf has dimension 512 but the model's embeddings have dimension 384"),
        (not_etf, "not a simplex ETF"),
        (tmp_path / "missing.npy", "no such file"),
    ]:
        reg = {"name": "npt", "options": {"family": "anchored", "etf": str(path)}}
        with pytest.raises(ValueError, match=match):
            validate_config(cfg.replace(regularizers=[reg]))


# ------------------------------------------------------------------ Craft
def _craft(**options):
    reg = build_regularizer("craft", options)
    reg.mode, reg.template, reg.classnames = "prompts", "a photo of a {}.", [f"class {k}" for k in range(C)]
    return reg


def test_craft_alignment_terms_against_the_formulas(batch):
    anchors = batch.g.normal(size=(C, D))
    reg = _craft()
    reg.anchors = torch.from_numpy(anchors)
    s = 10.0
    sent = _rows(batch.text)[batch.labels]  # "prompts": each sample's class prompt feature
    terms = reg(_out(batch, scale=s))
    assert float(terms["xeimage"]) == pytest.approx(_ce(s * sent @ _rows(anchors).T, batch.labels), rel=1e-10)
    contrastive = _ce(s * batch.image @ sent.T, np.arange(B))
    assert float(terms["contrastive"]) == pytest.approx(contrastive, rel=1e-10)


def test_craft_k_anchors_per_class_sum_their_probabilities(batch):
    k = 3
    anchors = batch.g.normal(size=(C * k, D))  # class-major: anchors 0..2 of class 0, ...
    reg = _craft(anchors_per_class=k, contrastive_weight=0.0)
    reg.anchors = torch.from_numpy(anchors)
    z = 10.0 * _rows(batch.text)[batch.labels] @ _rows(anchors).T
    p = np.exp(_log_softmax(z)).reshape(B, C, k).sum(-1)
    terms = reg(_out(batch))
    assert set(terms) == {"xeimage"}
    assert float(terms["xeimage"]) == pytest.approx(-np.log(p[np.arange(B), batch.labels]).mean(), rel=1e-10)


def test_craft_template_sentences_go_through_the_models_sentence_encoder(batch):
    vectors = {f"a photo of a class {k}.": batch.g.normal(size=D) for k in range(C)}
    calls = []

    def encode_sentences(sentences):
        calls.append(list(sentences))
        return torch.from_numpy(np.stack([vectors[s] for s in sentences]))

    reg = _craft(xeimage_weight=0.0)
    reg.mode = "template"
    reg.class_sentences = [f"a photo of a class {k}." for k in range(C)]
    terms = reg(_out(batch, model=SimpleNamespace(encode_sentences=encode_sentences)))
    sent = _rows(np.stack([vectors[f"a photo of a class {y}."] for y in batch.labels]))
    assert float(terms["contrastive"]) == pytest.approx(_ce(10.0 * batch.image @ sent.T, np.arange(B)), rel=1e-10)
    assert calls == [[f"a photo of a class {k}." for k in (0, 1, 2)]]  # each distinct sentence once


def _public_craft_mmd(x, y, kernel="rbf"):
    """``MMD(x, y, kernel)`` of ``Jingchensun/Craft/trainers/maple_ood.py`` @ 0cd4b4f, line for line (its
    ``device = torch.device("cuda")`` replaced by the inputs' device)."""
    device = x.device
    eps = 1e-8
    x = (x - x.min(dim=0)[0]) / (x.max(dim=0)[0] - x.min(dim=0)[0] + eps)
    y = (y - y.min(dim=0)[0]) / (y.max(dim=0)[0] - y.min(dim=0)[0] + eps)
    xx, yy, zz = torch.mm(x, x.t()), torch.mm(y, y.t()), torch.mm(x, y.t())
    rx = xx.diag().unsqueeze(0).expand_as(xx)
    ry = yy.diag().unsqueeze(0).expand_as(yy)
    dxx = rx.t() + rx - 2.0 * xx
    dyy = ry.t() + ry - 2.0 * yy
    dxy = rx.t() + ry - 2.0 * zz
    XX, YY, XY = (
        torch.zeros(xx.shape, dtype=x.dtype).to(device),
        torch.zeros(xx.shape, dtype=x.dtype).to(device),
        torch.zeros(xx.shape, dtype=x.dtype).to(device),
    )
    if kernel == "multiscale":
        bandwidth_range = torch.tensor([0.2, 0.5, 0.9, 1.3]).to(device)
        for a in bandwidth_range:
            XX += a**2 * (a**2 + dxx + eps) ** -1
            YY += a**2 * (a**2 + dyy + eps) ** -1
            XY += a**2 * (a**2 + dxy + eps) ** -1
    if kernel == "rbf":
        bandwidth_range = torch.tensor([10, 15, 20, 50]).to(device)
        for a in bandwidth_range:
            XX += torch.exp(-0.5 * dxx / a)
            YY += torch.exp(-0.5 * dyy / a)
            XY += torch.exp(-0.5 * dxy / a)
    return torch.mean(XX + YY - 2.0 * XY)


class _Logits:
    """The model part the MMD term uses: CLIP's scaled cosine logits."""

    def __init__(self, scale):
        self.scale = scale

    def compute_logits(self, x, t):
        return self.scale * x @ t.T


def test_craft_mmd_reproduces_the_public_codes_number(batch):
    s = 100.0  # OpenAI CLIP's logit_scale.exp(), as in the code's logits
    target = _rows(batch.g.normal(size=(B, D)) + 0.5)
    reg = _craft(xeimage_weight=0.0, contrastive_weight=0.0, mmd_weight=1.0)  # the original options are the defaults
    out = _out(batch, model=_Logits(s), target=target, scale=s)
    ours = float(reg(out)["mmd"])
    t = out.text_features
    public = float(_public_craft_mmd(s * out.image_features @ t.T, s * torch.from_numpy(target) @ t.T))
    assert ours == pytest.approx(public, rel=1e-9, abs=1e-12)
    assert ours > 0


def test_craft_mmd_options_and_unequal_batch_sizes(batch):
    target = _rows(batch.g.normal(size=(7, D)))  # 7 target images against 12 source images
    reg = _craft(xeimage_weight=0.0, contrastive_weight=0.0, mmd_weight=1.0, mmd_normalize=None, mmd_bandwidths=[2.0])
    out = _out(batch, model=_Logits(10.0), target=target)
    u = out.logits.numpy()
    v = 10.0 * target @ out.text_features.numpy().T

    def k(a, b):
        return np.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / (2 * 2.0))

    expected = k(u, u).mean() + k(v, v).mean() - 2 * k(u, v).mean()
    assert float(reg(out)["mmd"]) == pytest.approx(expected, rel=1e-9)
    unbiased = _craft(xeimage_weight=0.0, contrastive_weight=0.0, mmd_weight=1.0, mmd_estimator="unbiased")
    assert torch.isfinite(unbiased(out)["mmd"])


# ------------------------------------------------------------------ PromptSRC
class _FrozenCLIP(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = w

    def encode_image(self, images):
        return images.flatten(1) @ self.w


def test_promptsrc_terms_against_the_formulas(batch):
    s = 10.0
    zs_text = _rows(batch.g.normal(size=(C, D)))
    w = torch.from_numpy(batch.g.normal(size=(6, D)))
    images = torch.from_numpy(batch.g.normal(size=(B, 6)))
    reg = build_regularizer("promptsrc", {})
    reg.zs_text, reg.frozen_images = torch.from_numpy(zs_text), False
    logits = batch.g.normal(size=(B, C)) * 3
    model = SimpleNamespace(clip=_FrozenCLIP(w))
    terms = reg(_out(batch, model=model, logits=logits, images=images, scale=s))
    x_zs = _rows((images @ w).numpy())
    assert float(terms["text"]) == pytest.approx(np.abs(_rows(batch.text) - zs_text).mean(), rel=1e-10)
    assert float(terms["image"]) == pytest.approx(np.abs(batch.image - x_zs).mean(), rel=1e-10)
    log_p, log_q = _log_softmax(logits), _log_softmax(s * x_zs @ zs_text.T)
    kl = (np.exp(log_q) * (log_q - log_p)).sum() / logits.size  # KL(p_zs ‖ p_prompted) / numel
    assert float(terms["kl"]) == pytest.approx(kl, rel=1e-10)
    assert [reg.term_weight(k) for k in ("text", "image", "kl")] == [25.0, 10.0, 1.0]
    reg.frozen_images = True  # CoOp: the image tower is frozen, x̂ is x̂_zs
    assert float(reg(_out(batch, model=model, logits=logits, images=images))["image"]) == 0.0


def test_gaussian_prompt_aggregation_is_the_normalised_gaussian_mean_of_the_epochs():
    learner = nn.Module()
    learner.ctx = nn.Parameter(torch.zeros(2, 3))
    learner.register_buffer("token_prefix", torch.ones(1))  # not a parameter: not aggregated
    model = SimpleNamespace(prompt_learner=learner)
    reg = build_regularizer("promptsrc", {"gpa_mean": 3.0, "gpa_std": 1.5})
    reg._names = ["ctx"]
    reg.register_buffer("gpa_mean_0", torch.zeros(2, 3))
    snapshots = [torch.randn(2, 3, generator=torch.Generator().manual_seed(e)) for e in range(1, 6)]
    for epoch, snap in enumerate(snapshots, start=1):
        with torch.no_grad():
            learner.ctx.copy_(snap)
        reg.on_epoch_end(epoch, model)
    reg.on_train_end(model)
    # PromptSRC's get_gauss over range(1, N + 1), normalised
    mu, sigma = 3.0, 1.5
    gauss = np.array([(1 / (sigma * np.sqrt(2 * np.pi))) * np.exp(-0.5 * ((a - mu) / sigma) ** 2) for a in range(1, 6)])
    gauss = gauss / gauss.sum()
    expected = sum(w * s.numpy() for w, s in zip(gauss, snapshots))
    np.testing.assert_allclose(learner.ctx.detach().numpy(), expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gpa_weights(5, mu, sigma), gauss, rtol=1e-12)
    assert reg.info()["gpa_epochs"] == 5
    state = reg.state_dict()  # checkpointed: resuming continues the same mean
    assert {"gpa_mean_0", "gpa_log_weight", "gpa_epochs"} <= set(state)


# ------------------------------------------------------------------ bad input, before any work
@pytest.mark.parametrize(
    "regularizer,change,match",
    [
        ({"name": "npt", "options": {"etf": "random"}}, {}, "applies to family='anchored' only"),
        ({"name": "npt", "options": {"family": "anchored", "image_target": "etf"}}, {}, "family='gram' only"),
        ({"name": "npt", "options": {"family": "flat"}}, {}, "family must be one of"),
        ({"name": "npt", "options": {"text_weight": -1}}, {}, "text_weight must be a finite number >= 0"),
        ({"name": "npt", "options": {"text_weight": 0, "image_weight": 0}}, {}, "would do nothing"),
        ({"name": "npt", "weight": -0.5}, {}, "weight must be >= 0"),
        ({"name": "craft", "options": {"mmd_weight": 1.0}}, {}, "needs an unlabelled target set"),
        ({"name": "craft", "options": {"sentences": "template"}}, {}, "no trainable part under method 'coop'"),
        ({"name": "craft", "options": {"anchors_per_class": 5}}, {}, "exceeds the 4 images per class"),
        ({"name": "craft", "options": {"anchors_per_class": 2}}, {"data.imbalance_ratio": 4.0}, "exceeds the 1 images"),
        ({"name": "craft", "options": {"anchor_classes": "novel"}}, {}, "anchor_classes must be one of"),
        ({"name": "craft", "options": {"mmd_bandwidths": [1, -2]}}, {}, "positive numbers"),
        ({"name": "promptsrc", "options": {"templates": ["no placeholder"]}}, {}, "one '{}' each"),
        ({"name": "promptsrc", "options": {"gpa_std": 0}}, {}, "gpa_std > 0"),
        ({"name": "npt"}, {"method.name": "zeroshot"}, "applies to methods"),
    ],
)
def test_bad_regularizer_input_fails_before_any_work(regularizer, change, match):
    cfg = get_preset("testbed-coop-b2n").replace(**{"data.num_shots": 4, "regularizers": [regularizer], **change})
    with pytest.raises(ValueError, match=match):
        validate_config(cfg)


def test_a_regularizer_given_twice_is_refused():
    cfg = get_preset("testbed-coop-npt-b2n").replace(regularizers=[{"name": "npt"}, {"name": "npt"}])
    with pytest.raises(ValueError, match=r"regularizers \['npt'\] appear more than once"):
        validate_config(cfg)


def test_registry_lists_every_term():
    assert {"npt", "craft", "promptsrc", "kgcoop"} <= set(REGULARIZERS)
    with pytest.raises(ValueError, match="valid regularizers: craft, kgcoop, npt, promptsrc"):
        build_regularizer("nope")
