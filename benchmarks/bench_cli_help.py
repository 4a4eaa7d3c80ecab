"""Wall time of the command line's cheap paths: help, the preset table, a parse error, in a fresh process each.

``ncprobe train --help``, ``--list-presets`` and a mistyped flag import only the config tree
(``ncprobe.training.cli``); the training stack (torch, open_clip, transformers) loads only to train. This script
times each command in a new Python process (what a user waits for, interpreter start included), next to
``ncprobe --help`` (the floor) and to importing the training API (what every one of them cost before the lazy
``ncprobe.training``). Each row is the median of ``--repeats`` runs after one warm-up run (which fills the OS
file cache); the "torch" column says whether the command left torch in ``sys.modules``.

    python benchmarks/bench_cli_help.py                 # 5 repeats
    python benchmarks/bench_cli_help.py --repeats 11
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

from _machine import cpu_name, usable_cpus  # benchmarks/_machine.py (scripts run from this folder)

#: (label, Python code run with ``python -c``).
CASES = [
    ("ncprobe --help (floor)", "main(['--help'])"),
    ("ncprobe train --help", "main(['train', '--help'])"),
    ("ncprobe train --list-presets", "main(['train', '--list-presets'])"),
    ("ncprobe train --optim.lr abc (error)", "main(['train', '--optim.lr', 'abc'])"),
    ("ncprobe train --presett x (error)", "main(['train', '--presett', 'x'])"),
    ("import ncprobe.training.api (reference)", "import ncprobe.training.api"),
]

_WRAP = (
    "import sys, contextlib, io\n"
    "from ncprobe.cli import main\n"
    "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
    "    try:\n"
    "        {code}\n"
    "    except SystemExit:\n"
    "        pass\n"
    "print('torch' in sys.modules)\n"
)


def _run(code: str) -> tuple[float, bool]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _WRAP.format(code=code)], capture_output=True, text=True, check=True)
    return time.perf_counter() - start, out.stdout.strip().splitlines()[-1] == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per command (median reported)")
    args = parser.parse_args()

    print(f"{cpu_name()}, {usable_cpus()} usable CPUs, Python {platform.python_version()}, load {os.getloadavg()}")
    print(f"{'command':<42} | {'median [s]':>10} | {'min [s]':>8} | torch")
    print("-" * 74)
    for label, code in CASES:
        _run(code)  # warm-up: the OS file cache
        times, torch_loaded = [], False
        for _ in range(args.repeats):
            seconds, torch_loaded = _run(code)
            times.append(seconds)
        print(
            f"{label:<42} | {statistics.median(times):>10.3f} | {min(times):>8.3f} | {'yes' if torch_loaded else 'no'}"
        )


if __name__ == "__main__":
    main()
