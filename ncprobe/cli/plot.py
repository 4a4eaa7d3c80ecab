"""``ncprobe plot FILE --kind KIND -o fig.html``: a figure of a saved report or training history."""

from __future__ import annotations

import argparse

from ._common import check_output_path

__all__ = ["add_parser", "run"]

KINDS = ("gram", "geometry", "trajectory", "groups", "layers", "correlation")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot", help="draw a report (.nc) or a training history (.nc) as an interactive figure", description=__doc__
    )
    p.add_argument("files", nargs="+", help="report.nc or history.nc (several histories overlay)")
    p.add_argument("--kind", choices=KINDS, required=True, help="which figure")
    p.add_argument("--metrics", nargs="*", default=None, help="metrics to draw (trajectory, correlation)")
    p.add_argument("-o", "--output", required=True, help="fig.html (always works), or .png / .svg (kaleido)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = check_output_path(args.output)
    from ncprobe.plotting.cli import draw

    draw(args.files, kind=args.kind, output=out, metrics=args.metrics)
    print(f"figure written to {out}")
    return 0
