"""The repository is self-contained: every relative link in README.md, docs/ and data_cards/ resolves to a file
inside the repository, and no page points at a path of the machine it was written on (issue 17, "Docs")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2].resolve()
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "data_cards").rglob("*.md")])

#: Markdown links and images ``[text](target "title")`` and HTML ``href=``/``src=`` attributes.
_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|(?:href|src)=[\"']([^\"']+)[\"']")
#: Absolute paths of a machine (a home folder, the session's workspace), in links or in code spans.
_MACHINE_PATH = re.compile(r"(?<![\w.~])/(?:work|home|Users|root|mnt|scratch)/[\w.-]+")


def _relative_links(text: str) -> list[str]:
    out = []
    for m in _LINK.finditer(text):
        target = m.group(1) or m.group(2)
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("#"):  # a URL or an anchor
            continue
        out.append(target)
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(page):
    bad = []
    for target in _relative_links(page.read_text(encoding="utf-8")):
        path = target.split("#")[0].split("?")[0]
        resolved = (ROOT / path.lstrip("/")) if path.startswith("/") else (page.parent / path)
        resolved = resolved.resolve()
        if not (resolved == ROOT or ROOT in resolved.parents) or not resolved.exists():
            bad.append(target)
    assert not bad, f"{page.relative_to(ROOT)} links outside the repository or to missing files: {bad}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_names_a_path_of_the_machine(page):
    found = [m.group(0) for m in _MACHINE_PATH.finditer(page.read_text(encoding="utf-8"))]
    assert not found, f"{page.relative_to(ROOT)} names paths outside the repository: {found}"


def test_the_link_finder_sees_what_it_must_refuse():
    text = 'see [a](../../outside.md), ![b](docs/x.png "t"), <img src="y.svg">, [c](https://x.org) and [d](#top)'
    assert _relative_links(text) == ["../../outside.md", "docs/x.png", "y.svg"]
    assert _MACHINE_PATH.findall("read `/work/shared/reference/a.md` or /home/me/x, not ~/.cache or a/work/b")
    assert len(_MACHINE_PATH.findall("read `/work/shared/reference/a.md` or /home/me/x")) == 2
    assert not _MACHINE_PATH.findall("not ~/.cache/huggingface or data/work/b")
