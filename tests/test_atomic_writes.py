"""Every file ncprobe writes goes through ncprobe._io (atomic_path and the helpers built on it).

A static check of the whole package (``_io.py`` excepted): any call that writes a file, such as
``open(..., "w")``, ``Path.write_text``, ``save_file``, ``torch.save``, ``np.save``/``np.savez``,
``json.dump``, ``pickle.dump`` or ``.to_netcdf``, must sit inside a ``with atomic_path(...) as tmp:``
block, or write to ``sys.stdout``/``sys.stderr``, or be one of the listed calls that delegate to an
atomic writer. Plus behavioural tests of the helpers themselves.
"""

from __future__ import annotations

import ast
import json
import os
import stat
from pathlib import Path

import pytest

from ncprobe._io import (
    CorruptFileError,
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    read_json,
)

PACKAGE = Path(__file__).parents[1] / "ncprobe"

#: Write calls by (function) name; ``json.dump``/``pickle.dump`` only as attribute calls.
WRITERS = {"save_file", "savez", "savez_compressed", "save", "write_text", "write_bytes", "to_netcdf", "to_csv"}
DUMPERS = {("json", "dump"), ("pickle", "dump"), ("torch", "save"), ("np", "save"), ("numpy", "save")}
#: (module relative to ncprobe/, receiver) of calls that delegate to an atomic writer elsewhere.
DELEGATES = {
    ("cli/measure.py", "report"): "NCReport.to_netcdf writes through atomic_path (core/report.py)",
    ("cli/quickstart.py", "report"): "NCReport.to_netcdf writes through atomic_path (core/report.py)",
}


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return ""


def _writes_to_std_stream(call: ast.Call) -> bool:
    return any(_name(arg) in ("sys.stdout", "sys.stderr") for arg in [*call.args, *(k.value for k in call.keywords)])


def _is_write(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Name) and func.id == "open" or _name(func) in ("io.open", "os.open"):
        mode = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
        if _name(func) == "os.open":
            return True  # flags; only _io.py may create files this way
        if mode is None:
            return False
        if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
            return any(c in mode.value for c in "wax+")
        return True  # a computed mode: treat as a write
    if isinstance(func, ast.Attribute):
        if func.attr == "open":  # Path.open(mode); Image.open(path) reads
            mode = next((k.value for k in call.keywords if k.arg == "mode"), call.args[0] if call.args else None)
            return (
                isinstance(mode, ast.Constant) and isinstance(mode.value, str) and any(c in mode.value for c in "wax+")
            )
        if (_name(func.value).split(".")[-1], func.attr) in DUMPERS:
            return True
        return func.attr in WRITERS
    return isinstance(func, ast.Name) and func.id in WRITERS


class _Finder(ast.NodeVisitor):
    def __init__(self, rel: str) -> None:
        self.rel, self.depth, self.bad = rel, 0, []

    def visit_With(self, node: ast.With) -> None:
        atomic = any(
            isinstance(item.context_expr, ast.Call) and _name(item.context_expr.func).endswith("atomic_path")
            for item in node.items
        )
        self.depth += atomic
        self.generic_visit(node)
        self.depth -= atomic

    def visit_Call(self, node: ast.Call) -> None:
        if _is_write(node) and not self.depth and not _writes_to_std_stream(node):
            receiver = _name(node.func.value) if isinstance(node.func, ast.Attribute) else ""
            if (self.rel, receiver) not in DELEGATES:
                self.bad.append(f"ncprobe/{self.rel}:{node.lineno}: {ast.unparse(node)[:90]}")
        self.generic_visit(node)


def test_every_write_goes_through_the_atomic_helpers():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == "_io.py":
            continue
        finder = _Finder(rel)
        finder.visit(ast.parse(path.read_text()))
        bad += finder.bad
    assert not bad, "writes outside ncprobe._io.atomic_path / atomic_write_*:\n" + "\n".join(bad)


def test_the_checker_sees_direct_writes():
    source = (
        "import json, torch\n"
        "def f(p, x):\n"
        "    open(p, 'w').write('x')\n"
        "    p.write_text('x')\n"
        "    json.dump(x, open(p, 'r'))\n"
        "    torch.save(x, p)\n"
        "    p.open('wb')\n"
        "    Image.open(p)\n"
        "    with atomic_path(p) as tmp:\n"
        "        tmp.write_text('fine')\n"
        "    json.dump(x, sys.stdout)\n"
    )
    finder = _Finder("example.py")
    finder.visit(ast.parse(source))
    assert [line.split(":")[1] for line in finder.bad] == ["3", "4", "5", "6", "7"]


# ---------------------------------------------------------------------------------------------- behaviour


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "sub" / "out.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_path(target) as tmp:
            assert tmp.parent == target.parent and tmp.name.endswith(".json") and tmp.exists()
            tmp.write_text("half a fi")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]  # no temporary left behind
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"


def test_atomic_files_get_umask_permissions_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_json(tmp_path / "shared.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert json.loads(path.read_text()) == {"a": 1} and path.read_text().endswith("\n")


def test_atomic_write_json_is_standard_json(tmp_path):
    with pytest.raises(ValueError, match="not JSON compliant"):
        atomic_write_json(tmp_path / "nan.json", {"x": float("nan")})
    assert not (tmp_path / "nan.json").exists()


@pytest.mark.parametrize(
    "content, problem",
    [(b"", "empty file"), (b'{"a": [1, 2', "not a valid manifest"), (b"\xff\xfe\x00", "not UTF-8")],
)
def test_read_json_names_the_file(tmp_path, content, problem):
    path = tmp_path / "thing.json"
    path.write_bytes(content)
    with pytest.raises(CorruptFileError, match=problem) as info:
        read_json(path, what="manifest")
    assert info.value.path == path and str(info.value).startswith(str(path))
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        read_json(tmp_path / "missing.json", what="manifest")
