"""Each regularizer's choices against the public code it comes from (issue 16, "Fidelity"): KgCoOp's own template
table, PromptSRC's 60-template ensemble, OpenPT's 200-vertex ETF, Craft's raw-feature anchors, KgCoOp under
CoCoOp, buffers in the run's dtype, and the near-ETF aligned to the text. Each test names the source lines it pins
(``docs/methods.md`` quotes them too)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

import ncprobe.training.regularizers.kgcoop as kgcoop_module
import ncprobe.training.regularizers.npt as npt_module
import ncprobe.training.regularizers.promptsrc as promptsrc_module
from ncprobe.core.geometry import align_frame, near_etf, normalize_rows
from ncprobe.data.templates import CUSTOM_TEMPLATES, IMAGENET_TEMPLATES, KGCOOP_TEMPLATES, PROMPTSRC_TEMPLATES
from ncprobe.training import get_preset, validate_config
from ncprobe.training.regularizers import StepOutput, build_regularizer

DOCS = Path(__file__).parents[2] / "docs" / "methods.md"


def _fake_text_features(dim: int, calls: list | None = None):
    """A stand-in for ``text_features``: float32 rows that depend on the prompts (records the templates used)."""

    def encode(bundle, names, templates, *, normalize=True, device=None, **_):
        if calls is not None:
            calls.append(templates)
        g = torch.Generator().manual_seed(sum(map(ord, str(templates))) % 10_000)
        return torch.randn(len(names), dim, generator=g)

    return encode


class _Learner(nn.Module):
    def __init__(self, dtype):
        super().__init__()
        self.ctx = nn.Parameter(torch.zeros(2, 4, dtype=dtype))

    def deep_text_prompts(self):
        return []


class _Model(nn.Module):
    """The parts of ``PromptedCLIP`` a regularizer's setup reads; its weights are in ``dtype``."""

    def __init__(self, dtype=torch.float64):
        super().__init__()
        self.prompt_learner = _Learner(dtype)
        self.bundle = None


def _ctx(c, d, *, dtype=torch.float64, dataset="DescribableTextures", method="coop", encode=None):
    labels = torch.arange(c).repeat(3)
    feats = torch.randn(3 * c, d, generator=torch.Generator().manual_seed(0))  # float32, as the feature bank
    task = SimpleNamespace(
        dataset=dataset,
        train=list(range(3 * c)),
        train_labels=labels,
        train_classnames=[f"class_{k}" for k in range(c)],
        train_class_texts=None,
        templates=CUSTOM_TEMPLATES.get(dataset, "a photo of a {}."),
        draw_train=None,
    )
    return SimpleNamespace(
        model=_Model(dtype),
        task=task,
        train_features=(feats, labels),
        encode_frozen_images=encode,
        device=torch.device("cpu"),
        seed=3,
        method=method,
    )


# ------------------------------------------------------------------ KgCoOp
def test_kgcoop_prompts_come_from_kgcoops_own_template_table(monkeypatch):
    """``htyao89/KgCoOp/KgCoOp/trainers/kgcoop.py`` lines 37–54 and 136: DTD is 'a photo of a {}, a type of
    texture.', not CoOp's '{} texture.'; ``templates="task"`` keeps the task's (CoOp's) template."""
    assert KGCOOP_TEMPLATES["DescribableTextures"] == "a photo of a {}, a type of texture."
    assert CUSTOM_TEMPLATES["DescribableTextures"] == "{} texture."
    assert {k for k in CUSTOM_TEMPLATES if KGCOOP_TEMPLATES[k] != CUSTOM_TEMPLATES[k]} == {"DescribableTextures"}
    calls: list = []
    monkeypatch.setattr(kgcoop_module, "text_features", _fake_text_features(8, calls))
    monkeypatch.setattr(kgcoop_module, "handwritten_class_features", lambda *a, **k: pytest.fail("CoOp's template"))
    reg = build_regularizer("kgcoop", {})
    reg.setup(_ctx(4, 8))
    assert calls == ["a photo of a {}, a type of texture."]
    assert reg.info() == {"templates": "kgcoop", "template": "a photo of a {}, a type of texture."}
    calls.clear()
    monkeypatch.setattr(kgcoop_module, "handwritten_class_features", lambda task, *a, **k: torch.ones(4, 8))
    task_template = build_regularizer("kgcoop", {"templates": "task"})
    task_template.setup(_ctx(4, 8))
    assert calls == [] and task_template.info()["template"] == "{} texture."
    with pytest.raises(ValueError, match="templates must be one of"):
        build_regularizer("kgcoop", {"templates": "coop"})


