"""The published numbers (``published.yaml``, package data): each table with its source, and a lookup.

Every table names its paper, arXiv id, which table of the source, where the text was read, the backbone and the
shots; each row names the method, the dataset (``average`` for the mean over datasets) and its columns (``base``,
``novel``, ``hm``, or a column of the layout: ``tau=4``, a target dataset, ``16-shot``). A value that is not
listed is not known: :func:`lookup` returns ``None`` and the table says so; nothing is ever estimated.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PublishedTable", "load_published", "lookup", "canonical_dataset", "LAYOUTS", "REQUIRED_KEYS"]

LAYOUTS = ("b2n", "imbalance", "cross_dataset", "dg", "few_shot")
REQUIRED_KEYS = ("id", "layout", "paper", "arxiv", "table", "source", "backbone", "shots", "rows")
_PATH = Path(__file__).with_name("published.yaml")


@dataclass(frozen=True)
class PublishedTable:
    """One published table: its source and its rows (``{method, dataset, column: value, ...}``)."""

    id: str
    layout: str
    paper: str
    arxiv: str
    table: str
    source: str
    backbone: str
    shots: int
    seeds: int | None
    rows: tuple[dict, ...]

    def citation(self) -> str:
        """``paper (arXiv id), table, backbone, shots`` in one line."""
        return f"{self.paper} (arXiv:{self.arxiv}), {self.table}; {self.backbone}, {self.shots} shots"


def canonical_dataset(name: str) -> str:
    """A dataset's canonical name (``oxford_pets`` → ``OxfordPets``); ``average`` and unknown names unchanged."""
    if name == "average":
        return name
    from ncprobe.data import resolve_name

    try:
        return resolve_name(name)
    except ValueError:
        return name


def _check(entry: dict, where: str) -> list[str]:
    problems = [f"{where}: missing {k!r}" for k in REQUIRED_KEYS if k not in entry]
    if entry.get("layout") not in LAYOUTS:
        problems.append(f"{where}: layout must be one of {', '.join(LAYOUTS)}, got {entry.get('layout')!r}")
    for i, row in enumerate(entry.get("rows") or []):
        if not isinstance(row, dict) or "method" not in row or "dataset" not in row:
            problems.append(f"{where}.rows[{i}]: a row names its method and dataset")
            continue
        for key, value in row.items():
            if key not in ("method", "dataset") and not isinstance(value, (int, float)):
                problems.append(f"{where}.rows[{i}].{key}: a published value is a number, got {value!r}")
    return problems


def load_published(path: str | Path | None = None) -> tuple[PublishedTable, ...]:
    """Every published table of ``path`` (default: the package's ``published.yaml``), checked: a missing source
    field, an unknown layout or a value that is not a number is a ``ValueError`` naming the entry."""
    return _load(str(path or _PATH))


@functools.lru_cache(maxsize=4)
def _load(path: str) -> tuple[PublishedTable, ...]:
    import yaml

    data = yaml.safe_load(Path(path).read_text())
    entries = data.get("tables") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a mapping with a 'tables' list")
    problems, ids, out = [], set(), []
    for i, entry in enumerate(entries):
        where = f"tables[{i}] ({entry.get('id', '?')})" if isinstance(entry, dict) else f"tables[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: not a mapping")
            continue
        problems += _check(entry, where)
        if entry.get("id") in ids:
            problems.append(f"{where}: duplicate id")
        ids.add(entry.get("id"))
        if not problems:
            out.append(
                PublishedTable(
                    **{k: entry[k] for k in REQUIRED_KEYS if k != "rows"},
                    seeds=entry.get("seeds"),
                    rows=tuple(dict(r) for r in entry["rows"]),
                )
            )
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return tuple(out)


def lookup(
    layout: str, method: str, dataset: str, column: str, *, source: str | None = None, path: str | Path | None = None
) -> tuple[float, PublishedTable] | None:
    """The published value of one cell and its table, or ``None`` when no source lists it. The first table of the
    file that lists the cell wins, unless ``source`` names a table id."""
    want = canonical_dataset(dataset)
    for table in load_published(path):
        if table.layout != layout or (source is not None and table.id != source):
            continue
        for row in table.rows:
            if row["method"] == method and canonical_dataset(str(row["dataset"])) == want and column in row:
                return float(row[column]), table
    return None
