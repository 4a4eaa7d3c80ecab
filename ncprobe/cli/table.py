"""``ncprobe table SWEEP_DIR --layout b2n``: a paper's table from a sweep, with ``--compare`` the published numbers.

Layouts: ``b2n`` (base, novel, HM per dataset and their average), ``imbalance`` (columns by τ), ``cross_dataset``
and ``dg`` (columns by target), ``few_shot`` (columns by shots). Cells are mean ± std over seeds; the HM is that
of the seed-averaged base and novel. ``--nc`` adds NC metrics as columns. See ``docs/sweeps.md``.
"""

from __future__ import annotations

import argparse

from ._common import check_output_path

__all__ = ["add_parser", "run"]

LAYOUTS = ("b2n", "imbalance", "cross_dataset", "dg", "few_shot")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("table", help="a paper's table from a sweep, published numbers beside", description=__doc__)
    p.add_argument("sweep_dir", help="the sweep folder (the spec's output_dir)")
    p.add_argument(
        "--layout",
        choices=LAYOUTS,
        default=None,
        help="the paper's table layout (default: the spec's table.layout, else b2n)",
    )
    p.add_argument("--metric", default=None, help="imbalance/few_shot cell value: hm, base, novel or all")
    p.add_argument(
        "--nc", nargs="*", default=None, metavar="METRIC", help="NC columns, e.g. t2i_cross_etf_error[novel]"
    )
    p.add_argument("--compare", action="store_true", help="add the published value, the difference and the flag")
    p.add_argument("--source", default=None, help="compare with this published table id only")
    p.add_argument(
        "--as",
        dest="method_map",
        action="append",
        default=[],
        metavar="ROW=METHOD",
        help="a table row's published method name (repeatable), e.g. --as 'CoOp+NPT=coop+npt'",
    )
    p.add_argument("--format", choices=("markdown", "latex", "csv"), default="markdown", help="printed format")
    p.add_argument("-o", "--output", default=None, help="also write the table: .md, .tex, .csv or .nc (xarray)")
    p.add_argument("--figure", default=None, help="write the Plotly figure (.html)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build, print and write the table."""
    out = check_output_path(args.output)
    fig_out = check_output_path(args.figure)
    methods = {}
    for item in args.method_map:
        row, sep, method = item.partition("=")
        if not sep:
            raise ValueError(f"--as takes ROW=METHOD, got {item!r}")
        methods[row] = method
    from ncprobe._io import atomic_write_text
    from ncprobe.tables import build_table

    table = build_table(
        args.sweep_dir, args.layout, metric=args.metric, nc=args.nc, compare=args.compare, methods=methods,
        source=args.source,
    )  # fmt: skip
    texts = {"markdown": table.to_markdown, "latex": table.to_latex, "csv": table.to_csv_text}
    print(texts[args.format]())
    if out is not None:
        suffix = out.suffix.lower()
        if suffix == ".nc":
            from ncprobe.core.report import save_dataset

            save_dataset(table.to_xarray(), out)
        else:
            kind = {".tex": "latex", ".csv": "csv"}.get(suffix, "markdown")
            atomic_write_text(out, texts[kind]() + "\n")
        print(f"table written to {out}")
    if fig_out is not None:
        from ncprobe.plotting import save_figure

        save_figure(table.figure(), fig_out)
        print(f"figure written to {fig_out}")
    return 0
