import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from ncprobe.cli import main
from ncprobe.core.synthetic import make_collapse


@pytest.fixture()
def data():
    return make_collapse(num_classes=4, dim=8, samples_per_class=30, seed=0)


@pytest.mark.parametrize("fmt", ["npz", "pt", "safetensors"])
def test_measure_command_reads_every_format(tmp_path, capsys, data, fmt):
    arrays = {"features": data.features, "labels": data.labels, "text_features": data.text_features}
    path = tmp_path / f"f.{fmt}"
    if fmt == "npz":
        np.savez(path, **arrays)
    else:
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
        torch.save(tensors, path) if fmt == "pt" else save_file(tensors, str(path))
    out_nc = tmp_path / "r.nc"
    assert main(["measure", str(path), "--groups", "-o", str(out_nc)]) == 0
    text = capsys.readouterr().out
    assert "nc1 " in text and "t2i_modality_gap" in text and out_nc.exists()


def test_measure_command_reports_bad_files(tmp_path, capsys):
    np.savez(tmp_path / "x.npz", feats=np.zeros((3, 2)))
    assert main(["measure", str(tmp_path / "x.npz")]) == 2
    assert "unknown arrays ['feats']; valid keys: ['features'" in capsys.readouterr().err
    np.savez(tmp_path / "y.npz", features=np.zeros((3, 2)))
    assert main(["measure", str(tmp_path / "y.npz")]) == 2
    assert "lacks ['labels']" in capsys.readouterr().err
    assert main(["measure", str(tmp_path / "missing.npz")]) == 2


def test_demo_prints_a_report(capsys):
    assert main(["demo", "--classes", "5", "--dim", "16", "--samples", "40"]) == 0
    out = capsys.readouterr().out
    assert "nc2_etf_error" in out and "head" in out


def test_quickstart_measures_the_embedded_testbed(tmp_path, capsys):
    out_nc = tmp_path / "q.nc"
    assert main(["quickstart", "--preset", "fast", "--quiet", "-o", str(out_nc)]) == 0
    text = capsys.readouterr().out
    assert "t2i_zero_shot_accuracy" in text and "novel" in text and out_nc.exists()
    # both zero-shot protocols, labelled, with the stored numbers; the primary (descriptions) first
    from ncprobe.testbed import load_testbed, testbed_metadata

    zs = testbed_metadata(load_testbed("fast", progress=False))["zero_shot"]
    described = next(line for line in text.splitlines() if "descriptions protocol (primary)" in line)
    named = next(line for line in text.splitlines() if "names protocol" in line)
    assert text.index(described) < text.index(named)
    for line, scores in ((described, zs["protocols"]["descriptions"]), (named, zs["protocols"]["names"])):
        assert f"base {scores['base']:.3f}, novel {scores['novel']:.3f}" in line
        assert f"digits {scores['novel_digits']:.3f}" in line
    from ncprobe import NCReport

    report = NCReport.from_netcdf(out_nc)
    assert report.dataset.attrs["n_samples"] == 2000
    assert list(report.dataset["group"].values) == ["base", "novel"]
    # The base classes were trained on: their nearest-centre accuracy must beat the novel classes'.
    groups = report.per_group()
    assert groups.loc["base", "ncc_accuracy"] > groups.loc["novel", "ncc_accuracy"]


@pytest.mark.slow  # builds v3's test tower when it is the session's first user (20-50 s on 2 busy cores)
def test_quickstart_v3_prints_every_task_and_measures_one(tmp_path, capsys):
    """The v3 quickstart: a per-task zero-shot line (test and val, with HM) from the build's metadata, then NC of
    the chosen task's test split with the "a photo of a {name}." class text."""
    from ncprobe import NCReport
    from ncprobe.testbed import load_testbed, testbed_metadata

    out_nc = tmp_path / "q3.nc"
    argv = ["quickstart", "--preset", "v3-fast", "--task", "testbed-shapes", "--quiet", "-o", str(out_nc)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    zs = testbed_metadata(load_testbed("v3-fast", progress=False))["zero_shot"]
    lines = text.splitlines()
    rows = [next(line for line in lines if line.strip().startswith(t + " ")) for t in zs]
    for task in ("testbed-strokes", "testbed-colour", "testbed-shapes"):
        row = next(r for r in rows if r.strip().startswith(task))
        for split in ("test", "val"):
            s = zs[task][split]
            hm = 2 * s["base"] * s["novel"] / (s["base"] + s["novel"])
            assert f"{split}: base {s['base']:.3f}, novel {s['novel']:.3f}, HM {hm:.3f}" in row
    assert [r.split()[0] for r in rows] == ["testbed-colour", "testbed-shapes", "testbed-strokes"]  # metadata order
    order = [line.split()[0] for line in lines if line.strip().startswith("testbed-")]
    assert order == ["testbed-strokes", "testbed-colour", "testbed-shapes"]  # printed in the benchmark's order
    assert "task testbed-shapes" in text and "3600 images, 36 classes (18 base, 18 novel)" in text
    report = NCReport.from_netcdf(out_nc)
    assert report.dataset.attrs["n_samples"] == 3600 and list(report.dataset["group"].values) == ["base", "novel"]
    # the report's all-class zero-shot accuracy is the build's stored "all" number
    assert report.scalars()["t2i_zero_shot_accuracy"] == pytest.approx(zs["testbed-shapes"]["test"]["all"], abs=1e-3)


def test_quickstart_and_testbed_options(capsys):
    from ncprobe.cli.quickstart import V3_TASK_NAMES
    from ncprobe.testbed.benchmark_v3 import V3_TASKS

    assert V3_TASK_NAMES == tuple(V3_TASKS)
    assert main(["quickstart", "--preset", "fast", "--task", "testbed-colour"]) == 2
    assert "--task chooses a v3 task" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["quickstart", "--task", "testbed"])
    assert "invalid choice" in capsys.readouterr().err
    from ncprobe.cli import build_parser

    parser = build_parser()
    for command in ("quickstart", "testbed"):
        assert parser.parse_args([command]).preset == "v3"
        for preset in ("v3", "v3-fast", "default", "v2", "fast", "transfer"):
            assert parser.parse_args([command, "--preset", preset]).preset == preset


