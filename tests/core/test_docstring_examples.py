"""The docstring examples of the diagnostics core run and give what they show."""

import doctest
import importlib

import pytest

MODULES = ["metrics", "etf", "mmd", "anchors", "measure", "statistics", "decisions", "crossmodal", "report"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"ncprobe.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
