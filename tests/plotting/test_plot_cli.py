"""``ncprobe plot FILE… --kind KIND -o OUT`` from saved reports, histories and layer stacks."""

from __future__ import annotations

import doctest

import pytest

import ncprobe.plotting
from ncprobe.cli import main
from ncprobe.core.report import save_dataset
from ncprobe.plotting import stack_layers
from tests.plotting.histories import make_report


@pytest.fixture(scope="module")
def files(tmp_path_factory, report, history, run_histories):
    root = tmp_path_factory.mktemp("plot-cli")
    out = {"report": root / "report.nc", "history": root / "history.nc", "runs": []}
    report.to_netcdf(out["report"])
    save_dataset(history, out["history"])
    for i, h in enumerate(run_histories):
        path = root / f"run{i}.nc"
        save_dataset(h, path)
        out["runs"].append(str(path))
    layers = {i: {"base": make_report(num_classes=4, noise=2.0 / i, seed=1)} for i in (1, 2)}
    out["layers"] = root / "layers.nc"
    save_dataset(stack_layers(layers), out["layers"])
    return out


@pytest.mark.parametrize(
    "kind, source",
    [
        ("gram", "report"),
        ("geometry", "report"),
        ("groups", "report"),
        ("gram", "history"),
        ("trajectory", "history"),
        ("layers", "layers"),
        ("correlation", "runs"),
    ],
)
def test_each_kind_writes_a_page(files, kind, source, tmp_path, capsys):
    inputs = files[source] if source == "runs" else [str(files[source])]
    out = tmp_path / f"{kind}.html"
    seed = ["--seed", "1"] if (kind, source) == ("gram", "history") else []  # three seeds: pick one
    assert main(["plot", *inputs, "--kind", kind, *seed, "-o", str(out)]) == 0
    assert out.is_file() and "Plotly.newPlot" in out.read_text()
    assert f"figure written to {out}" in capsys.readouterr().out


def test_trajectory_overlays_several_histories_and_takes_metrics(files, tmp_path):
    out = tmp_path / "t.html"
    assert main(["plot", *files["runs"][:2], "--kind", "trajectory", "--metrics", "nc1", "hm", "-o", str(out)]) == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["{report}", "--kind", "trajectory"], "needs training histories"),
        (["{report}", "--kind", "layers"], "stacking layer reports"),
        (["{layers}", "--kind", "gram"], "--kind layers"),
        (["{report}", "{report}", "--kind", "gram"], "draws one file"),
        (["{run0}", "--kind", "correlation"], "at least 3 runs"),
        (["{history}", "--kind", "trajectory", "--metrics", "nope"], "no history holds"),
        (["{missing}", "--kind", "gram"], "no such file"),
    ],
)
def test_errors_are_one_line(files, args, message, tmp_path, capsys):
    names = {k: str(v) for k, v in files.items() if k != "runs"}
    names.update(missing=str(tmp_path / "none.nc"), run0=files["runs"][0])
    argv = ["plot", *[a.format(**names) for a in args], "-o", str(tmp_path / "x.html")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ncprobe: error:") and message in err and "\n" not in err


def test_bad_output_suffix_is_one_line(files, tmp_path, capsys):
    assert main(["plot", str(files["report"]), "--kind", "gram", "-o", str(tmp_path / "x.txt")]) == 2
    assert ".html" in capsys.readouterr().err


@pytest.mark.parametrize(
    "module", ["gram", "geometry", "groups", "layers", "correlation", "stats", "export", "trajectory", "runs"]
)
def test_docstring_examples(module):
    mod = getattr(ncprobe.plotting, module, None) or __import__(f"ncprobe.plotting.{module}", fromlist=["x"])
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
