"""The ``ncprobe`` command line: ``measure``, ``demo``, ``quickstart``, ``testbed``, ``train``, ``plot``, ``sweep``,
``table``.

Each sub-command lives in its own module here with two functions: ``add_parser(subparsers)``, which
imports nothing heavy (so ``ncprobe --help`` never loads torch), and ``run(args)``, which imports what
the command needs. Expected failures (bad files, bad options, a missing package or checkpoint) print one
line, ``ncprobe: error: …``, and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from .. import __version__
from .._io import silence_stdout
from ._common import CLIError

__all__ = ["main", "build_parser", "COMMANDS"]

#: Sub-command name → module (relative to this package), in help order.
COMMANDS = {
    "measure": ".measure",
    "demo": ".demo",
    "quickstart": ".quickstart",
    "testbed": ".testbed",
    "train": ".train",
    "plot": ".plot",
    "sweep": ".sweep",
    "table": ".table",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command (cheap: no torch import)."""
    parser = argparse.ArgumentParser(
        prog="ncprobe", description="Neural-collapse diagnostics and NC-guided prompt tuning for V-L models."
    )
    parser.add_argument("--version", action="version", version=f"ncprobe {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(module, __name__).add_parser(sub)
    return parser


def _expected_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [CLIError, ValueError, TypeError, KeyError, OSError]
    for module, name in (
        ("ncprobe.testbed.images", "MissingSourceError"),
        ("ncprobe.testbed.model", "MissingTextTowerError"),
        ("ncprobe.training.loop", "TrainingDivergedError"),
        ("ncprobe.models.clip", "PretrainedWeightsUnavailableError"),
    ):
        mod = sys.modules.get(module)
        if mod is not None:
            errors.append(getattr(mod, name))
    return tuple(errors)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 2 expected failure)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:  # its flags are generated from the config tree: parsed by ncprobe.training.cli
        from .train import run_argv as func

        args = argv[1:]
    else:
        parsed = build_parser().parse_args(argv)
        func, args = parsed.func, parsed
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("ncprobe: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader closed the pipe (``ncprobe train --list-presets | head``): not an error
        silence_stdout()
        return 0
    except _expected_errors() as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"ncprobe: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
