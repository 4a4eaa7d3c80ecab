"""The docstring examples of the diagnostics core run and give what they show."""

import doctest
import importlib

import pytest

MODULES = [
    "metrics",
    "geometry",
    "mmd",
    "anchors",
    "measure",
    "statistics",
    "decisions",
    "crossmodal",
    "report",
    "generalized",
    "groups",
    "catalog",
    "prepared",
    "inmemory",
    "synthetic",
    "_validation",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"ncprobe.core.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
