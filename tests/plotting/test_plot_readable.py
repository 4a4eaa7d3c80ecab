"""Figures people can read (issue 17): no run dropped, titles that say what is drawn, no silent first seed,
widths that fit a 1,400 px window, readable log ticks, default metrics that can move, constant panels."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from ncprobe.cli import main
from ncprobe.core.groups import EqualCountsWarning
from ncprobe.core.report import save_dataset
from ncprobe.plotting import (
    correlation_figure,
    geometry_figure,
    gram_figure,
    group_bars_figure,
    history_runs,
    run_labels,
    runs_table,
    trajectory_figure,
)
from ncprobe.plotting.cli import figure_from_files
from tests.plotting.histories import make_history, make_report

_SYMBOLS_3D = {"circle", "circle-open", "cross", "diamond", "diamond-open", "square", "square-open", "x"}


@pytest.fixture(scope="module")
def three_coop(tmp_path_factory):
    """Three CoOp runs (seeds 0, 1, 2), each saved as ``<folder>/history.nc``: the names collide."""
    root = tmp_path_factory.mktemp("three-coop")
    paths = []
    for s in (0, 1, 2):
        h = make_history(method="coop", seed=s, epochs=2)
        (root / f"run{s}").mkdir()
        save_dataset(h, root / f"run{s}" / "history.nc")
        paths.append(str(root / f"run{s}" / "history.nc"))
    return paths


def _legend(fig: go.Figure) -> list[str]:
    return [t.name for t in fig.data if t.showlegend is not False and t.name]


# ------------------------------------------------------------------------------------------------ run labels
def test_colliding_runs_are_all_drawn_with_unique_labels(three_coop):
    fig = figure_from_files(three_coop, kind="trajectory", metrics=["hm"])
    assert sorted(_legend(fig)) == ["CoOp · seed 0", "CoOp · seed 1", "CoOp · seed 2"]


def test_same_attributes_fall_back_to_the_folder_then_a_number(tmp_path):
    h = make_history(method="coop", epochs=1)
    assert run_labels([h, h], names=["a/history.nc", "b/history.nc"]) == ["CoOp · a", "CoOp · b"]
    assert run_labels([h, h]) == ["CoOp #1", "CoOp #2"]


def test_labels_name_regularizers_and_what_differs():
    runs = [
        make_history(method="coop", epochs=1, imbalance_ratio=1),
        make_history(method="coop", epochs=1, imbalance_ratio=8),
        make_history(method="coop", epochs=1).assign_attrs(
            regularizers='["npt"]', ncprobe_json_attrs='["regularizers"]'
        ),
    ]
    assert run_labels(runs) == ["CoOp · ρ=1", "CoOp · ρ=8", "CoOp+NPT"]


def test_label_option_one_per_file(three_coop, tmp_path, capsys):
    out = tmp_path / "t.html"
    labels = ["--label", "first", "--label", "second", "--label", "third"]
    assert main(["plot", *three_coop, "--kind", "trajectory", "--metrics", "hm", *labels, "-o", str(out)]) == 0
    fig = figure_from_files(three_coop, kind="trajectory", metrics=["hm"], labels=["first", "second", "third"])
    assert sorted(_legend(fig)) == ["first", "second", "third"]
    assert main(["plot", *three_coop, "--kind", "trajectory", "--label", "x", "-o", str(out)]) == 2
    assert "--label given 1 times for 3 files" in capsys.readouterr().err
    with pytest.raises(ValueError, match="more than once"):
        history_runs([make_history(epochs=1)] * 2, labels=["a", "a"])


# ------------------------------------------------------------------------------------------------ 3-D geometry
@pytest.mark.parametrize("ratio", [1, 8])
def test_geometry_3d_draws_a_balanced_or_imbalanced_history(ratio):
    h = make_history(method="coop", epochs=1, imbalance_ratio=ratio)
    for eval_set in ("base", "novel"):
        fig = geometry_figure(h, dims=3, eval_set=eval_set)
        symbols = {t.marker.symbol for t in fig.data if t.marker is not None and t.marker.symbol}
        assert symbols <= _SYMBOLS_3D
        fig.to_json()  # plotly validates the figure again on export


# ------------------------------------------------------------------------------------------------ groups
def test_groups_figure_on_equal_counts_says_there_are_no_groups():
    with pytest.warns(EqualCountsWarning):
        report = make_report(num_classes=6, groups=True)
    fig = group_bars_figure(report)
    assert not any(t.xaxis == "x4" for t in fig.data)  # no per-group row
    note = [a.text for a in fig.layout.annotations if a.name == "no groups"]
    assert note == ["no head/medium/tail groups: every class has 40 samples (equal counts)"]
    assert "no head / medium / tail groups" in fig.layout.title.text


def test_groups_figure_of_a_balanced_history_says_why():
    fig = group_bars_figure(make_history(method="coop", epochs=1), eval_set="base")
    note = [a.text for a in fig.layout.annotations if a.name == "no groups"]
    assert len(note) == 1 and "imbalance ratio is 1" in note[0]
    assert {t.marker.color for t in fig.data} == {"#0072B2"}  # no misleading head/medium/tail colours


def test_notes_above_the_plot_come_from_one_helper():
    from ncprobe.plotting._common import header_note

    def helper(**kw) -> dict:
        fig = go.Figure()
        header_note(fig, "note", **kw)
        return fig.layout.annotations[0].to_plotly_json()

    def drawn(fig, text: str) -> dict:
        return {**next(a for a in fig.layout.annotations if text in a.text).to_plotly_json(), "text": "note"}

    left, right = helper(), helper(align="right", yshift=118)
    assert (left["x"], left["xanchor"], right["x"], right["xanchor"]) == (0.0, "left", 1.0, "right")
    assert left["yanchor"] == "bottom" and left["yshift"] == 34 and left["showarrow"] is False
    groups = group_bars_figure(make_history(method="coop", epochs=1), eval_set="base")
    assert drawn(groups, "no head/medium/tail") == helper(color="#8a4b00", name="no groups")
    table = runs_table([make_history(method="coop", epochs=1, seed=s) for s in (0, 1, 2)])
    corr = correlation_figure(table, metric="t2i_text_etf_error", accuracies=["hm"], n_resamples=50)
    assert drawn(corr, "percentile-bootstrap") == helper(align="right", yshift=118, size=11, color="#555")


# ------------------------------------------------------------------------------------------------ runs_table
def test_runs_table_tells_regularized_runs_from_plain_ones():
    plain = make_history(method="coop", epochs=1)
    npt = make_history(method="coop", epochs=1, strength=0.9).assign_attrs(
        regularizers='["npt"]', ncprobe_json_attrs='["regularizers"]'
    )
    table = runs_table([plain, npt, plain.assign_attrs(seed=1)])
    assert table["variant"].tolist() == ["CoOp", "CoOp+NPT", "CoOp"]
    assert table["method"].tolist() == ["coop"] * 3  # as stored
    fig = correlation_figure(table, metric="t2i_text_etf_error", accuracies=["hm"], n_resamples=50)
    assert any("variant=CoOp+NPT" in n for n in _legend(fig))


# ------------------------------------------------------------------------------------------------ constant panels
def test_constant_accuracy_has_points_no_fit_and_plain_ticks():
    t = pd.DataFrame(
        {
            "nc1": [0.1, 0.2, 0.4, 0.8],
            "hm": [0.906, 0.9060000000000001, 0.906, 0.906],
            "accuracy_base": [0.5, 0.6, 0.7, 0.65],
            "imbalance_ratio": [1, 4, 16, 16],
            "method": ["CoOp"] * 4,
        }
    )
    fig = correlation_figure(t, metric="nc1", accuracies=["hm", "accuracy_base"], n_resamples=50)
    assert "correlation undefined: hm is constant (0.906)" in fig.layout.annotations[0].text
    fits = [tr for tr in fig.data if tr.name == "least squares"]
    assert [tr.xaxis for tr in fits] == ["x2"]  # only the panel that varies
    lo, hi = fig.layout.yaxis.range
    points = np.concatenate([tr.y for tr in fig.data if tr.mode == "markers" and tr.yaxis == "y"])
    assert lo < points.min() <= points.max() < hi and hi - lo > 0.05
    assert fig.layout.yaxis.tickformat == ".3~g"
    assert all(tr.marker.line.color != "white" for tr in fig.data if tr.mode == "markers")


# ------------------------------------------------------------------------------------------------ titles, seeds
def test_titles_name_the_selection_and_seeds_are_never_taken_silently(history):
    with pytest.raises(ValueError, match=r"holds seeds \[0, 1, 2\]; pass seed="):
        gram_figure(history, eval_set="base")
    fig = gram_figure(history, eval_set="novel", seed=1, epoch=2)
    assert fig.layout.title.subtitle.text == "CoOp · eval set novel · epoch 2 of 0–4 · seed 1 of [0, 1, 2]"
    groups = group_bars_figure(history, eval_set="base")
    assert "mean ± std (ddof 0) over 3 seeds" in groups.layout.title.subtitle.text
    assert groups.data[0].error_y.array is not None
    traj = trajectory_figure(history, metrics=["hm"])
    assert "mean ± std (ddof 0) over 3 seeds" in traj.layout.title.subtitle.text
    one = trajectory_figure(history, metrics=["hm"], seed=2)
    np.testing.assert_allclose(one.data[0].y, history["hm"].sel(seed=2).values)
    assert "seed 2" in one.layout.title.subtitle.text


@pytest.mark.parametrize("draw", [gram_figure, geometry_figure, group_bars_figure])
def test_a_seed_the_history_does_not_hold_is_refused_by_the_api(draw):
    one = make_history(method="coop", seed=0, epochs=1)  # a single-seed run: the seed is an attribute
    with pytest.raises(ValueError, match=r"^seed=2 is not in this history; it holds seeds \[0\]$"):
        draw(one, eval_set="base", seed=2)
    assert "seed 0" in draw(one, eval_set="base", seed=0).layout.title.subtitle.text
    stacked = make_history(method="coop", seeds=[0, 1], epochs=1)
    with pytest.raises(ValueError, match=r"^seed=2 is not in this history; it holds seeds \[0, 1\]$"):
        draw(stacked, eval_set="base", seed=2)
    report = make_report(num_classes=4, seed=1)  # records no seed and no evaluation set
    with pytest.raises(ValueError, match=r"^seed=1: this dataset records no seed"):
        draw(report, seed=1)
    with pytest.raises(ValueError, match=r"^eval_set='base': this dataset has a single evaluation set"):
        draw(report, eval_set="base")


def test_minmax_band_is_the_range_over_seeds(history):
    fig = trajectory_figure(history, metrics=["hm"], band="minmax")
    band = next(t for t in fig.data if t.fill == "toself")
    n = history.sizes["epoch"]
    np.testing.assert_allclose(band.y[:n], history["hm"].max("seed").values)
    np.testing.assert_allclose(band.y[n:], history["hm"].min("seed").values[::-1])
    assert "band min–max" in fig.layout.title.subtitle.text


# ------------------------------------------------------------------------------------------------ widths, log axes
def test_default_widths_fit_a_1400px_window(report, history, run_histories):
    table = runs_table(run_histories)
    figures = [
        gram_figure(report, cross=True),
        geometry_figure(report, dims=3),
        group_bars_figure(
            report, variables=["class_variance", "class_ncc_accuracy", "class_t2i_alignment", "accuracy"]
        ),
        trajectory_figure(run_histories, metrics=["nc1", "hm", "accuracy", "loss"], columns=4),
        correlation_figure(table, metric="t2i_text_etf_error", n_resamples=50),
    ]
    assert [f.layout.width <= 1400 for f in figures] == [True] * len(figures)
    assert figures[3].layout.legend.orientation == "h" and figures[4].layout.legend.orientation == "h"


def test_log_axes_label_ticks_with_values(history):
    fig = trajectory_figure(history, metrics=["nc1"])
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.tickformat == ".2~g"


# ------------------------------------------------------------------------------------------------ default metrics
def test_frozen_image_tower_defaults_to_metrics_that_move():
    h = make_history(method="coop", epochs=1)
    panels = [a.text.split(" ")[0] for a in trajectory_figure(h).layout.annotations]
    assert "nc1" not in panels and "ncc_accuracy" not in panels and "t2i_text_etf_error" in panels
    assert "frozen image tower" in trajectory_figure(h).layout.title.subtitle.text
    banked = h.assign_attrs(method="custom", feature_bank="true", ncprobe_json_attrs='["feature_bank"]')
    assert "nc1" not in [a.text.split(" ")[0] for a in trajectory_figure(banked).layout.annotations]
    prompted = [a.text.split(" ")[0] for a in trajectory_figure(h.assign_attrs(method="maple")).layout.annotations]
    assert "nc1" in prompted and "t2i_text_etf_error" in prompted


def test_the_frozen_image_features_attribute_decides_and_the_fallback_is_the_registry():
    from ncprobe.plotting.trajectory import FROZEN_IMAGE_METHODS, frozen_image_tower
    from ncprobe.training.methods import METHODS

    assert FROZEN_IMAGE_METHODS == {n for n, s in METHODS.items() if s.frozen_image_features}
    h = make_history(method="zeroshot", epochs=1)
    assert frozen_image_tower(h) is True
    assert frozen_image_tower(h.assign_attrs(method="kgcoop")) is False  # a regularizer, not a method
    flagged = [h.assign_attrs(method="maple", frozen_image_features=v) for v in (True, 1, "true")]
    assert [frozen_image_tower(f) for f in flagged] == [True, True, True]
    assert frozen_image_tower(h.assign_attrs(method="coop", frozen_image_features=False)) is False
    assert frozen_image_tower(h.assign_attrs(method="coop", frozen_image_features=0)) is False


def test_training_writes_the_frozen_image_features_flag(tmp_path):
    from ncprobe.core.report import load_dataset
    from ncprobe.plotting.trajectory import frozen_image_tower, trajectory_metrics
    from ncprobe.training import get_preset, train

    cfg = get_preset("testbed-zeroshot-b2n").replace(
        **{"model.testbed_preset": "fast", "data.dataset": "testbed", "data.num_shots": 4, "progress": False}
    )
    h = train(cfg.replace(**{"feature_bank": "off", "track.max_per_class": 10})).history
    assert h.attrs["frozen_image_features"] is True and h.attrs["feature_bank"] is False
    save_dataset(h, tmp_path / "history.nc")
    saved = load_dataset(tmp_path / "history.nc").assign_attrs(method="zero-shot")  # the flag, not the name
    assert frozen_image_tower(saved) is True and "nc1" not in trajectory_metrics(saved)


# ------------------------------------------------------------------------------------------------ CLI options
@pytest.fixture(scope="module")
def saved(tmp_path_factory, report, history):
    root = tmp_path_factory.mktemp("plot-options")
    report.to_netcdf(root / "report.nc")
    save_dataset(history, root / "history.nc")
    return {"report": str(root / "report.nc"), "history": str(root / "history.nc")}


def test_cli_options_reach_the_figures(saved, three_coop):
    h = saved["history"]
    g = figure_from_files([h], kind="gram", eval_set="novel", epoch=1, seed=2, cross=True)
    assert [t.name for t in g.data] == ["mean_cosines", "text_cosines", "cross_cosines", "etf"]
    assert g.layout.title.subtitle.text.endswith("eval set novel · epoch 1 of 0–4 · seed 2 of [0, 1, 2]")
    geo = figure_from_files([h], kind="geometry", dims=3, seed=0)
    assert isinstance(geo.data[0], go.Scatter3d) and "eval set base" in geo.layout.title.subtitle.text
    grp = figure_from_files([h], kind="groups", metrics=["class_variance"], epoch=0)
    assert [a.text for a in grp.layout.annotations][0] == "class_variance ↓"
    traj = figure_from_files(three_coop, kind="trajectory", eval_set="novel", seed=1, metrics=["accuracy"])
    assert _legend(traj) == ["CoOp · seed 1 · novel"]  # seed 1 is one of the three runs only
    corr = figure_from_files(three_coop, kind="correlation", eval_set="novel", epoch=1, metrics=["nc1"])
    assert "epoch 1" in corr.layout.title.subtitle.text and "NC on eval set novel" in corr.layout.title.subtitle.text


@pytest.mark.parametrize(
    "args, message",
    [
        (["{report}", "--kind", "gram", "--dims", "3"], "--dims does not apply to --kind gram"),
        (["{report}", "--kind", "geometry", "--cross"], "--cross does not apply to --kind geometry"),
        (["{history}", "--kind", "gram"], "pass --seed to choose one"),
        (["{history}", "--kind", "gram", "--seed", "7"], "--seed 7 is not in this history; it holds seeds [0, 1, 2]"),
        (["{report}", "--kind", "groups", "--seed", "1"], "--seed 1: this dataset records no seed"),
        (["{history}", "--kind", "gram", "--seed", "0", "--eval-set", "all"], "holds eval sets"),
        (["{history}", "--kind", "trajectory", "--epoch", "1"], "--epoch does not apply"),
        (["{report}", "--kind", "gram", "--label", "x"], "--label does not apply"),
        (["{history}", "--kind", "geometry", "--seed", "0", "--dims", "4"], "invalid choice"),
    ],
)
def test_cli_option_errors_are_one_line(saved, args, message, tmp_path, capsys):
    argv = ["plot", *[a.format(**saved) for a in args], "-o", str(tmp_path / "x.html")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's own choices
            code = exit_.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err.splitlines()[-1]
    assert err.startswith("usage") or "\n" not in err
