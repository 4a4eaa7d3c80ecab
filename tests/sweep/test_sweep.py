"""ncprobe.sweep with the debug executor: the grid, the checks before any run, skipping, killing and resuming."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from ncprobe.cli import main
from ncprobe.sweep import expand_grid, load_spec, plan_sweep, sweep, sweep_status
from ncprobe.tables import build_table
from ncprobe.training.config import config_hash
from ncprobe.training.validation import ConfigError, resolve_config
from tests.sweep.conftest import FAST, make_spec

NAMES = ["method=coop__seed=1", "method=coop__seed=2", "method=coop+kgcoop__seed=1", "method=coop+kgcoop__seed=2"]


def test_grid_is_the_product_named_from_what_differs_and_keyed_by_the_engine_hash(tmp_path):
    plan = plan_sweep(make_spec(tmp_path / "s"))
    assert [r.name for r in plan.runs] == NAMES
    for run in plan.runs:
        assert run.hash == config_hash(resolve_config(run.config))  # the engine's identity, not a second one
        assert run.config.resume is True and run.run_dir == tmp_path / "s" / "runs" / run.name
    kg = plan.runs[2].resolved
    assert [r.name for r in kg.regularizers] == ["kgcoop"] and kg.regularizers[0].weight == 8.0
    assert plan.grid_table().loc[NAMES[0], "command"].startswith("ncprobe train --config ")
    assert not (tmp_path / "s").exists()  # planning writes nothing


@pytest.mark.parametrize(
    "change, message",
    [
        ({"set": {"optim.lrr": 0.1}}, "unknown config key 'optim.lrr' (did you mean 'optim.lr'?)"),
        ({"axes": {"data.imbalance_ratio": [1, 0.5]}}, "data.imbalance_ratio must be >= 1"),
        ({"axes": {"dataset": ["oxford_pets"]}}, "data.root is required for dataset 'oxford_pets'"),
        ({"axes": {"method": ["coop", "copo"]}}, "copo"),
        ({"executor": {"kind": "pbs"}}, "executor.kind must be one of debug, local, slurm"),
        ({"bogus": 1}, "unknown sweep spec keys ['bogus']"),
    ],
)
def test_dry_run_rejects_a_bad_spec_before_any_run(tmp_path, capsys, change, message):
    import yaml

    spec = make_spec(tmp_path / "s")
    spec.update(change)
    with pytest.raises((ConfigError, ValueError)) as err:
        sweep(spec, dry_run=True)
    assert message in str(err.value)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["sweep", "--spec", str(path), "--dry-run"]) == 2
    assert message in capsys.readouterr().err
    with pytest.raises((ConfigError, ValueError)):  # the same check guards a real launch
        sweep(spec)
    assert not (tmp_path / "s").exists()


def test_dry_run_prints_the_grid_and_the_commands(tmp_path, capsys):
    import yaml

    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(make_spec(tmp_path / "s")))
    assert main(["sweep", "--spec", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 runs, all configs valid" in out and out.count("ncprobe train --config") == 4
    assert not (tmp_path / "s").exists()


def test_debug_sweep_produces_the_table_and_skips_finished_runs(debug_sweep, capsys):
    spec, out = debug_sweep
    status = sweep_status(out)
    assert list(status.index) == NAMES and set(status["state"]) == {"done"}
    for name in NAMES:
        assert (out / "runs" / name / "result.json").is_file() and (out / "configs" / f"{name}.yaml").is_file()
    again = sweep(spec, progress=False)
    assert again.submitted == [] and again.skipped == NAMES
    table = build_table(out, "b2n")
    assert list(table.to_xarray()["row"].values) == ["coop", "coop+kgcoop"]
    assert set(table.to_xarray()["n"].values.ravel()) == {2}
    assert main(["sweep", "--status", str(out)]) == 0
    assert "done: 4" in capsys.readouterr().out


def test_a_folder_holding_another_config_is_refused_before_anything_is_launched(debug_sweep, tmp_path):
    spec, out = debug_sweep
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    changed = make_spec(copy, set={**spec["set"], "optim.lr": 0.01})
    with pytest.raises(ConfigError, match="holds a run of another config") as err:
        sweep(changed, progress=False)
    assert len(err.value.problems) == 4
    assert sweep_status(copy)["state"].eq("done").all()  # nothing was touched


def test_a_killed_run_is_the_only_one_rerun_it_resumes_and_the_table_matches(debug_sweep, tmp_path, monkeypatch):
    spec, out = debug_sweep
    killed = NAMES[-1]
    folder = tmp_path / "killed"
    shutil.copytree(out, folder)
    shutil.rmtree(folder / "runs" / killed)  # this run starts again, and is killed after its epoch-2 checkpoint
    import ncprobe.training.loop as loop

    real_save = loop.save_checkpoint
    epochs_trained = []

    def save_then_die(path, state):
        real_save(path, state)
        if killed in str(path) and state["epoch"] == 2:
            raise KeyboardInterrupt("killed")  # not an Exception: the job dies as a kill does

    def count_epochs(self, epoch, lr):
        epochs_trained.append((str(self.p.run_dir), epoch))
        return real_train_epoch(self, epoch, lr)

    real_train_epoch = loop.Engine.train_epoch
    monkeypatch.setattr(loop, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        sweep(make_spec(folder), progress=False)
    status = sweep_status(folder)
    assert status.loc[killed, "state"] == "failed" and "KeyboardInterrupt" in status.loc[killed, "error"]
    assert status.loc[killed, "log"].endswith(f"state/{killed}.json")
    assert (status.drop(killed)["state"] == "done").all()

    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    monkeypatch.setattr(loop.Engine, "train_epoch", count_epochs)
    plan = sweep(make_spec(folder), progress=False)
    assert plan.submitted == [killed]  # only the killed run
    assert [e for d, e in epochs_trained] == [3]  # it resumed after its last checkpoint
    assert sweep_status(folder)["state"].eq("done").all()
    ours, theirs = build_table(folder, "b2n").cells, build_table(out, "b2n").cells
    pd.testing.assert_frame_equal(ours, theirs)  # exact resume: the same numbers as the uninterrupted sweep


def test_retry_failed_resubmits_only_failed_runs(tmp_path):
    spec = make_spec(tmp_path / "s", axes={"method": ["coop"], "seed": [1]})
    spec["set"] = {**spec["set"], "optim.epochs": 1}
    plan = plan_sweep(spec)
    (tmp_path / "s").mkdir()
    plan = sweep(spec, retry_failed=True, progress=False)
    assert plan.submitted == []  # never submitted is not failed
    assert sweep_status(tmp_path / "s")["state"].tolist() == ["not submitted"]


def test_a_job_over_several_gpus_runs_torchrun(tmp_path):
    plan = plan_sweep(make_spec(tmp_path / "s", executor={"kind": "local", "gpus_per_job": 2}))
    command = plan.command(plan.runs[0])
    assert "torch.distributed.run --standalone --nproc_per_node=2 -m ncprobe train --config" in command


def test_spec_file_paths_and_shape(tmp_path):
    import yaml

    (tmp_path / "base.yaml").write_text(yaml.safe_dump({"method": {"name": "coop"}}))
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({"base": "base.yaml", "output_dir": str(tmp_path / "o"), "axes": {"seed": [1]}}))
    spec = load_spec(path)
    assert spec.base == str(tmp_path / "base.yaml")  # relative to the spec
    assert [r.name for r in expand_grid(spec)] == ["run"]
    from ncprobe.sweep import ExecutorSpec, SweepSpec

    as_dataclass = SweepSpec(
        base="testbed-coop-b2n", set=dict(FAST), axes={"seed": [1, 2]}, output_dir=str(tmp_path / "d"),
        executor=ExecutorSpec(kind="local", max_parallel=2),
    )  # fmt: skip
    plan = plan_sweep(as_dataclass)
    assert [r.name for r in plan.runs] == ["seed=1", "seed=2"] and plan.spec.executor.max_parallel == 2
    with pytest.raises(ConfigError, match="output_dir is required"):
        load_spec({"base": "testbed-coop-b2n"})
    with pytest.raises(ConfigError, match="table: a mapping of layout, metric, nc, methods"):
        load_spec({"base": "x", "output_dir": "o", "table": {"layuot": "b2n"}})
    with pytest.raises(ConfigError, match="executor.slurm keys must start with 'slurm_'"):
        load_spec({"base": "x", "output_dir": "o", "executor": {"kind": "slurm", "slurm": {"account": "a"}}})


def test_ncprobe_sweep_is_the_package_and_runs_a_sweep_when_called(tmp_path):
    import subprocess
    import sys

    code = (
        "import ncprobe, ncprobe.cli, sys; ncprobe.cli.build_parser(); "
        "print('ncprobe.sweep' in sys.modules, 'submitit' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split() == ["False"] * 2
    import ncprobe

    assert ncprobe.sweep.sweep_status is sweep_status and "sweep" in ncprobe.__all__
    plan = ncprobe.sweep(make_spec(tmp_path / "s"), dry_run=True)
    assert len(plan.runs) == 4 and not (tmp_path / "s").exists()
