"""Short runs on the fast testbed: each regularizer moves the quantity it targets, and every term runs end to end
from the API and the CLI, alone and combined."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ncprobe.cli import main
from ncprobe.core.anchors import select_anchors
from ncprobe.core.mmd import mmd2
from ncprobe.models.features import text_features
from ncprobe.training import train
from ncprobe.training.tasks import build_task
from tests.training.conftest import fast

#: Three epochs at a larger learning rate, no warm-up epoch (it runs at 1e-5), NC tracked at the first and last.
SHORT = {"optim.epochs": 3, "optim.lr": 0.01, "optim.warmup_epochs": 0, "track.every": 100, "track.max_per_class": 20}


def _run(preset, **changes):
    cfg = fast(preset, **{**SHORT, **changes})
    return cfg, train(cfg).runs[0]


def _last(run, name, eval_set="base"):
    return float(run.history[name].sel(eval_set=eval_set).isel(epoch=-1))


@pytest.fixture(scope="module")
def coop():
    """Plain CoOp under the same short schedule: the baseline every term is compared with."""
    return _run("testbed-coop-b2n")


def _images(dataset):
    return torch.stack([dataset[i][0] for i in range(len(dataset))])


@pytest.mark.parametrize("preset", ["testbed-coop-npt-b2n", "testbed-coop-npt-anchored-b2n"])
def test_npt_lowers_the_text_etf_error(coop, preset):
    _, base = coop
    _, run = _run(preset)
    h = run.history
    assert {"loss_npt_text", "loss_npt_image"} <= set(h.data_vars)
    text_etf = _last(run, "t2i_text_etf_error")
    start = float(h["t2i_text_etf_error"].sel(eval_set="base", epoch=0))
    assert text_etf < _last(base, "t2i_text_etf_error") - 2e-3 and text_etf < start - 2e-3, (text_etf, start)
    info = run.result["regularizers"]["npt"]
    assert info["family"] == ("anchored" if "anchored" in preset else "gram") and info["etf_exists"] is True
    if info["family"] == "gram":  # the isomorphism term ("cross": image class means and text on one ETF)
        assert _last(run, "t2i_cross_etf_error") < _last(base, "t2i_cross_etf_error") - 2e-3


def test_craft_alignment_lowers_the_cross_modal_distance_it_targets(coop):
    cfg, base = coop
    _, run = _run("testbed-coop-craft-b2n")
    assert run.result["regularizers"]["craft"]["sentences"] == "prompts"
    task = build_task(cfg.data, protocol=cfg.data.protocol, seed=1, image_size=32)
    with torch.no_grad():
        frozen = F.normalize(base.model.clip.encode_image(_images(task.train)), dim=-1)
        anchors, _ = select_anchors(frozen, task.train_labels, method="class_mean")
        anchors = F.normalize(anchors, dim=-1)

        def distance(model):  # L_xeimage over the class prompts: text expressed relative to the image anchors
            t = model.encode_text()
            return float(F.cross_entropy(model.logit_scale * t @ anchors.T, torch.arange(len(t))))

        craft_d, coop_d = distance(run.model), distance(base.model)
    assert craft_d < coop_d - 2e-3, (craft_d, coop_d)


def test_mmd_falls_on_a_shifted_target():
    changes = {"data.ood_target": "testbed-shifted", "track.max_per_class": 10}
    term = {"name": "craft", "weight": 10.0, "options": {"xeimage_weight": 0, "contrastive_weight": 0, "mmd_weight": 1}}
    cfg, plain = _run("testbed-coop-dg", **changes)
    _, run = _run("testbed-coop-dg", **changes, regularizers=[term])
    assert "loss_craft_mmd" in run.history and "loss_craft_xeimage" not in run.history
    task = build_task(cfg.data, protocol=cfg.data.protocol, seed=1, image_size=32)
    with torch.no_grad():
        source = plain.model.encode_image(_images(task.train))
        target = plain.model.encode_image(_images(task.ood))

        def mmd(model):  # Craft's MMD over the whole source and target sets, with the final prompts
            t, s = model.encode_text(), model.logit_scale
            return float(mmd2(s * source @ t.T, s * target @ t.T, normalize="minmax"))

        with_term, without = mmd(run.model), mmd(plain.model)
    assert with_term < 0.95 * without, (with_term, without)


def test_kgcoop_keeps_the_prompts_closer_to_the_hand_crafted_ones(coop):
    cfg, base = coop
    _, run = _run("testbed-kgcoop-b2n")
    model = run.model
    clip = text_features(model.bundle, model.classnames, "a photo of a {}.", normalize=True)
    with torch.no_grad():
        kg = float(F.cosine_similarity(model.encode_text(), clip).mean())
        plain = float(F.cosine_similarity(base.model.encode_text(), clip).mean())
    assert 1 - kg < 0.8 * (1 - plain), (kg, plain)  # the distance KgCoOp penalises, 1 − mean cos


def test_promptsrc_alone_and_every_term_combined_from_the_api(tmp_path):
    _, alone = _run(
        "testbed-coop-b2n", **{"optim.epochs": 1, "optim.max_steps": 2, "regularizers": [{"name": "promptsrc"}]}
    )
    assert float(alone.history["loss_promptsrc_image"].isel(epoch=-1)) == 0.0  # CoOp's image tower is frozen
    assert np.isfinite(alone.history["loss_promptsrc_text"].isel(epoch=-1))
    regs = [
        {"name": "npt", "weight": 2.0, "options": {"family": "gram", "image_means": "batch"}},
        {"name": "craft", "options": {"mmd_weight": 1.0}},
        {"name": "promptsrc", "options": {"gpa_mean": 1.5, "gpa_std": 1.0}},
        {"name": "kgcoop", "weight": 1.0},
    ]
    changes = {"optim.epochs": 2, "data.num_shots": 2, "track.max_per_class": 10, "data.ood_target": "testbed-shifted"}
    changes.update(regularizers=regs, output_dir=str(tmp_path))
    _, run = _run("testbed-ivlp-b2n", **changes)
    h = run.history
    for term in ("npt_text", "npt_image", "craft_xeimage", "craft_contrastive", "craft_mmd", "promptsrc_kl"):
        assert np.isfinite(h[f"loss_{term}"].isel(epoch=-1)), term
    assert float(h["loss_promptsrc_image"].isel(epoch=-1)) > 0  # IVLP prompts the image tower
    result = json.loads((tmp_path / "result.json").read_text())
    assert set(result["regularizers"]) == {"npt", "craft", "promptsrc", "kgcoop"}
    assert result["regularizers"]["craft"]["sentences"] == "template"  # IVLP has deep text prompts
    gpa = result["regularizers"]["promptsrc"]
    assert gpa["gpa_epochs"] == 2 and gpa["gpa_weights"] == pytest.approx([0.5, 0.5])
    # the last checkpoint holds the aggregated prompts, the mean of the two epochs' prompts
    state = torch.load(tmp_path / "checkpoints" / "epoch_0002.pt", weights_only=False)
    reg_state = state["regularizers"]["promptsrc"]
    name = next(n for n, p in run.model.prompt_learner.named_parameters() if p.requires_grad)
    torch.testing.assert_close(state["learner"][name], reg_state["gpa_mean_0"].to(state["learner"][name].dtype))


def test_every_term_from_the_cli(tmp_path, capsys):
    common = ["--model.testbed_preset", "fast", "--data.dataset", "testbed", "--data.num_shots", "4"]
    common += ["--optim.epochs", "1", "--progress", "false"]
    common += ["--optim.max_steps", "2", "--track.max_per_class", "10"]
    out = tmp_path / "coop"
    argv = ["train", "--preset", "testbed-coop-b2n", *common, "--output_dir", str(out)]
    argv += ["--regularizer", "npt,family=gram,image_target=text,weight=5"]
    argv += ["--regularizer", "craft,mmd_weight=1,anchor_classes=all,anchor_shots=8"]
    argv += ["--data.ood_target", "testbed-shifted"]
    assert main(argv) == 0
    result = json.loads((out / "result.json").read_text())
    craft = result["regularizers"]["craft"]
    assert craft["saw_novel_classes"] is True and craft["anchor_class_count"] == 20  # the original's anchors
    assert craft["saw_images_outside_few_shot_set"] is True and craft["anchor_images"] == 160
    assert result["regularizers"]["npt"]["image_target"] == "text"
    out = tmp_path / "maple"
    argv = ["train", "--preset", "testbed-maple-craft-b2n", *common, "--output_dir", str(out)]
    argv += ["--regularizer", "npt,family=anchored,etf=random,loss=cosine", "--regularizer", "promptsrc,gpa=false"]
    assert main(argv) == 0
    result = json.loads((out / "result.json").read_text())
    assert set(result["regularizers"]) == {"craft", "npt", "promptsrc"}
    assert result["regularizers"]["npt"]["etf"] == "random" and result["regularizers"]["npt"]["etf_seed"] == 1
    capsys.readouterr()
    argv = ["train", "--preset", "testbed-coop-b2n", *common, "--regularizer", "craft,mmd_weight=1"]
    assert main(argv) == 2
    assert "needs an unlabelled target set: pass --data.ood_target NAME" in capsys.readouterr().err


@pytest.mark.parametrize(
    "preset", ["testbed-coop-npt-imbalanced", "testbed-maple-craft-ood", "testbed-ivlp-promptsrc-b2n"]
)
def test_the_other_regularizer_presets_run(preset):
    cfg = fast(preset, **{"optim.epochs": 1, "optim.max_steps": 1, "track.max_per_class": 5, "data.num_shots": 2})
    run = train(cfg).runs[0]
    terms = [k for k in run.history.data_vars if k.startswith("loss_") and k.count("_") >= 2 and k != "loss_ce"]
    assert terms and all(np.isfinite(run.history[k].isel(epoch=-1)) for k in terms), terms
    if preset.endswith("ood"):
        assert "loss_craft_mmd" in terms and "testbed-shifted" in run.history["eval_set"].values
