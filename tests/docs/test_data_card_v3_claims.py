"""The v3 data card's result sentences, recomputed from the committed study rows (``data_cards/results``)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
ROWS = ROOT / "data_cards" / "results" / "testbed_v3_goals.jsonl"
CARD = ROOT / "data_cards" / "embedded_benchmark_v3.md"


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("testbed_v3_report", ROOT / "scripts" / "testbed_v3_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def frame(report):
    return report.load(ROWS)


def _delta(report, frame, a, b, metric):
    return report.compare(frame, a, b, metric)


def test_the_study_has_every_condition_on_every_unit(frame):
    counts = frame.groupby("condition").size()
    assert len(counts) == 14 and (counts == 30).all()
    assert sorted(frame["tower"].unique()) == [0, 1] and sorted(frame["seed"].unique()) == [1, 2, 3, 4, 5]
    assert set(frame["split"]) == {"test"}
    text = CARD.read_text()
    assert "tower seeds 0 and 1" in text and "prompt seeds 1, 2,\n3, 4, 5" in text


def test_goal_1_zero_shot_lies_in_the_range(frame):
    zs = frame[frame["condition"] == "zeroshot"].groupby(["task", "tower"])[["base", "novel"]].first()
    assert zs.values.min() >= 0.45 and zs.values.max() <= 0.85


def test_goal_2_coop_beats_zero_shot_by_five_points(report, frame):
    d = _delta(report, frame, "coop_r1", "zeroshot", "base")
    assert d["mean"] >= 0.05 and d["ci_low"] > 0


def test_goal_3_imbalance_costs_base_and_tail_accuracy_but_not_the_etf_errors(report, frame):
    for metric in ("base", "acc_tail"):
        assert _delta(report, frame, "coop_r16", "coop_r1", metric)["ci_high"] < 0
    for metric in ("text_etf_error", "cross_etf_error"):
        d = _delta(report, frame, "coop_r16", "coop_r1", metric)
        assert d["ci_low"] < 0 < d["ci_high"], metric  # "neither significant"


def test_goal_4_no_novel_drop_and_kgcoop_loses_hm(report, frame):
    assert _delta(report, frame, "coop_r1", "zeroshot", "novel")["ci_low"] > 0
    assert _delta(report, frame, "kgcoop_r1", "coop_r1", "hm")["ci_high"] < 0


def test_goal_5_signs_as_the_card_states(report, frame):
    for rho in (1, 4, 16):
        assert _delta(report, frame, f"npt_r{rho}", f"coop_r{rho}", "hm")["ci_high"] < 0
    assert _delta(report, frame, "npt_anchored_r1", "coop_r1", "hm")["ci_high"] < 0
    anchored16 = _delta(report, frame, "npt_anchored_r16", "coop_r16", "hm")
    assert anchored16["ci_low"] < 0 < anchored16["ci_high"]
    craft1 = _delta(report, frame, "craft_r1", "coop_r1", "hm")
    assert craft1["ci_low"] < 0 < craft1["ci_high"]
    assert _delta(report, frame, "craft_r16", "coop_r16", "hm")["ci_low"] > 0


def test_npt_lowers_the_etf_error_it_targets(frame):
    means = frame.groupby("condition")["text_etf_error"].mean()
    assert means["npt_r1"] < means["npt_anchored_r1"] < means["coop_r1"]


def test_the_rows_parse_as_strict_json():
    for line in ROWS.read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
