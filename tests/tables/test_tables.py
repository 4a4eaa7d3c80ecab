"""The table builder on a hand-written sweep folder (no training): mean ± std, the HM convention, the averages,
the layouts, the published-numbers file and the comparison."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ncprobe.cli import main
from ncprobe.tables import LAYOUTS, build_table, load_published, lookup

# (method, dataset, seed) -> (base, novel) accuracy as fractions
B2N = {
    ("coop", "oxford_pets", 1): (0.90, 0.60),
    ("coop", "oxford_pets", 2): (0.92, 0.62),
    ("coop", "dtd", 1): (0.70, 0.40),
    ("coop", "dtd", 2): (0.74, 0.44),
    ("maple", "oxford_pets", 1): (0.88, 0.80),
    ("maple", "oxford_pets", 2): (0.86, 0.78),
    ("maple", "dtd", 1): (0.72, 0.56),
    ("maple", "dtd", 2): (0.70, 0.58),
}


def _write_sweep(root, results: dict, *, axes=("method", "dataset", "seed"), facts=None, table=None) -> None:
    """A sweep folder as ncprobe.sweep writes it: runs.json plus each run's result.json."""
    runs = {}
    for key, (accuracy, metrics) in results.items():
        labels = dict(zip(axes, [str(k) for k in key]))
        name = "__".join(f"{a}={v}" for a, v in labels.items())
        fact = {"method": key[0], "dataset": key[1], "seed": key[-1], "imbalance_ratio": 1.0, "num_shots": 16}
        fact.update((facts or {}).get(key, {}))
        runs[name] = {"hash": name, "labels": labels, "facts": fact, "dir": f"runs/{name}"}
        folder = root / "runs" / name
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps({"final": {"accuracy": accuracy, "metrics": metrics}}))
    (root / "runs.json").write_text(json.dumps({"axes": list(axes), "runs": runs, "table": table or {}}))


@pytest.fixture
def b2n_sweep(tmp_path):
    results = {
        k: ({"base": b, "novel": n}, {"t2i_cross_etf_error": {"base": 0.1 * k[2], "novel": 0.2 * k[2]}})
        for k, (b, n) in B2N.items()
    }
    _write_sweep(tmp_path, results)
    return tmp_path


def _hm(b, n):
    return 2 * b * n / (b + n)


def _cell(table, row, group, column, var="mean"):
    return float(table.to_xarray()[var].sel(row=row, group=group, column=column))


def test_b2n_cells_are_hand_computed_mean_std_and_hm(b2n_sweep):
    table = build_table(b2n_sweep, "b2n", nc=["t2i_cross_etf_error[novel]"])
    base = [90.0, 92.0]
    assert _cell(table, "coop", "oxford_pets", "base") == pytest.approx(np.mean(base))
    assert _cell(table, "coop", "oxford_pets", "base", "std") == pytest.approx(np.std(base))
    # the HM of the seed-averaged base and novel, not the mean of per-seed HMs
    assert _cell(table, "coop", "oxford_pets", "hm") == pytest.approx(_hm(91.0, 61.0))
    assert _cell(table, "coop", "oxford_pets", "hm") != pytest.approx(np.mean([_hm(90, 60), _hm(92, 62)]), abs=1e-9)
    assert _cell(table, "coop", "oxford_pets", "hm", "std") == pytest.approx(np.std([_hm(90, 60), _hm(92, 62)]))
    # the average over datasets: per seed, then over seeds; its HM from the averaged base and novel
    avg_base = [np.mean([90, 70]), np.mean([92, 74])]
    avg_novel = [np.mean([60, 40]), np.mean([62, 44])]
    assert _cell(table, "coop", "average", "base") == pytest.approx(np.mean(avg_base))
    assert _cell(table, "coop", "average", "base", "std") == pytest.approx(np.std(avg_base))
    assert _cell(table, "coop", "average", "hm") == pytest.approx(_hm(np.mean(avg_base), np.mean(avg_novel)))
    assert _cell(table, "maple", "dtd", "t2i_cross_etf_error[novel]") == pytest.approx(np.mean([0.2, 0.4]))
    assert list(table.to_xarray()["row"].values) == ["coop", "maple"]  # the sweep's order
    assert list(table.to_xarray()["group"].values) == ["oxford_pets", "dtd", "average"]
    md = table.to_markdown()
    assert "| coop | 91.00 ± 1.00 |" in md and "oxford_pets hm" in md
    assert r"91.00 $\pm$ 1.00" in table.to_latex() and r"\toprule" in table.to_latex()
    assert table.to_pandas().loc["maple", ("average", "hm")].startswith(f"{_cell(table, 'maple', 'average', 'hm'):.2f}")
    assert len(table.figure().data) == 2


def test_compare_adds_published_values_differences_and_flags(b2n_sweep):
    table = build_table(b2n_sweep, "b2n", compare=True)
    ds = table.to_xarray()
    value, source = lookup("b2n", "coop", "average", "base")
    assert source.arxiv and source.table and source.backbone and source.shots
    ours = _cell(table, "coop", "average", "base")
    assert float(ds["published"].sel(row="coop", group="average", column="base")) == value
    assert float(ds["diff"].sel(row="coop", group="average", column="base")) == pytest.approx(ours - value)
    spread = _cell(table, "coop", "average", "base", "std")
    assert float(ds["flag"].sel(row="coop", group="average", column="base")) == float(abs(ours - value) > spread)
    # no published per-dataset number is listed: the cell says so, nothing is guessed
    assert str(ds["source"].sel(row="coop", group="dtd", column="base").values) == "not known"
    assert math.isnan(float(ds["published"].sel(row="coop", group="dtd", column="base")))
    md = table.to_markdown()
    assert "pub not known" in md and f"pub {value:.2f}" in md and source.id in md


