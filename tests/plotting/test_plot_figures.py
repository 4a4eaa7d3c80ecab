"""Each figure draws exactly what the report or history stores (no value is recomputed)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

import ncprobe
from ncprobe.core import catalog
from ncprobe.core.synthetic import make_collapse
from ncprobe.plotting import (
    geometry_figure,
    gram_figure,
    group_bars_figure,
    layers_figure,
    report_dataset,
    stack_layers,
    trajectory_figure,
)
from tests.plotting.histories import make_report


# ------------------------------------------------------------------------------------------------ gram
def test_gram_panels_are_the_report_matrices_and_the_etf(report):
    fig = gram_figure(report)
    assert isinstance(fig, go.Figure)
    heat = [t for t in fig.data if isinstance(t, go.Heatmap)]
    assert [t.name for t in heat] == ["mean_cosines", "text_cosines", "etf"]
    np.testing.assert_array_equal(heat[0].z, report["mean_cosines"].values)
    np.testing.assert_array_equal(heat[1].z, report["text_cosines"].values)
    c = report.dataset.sizes["class"]
    etf = np.asarray(heat[2].z)
    np.testing.assert_allclose(np.diag(etf), 1.0)
    np.testing.assert_allclose(etf[~np.eye(c, dtype=bool)], -1 / (c - 1))
    names = list(report.dataset["class_name"].values)
    assert list(heat[0].x) == names and list(heat[0].y) == names
    assert "cosine %{z:.3f}" in heat[0].hovertemplate and "%{x}" in heat[0].hovertemplate
    lo, hi = catalog.get("mean_cosines").range
    assert (heat[0].zmin, heat[0].zmax, heat[0].zmid) == (lo, hi, 0.0)


def test_gram_cross_panel_and_image_only_reports():
    d = make_collapse(num_classes=4, dim=8, samples_per_class=20, seed=0)
    fig = gram_figure(ncprobe.measure(d.features, d.labels, text_features=d.text_features), cross=True)
    assert [t.name for t in fig.data] == ["mean_cosines", "text_cosines", "cross_cosines", "etf"]
    image_only = gram_figure(ncprobe.measure(d.features, d.labels))
    assert [t.name for t in image_only.data] == ["mean_cosines", "etf"]
    with pytest.raises(ValueError, match="cross_cosines"):
        gram_figure(ncprobe.measure(d.features, d.labels), cross=True)


def test_gram_from_a_history_selects_one_report(history):
    fig = gram_figure(history, epoch=2, eval_set="novel", seed=1)
    want = history["mean_cosines"].sel(epoch=2, eval_set="novel", seed=1)
    novel = (history["class_split"] == "novel").values
    np.testing.assert_array_equal(fig.data[0].z, want.values[np.ix_(novel, novel)])
    with pytest.raises(ValueError, match="eval_set="):
        gram_figure(history)
    with pytest.raises(ValueError, match="epoch=99"):
        gram_figure(history, epoch=99, eval_set="base")


# ------------------------------------------------------------------------------------------------ geometry
def test_geometry_draws_the_stored_coordinates_with_shared_class_colours(report):
    fig = geometry_figure(report)
    ds = report.dataset
    means = [t for t in fig.data if t.hovertemplate and t.hovertemplate.endswith("class mean<extra></extra>")]
    left = [t for t in means if t.xaxis == "x"]
    assert len(left) == ds.sizes["class"]
    for k, t in enumerate(left):
        np.testing.assert_allclose([t.x[0], t.y[0]], ds["mean_coords"].values[k, :2])
    texts = [t for t in fig.data if t.hovertemplate and "text feature" in t.hovertemplate]
    for k, t in enumerate(texts):
        np.testing.assert_allclose([t.x[0], t.y[0]], ds["text_coords"].values[k, :2])
        assert t.marker.color == left[k].marker.color and t.legendgroup == left[k].legendgroup
    cloud = [t for t in fig.data if t.hovertemplate and t.hovertemplate.startswith("sample of")]
    assert sum(len(t.x) for t in cloud) == ds.sizes["sample"]
    symbols = {str(g): t.marker.symbol for g, t in zip(ds["class_group"].values, left)}
    assert symbols == {"head": "circle", "medium": "square", "tail": "diamond"}


def test_geometry_3d_and_bad_dims(report):
    fig = geometry_figure(report, dims=3, cloud=False)
    assert all(isinstance(t, go.Scatter3d) for t in fig.data)
    assert fig.layout.scene.zaxis.title.text == "PC3"
    with pytest.raises(ValueError, match="dims must be 2 or 3"):
        geometry_figure(report, dims=4)
    d = make_collapse(num_classes=4, dim=8, samples_per_class=20, seed=0)
    two = ncprobe.measure(d.features, d.labels, projection=2)
    with pytest.raises(ValueError, match="projection=3"):
        geometry_figure(two, dims=3)


# ------------------------------------------------------------------------------------------------ groups
def test_group_bars_are_the_report_values(report):
    fig = group_bars_figure(report)
    ds = report.dataset
    per_class = {}
    for t in fig.data:
        if t.xaxis == "x":  # first column: class_variance, one trace per group
            per_class.update(dict(zip(t.x, t.y)))
    names = list(ds["class_name"].values)
    np.testing.assert_allclose([per_class[n] for n in names], ds["class_variance"].values)
    group_traces = [t for t in fig.data if t.xaxis == "x4"]
    np.testing.assert_allclose(group_traces[0].y, ds["group_variance"].values)
    titles = [a.text for a in fig.layout.annotations]
    assert titles[:3] == ["class_variance ↓", "class_ncc_accuracy ↑", "class_t2i_zero_shot_accuracy ↑"]
    assert fig.layout.yaxis2.range == (0.0, 1.02)


def test_group_bars_without_groups_and_unknown_variables():
    d = make_collapse(num_classes=4, dim=8, samples_per_class=20, seed=0)
    fig = group_bars_figure(ncprobe.measure(d.features, d.labels), variables=["class_variance"])
    assert [a.text for a in fig.layout.annotations][0] == "class_variance ↓"  # one panel, plus the note
    assert "no head/medium/tail groups" in fig.layout.annotations[1].text
    with pytest.raises(ValueError, match="none of"):
        group_bars_figure(ncprobe.measure(d.features, d.labels), variables=["class_nope"])


# ------------------------------------------------------------------------------------------------ trajectory
def test_trajectory_lines_are_seed_means_with_std_bands(history, npt_history):
    fig = trajectory_figure({"CoOp": history, "CoOp+NPT": npt_history}, metrics=["nc1", "hm"])
    line = next(t for t in fig.data if t.name == "CoOp · base" and t.mode == "lines+markers")
    nc1 = history["nc1"].sel(eval_set="base")
    np.testing.assert_allclose(line.y, nc1.mean("seed").values)
    band = next(t for t in fig.data if t.fill == "toself" and t.legendgroup == "CoOp · base")
    upper = (nc1.mean("seed") + nc1.std("seed", ddof=0)).values
    np.testing.assert_allclose(band.y[: len(upper)], upper)
    assert {t.name for t in fig.data if t.showlegend} >= {"CoOp · base", "CoOp+NPT · novel", "CoOp"}
    assert fig.layout.yaxis.type == "log"  # nc1
    assert fig.layout.yaxis2.range == (0.0, 1.02)  # hm


def test_trajectory_default_panels_and_errors(history):
    prompted = history.assign_attrs(method="maple")  # a prompted image tower: image-side metrics move
    fig = trajectory_figure(prompted)
    titles = [a.text for a in fig.layout.annotations if a.text in {"accuracy ↑", "hm ↑", "nc1 ↓", "loss"}]
    assert titles == ["accuracy ↑", "hm ↑", "nc1 ↓", "loss"]
    single = trajectory_figure(history.isel(seed=0), metrics=["nc2_max_cosine"], band=None)
    assert not any(t.fill == "toself" for t in single.data)
    assert any(s.type == "line" for s in single.layout.shapes)  # the ETF's −1/(C−1)
    with pytest.raises(ValueError, match="no history holds"):
        trajectory_figure(history, metrics=["nope"])
    with pytest.raises(ValueError, match="no 'epoch'"):
        trajectory_figure(history.isel(epoch=0))
    with pytest.raises(ValueError, match="eval sets"):
        trajectory_figure(history, eval_sets=["imagenet"])


# ------------------------------------------------------------------------------------------------ layers
@pytest.fixture(scope="module")
def layer_reports():
    return {
        f"block {i}": {
            "base": make_report(num_classes=4, noise=3.0 / i, seed=1),
            "novel": make_report(num_classes=3, noise=4.0 / i, seed=2, first_label=4, groups=False),
        }
        for i in (1, 2, 3)
    }


def test_layers_figure_draws_the_report_scalars(layer_reports):
    fig = layers_figure(layer_reports)
    base = next(t for t in fig.data if t.name == "base" and t.xaxis == "x")
    assert list(base.x) == ["block 1", "block 2", "block 3"]
    np.testing.assert_allclose(base.y, [layer_reports[k]["base"]["nc1"] for k in layer_reports])
    novel = next(t for t in fig.data if t.name == "novel" and t.xaxis == "x3")
    np.testing.assert_allclose(novel.y, [layer_reports[k]["novel"]["ncc_accuracy"] for k in layer_reports])


def test_stack_layers_is_a_dataset_that_round_trips(layer_reports, tmp_path):
    from ncprobe.core.report import load_dataset, save_dataset

    ds = stack_layers(layer_reports)
    assert ds["nc1"].dims == ("eval_set", "layer") and ds["eval_set"].values.tolist() == ["base", "novel"]
    save_dataset(ds, tmp_path / "layers.nc")
    again = layers_figure(load_dataset(tmp_path / "layers.nc"))
    np.testing.assert_allclose(again.data[0].y, layers_figure(ds).data[0].y)
    with pytest.raises(ValueError, match="missing at some layers"):
        stack_layers(
            {"a": {"base": layer_reports["block 1"]["base"]}, "b": {"novel": layer_reports["block 1"]["novel"]}}
        )
    with pytest.raises(ValueError, match="layers_figure"):
        report_dataset(ds)
