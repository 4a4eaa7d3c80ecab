"""Claims confirm themselves or fail with the sentence and the numbers; the docstring examples of
ncprobe.stats run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

from ncprobe.stats import (
    ClaimError,
    claim,
    claim_between,
    claim_interval_excludes_zero,
    claim_significant,
    correlation,
    paired_difference,
)


def test_a_claim_that_holds_returns_a_plain_confirmation():
    out = claim("CoOp beats zero-shot.", np.float64(0.71) > 0.65, coop=0.7123456, zero_shot=0.65, n=np.int64(10))
    assert out == "✓ CoOp beats zero-shot. (coop = 0.7123, zero_shot = 0.65, n = 10)"
    assert repr(out) == str(out)  # a notebook cell shows it without quotes
    assert claim("Nothing to show.", True) == "✓ Nothing to show."


def test_a_claim_that_fails_names_the_sentence_and_the_numbers():
    with pytest.raises(ClaimError) as info:
        claim("ρ = 16 lowers HM by more than 2 points.", 0.012 > 0.02, drop=0.012, threshold=0.02, ci=(0.004, 0.02))
    assert isinstance(info.value, AssertionError)
    assert str(info.value) == (
        "ρ = 16 lowers HM by more than 2 points.\n  drop = 0.012\n  threshold = 0.02\n  ci = (0.004, 0.02)"
    )


def test_holds_must_be_a_bool():
    with pytest.raises(TypeError, match="holds must be a bool"):
        claim("p is small.", 0.03)
    with pytest.raises(TypeError, match="ndarray"):
        claim("All seeds improve.", np.array([True, False]))


def test_interval_claims_on_paired_differences_and_correlations():
    up = paired_difference([0.71, 0.74, 0.70, 0.73], [0.65, 0.69, 0.66, 0.66], names=("CoOp", "ZS"))
    out = claim_interval_excludes_zero("CoOp beats zero-shot.", up)
    assert out.startswith("✓ CoOp beats zero-shot. (result = CoOp − ZS: Δ = +0.055") and "n = 4" in out
    assert claim_interval_excludes_zero("It differs.", up, direction="any").startswith("✓")
    with pytest.raises(ClaimError) as info:
        claim_interval_excludes_zero("CoOp loses to zero-shot.", up, direction="-")
    message = str(info.value)
    assert message.startswith("CoOp loses to zero-shot.\n") and f"ci = ({up.ci_low:.4g}, {up.ci_high:.4g})" in message
    assert "direction = -" in message and "p_perm = 0.12" in message
    flat = paired_difference([0.7, 0.71, 0.69], [0.7, 0.69, 0.71])
    with pytest.raises(ClaimError, match="It differs"):
        claim_interval_excludes_zero("It differs.", flat, direction="any")
    r = correlation([0.1, 0.2, 0.4, 0.8, 0.5, 0.3], [0.8, 0.7, 0.65, 0.5, 0.6, 0.72], n_boot=0)
    assert claim_interval_excludes_zero("NC1 falls as HM rises.", r, direction="-").startswith("✓")
    undefined = correlation([1, 1, 1, 1], [1, 2, 3, 4])
    with pytest.raises(ClaimError, match="undefined"):
        claim_interval_excludes_zero("They correlate.", undefined, direction="any")
    with pytest.raises(ValueError, match="direction"):
        claim_interval_excludes_zero("x", up, direction="up")


def test_significance_and_range_claims():
    assert claim_significant("Significant after Holm.", 0.05) == "✓ Significant after Holm. (p = 0.05, alpha = 0.05)"
    with pytest.raises(ClaimError, match=r"(?s)Significant\..*p = 0.06\n  alpha = 0.05"):
        claim_significant("Significant.", 0.06)
    with pytest.raises(ClaimError, match="p = nan"):
        claim_significant("Significant.", float("nan"))
    assert claim_between("Gap is 3–5 points.", 0.04, 0.03, 0.05).startswith("✓ Gap is 3–5 points.")
    with pytest.raises(ClaimError, match=r"(?s)Gap is 3–5 points\..*value = 0.06.*low = 0.03.*high = 0.05"):
        claim_between("Gap is 3–5 points.", 0.06, 0.03, 0.05)
    with pytest.raises(ClaimError):
        claim_between("Defined.", float("nan"), 0, 1)


@pytest.mark.parametrize("name", ["_common", "paired", "multiple", "correlation", "within", "claims"])
def test_docstring_examples(name):
    module = importlib.import_module(f"ncprobe.stats.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
