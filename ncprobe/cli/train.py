"""``ncprobe train``: prompt tuning with per-epoch neural-collapse tracking (see ``ncprobe.training``)."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run_argv"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    # Listed for `ncprobe --help`; `ncprobe.cli.main` hands `train ...` to run_argv before parsing, because
    # its flags are generated from the config tree.
    sub.add_parser(
        "train",
        help="train prompts (CoOp, CoCoOp, MaPLe, IVLP, + NPT / Craft) and track NC "
        "(ncprobe train --help lists every config flag)",
        description=__doc__,
        add_help=False,
    )


def run_argv(argv: list[str]) -> int:
    """``ncprobe train ARGS``: the training command line (:mod:`ncprobe.training.cli`)."""
    from ncprobe.training.cli import main

    return main(argv)
