"""``ncprobe train`` as a user meets it: cheap help and parsing, the preset table, errors in the user's words,
section merges in ``TrainConfig.replace``, and what a run prints with and without progress bars."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from ncprobe.cli import main
from ncprobe.training.presets import get_preset


def _error(capsys, *argv: str) -> str:
    """Run ``ncprobe train ARGV``: it must fail with exit 2 and one ``ncprobe: error:`` line; return the line."""
    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ncprobe: error: ") and err.count("\n") == 1, err
    return err.strip()


def test_replace_merges_a_section_dict_as_the_dotted_form_does():
    preset = get_preset("testbed-coop-b2n")
    merged = preset.replace(optim={"epochs": 1})
    assert (merged.optim.epochs, merged.optim.lr, merged.optim.batch_size) == (1, 0.4, 4096)
    assert merged == preset.replace(**{"optim.epochs": 1})
    nested = preset.replace(data={"num_shots": 2}, model={"testbed_preset": "v3-fast"})
    assert (nested.data.dataset, nested.data.protocol, nested.model.name) == (
        "testbed-strokes",
        "base_to_novel",
        "testbed",
    )
    assert preset.replace(seeds=[4, 5]).seeds == [4, 5]  # lists replace


def test_help_parsing_and_parse_errors_import_only_the_config():
    code = (
        "import sys, contextlib, io\n"
        "import ncprobe.training.cli as cli\n"
        "from ncprobe.cli import main\n"
        "cli.build_parser()\n"
        "cfg, _ = cli.parse_config(['--preset', 'testbed-coop-npt-b2n', '--optim.lr', '0.01'])\n"
        "assert cfg.optim.lr == 0.01\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "    for argv in (['--help'], ['--list-presets'], ['--optim.lr', 'abc'], ['--preset', 'nope']):\n"
        "        try:\n"
        "            main(['train', *argv])\n"
        "        except SystemExit:\n"
        "            pass\n"
        "from ncprobe.training import PRESETS, TrainConfig, get_preset, load_config\n"
        "print(sorted(m for m in ('torch', 'open_clip', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_every_public_name_of_ncprobe_training_imports():
    import ncprobe
    import ncprobe.training as training

    for name in training.__all__:
        assert getattr(training, name) is not None, name
    assert set(training.__all__) <= set(dir(training))
    from ncprobe.training import TrainingDivergedError, train

    assert ncprobe.train is train and issubclass(TrainingDivergedError, RuntimeError)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        training.nope  # noqa: B018


def test_list_presets_is_a_table_of_what_each_preset_sets(capsys):
    assert main(["train", "--list-presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["preset", "method", "regularizers", "protocol", "dataset", "epochs", "lr"]
    rows = {line.split()[0]: line for line in lines[2:] if line.strip()}
    assert rows["testbed-kgcoop-b2n"].split() == [
        "testbed-kgcoop-b2n", "coop", "kgcoop", "w=8", "base_to_novel", "testbed-strokes", "50", "0.4"
    ]  # fmt: skip
    assert rows["paper-coop-base_to_novel"].split()[1:] == [
        "coop", "-", "base_to_novel", "oxford_pets", "published", "published"
    ]  # fmt: skip
    assert rows["paper-maple-craft-ood"].split()[1:4] == ["maple", "craft", "domain_generalization"]
    assert any(line.startswith("published: ") for line in lines)


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["--optim.lr", "abc"], "ncprobe: error: --optim.lr: expected a number or none, got 'abc'"),
        (["--optim.epochs", "1.5"], "ncprobe: error: --optim.epochs: expected an integer or none, got '1.5'"),
        (["--seeds", "1", "x"], "ncprobe: error: --seeds: expected an integer, got 'x'"),
        (["--track.center", "maybe"], "ncprobe: error: --track.center: expected true or false, got 'maybe'"),
        (
            ["--optim.lrr", "0.1"],
            "ncprobe: error: unrecognized arguments: --optim.lrr 0.1 (did you mean --optim.lr?)",
        ),
        (["--regularizer", "npt,weight=big"], "ncprobe: error: --regularizer npt,weight=big: weight must be a number"),
    ],
)
def test_flag_errors_speak_the_users_words(capsys, argv, expected):
    assert _error(capsys, *argv).startswith(expected)


def test_a_mistyped_preset_gets_suggestions_first(capsys):
    line = _error(capsys, "--preset", "testbed-coop-b2m")
    assert line.startswith("ncprobe: error: unknown preset 'testbed-coop-b2m'; did you mean 'testbed-coop-b2n'")
    assert line.index("did you mean") < line.index("valid presets: testbed-zeroshot-b2n")


def test_a_config_file_reports_every_unknown_key_at_once(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("optim:\n  lrr: 0.5\n  epochs: 3\ndata:\n  num_shot: 2\n")
    line = _error(capsys, "--config", str(path))
    assert "'optim.lrr' (did you mean 'optim.lr'?)" in line
    assert "'data.num_shot' (did you mean 'data.num_shots'?)" in line
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [1,\n")
    assert "bad.yaml is not valid YAML at line" in _error(capsys, "--config", str(bad))


def test_a_mistyped_regularizer_option_names_it_and_the_valid_ones(capsys):
    line = _error(capsys, "--preset", "testbed-coop-b2n", "--regularizer", "npt,famly=gram")
    assert "bad options for regularizer 'npt': unknown option 'famly' (did you mean 'family'?)" in line
    assert "valid options: family, loss, etf" in line


def test_progress_none_draws_bars_only_on_a_terminal(capsys):
    from ncprobe.training.distributed import DistInfo
    from ncprobe.training.feature_bank import encode_images

    data = torch.utils.data.TensorDataset(torch.randn(6, 3), torch.arange(6))
    for progress, drawn in ((None, False), (False, False), (True, True)):
        f, y = encode_images(lambda x: x, data, batch_size=2, device=torch.device("cpu"), progress=progress)
        assert f.shape == (6, 3) and y.tolist() == list(range(6))
        assert ("images" in capsys.readouterr().err) is drawn, progress  # pytest's stderr is not a terminal
    assert DistInfo(rank=1, world_size=2).bar_disable(True) is True  # other ranks never draw


@pytest.mark.parametrize("frozen,shown,hidden", [(True, "text_etf[base]", "nc1["), (False, "nc1[base]", "text_etf")])
def test_the_epoch_line_is_printed_without_bars_and_shows_what_moves(frozen, shown, hidden, capsys):
    from ncprobe.training.distributed import DistInfo
    from ncprobe.training.history import EpochRecord
    from ncprobe.training.loop import Engine

    rec = EpochRecord(epoch=2, losses={"loss": 0.5}, train_accuracy=0.9, accuracy={"base": 0.8, "novel": 0.6})
    for metric in ("nc1", "t2i_text_etf_error", "t2i_cross_etf_error"):
        rec.scalars[metric] = {"base": 0.25, "novel": 0.5}
    plan = SimpleNamespace(info=DistInfo(), progress=None, epochs=3, frozen_image_features=frozen)
    Engine._summary(SimpleNamespace(p=plan), rec)  # progress=None: no bars off a terminal, the line all the same
    out = capsys.readouterr().out
    assert out.startswith("epoch   2/3  loss 0.5000") and "hm 0.686" in out
    assert shown in out and "cross_etf[novel] 0.5" in out and hidden not in out
    plan.progress = False  # a quiet run: neither bars nor lines
    Engine._summary(SimpleNamespace(p=plan), rec)
    assert capsys.readouterr().out == ""


def test_none_restores_an_open_field_with_choices():
    """``--data.imbalance_profile none``: the field's default is None (taken from a manifest, else 'exp'), so the
    flag accepts ``none`` although the field's named choices are 'exp' and 'step'."""
    from ncprobe.training.cli import parse_config

    cfg, _ = parse_config(["--preset", "testbed-coop-b2n", "--data.imbalance_profile", "none"])
    assert cfg.data.imbalance_profile is None
    cfg, _ = parse_config(["--preset", "testbed-coop-b2n", "--data.imbalance_profile", "step"])
    assert cfg.data.imbalance_profile == "step"
    with pytest.raises(ValueError, match=r"invalid choice: 'linear' \(choose from 'exp', 'step'\)$"):
        parse_config(["--data.imbalance_profile", "linear"])
