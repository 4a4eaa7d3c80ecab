"""docs/metrics.md agrees with the metric catalog (its catalog section is generated from it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ncprobe.core import catalog

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("metrics_reference", ROOT / "docs" / "metrics_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_catalog_section_is_up_to_date():
    gen = _generator()
    text = gen.DOC.read_text()
    assert gen.render(text) == text, "docs/metrics.md is out of date: run python docs/metrics_reference.py"


def test_every_metric_is_documented_with_its_range_and_source():
    text = (ROOT / "docs" / "metrics.md").read_text()
    for spec in catalog.METRICS:
        row = next((line for line in text.splitlines() if line.startswith(f"| `{spec.name}` |")), None)
        assert row is not None, spec.name
        assert spec.formula.replace("|", "\\|") in row
        assert (spec.source or "—") in row


def test_every_metric_that_can_be_negative_says_what_negative_means():
    gen = _generator()
    negative = [s.name for s in catalog.METRICS if s.range[0] < 0]
    assert negative, "the catalog has metrics with negative ranges"
    missing = [n for n in negative if n not in gen.SIGN_NOTES]
    assert not missing, f"add a sign note to docs/metrics_reference.py for {missing}"
    assert set(gen.SIGN_NOTES) <= {s.name for s in catalog.METRICS}, "a sign note names an unknown metric"


def test_conventions_are_stated():
    text = (ROOT / "docs" / "metrics.md").read_text()
    for phrase in (
        "**unweighted**",
        "**sample-weighted**",
        "ddof = 0",
        "gap_weighting",
        "normalize_images",
        "pinv_rtol",
        "certified",
        "center",
    ):
        assert phrase in text, phrase
