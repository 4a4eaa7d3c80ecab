"""``python -m ncprobe.testbed``: build (or load) the testbed model and report it (``ncprobe testbed``).

Without options it builds (first run: about two minutes on 2 CPU cores) or loads the v3 tower and prints its
zero-shot accuracy per task; ``--preset v3-fast`` is the test build, ``--preset v2`` v2's default.
"""

from __future__ import annotations

import sys
from typing import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the ``ncprobe testbed`` command with ``argv`` (default ``sys.argv[1:]``)."""
    from ncprobe.cli import main as cli_main

    return cli_main(["testbed", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
