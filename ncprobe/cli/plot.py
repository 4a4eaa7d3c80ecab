"""``ncprobe plot FILE… --kind KIND -o fig.html``: a figure of saved reports or training histories.

The options match the plotting functions' arguments (``--eval-set`` → ``eval_set=``, …); an option that
does not apply to the chosen kind is refused with a one-line error.
"""

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
    p.add_argument(
        "--metrics",
        nargs="*",
        default=None,
        help="metrics to draw (trajectory, layers), per-class variables (groups), the NC metric (correlation)",
    )
    p.add_argument(
        "--label",
        action="append",
        default=None,
        dest="labels",
        metavar="LABEL",
        help="legend label of a history, once per file in order (trajectory, correlation; default: method, "
        "regularizers and what differs between the runs)",
    )
    p.add_argument(
        "--eval-set",
        default=None,
        help="evaluation set of a history (gram, geometry, groups: default base; trajectory: only this set; "
        "correlation: the set whose NC metrics are used, default base)",
    )
    p.add_argument("--epoch", type=int, default=None, help="epoch of a history (default the last)")
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of a multi-seed history (required for gram and geometry; default: groups and trajectory "
        "draw mean ± std over seeds, correlation one point per seed)",
    )
    p.add_argument("--dims", type=int, choices=(2, 3), default=None, help="geometry: 2-D or 3-D (default 2)")
    p.add_argument("--cross", action="store_true", help="gram: add the image-mean × text cosine panel")
    p.add_argument("-o", "--output", required=True, help="fig.html (always works), or .png / .svg (kaleido)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = check_output_path(args.output)
    from ncprobe.plotting.cli import draw

    draw(
        args.files,
        kind=args.kind,
        output=out,
        metrics=args.metrics,
        labels=args.labels,
        eval_set=args.eval_set,
        epoch=args.epoch,
        seed=args.seed,
        dims=args.dims,
        cross=args.cross,
    )
    print(f"figure written to {out}")
    return 0