def test_kgcoop_under_cocoop_averages_the_per_image_features_before_the_cosine():
    """KgCoOp has no CoCoOp trainer; here the (B, C, d) conditional features are averaged over the batch, then
    compared with t_k^clip (docs/methods.md says so)."""
    g = torch.Generator().manual_seed(1)
    b, c, d = 6, 4, 5
    t = normalize_rows(torch.randn(b, c, d, generator=g, dtype=torch.float64))
    ref = normalize_rows(torch.randn(c, d, generator=g, dtype=torch.float64))
    reg = build_regularizer("kgcoop", {})
    reg.clip_text = ref
    out = StepOutput(
        image_features=torch.zeros(b, d, dtype=torch.float64),
        text_features=t,
        logits=torch.zeros(b, c, dtype=torch.float64),
        labels=torch.zeros(b, dtype=torch.long),
        logit_scale=torch.tensor(1.0),
        model=None,
        classnames=[],
    )
    m = t.mean(0)
    expected = 1 - float(((m * ref).sum(1) / m.norm(dim=1)).mean())
    per_image = 1 - float((t * ref).sum(-1).mean())
    got = float(reg(out)["distance"])
    assert got == pytest.approx(expected, rel=1e-12) and abs(got - per_image) > 1e-3
    section = DOCS.read_text().split("## KgCoOp")[1].split("\n## ")[0]
    assert "CoCoOp" in section and "averaged over the batch" in section


# ------------------------------------------------------------------ PromptSRC
def test_promptsrc_averages_the_codes_60_templates_by_default():
    """``muzairkhattak/PromptSRC/trainers/imagenet_templates.py`` lines 3–64 (60 templates, the same file in
    ``Jingchensun/Craft``), read by ``trainers/promptsrc.py`` lines 121–128."""
    assert len(PROMPTSRC_TEMPLATES) == len(set(PROMPTSRC_TEMPLATES)) == 60
    assert PROMPTSRC_TEMPLATES[0] == "a photo of a {}." and PROMPTSRC_TEMPLATES[-1] == "itap of the {}."
    assert set(PROMPTSRC_TEMPLATES) == set(IMAGENET_TEMPLATES[:60])
    reg = build_regularizer("promptsrc", {})
    task = SimpleNamespace(dataset="OxfordPets", templates="a photo of a {}, a type of pet.")
    assert reg._resolve_templates(task) == list(PROMPTSRC_TEMPLATES)
    assert build_regularizer("promptsrc", {"templates": "imagenet"})._resolve_templates(task) == list(
        IMAGENET_TEMPLATES
    )
    assert build_regularizer("promptsrc", {"templates": "promptsrc"})._resolve_templates(task) == list(
        PROMPTSRC_TEMPLATES
    )


# ------------------------------------------------------------------ NPT (OpenPT's ETF head)
def _vertex_cosines(etf: torch.Tensor) -> torch.Tensor:
    u = normalize_rows(etf.double())
    return (u @ u.T)[~torch.eye(len(u), dtype=torch.bool)]


def test_openpt_etf_head_has_200_vertices_and_the_first_c_are_used(monkeypatch):
    """``heyhey24/OpenPT/trainers/etf_coop.py`` lines 50–65 (``ETFhead``) and 131–135 (``TOTAL_NUM_CLASSES``,
    default 200): vertices meet at −1/199; the default ETF of the C training classes at −1/(C−1)."""
    c, d = 5, 256
    monkeypatch.setattr(npt_module, "handwritten_class_features", lambda *a, **k: torch.randn(c, d))
    openpt = build_regularizer("npt", {"family": "anchored", "etf": "random", "etf_total_classes": 200})
    openpt.setup(_ctx(c, d))
    assert openpt.etf.shape == (c, d)
    torch.testing.assert_close(_vertex_cosines(openpt.etf), torch.full((c * (c - 1),), -1 / 199.0, dtype=torch.float64))
    assert openpt.info()["etf_total_classes"] == 200
    own = build_regularizer("npt", {"family": "anchored", "etf": "random"})
    own.setup(_ctx(c, d))
    torch.testing.assert_close(_vertex_cosines(own.etf), torch.full((c * (c - 1),), -1 / (c - 1), dtype=torch.float64))


@pytest.mark.parametrize(
    "options,match",
    [
        ({"family": "anchored", "etf": "text", "etf_total_classes": 200}, "applies to etf='random' only"),
        ({"etf_total_classes": 200}, "applies to family='anchored' only"),
        ({"family": "anchored", "etf": "random", "etf_total_classes": 5}, "smaller than the 10 classes"),
        ({"family": "anchored", "etf": "random", "etf_total_classes": 400}, "dimension >= 399"),
        ({"family": "anchored", "etf": "random", "etf_total_classes": 1.5}, "integer >= 2"),
    ],
)
def test_etf_total_classes_is_checked_before_any_work(options, match):
    cfg = get_preset("testbed-coop-b2n").replace(regularizers=[{"name": "npt", "options": options}])
    with pytest.raises(ValueError, match=match):
        validate_config(cfg)


def test_etf_total_classes_200_fits_the_testbed():
    opts = {"family": "anchored", "etf": "random", "etf_total_classes": 200}
    validate_config(get_preset("testbed-coop-b2n").replace(regularizers=[{"name": "npt", "options": opts}]))


