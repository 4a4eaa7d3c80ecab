"""The notebooks' own rules (issue: notebooks): a parameters cell, only public ncprobe API, committed outputs,
and every output that nbval does not compare marked with its reason. nbval itself runs them (pyproject addopts)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _code_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def test_there_are_four_notebooks():
    assert [p.stem[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_parameters_cell_comes_first_and_names_the_real_setting(path):
    first = "".join(_code_cells(path)[0]["source"])
    assert first.startswith("# Parameters"), "the first code cell must be the parameters cell"
    assert "real setting" in first.lower() and "embedded default" in first.lower()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_only_public_ncprobe_names_are_imported(path):
    for cell in _code_cells(path):
        for node in ast.walk(ast.parse("".join(cell["source"]))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ncprobe"):
                parts = node.module.split(".") + [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                parts = [p for a in node.names if a.name.startswith("ncprobe") for p in a.name.split(".")]
            else:
                continue
            assert not any(p.startswith("_") for p in parts), f"{path.name} imports a private name: {parts}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_are_committed_and_ignored_outputs_say_why(path):
    cells = _code_cells(path)
    assert all(c.get("execution_count") for c in cells), "run the notebook and commit its outputs"
    assert not any(o.get("output_type") == "error" for c in cells for o in c["outputs"])
    for cell in cells:
        lines = "".join(cell["source"]).splitlines()
        if "# NBVAL_IGNORE_OUTPUT" in lines:
            reason = lines[lines.index("# NBVAL_IGNORE_OUTPUT") + 1]
            assert reason.startswith("# (") and len(reason) > 10, f"{path.name}: say why the output is not compared"
    checked = [c for c in cells if "# NBVAL_IGNORE_OUTPUT" not in "".join(c["source"]) and c["outputs"]]
    assert checked, f"{path.name}: nbval must compare at least one output"
