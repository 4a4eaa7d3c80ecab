"""The config tree: dict/YAML round trips, generated flags, published defaults, and bad input."""

from __future__ import annotations

import pytest

from ncprobe.cli import main
from ncprobe.training import PRESETS, TrainConfig, get_preset, load_config, resolve_config, validate_config
from ncprobe.training.cli import parse_config
from ncprobe.training.config import config_fields, config_hash
from ncprobe.training.protocols import published, warmup_cosine_lr


def test_yaml_round_trip_and_hash(tmp_path):
    cfg = get_preset("testbed-kgcoop-b2n").replace(**{"optim.lr": 0.01, "seeds": [1, 2]})
    path = tmp_path / "run.yaml"
    cfg.to_yaml(path)
    back = load_config(path)
    assert back == cfg and config_hash(back) == config_hash(cfg)
    assert config_hash(cfg.replace(output_dir="x", progress=False)) == config_hash(cfg)
    assert config_hash(cfg.replace(**{"optim.lr": 0.02})) != config_hash(cfg)


def test_every_field_is_a_flag_with_help():
    fields = list(config_fields())
    assert all(f.help for f in fields), [f.path for f in fields if not f.help]
    cfg, _ = parse_config(
        [
            "--preset",
            "testbed-coop-b2n",
            "--optim.lr",
            "0.01",
            "--seeds",
            "1",
            "2",
            "3",
            "--method.ctx_init",
            "none",
            "--regularizer",
            "kgcoop,weight=8",
            "--track.center",
            "false",
        ]
    )
    assert cfg.optim.lr == 0.01 and cfg.seeds == [1, 2, 3] and cfg.method.ctx_init is None
    assert cfg.regularizers[0].name == "kgcoop" and cfg.regularizers[0].weight == 8.0 and cfg.track.center is False
    assert cfg.preset == "testbed-coop-b2n"


def test_config_file_then_flags(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("optim:\n  lr: 0.5\n  epochs: 3\ndata:\n  num_shots: 2\n")
    cfg, _ = parse_config(["--config", str(path), "--optim.epochs", "7"])
    assert (cfg.optim.lr, cfg.optim.epochs, cfg.data.num_shots) == (0.5, 7, 2)


def test_unknown_keys_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown config key 'optim.lrr' \(did you mean 'optim.lr'\?\); valid keys "):
        TrainConfig.from_dict({"optim": {"lrr": 1}})
    with pytest.raises(ValueError, match=r"'bogus', 'optim.lrr' .*'data.num_shot' .*valid keys of data: dataset"):
        TrainConfig.from_dict({"bogus": 1, "optim": {"lrr": 1}, "data": {"num_shot": 2}})
    with pytest.raises(ValueError, match=r"'optm' \(did you mean 'optim'\?\)"):
        TrainConfig().replace(**{"optm.lr": 1})


def test_published_defaults_fill_what_the_config_leaves_open():
    cfg = resolve_config(TrainConfig.from_dict({"method": {"name": "maple"}, "data": {"protocol": "cross_dataset"}}))
    assert (cfg.optim.epochs, cfg.optim.batch_size, cfg.optim.lr, cfg.method.prompt_depth) == (2, 4, 0.0026, 3)
    assert published("coop", "few_shot", "ImageNet").epochs == 50
    assert published("cocoop", "base_to_novel").batch_size == 1
    assert published("coop", "base_to_novel").eval_epoch == 200  # the evaluation epoch is the last one


def test_dassl_warmup_cosine_schedule():
    lrs = [warmup_cosine_lr(e, base_lr=0.002, epochs=5, warmup_epochs=1, warmup_lr=1e-5) for e in range(5)]
    assert lrs[0] == 1e-5 and lrs[1] == 0.002 and lrs[1] > lrs[2] > lrs[3] > lrs[4] > 0


@pytest.mark.parametrize(
    "change,match",
    [
        ({"method.name": "nope"}, "unknown method 'nope'; valid methods: zeroshot, coop"),
        ({"data.dataset": "nope"}, "unknown dataset 'nope'"),
        ({"data.protocol": "nope"}, "unknown protocol"),
        ({"data.num_shots": 0}, "num_shots must be at least 1"),
        ({"data.imbalance_ratio": 0.5}, "imbalance_ratio must be >= 1"),
        (
            {"regularizers": [{"name": "nope"}]},
            "unknown regularizer 'nope'; valid regularizers: craft, kgcoop, npt, promptsrc",
        ),
        ({"regularizers": [{"name": "kgcoop", "weight": -1.0}]}, "weight must be >= 0"),
        ({"regularizers": [{"name": "kgcoop", "options": {"bogus": 1}}]}, "bad options for regularizer 'kgcoop'"),
    ],
)
def test_bad_input_fails_before_any_work(change, match):
    with pytest.raises(ValueError, match=match):
        validate_config(get_preset("testbed-coop-b2n").replace(**change))


def test_unknown_preset_lists_the_valid_ones(capsys):
    assert main(["train", "--preset", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'nope'; valid presets: testbed-zeroshot-b2n" in err and "Traceback" not in err


def test_every_preset_validates():
    for name, cfg in PRESETS.items():
        validate_config(cfg)
        assert cfg.preset == name


def test_an_unknown_testbed_like_dataset_lists_the_embedded_ones():
    from ncprobe.training.validation import ConfigError

    cfg = TrainConfig.from_dict({"data": {"dataset": "testbed-strokez"}, "progress": False})
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    text = str(err.value)
    assert "did you mean testbed-strokes?" in text and "testbed-shapes" in text
    assert "data.root" not in text  # an embedded dataset needs no data root