@pytest.fixture()
def features_file(tmp_path, data):
    path = tmp_path / "f.npz"
    np.savez(
        path, features=data.features, labels=data.labels, classifier=data.classifier, text_features=data.text_features
    )
    return path


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "not a readable .npz file"),
        (b"PK\x03\x04garbage", "not a readable .npz file"),
    ],
)
def test_damaged_files_fail_in_one_line(tmp_path, capsys, content, match):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    assert main(["measure", str(path)]) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_damaged_torch_and_safetensors_files(tmp_path, capsys, suffix):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(b"\x00\x01not a tensor file")
    assert main(["measure", str(path)]) == 2
    assert f"not a readable {suffix} file" in capsys.readouterr().err


def test_bias_without_classifier_and_bad_options_fail_early(tmp_path, capsys, data, features_file):
    np.savez(tmp_path / "b.npz", features=data.features, labels=data.labels, classifier_bias=np.zeros(4))
    assert main(["measure", str(tmp_path / "b.npz")]) == 2
    assert "classifier_bias but no classifier" in capsys.readouterr().err
    assert main(["measure", str(features_file), "--device", "cuda:7"]) == 2
    assert "not available" in capsys.readouterr().err
    assert main(["measure", str(features_file), "--device", "toaster"]) == 2
    assert "device 'toaster'" in capsys.readouterr().err
    assert main(["measure", str(features_file), "-o", str(tmp_path / "no" / "such" / "r.nc")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["measure", str(features_file), "-o", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse rejects it while parsing: usage line + error line
        main(["demo", "--noise", "-1"])
    assert exc.value.code == 2 and "argument --noise: must be >= 0" in capsys.readouterr().err


def test_unwritable_output_is_refused_before_any_work(tmp_path, capsys, features_file, monkeypatch):
    import ncprobe.core.measure as m

    called = []
    monkeypatch.setattr(m, "measure", lambda *a, **k: called.append(1))
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if __import__("os").access(ro, __import__("os").W_OK):
            pytest.skip("running as a user who can write anywhere")
        assert main(["measure", str(features_file), "-o", str(ro / "r.nc")]) == 2
        assert "permission denied" in capsys.readouterr().err and not called
    finally:
        ro.chmod(0o700)


def test_version_formats_and_group_table(capsys, tmp_path, features_file):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("ncprobe ")
    skewed = make_collapse(num_classes=4, dim=8, samples_per_class=30, imbalance=4, seed=0)
    grouped = tmp_path / "skewed.npz"  # head/medium/tail need unequal counts (issue 17)
    np.savez(grouped, features=skewed.features, labels=skewed.labels)
    assert main(["measure", str(grouped), "--format", "json", "--groups"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"metrics", "attrs", "per_group"} <= set(out) and "nc1" in out["metrics"]
    assert main(["measure", str(features_file), "--format", "json", "--groups"]) == 0  # equal counts: no groups
    out = json.loads(capsys.readouterr().out)
    assert "per_group" not in out and "equal counts" in out["attrs"]["groups_note"]
    assert main(["measure", str(features_file), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "metric,value,description" and any(line.startswith("nc1,") for line in lines)
    assert main(["measure", str(grouped), "--groups"]) == 0
    assert "per group:" in capsys.readouterr().out


def test_help_does_not_import_torch():
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from ncprobe.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().endswith("NO-TORCH")


def test_closed_pipe_is_not_an_error():
    """``ncprobe train --list-presets | head -1``: the reader closes the pipe early; exit 0, nothing on stderr.

    The read end is closed before the child starts, so its first write meets a closed pipe whatever the timing
    (a table smaller than the pipe buffer would otherwise fit before a reader closes)."""
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "ncprobe", "train", "--list-presets"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    finally:
        os.close(write_end)
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "Broken pipe" not in err and "Traceback" not in err, err
