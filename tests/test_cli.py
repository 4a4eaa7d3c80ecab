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
    from ncprobe import NCReport

    report = NCReport.from_netcdf(out_nc)
    assert report.dataset.attrs["n_samples"] == 2000
    assert list(report.dataset["group"].values) == ["base", "novel"]
    # The base classes were trained on: their nearest-centre accuracy must beat the novel classes'.
    groups = report.per_group()
    assert groups.loc["base", "ncc_accuracy"] > groups.loc["novel", "ncc_accuracy"]
