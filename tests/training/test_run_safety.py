"""No silently wrong run: every check before any work, all problems at once, strict files, short reprs.

A manifest is a promise about protocol, classes, shots, seed and imbalance; ``data.targets`` does what its
help says; a refused run leaves its folder as it was, so the corrected config runs in the same folder; the
paper presets fail at once, in command-line words, without weights or data.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import time
from pathlib import Path

import pytest
import torch
import xarray as xr
import yaml

from ncprobe.cli import main
from ncprobe.training import TrainConfig, get_preset, train
from ncprobe.training.api import RunResult, TrainResult
from ncprobe.training.config import config_hash, load_config
from ncprobe.training.presets import PRESETS
from ncprobe.training.regularizers import REGULARIZERS, Regularizer, register_regularizer
from ncprobe.training.tasks import build_task
from ncprobe.training.validation import ConfigError, check_run, resolve_config, validate_config
from tests.training.conftest import fast


def _manifest(tmp_path: Path, name: str, preset: str = "testbed-coop-b2n", seed: int = 1, **changes) -> str:
    """The few-shot selection of ``preset`` (fast testbed) written as a manifest, without training."""
    cfg = resolve_config(fast(preset, **{"seeds": [seed], **changes}))
    task = build_task(cfg.data, protocol=cfg.data.protocol, seed=seed, image_size=32)
    path = tmp_path / name
    task.selection.to_json(path)
    return str(path)


def _strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


# ------------------------------------------------------------------ the manifest is checked against the config
def test_a_manifest_of_another_protocol_or_seed_is_refused_naming_field_values_and_fix(tmp_path):
    b2n = _manifest(tmp_path, "b2n.json", **{"data.num_shots": 2})
    few_shot = fast("testbed-coop-fewshot", **{"data.num_shots": None, "data.manifest": b2n})
    with pytest.raises(ConfigError, match=r"'base' classes \(10 classes\).*protocol 'few_shot'.*--data.protocol"):
        validate_config(few_shot)
    seed2 = _manifest(tmp_path, "seed2.json", seed=2, **{"data.num_shots": 2})
    run = fast("testbed-coop-b2n", **{"data.num_shots": None, "data.manifest": seed2})  # seeds: the default [1]
    with pytest.raises(ConfigError, match=r"drawn with seed 2 but seeds is \[1\].*--seeds 2"):
        validate_config(run)
    assert resolve_config(run.replace(seeds=[2])).data.num_shots == 2


def test_manifest_facts_the_config_leaves_open_come_from_the_manifest(tmp_path):
    path = _manifest(tmp_path, "imb.json", **{"data.num_shots": 8, "data.imbalance_ratio": 4.0})
    open_cfg = fast("testbed-coop-b2n", **{"data.num_shots": None, "data.manifest": path})
    resolved = resolve_config(open_cfg)
    assert (resolved.data.num_shots, resolved.data.imbalance_ratio, resolved.data.imbalance_profile) == (8, 4.0, "exp")
    with pytest.raises(ConfigError) as info:
        validate_config(open_cfg.replace(**{"data.num_shots": 16, "data.imbalance_ratio": 1.0}))
    assert len(info.value.problems) == 2
    assert "num_shots=8 but the config sets 16: omit data.num_shots" in str(info.value)
    assert "imbalance_ratio=4.0 but the config sets 1.0" in str(info.value)
    # without a manifest the defaults are CoOp's 16 shots, balanced
    plain = resolve_config(get_preset("testbed-coop-b2n"))
    assert (plain.data.num_shots, plain.data.imbalance_ratio, plain.data.imbalance_profile) == (16, 1.0, "exp")


def test_paper_presets_leave_the_shots_open_so_a_manifest_sets_them(tmp_path):
    """A paper preset with a 2-shot manifest is not refused for 16 shots the user never set; the clash message
    says how to clear a value on the command line."""
    from ncprobe.data import load_manifest

    paper = [name for name in PRESETS if name.startswith("paper-")]
    assert paper and all(get_preset(name).data.num_shots is None for name in paper)
    pets = dataclasses.replace(
        load_manifest(_manifest(tmp_path, "m.json", **{"data.num_shots": 2})), dataset="OxfordPets"
    )
    pets.to_json(tmp_path / "pets.json")
    cfg = get_preset("paper-coop-base_to_novel").replace(**{"data.manifest": str(tmp_path / "pets.json"), "seeds": [1]})
    with pytest.raises(ConfigError) as info:  # 10 classes, not OxfordPets' 19 base classes: refused for that only
        validate_config(cfg)
    assert not any("num_shots" in line for line in info.value.problems), info.value.problems
    with pytest.raises(
        ConfigError, match=r"config sets 16: omit data.num_shots \(on the command line: --data.num_shots none\)"
    ):
        validate_config(cfg.replace(**{"data.num_shots": 16}))


def test_empty_seeds_with_an_unseeded_imbalanced_manifest_is_a_problem_not_a_traceback(tmp_path):
    from ncprobe.data import load_manifest

    path = _manifest(tmp_path, "imb.json", **{"data.num_shots": 2, "data.imbalance_ratio": 4.0})
    dataclasses.replace(load_manifest(path), seed=None).to_json(tmp_path / "unseeded.json")
    cfg = fast("testbed-coop-b2n", **{"data.num_shots": None, "data.manifest": str(tmp_path / "unseeded.json")})
    with pytest.raises(ConfigError, match="seeds is empty"):
        validate_config(cfg.replace(seeds=[]))


def test_a_manifest_of_every_image_is_refused(tmp_path):
    from ncprobe.data import load_manifest

    every = dataclasses.replace(load_manifest(_manifest(tmp_path, "m.json")), num_shots=0, seed=None)
    every.to_json(tmp_path / "all.json")
    cfg = fast("testbed-coop-b2n", **{"data.num_shots": None, "data.manifest": str(tmp_path / "all.json")})
    with pytest.raises(ConfigError, match=r"keeps every image \(num_shots=0\)"):
        validate_config(cfg)


def test_the_identity_of_a_run_is_what_it_computes():
    """Fields left open hash as the values they resolve to (16 shots, balanced: existing run folders keep their
    hash), and create_split (how a missing split file is made) is not part of the identity."""
    explicit = {"data.num_shots": 16, "data.imbalance_ratio": 1.0, "data.imbalance_profile": "exp"}
    for name in ("testbed-coop-b2n", "paper-coop-base_to_novel"):
        cfg = get_preset(name)
        assert config_hash(resolve_config(cfg)) == config_hash(resolve_config(cfg.replace(**explicit)))
        assert config_hash(cfg.replace(**{"data.create_split": True})) == config_hash(cfg)


# ------------------------------------------------------------------ data.targets
def test_validate_config_is_resolve_config_without_its_result(monkeypatch):
    import ncprobe.training.validation as validation

    seen = []
    monkeypatch.setattr(validation, "resolve_config", lambda cfg: seen.append(cfg))
    cfg = fast("testbed-coop-b2n")
    assert validation.validate_config(cfg) is None and seen == [cfg]


def test_advice_is_in_flag_words_and_the_help_says_what_the_manifest_sets():
    from ncprobe.training.config import config_fields

    with pytest.raises(ConfigError, match=r"needs an unlabelled target set: pass --data.ood_target NAME"):
        validate_config(fast("testbed-coop-b2n", regularizers=[{"name": "craft", "options": {"mmd_weight": 1.0}}]))
    with pytest.raises(ConfigError, match=r"prompts it: pass --feature_bank auto or off"):
        validate_config(fast("testbed-maple-craft-b2n", feature_bank="on"))
    helps = {f.path: f.help for f in config_fields()}
    assert "the manifest's" in helps["data.class_order_seed"]


def test_a_regularizers_buffers_follow_reg_to_not_model_to():
    """run_dtype's docstring: the regularizers are not the model's submodules, so only reg.to() moves them."""
    from ncprobe.training.regularizers._shared import run_dtype

    model, reg = torch.nn.Linear(2, 2), Regularizer()
    reg.register_buffer("anchor", torch.zeros(3))
    model.to(torch.float64)
    assert run_dtype(model) == torch.float64 and reg.anchor.dtype == torch.float32
    reg.to(torch.float64)
    assert reg.anchor.dtype == torch.float64
    doc = " ".join(run_dtype.__doc__.split())
    assert "regularizers are not submodules of the model" in doc and "reg.to(torch.float64)`` moves them" in doc


def test_evaluate_on_the_command_line_prints_strict_json(monkeypatch, tmp_path, capsys):
    from ncprobe.training import api

    found = {"checkpoint": str(tmp_path / "c.pt"), "epoch": 1, "accuracy": {"all": float("nan")}, "metrics": {}}
    monkeypatch.setattr(api, "evaluate", lambda run_dir, checkpoint=None: found)
    capsys.readouterr()
    assert main(["train", "--preset", "testbed-coop-b2n", "--evaluate", "--output_dir", str(tmp_path)]) == 0
    assert _strict_json(capsys.readouterr().out)["accuracy"] == {"all": None}


def test_targets_choose_the_evaluated_sets_and_unknown_ones_list_the_valid_ones():
    cfg = resolve_config(fast("testbed-coop-xd", **{"data.targets": ["testbed-shifted"]}))
    task = build_task(cfg.data, protocol=cfg.data.protocol, seed=1, image_size=32)
    assert [e.name for e in task.eval_sets] == ["all", "testbed-shifted"]
    with pytest.raises(ConfigError, match="unknown data.targets entry 'nowhere'.*testbed-shifted, sklearn-digits"):
        validate_config(cfg.replace(**{"data.targets": ["nowhere"]}))
    with pytest.raises(ConfigError, match="protocol 'base_to_novel' would ignore them"):
        validate_config(fast("testbed-coop-b2n", **{"data.targets": ["testbed-shifted"]}))


def test_every_problem_is_reported_at_once_one_per_line(tmp_path):
    path = _manifest(tmp_path, "m.json", **{"data.num_shots": 2})
    bad = fast(
        "testbed-coop-b2n",
        **{"data.manifest": path, "data.ood_target": "nowhere", "data.targets": ["x"], "optim.lr": -1.0},
    )
    with pytest.raises(ConfigError) as info:
        check_run(bad)
    message = str(info.value)
    assert message.startswith(f"{len(info.value.problems)} problems with the config:")
    for part in ("ood_target 'nowhere'", "targets entry 'x'", "num_shots=2 but the config sets 4", "optim.lr"):
        assert sum(part in line for line in message.splitlines()) == 1, part


# ------------------------------------------------------------------ nothing written before the checks
class _UndefinedFacts(Regularizer):
    name = "test_undefined_facts"

    def forward(self, out):
        return {"zero": 0.0 * out.logits.sum()}

    def info(self) -> dict:
        return {"undefined": float("nan"), "overflow": float("inf"), "finite": 1.5}


_FACTS = {"name": _UndefinedFacts.name}


@pytest.fixture
def undefined_facts():
    register_regularizer(_UndefinedFacts)
    yield _FACTS
    REGULARIZERS.pop(_UndefinedFacts.name)


def test_a_refused_run_writes_nothing_and_the_corrected_config_runs_in_the_same_folder(tmp_path, undefined_facts):
    path = _manifest(tmp_path, "m.json", **{"data.num_shots": 2})
    out = tmp_path / "run"
    cfg = fast(
        "testbed-coop-b2n",
        **{"optim.epochs": 1, "optim.max_steps": 1, "track.max_per_class": 10, "output_dir": str(out)},
    )
    for wrong in ({"data.manifest": path}, {"data.ood_target": "nowhere"}):  # other shots; an unknown target
        with pytest.raises(ValueError):
            train(cfg.replace(**wrong))
        assert not out.exists()
    # the corrected config, with a term whose facts are not finite (result.json says null, not a bare NaN)
    cfg = cfg.replace(**{"data.manifest": path, "data.num_shots": None, "regularizers": [undefined_facts]})
    result = train(cfg)
    assert result.runs[0].result["provenance"]["num_shots"] == 2
    written = _strict_json((out / "result.json").read_text())
    assert written["regularizers"][_UndefinedFacts.name] == {"undefined": None, "overflow": None, "finite": 1.5}
    # every file the engine writes parses with a strict reader (no bare NaN in JSON)
    for file in out.rglob("*"):
        if file.suffix == ".json":
            _strict_json(file.read_text())
        elif file.suffix in (".yaml", ".yml"):
            assert isinstance(yaml.safe_load(file.read_text()), dict)
    assert {p.name for p in out.iterdir()} >= {"config.yaml", "manifest.json", "result.json", "history.nc"}
    # a checkpoint of another config is refused on resume before anything is rebuilt or rewritten
    ckpt = out / "checkpoints" / "epoch_0001.pt"
    state = torch.load(ckpt, weights_only=False)
    state["config_hash"] = "0123456789abcdef"
    torch.save(state, ckpt)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    resumed = cfg.replace(resume=True)
    with pytest.raises(ValueError, match="written by a run with another config"):
        train(resumed)
    assert before == {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match="already holds this run; pass --resume true"):
        check_run(resumed.replace(resume=False))


def test_a_folder_without_work_is_reused_by_another_config(tmp_path):
    cfg = fast("testbed-coop-b2n", output_dir=str(tmp_path))
    cfg.replace(**{"optim.lr": 0.5}).to_yaml(tmp_path / "config.yaml")  # a run stopped before its first epoch
    assert check_run(cfg).output_dir == str(tmp_path)
    (tmp_path / "result.json").write_text("{}")
    with pytest.raises(ConfigError, match="holds a run of another config.*--output_dir"):
        check_run(cfg)


def test_a_multi_seed_root_and_a_single_seed_run_do_not_overwrite_each_other(tmp_path):
    """The root of a multi-seed run holds its config.yaml and stacked history.nc: another config's run there is
    refused (a history counts as work), the same multi-seed config continues, and a single-seed run is refused in
    a folder whose seed_<s>/ folders hold a multi-seed run."""
    single = fast("testbed-coop-b2n", output_dir=str(tmp_path / "a"))
    multi = single.replace(seeds=[1, 2])
    root = tmp_path / "a"
    root.mkdir()
    resolve_config(single).to_yaml(root / "config.yaml")
    (root / "history.nc").write_bytes(b"")  # a single-seed run's history, nothing else
    with pytest.raises(ConfigError, match="holds a run of another config"):
        check_run(single.replace(**{"optim.lr": 0.5}))  # history.nc is work
    with pytest.raises(ConfigError, match=f"{root} holds a run of another config"):
        check_run(multi)
    resolve_config(multi).to_yaml(root / "config.yaml")  # the multi-seed run's own root continues
    assert check_run(multi).seeds == [1, 2]
    with pytest.raises(ConfigError, match=f"{root} holds a run of another config"):
        check_run(multi.replace(**{"optim.lr": 0.5}))
    other = tmp_path / "b"  # the reverse: a multi-seed run's seed folder, then a single-seed run in its root
    (other / "seed_1").mkdir(parents=True)
    resolve_config(multi.replace(seeds=[1], output_dir=str(other))).to_yaml(other / "seed_1" / "config.yaml")
    (other / "seed_1" / "history.nc").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"holds a multi-seed run \(seed_1\).*--output_dir"):
        check_run(single.replace(output_dir=str(other)))


def test_the_folder_check_at_write_time_is_the_validation_steps(tmp_path):
    """A folder changed after the validation step is refused when the run writes it, in the same words."""
    from ncprobe.training import api

    cfg = resolve_config(fast("testbed-coop-b2n", output_dir=str(tmp_path)))
    cfg.to_yaml(tmp_path / "config.yaml")
    (tmp_path / "result.json").write_text("{}")
    with pytest.raises(ConfigError, match="already holds this run; pass --resume true.*or choose another --output_dir"):
        api._prepare_folder(tmp_path, cfg, resume=False)
    with pytest.raises(ConfigError, match="holds a run of another config"):
        api._prepare_folder(tmp_path, cfg.replace(**{"optim.lr": 0.5}), resume=True)
    api._prepare_folder(tmp_path / "new", cfg, resume=False)
    assert load_config(tmp_path / "new" / "config.yaml") == cfg


# ------------------------------------------------------------------ paper presets without weights or data
@pytest.fixture
def no_hub(monkeypatch, tmp_path):
    """An empty Hugging Face cache; a network probe fails the test (no real network call in tests)."""
    from huggingface_hub import constants

    import ncprobe.training.preflight as preflight

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))

    def no_probe(url, **kwargs):
        raise AssertionError(f"probed the network: {url}")

    monkeypatch.setattr(preflight, "network_reachable", no_probe)
    return monkeypatch


def test_paper_preset_without_weights_or_data_fails_at_once_in_cli_words(no_hub, capsys):
    from huggingface_hub import constants

    no_hub.setattr(constants, "HF_HUB_OFFLINE", True)
    start = time.monotonic()
    with pytest.raises(ConfigError) as info:
        check_run(get_preset("paper-coop-base_to_novel"))
    message = str(info.value)
    assert "data.root is required" in message and "--data.root DIR" in message
    assert "HF_HUB_OFFLINE is set" in message and "--model.pretrained PATH" in message
    assert "load_clip(" not in message
    assert main(["train", "--preset", "paper-coop-base_to_novel"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ncprobe: error: 2 problems") and "Traceback" not in err
    assert time.monotonic() - start < 30


def test_unreachable_network_and_missing_split_files_are_named(no_hub, tmp_path):
    import ncprobe.training.preflight as preflight

    no_hub.setattr(preflight, "hf_offline", lambda: False)
    no_hub.setattr(preflight, "network_reachable", lambda url, **kw: False)
    (tmp_path / "data" / "oxford_pets").mkdir(parents=True)
    cfg = get_preset("paper-coop-base_to_novel").replace(**{"data.root": str(tmp_path / "data")})
    with pytest.raises(ConfigError) as info:
        check_run(cfg)
    assert "no network reaches https://huggingface.co" in str(info.value)
    assert "split_zhou_OxfordPets.json" in str(info.value) and "--data.create_split true" in str(info.value)
    with pytest.raises(ConfigError) as info:
        check_run(cfg.replace(**{"data.create_split": True}))
    assert info.value.problems == [p for p in info.value.problems if "split" not in p]
    local = tmp_path / "weights.bin"
    local.write_bytes(b"")
    check_run(cfg.replace(**{"data.create_split": True, "model.pretrained": str(local)}))  # nothing to download


def test_a_failed_download_is_reported_on_one_line(monkeypatch):
    import ncprobe.models as models
    from ncprobe.models import PretrainedWeightsUnavailableError
    from ncprobe.training import api

    def failing(*args, **kwargs):
        try:
            raise OSError("connection reset\nretried 5 times\n  last: timed out")
        except OSError as cause:
            raise PretrainedWeightsUnavailableError("download failed") from cause

    monkeypatch.setattr(models, "load_clip", failing)
    cfg = get_preset("paper-coop-base_to_novel")
    with pytest.raises(PretrainedWeightsUnavailableError) as info:
        api._load_bundle(cfg, torch.device("cpu"))
    message = str(info.value)
    assert "\n" not in message and "connection reset retried 5 times last: timed out" in message


def test_network_reachable_opens_one_local_connection():
    from ncprobe.models.clip import network_reachable

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert network_reachable(f"http://127.0.0.1:{port}/x")
    assert not network_reachable(f"http://127.0.0.1:{port}/x", timeout=0.5)


# ------------------------------------------------------------------ divergence on the command line
class _Explodes(Regularizer):
    name = "test_explodes_cli"

    def forward(self, out):
        return {"boom": out.logits.sum() * float("inf")}


def test_divergence_is_a_one_line_error_with_advice_for_the_precision(capsys):
    argv = ["train", "--preset", "testbed-coop-b2n", "--model.testbed_preset", "fast", "--data.num_shots", "1"]
    argv += ["--data.dataset", "testbed", "--optim.epochs", "1", "--progress", "false", "--track.max_per_class", "5"]
    register_regularizer(_Explodes)
    try:
        assert main([*argv, "--regularizer", "test_explodes_cli"]) == 2
    finally:
        REGULARIZERS.pop("test_explodes_cli")
    err = capsys.readouterr().err
    assert err.startswith("ncprobe: error: the loss became") and "Traceback" not in err
    assert "already fp32: lower the learning rate (--optim.lr)" in err and "try bf16 or fp32" not in err


# ------------------------------------------------------------------ short reprs
def test_results_print_in_a_few_lines_without_the_model(tmp_path):
    final = {"epoch": 5, "accuracy": {"base": 0.8, "novel": 0.6}, "hm": 2 * 0.8 * 0.6 / 1.4, "metrics": {}}
    runs = [
        RunResult(s, xr.Dataset(), {"final": final}, tmp_path / f"seed_{s}", torch.nn.Linear(512, 512)) for s in (1, 2)
    ]
    cfg = TrainConfig.from_dict({"output_dir": str(tmp_path), "seeds": [1, 2]})
    one = repr(runs[0])
    assert one == (
        f"RunResult(seed=1, epoch 5, accuracy base 0.8000 novel 0.6000, hm 0.6857, run_dir='{tmp_path / 'seed_1'}')"
    )
    text = repr(TrainResult(cfg, runs))
    assert len(text.splitlines()) == 3 and "Linear" not in text and "seeds=[1, 2]" in text
    assert repr(TrainResult(cfg, runs[:1])).count("\n") == 0
