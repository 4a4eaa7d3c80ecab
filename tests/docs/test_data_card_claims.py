"""Claims of the data cards that cite a paper say what the paper says (issue 17, "Docs")."""

from __future__ import annotations

from pathlib import Path

CARD = Path(__file__).parents[2] / "data_cards" / "embedded_benchmark.md"


def test_coops_trade_off_is_novel_accuracy_below_zero_shot_not_longer_tower_training():
    """CoOp's base/novel trade-off (Zhou et al., CoCoOp, CVPR 2022, Table 1): prompt tuning lifts base accuracy and
    drops novel accuracy below zero-shot CLIP's. Longer training of the testbed's towers is something else."""
    text = " ".join(CARD.read_text(encoding="utf-8").split())
    assert "This is the base/novel trade-off CoOp reports" not in text
    sentence = text.split("Longer training of the towers")[1].split("Training on the template ensemble")[0]
    assert "not CoOp's trade-off" in sentence and "below zero-shot CLIP's" in sentence and "prompt tuning" in sentence