# ------------------------------------------------------------------ NPT: near-ETF aligned to the text
def test_align_frame_recovers_a_rotation_and_keeps_the_gram():
    g = torch.Generator().manual_seed(2)
    frame = normalize_rows(torch.randn(7, 3, generator=g, dtype=torch.float64))
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    torch.testing.assert_close(align_frame(frame, frame @ q, center=False), frame @ q)
    moved = align_frame(frame, torch.randn(7, 3, generator=g, dtype=torch.float64))
    torch.testing.assert_close(moved @ moved.T, frame @ frame.T)


@pytest.mark.parametrize("source", ["text", "image"])
def test_near_etf_for_more_classes_than_dimensions_is_aligned_to_the_features(monkeypatch, source):
    """C > D + 1: the near-ETF is rotated to the zero-shot text (or the image class means) by Procrustes, as
    ``nearest_etf`` rotates an exact ETF; the rotation keeps its coherence."""
    c, d = 7, 3
    text = torch.randn(c, d, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    monkeypatch.setattr(npt_module, "handwritten_class_features", lambda *a, **k: text)
    ctx = _ctx(c, d)
    reg = build_regularizer("npt", {"family": "anchored", "etf": source})
    reg.setup(ctx)
    info = reg.info()
    assert info["near_etf"] is True and info["etf_aligned"] is True
    frame = near_etf(c, d, seed=ctx.seed)
    torch.testing.assert_close(reg.etf @ reg.etf.T, frame @ frame.T)
    target = text if source == "text" else reg.memory
    target = target - target.mean(0)
    assert torch.linalg.norm(reg.etf - target) < torch.linalg.norm(frame - target)
    torch.testing.assert_close(reg.etf, align_frame(frame, target))


# ------------------------------------------------------------------ Craft's original anchors
def test_craft_raw_anchor_average_is_the_mean_of_raw_features():
    """``Jingchensun/Craft/lpclip/static_anchor.py`` lines 24–29: ``KMeans(n_clusters=1)`` of the raw
    ``clip_model.visual`` features (their mean); the default averages L2-normalised features."""
    c, d = 3, 4
    raw = torch.randn(3 * c, d, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    raw = raw * torch.linspace(0.5, 4.0, 3 * c, dtype=torch.float64)[:, None]  # unequal norms
    calls = []

    def encode(dataset, normalize=True):
        calls.append(normalize)
        return (normalize_rows(raw) if normalize else raw), torch.arange(c).repeat(3)

    labels = torch.arange(c).repeat(3)
    expected_raw = torch.stack([raw[labels == k].mean(0) for k in range(c)])
    expected_norm = torch.stack([normalize_rows(raw)[labels == k].mean(0) for k in range(c)])
    for average, expected in (("raw", expected_raw), ("normalized", expected_norm)):
        ctx = _ctx(c, d, encode=encode)
        ctx.train_features = None
        reg = build_regularizer("craft", {"anchor_average": average})
        reg.setup(ctx)
        torch.testing.assert_close(reg.anchors, expected)
        assert reg.info()["anchor_average"] == average
    assert calls == [False, True]
    assert not torch.allclose(normalize_rows(expected_raw), normalize_rows(expected_norm))
    with pytest.raises(ValueError, match="anchor_average must be one of"):
        build_regularizer("craft", {"anchor_average": "mean"})


# ------------------------------------------------------------------ buffers in the run's dtype
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_buffers_follow_the_models_dtype(monkeypatch, dtype):
    """The ETF, the memory, the anchors and the frozen text are built in the model's dtype (float64 runs are not
    cut to float32), and ``.to(dtype)`` moves them (registered buffers)."""
    c, d = 4, 8
    encode = _fake_text_features(d)
    for module in (npt_module, kgcoop_module):
        monkeypatch.setattr(
            module, "handwritten_class_features", lambda task, *a, **k: encode(None, task.train_classnames, "{}")
        )
    monkeypatch.setattr(kgcoop_module, "text_features", encode)
    monkeypatch.setattr(promptsrc_module, "text_features", encode)
    regs = {
        "npt-gram": (build_regularizer("npt", {}), ["memory"]),
        "npt-anchored": (build_regularizer("npt", {"family": "anchored"}), ["memory", "etf"]),
        "kgcoop": (build_regularizer("kgcoop", {}), ["clip_text"]),
        "craft": (build_regularizer("craft", {}), ["anchors"]),
        "promptsrc": (build_regularizer("promptsrc", {}), ["zs_text", "gpa_mean_0"]),
    }
    for name, (reg, buffers) in regs.items():
        reg.setup(_ctx(c, d, dtype=dtype))
        for b in buffers:
            assert getattr(reg, b).dtype == dtype, (name, b)
        reg.to(torch.float16)
        assert all(getattr(reg, b).dtype == torch.float16 for b in buffers), name


def test_the_docs_list_the_source_options():
    text = DOCS.read_text()
    assert "`anchor_average`" in text and "`etf_total_classes`" in text and "KGCOOP_TEMPLATES" in text
    promptsrc = text.split("## PromptSRC")[1].split("\n## ")[0]
    assert "60" in promptsrc and "80 ImageNet templates |" not in promptsrc
