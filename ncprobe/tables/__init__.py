"""The papers' tables from a sweep, with the published numbers beside ours.

:func:`build_table` reads a sweep folder (``ncprobe.sweep``) and lays its final results out as a paper prints
them (``b2n``, ``imbalance``, ``cross_dataset``, ``dg``, ``few_shot``): mean ± std over seeds, the engine's HM
convention, averages over datasets, NC metrics as columns, and with ``compare=True`` the published value of each
cell from ``published.yaml`` (:func:`load_published`), its difference and a flag outside the seed spread. See
``docs/sweeps.md``.
"""

from __future__ import annotations

from .build import aggregate, build_table
from .collect import collect, hm, layout_records
from .published import LAYOUTS, PublishedTable, load_published, lookup
from .table import Table, cell_text

__all__ = [
    "LAYOUTS",
    "PublishedTable",
    "Table",
    "aggregate",
    "build_table",
    "cell_text",
    "collect",
    "hm",
    "layout_records",
    "load_published",
    "lookup",
]
