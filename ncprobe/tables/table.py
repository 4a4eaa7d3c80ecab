"""The :class:`Table` a sweep builds: one set of cells, shown as ``xarray``, pandas, Markdown, LaTeX and Plotly.

Cells hold ``mean``, ``std`` and ``n`` (seeds) per (row, group, column); a compared table adds ``published``,
``diff`` (ours − published), ``flag`` (1 when |diff| exceeds the seed spread, 0 within it, NaN without a spread)
and ``source`` (the published table's id, or ``not known``).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

import pandas as pd
import xarray as xr

__all__ = ["Table", "cell_text"]


def _fmt(value: float, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.3g}" if "[" in column else f"{value:.2f}"


def cell_text(cell: pd.Series, compared: bool = False) -> str:
    """``81.20 ± 0.31`` (one seed: ``81.20``), and with a comparison ``· pub 82.69 (Δ -1.49 *)``, where ``*`` marks a
    difference outside the seed spread, or ``· pub not known``."""
    col = str(cell["column"])
    text = _fmt(cell["mean"], col)
    if cell["n"] > 1:
        text += f" ± {_fmt(cell['std'], col)}"
    if compared:
        if cell["source"] == "not known":
            text += " · pub not known"
        else:
            mark = " *" if cell["flag"] == 1 else ("" if cell["flag"] == 0 else " ?")
            text += f" · pub {_fmt(cell['published'], col)} (Δ {cell['diff']:+.2f}{mark})"
    return text


@dataclass
class Table:
    """A built table (:func:`~ncprobe.tables.build_table`)."""

    layout: str
    cells: pd.DataFrame
    missing: list[str] = field(default_factory=list)
    sources: list = field(default_factory=list)
    compared: bool = False

    def to_xarray(self) -> xr.Dataset:
        """The cells as an ``xarray.Dataset`` with dimensions ``row``, ``group``, ``column`` (variables mean, std,
        n, and published, diff, flag, source when compared)."""
        frame = self.cells.copy()
        order = {key: [str(v) for v in dict.fromkeys(frame[key])] for key in ("row", "group", "column")}
        for key in order:
            frame[key] = frame[key].astype(str)
        ds = frame.set_index(["row", "group", "column"]).to_xarray().reindex(order)
        ds.attrs.update(
            layout=self.layout,
            hm="harmonic mean of the seed-averaged base and novel accuracies; its std is the per-seed HMs' spread",
            std="numpy std over seeds (ddof=0)",
            sources="; ".join(f"{s.id}: {s.citation()}" for s in self.sources),
        )
        return ds

    def to_pandas(self) -> pd.DataFrame:
        """One row per method, columns (group, column) holding ``mean ± std`` text (and the comparison)."""
        frame = self.cells.copy()
        frame["text"] = [cell_text(c, self.compared) for _, c in frame.iterrows()]
        wide = frame.pivot_table(
            index="row", columns=["group", "column"], values="text", aggfunc="first", observed=True
        )
        wide = wide.reindex(index=list(dict.fromkeys(frame["row"])))
        wide = wide.reindex(columns=list(dict.fromkeys(zip(frame["group"], frame["column"]))))
        wide.index.name = None
        return wide.fillna("–")

    def to_csv_text(self) -> str:
        """The cells as CSV text, one line per (row, group, column) cell with every variable."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(list(self.cells.columns))
        writer.writerows(self.cells.astype(object).itertuples(index=False))
        return buffer.getvalue()

    def _grid(self) -> tuple[list[str], list[list[str]]]:
        wide = self.to_pandas()
        head = ["method"] + [f"{g} {c}" if c not in ("", g) else str(g) for g, c in wide.columns]
        body = [[str(i)] + [str(v) for v in row] for i, row in zip(wide.index, wide.to_numpy())]
        return head, body

    def to_markdown(self) -> str:
        """A Markdown table, followed by the published sources and the runs still missing."""
        head, body = self._grid()
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + [":---:"] * (len(head) - 1)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines + self._notes())

    def to_latex(self) -> str:
        """A LaTeX ``tabular`` (booktabs), followed by the sources as comments."""

        def esc(text: str) -> str:
            for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#")):
                text = text.replace(a, b)
            return text.replace("±", r"$\pm$").replace("Δ", r"$\Delta$").replace("τ", r"$\tau$")

        head, body = self._grid()
        lines = [r"\begin{tabular}{l" + "c" * (len(head) - 1) + "}", r"\toprule", " & ".join(map(esc, head)) + r" \\"]
        lines += [r"\midrule"] + [" & ".join(map(esc, r)) + r" \\" for r in body] + [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines + ["% " + n.lstrip("> ").strip() for n in self._notes() if n.strip()])

    def _notes(self) -> list[str]:
        notes = []
        if self.compared:
            notes.append("")
            notes += [f"> published {s.id}: {s.citation()} — {s.source}" for s in self.sources]
            notes.append("> `*`: the difference lies outside the seed spread (|Δ| > std); `?`: one seed, no spread")
        if self.missing:
            notes.append(f"> {len(self.missing)} runs have no result yet: {', '.join(self.missing[:5])}")
        return notes

    def figure(self):
        """A Plotly figure of the table (``ncprobe.plotting.table_figure``): bars with ± std per method and column,
        published values as markers."""
        from ncprobe.plotting.table_figure import table_figure

        return table_figure(self.to_xarray())

    def __repr__(self) -> str:
        return self.to_markdown()
