"""The architecture, enforced: which way imports run, what stays private, what stays cheap to import.

See ``docs/architecture.md``: core ← data, models ← training ← cli; core ← plotting (public API only);
models, data ← testbed.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "ncprobe"

#: Layer → the ncprobe layers it must not import.
FORBIDDEN = {
    "core": {"data", "models", "testbed", "training", "plotting", "cli"},
    "data": {"models", "testbed", "training", "plotting", "cli"},
    "models": {"data", "testbed", "training", "plotting", "cli"},
    "testbed": {"training", "plotting", "cli"},
    "training": {"plotting", "cli"},
    "plotting": {"data", "models", "testbed", "training", "cli"},
}


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module imported, names imported from it, line) of every import in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text())
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((a.name, [], node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.append((module, [a.name for a in node.names], node.lineno))
    return out


def _files(layer: str) -> list[Path]:
    folder = PACKAGE / layer
    return sorted(folder.rglob("*.py")) if folder.is_dir() else []


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_run_one_way(layer):
    bad = []
    for path in _files(layer):
        if path.name == "__main__.py":  # entry points (python -m ...) sit above every layer
            continue
        for module, _, line in _imports(path):
            parts = module.split(".")
            if parts[0] == "ncprobe" and len(parts) > 1 and parts[1] in FORBIDDEN[layer]:
                bad.append(f"{path.relative_to(PACKAGE)}:{line} imports {module}")
    assert not bad, "\n".join(bad)


def test_no_private_name_crosses_a_module():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for module, names, line in _imports(path):
            if not module.startswith("ncprobe"):
                continue
            for name in names:
                submodule = PACKAGE.parent.joinpath(*module.split("."), f"{name}.py")
                if submodule.is_file():  # a private module shared inside its package, with public names
                    continue
                if name.startswith("_") and not name.startswith("__"):
                    bad.append(f"{path.relative_to(PACKAGE)}:{line} imports {name} from {module}")
    assert not bad, "\n".join(bad)


def test_plotly_lives_in_plotting_only():
    bad = [
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if "plotting" not in p.parts and any(m.split(".")[0] == "plotly" for m, _, _ in _imports(p))
    ]
    assert not bad


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_import_ncprobe_and_the_cli_parser_stay_light():
    light = _modules_after("import ncprobe, ncprobe.cli; ncprobe.cli.build_parser()")
    assert "torch" not in light and "numpy" not in light
    assert not any(m.startswith("ncprobe.training") for m in light)


def test_ncprobe_train_is_the_function_and_loads_the_training_stack_lazily():
    modules = _modules_after("import ncprobe; ncprobe.measure")
    assert not any(m.startswith("ncprobe.training") for m in modules)
    import ncprobe

    assert callable(ncprobe.train) and ncprobe.train.__module__ == "ncprobe.training.api"
    from ncprobe.training import TrainConfig  # the package stays reachable beside the function

    assert TrainConfig().method.name == "coop"


def test_measure_is_the_function_and_the_module_stays_reachable():
    modules = _modules_after("import ncprobe; import ncprobe.core.measure as m; assert callable(m.measure)")
    assert not any(m.startswith("ncprobe.training") for m in modules)
    import ncprobe
    import ncprobe.core.measure

    assert ncprobe.measure is ncprobe.core.measure.measure
    assert ncprobe.core.measure.resolve_groups is ncprobe.core.groups.resolve_groups


def test_public_exports_resolve():
    import ncprobe

    for name in ncprobe.__all__:
        assert getattr(ncprobe, name) is not None, name
    with pytest.raises(AttributeError):
        ncprobe.no_such_name  # noqa: B018
