"""Imports flow one way: the graph of ncprobe's modules has no circle.

The graph is built with ``ast`` from the source, not by importing it. Each module of ``ncprobe`` is a node
(a package's ``__init__.py`` is the node of the package itself, ``ncprobe.data``); an edge runs from a module
to every ncprobe module it imports:

* at module level **and inside functions** (a function-local import that closes a circle only hides it);
* relative imports resolved (``from .x import y``, ``from . import x``);
* ``from package import name`` counts as the submodule ``package.name`` when that file exists, else as the
  package's ``__init__``; importing the package (``from ncprobe.data import Item``) depends on its
  ``__init__``, which re-exports every submodule, so a module that imports its own package's ``__init__``
  closes a circle: inside a package, modules import the module that defines a name;
* imports under ``if TYPE_CHECKING:`` are annotations, not run-time dependencies: they are left out of the
  run-time graph, and the annotation-only back-references allowed are listed in
  :data:`ANNOTATION_BACK_REFERENCES`, each with its reason;
* the parent packages that Python runs before a submodule are not edges (every package ``__init__`` would
  otherwise close a circle with its own modules), nor are ``importlib.import_module`` calls, which only the
  package ``__init__`` files use for lazy attributes.

A circle is a strongly connected component of more than one module (Tarjan, 1972); the message names the
modules and one import line of each edge inside it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "ncprobe"

#: (module, module it names under ``if TYPE_CHECKING:``) pairs that may point back up, and why.
#: None today: data.manifest names what it reads of a prepared dataset and of a reader's splits as protocols
#: (PreparedLike, SplitsLike) instead of importing data.pipeline's classes for its annotations.
ANNOTATION_BACK_REFERENCES: set[tuple[str, str]] = set()


def module_names(package: Path) -> dict[str, Path]:
    """``{dotted name: file}`` of every module under ``package`` (``__init__.py`` named as its package)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST, type_checking: bool, under_tc: bool = False):
    """Every Import / ImportFrom under ``node`` with whether it sits in an ``if TYPE_CHECKING:`` body."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for stmt in child.body:
                if type_checking:
                    yield from _walk(stmt, type_checking, True)
            for stmt in child.orelse:
                yield from _walk(stmt, type_checking, under_tc)
            continue
        yield from _walk(child, type_checking, under_tc)


def _walk(node: ast.AST, type_checking: bool, under_tc: bool):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node, under_tc
    yield from _import_nodes(node, type_checking, under_tc)


def imports_of(name: str, path: Path, modules: dict[str, Path], *, type_checking: bool = False):
    """``{imported ncprobe module: (line, under TYPE_CHECKING)}`` for module ``name`` at ``path``."""
    root = name.split(".")[0]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: dict[str, tuple[int, bool]] = {}

    def add(target: str, line: int, under_tc: bool) -> None:
        if target in modules and target != name and (target not in out or out[target][1] and not under_tc):
            out[target] = (line, under_tc)

    for node, under_tc in _import_nodes(ast.parse(path.read_text()), type_checking):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == root:
                    add(alias.name, node.lineno, under_tc)
            continue
        if node.level:
            base = package[: len(package) - node.level + 1]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        if module.split(".")[0] != root:
            continue
        for alias in node.names:
            submodule = f"{module}.{alias.name}"
            add(submodule if submodule in modules else module, node.lineno, under_tc)
    return out


def import_graph(package: Path = PACKAGE, *, type_checking: bool = False) -> dict[str, dict[str, tuple[int, bool]]]:
    """``{module: {module it imports: (line, under TYPE_CHECKING)}}`` over every module of ``package``."""
    modules = module_names(package)
    return {name: imports_of(name, path, modules, type_checking=type_checking) for name, path in modules.items()}


def circles(graph: dict[str, dict[str, object]]) -> list[list[str]]:
    """The strongly connected components with more than one module (iterative Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, edges = work[-1]
            for w in edges:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def describe(graph: dict[str, dict[str, tuple[int, bool]]], component: list[str]) -> str:
    inside = set(component)
    lines = [f"a circle of {len(component)} modules:"]
    for v in component:
        for w, (line, under_tc) in sorted(graph[v].items()):
            if w in inside:
                lines.append(f"  {v}:{line} imports {w}" + (" (under TYPE_CHECKING)" if under_tc else ""))
    return "\n".join(lines)


def test_the_import_graph_has_no_circle():
    graph = import_graph()
    found = circles(graph)
    assert not found, "\n".join(describe(graph, c) for c in found)


def test_type_checking_imports_close_no_circle_beyond_the_listed_back_references():
    graph = import_graph(type_checking=True)
    for module, target in ANNOTATION_BACK_REFERENCES:
        line, under_tc = graph[module][target]
        assert under_tc, f"{module}:{line} imports {target} at run time: drop it from ANNOTATION_BACK_REFERENCES"
        del graph[module][target]
    found = circles(graph)
    assert not found, "\n".join(describe(graph, c) for c in found)


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "pkg"


def test_the_graph_sees_function_level_relative_and_package_imports(tmp_path):
    package = _package(
        tmp_path,
        {
            "__init__.py": "from .sub.a import A\n",
            "sub/__init__.py": "from pkg.sub.a import A\nfrom pkg.sub.b import B\n",
            "sub/a.py": "def f():\n    from . import b\n",  # function-local, `from . import submodule`
            "sub/b.py": "from ..sub import c\nimport pkg.sub.c as cc\n",  # relative, plain import
            "sub/c.py": "from pkg.sub import A\n",  # the package's __init__ (A is not a submodule)
            "sub/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub import e\n",
            "sub/e.py": "from pkg.sub import d\n",
        },
    )
    graph = import_graph(package)
    assert set(graph["pkg.sub.a"]) == {"pkg.sub.b"}
    assert set(graph["pkg.sub.b"]) == {"pkg.sub.c"}
    assert set(graph["pkg.sub.c"]) == {"pkg.sub"}
    assert set(graph["pkg"]) == {"pkg.sub.a"}
    assert graph["pkg.sub.d"] == {}
    assert circles(graph) == [["pkg.sub", "pkg.sub.a", "pkg.sub.b", "pkg.sub.c"]]
    message = describe(graph, circles(graph)[0])
    assert "pkg.sub.a:2 imports pkg.sub.b" in message
    assert circles(import_graph(package, type_checking=True)) == [
        ["pkg.sub", "pkg.sub.a", "pkg.sub.b", "pkg.sub.c"],
        ["pkg.sub.d", "pkg.sub.e"],
    ]


def test_a_graph_without_circles_passes(tmp_path):
    package = _package(tmp_path, {"__init__.py": "from . import a\n", "a.py": "from . import b\n", "b.py": ""})
    assert circles(import_graph(package)) == []
