"""``ncprobe train``: prompt tuning with per-epoch neural-collapse tracking (see ``ncprobe.training``)."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train prompts (CoOp, CoCoOp, MaPLe, IVLP, + NPT / Craft) and track NC",
        description=__doc__,
        add_help=False,
    )
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ncprobe.training.cli import main

    return main(args.rest)