def test_method_names_map_to_published_rows(b2n_sweep):
    table = build_table(b2n_sweep, "b2n", compare=True, methods={"maple": "coop"})  # a deliberate re-labelling
    ds = table.to_xarray()
    published = lookup("b2n", "coop", "average", "hm")[0]
    assert float(ds["published"].sel(row="maple", group="average", column="hm")) == published


def test_imbalance_and_cross_dataset_layouts(tmp_path):
    results, facts = {}, {}
    for ratio in (1, 4):
        for seed in (1, 2):
            key = ("coop", "testbed", ratio, seed)
            results[key] = ({"base": 0.8 - 0.1 * (ratio > 1), "novel": 0.5 + 0.01 * seed}, {})
            facts[key] = {"imbalance_ratio": float(ratio)}
    axes = ("method", "dataset", "data.imbalance_ratio", "seed")
    _write_sweep(tmp_path / "imb", results, axes=axes, facts=facts, table={"layout": "imbalance"})
    table = build_table(tmp_path / "imb")  # the spec's table.layout
    assert list(table.to_xarray()["column"].values) == ["tau=1", "tau=4"]
    assert _cell(table, "coop", "testbed", "tau=4") == pytest.approx(_hm(70.0, 51.5))
    assert _cell(table, "coop", "testbed", "tau=1", "std") == pytest.approx(np.std([_hm(80, 51), _hm(80, 52)]))
    assert _cell(build_table(tmp_path / "imb", "imbalance", metric="novel"), "coop", "testbed", "tau=1") == 51.5

    accuracy = {"all": 0.9, "sklearn-digits": 0.3, "testbed-shifted": 0.5}
    xd = {("coop", "testbed", s): ({**accuracy, "sklearn-digits": 0.3 + 0.1 * s}, {}) for s in (1, 2)}
    _write_sweep(tmp_path / "xd", xd)
    table = build_table(tmp_path / "xd", "cross_dataset", compare=True)
    assert list(table.to_xarray()["column"].values) == ["source", "sklearn-digits", "testbed-shifted", "average"]
    assert _cell(table, "coop", "testbed", "average") == pytest.approx(np.mean([45.0, 50.0]))
    assert "pub not known" in table.to_markdown()


def test_bad_input_is_refused_before_any_work(tmp_path, b2n_sweep):
    with pytest.raises(FileNotFoundError, match="not a sweep folder"):
        build_table(tmp_path / "nothing", "b2n")
    with pytest.raises(ValueError, match="unknown layout"):
        build_table(b2n_sweep, "b2m")
    with pytest.raises(ValueError, match="metric 'nc9' is not in the runs' results"):
        build_table(b2n_sweep, "b2n", nc=["nc9"])


def test_published_file_parses_and_every_entry_names_its_source():
    tables = load_published()
    assert tables and len({t.id for t in tables}) == len(tables)
    for t in tables:
        assert t.layout in LAYOUTS
        assert t.paper and t.arxiv.count(".") == 1 and t.table and t.source and t.backbone and t.shots
        for row in t.rows:
            assert row["method"] and row["dataset"]
            values = {k: v for k, v in row.items() if k not in ("method", "dataset")}
            assert values and all(0 <= v <= 100 for v in values.values())
            if {"base", "novel", "hm"} <= set(values):  # a typo shows as an HM the row's base and novel do not give
                assert _hm(values["base"], values["novel"]) == pytest.approx(values["hm"], abs=0.06)
    assert lookup("b2n", "coop", "oxford_pets", "base") is None  # not listed: not known


def test_published_file_errors_name_the_entry(tmp_path):
    bad = tmp_path / "bad.yaml"
    row = "{method: coop, dataset: average, base: high}"
    bad.write_text(f"tables:\n  - {{id: x, layout: b2n, paper: p, rows: [{row}]}}\n")
    with pytest.raises(ValueError, match=r"tables\[0\] \(x\): missing 'arxiv'.*base: a published value is a number"):
        load_published(bad)


def test_table_command_prints_and_writes(b2n_sweep, tmp_path, capsys):
    out = tmp_path / "t.tex"
    assert main(["table", str(b2n_sweep), "--layout", "b2n", "--compare", "--format", "latex", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert r"\begin{tabular}" in printed and out.read_text().startswith(r"\begin{tabular}")
    assert main(["table", str(b2n_sweep), "-o", str(tmp_path / "t.nc"), "--figure", str(tmp_path / "f.html")]) == 0
    assert (tmp_path / "t.nc").is_file() and (tmp_path / "f.html").is_file()
    capsys.readouterr()
    assert main(["table", str(b2n_sweep), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "row,group,column,mean,std,n" and lines[1].startswith("coop,oxford_pets,base,91.0,1.0,2")
    assert main(["table", str(tmp_path / "missing")]) == 2
    assert "not a sweep folder" in capsys.readouterr().err
