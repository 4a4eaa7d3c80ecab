"""``ncprobe sweep --spec sweep.yaml``: run a grid of training runs (Slurm, local GPUs/CPUs, or in this process).

Every run is checked first (unknown fields, bad values, missing data roots, a run folder holding another config);
finished runs are skipped and killed runs resume. ``--dry-run`` prints the grid and the commands and submits
nothing; ``--status`` prints each run's state (pending, running, done, failed with its log); ``--retry-failed``
resubmits the failed runs. See ``docs/sweeps.md``.
"""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="run a grid of training runs through submitit (docs/sweeps.md)", description=__doc__
    )
    p.add_argument("--spec", default=None, help="the sweep spec (YAML): base config, axes, output_dir, executor")
    p.add_argument("--executor", choices=("slurm", "local", "debug"), default=None, help="override the spec's executor")
    p.add_argument("--max-parallel", type=int, default=None, help="jobs at a time (local slots; Slurm array %%N)")
    p.add_argument(
        "--dry-run", action="store_true", help="check every config, print the grid and commands, run nothing"
    )
    p.add_argument(
        "--status",
        nargs="?",
        const="",
        default=None,
        metavar="SWEEP_DIR",
        help="print each run's state (default folder: the spec's output_dir)",
    )
    p.add_argument("--retry-failed", action="store_true", help="resubmit only the runs whose job failed")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _print_status(folder) -> int:
    from ncprobe.sweep import STATES, sweep_status

    table = sweep_status(folder)
    counts = table["state"].value_counts()
    print("  ".join(f"{s}: {int(counts.get(s, 0))}" for s in STATES))
    with_text = table.fillna("")
    print(with_text.to_string())
    return 1 if counts.get("failed", 0) else 0


def run(args: argparse.Namespace) -> int:
    """Run the sweep command (exit 0; 1 when ``--status`` lists a failed run)."""
    if args.max_parallel is not None and args.max_parallel < 1:
        raise ValueError(f"--max-parallel must be >= 1, got {args.max_parallel}")
    if args.status is not None:
        if not args.status and not args.spec:
            raise ValueError("--status needs the sweep folder (--status DIR) or the spec (--spec sweep.yaml)")
        if args.status:
            return _print_status(args.status)
        from ncprobe.sweep import load_spec

        return _print_status(load_spec(args.spec).output_dir)
    if not args.spec:
        raise ValueError("--spec sweep.yaml is required (docs/sweeps.md shows one)")
    from ncprobe.sweep import sweep

    plan = sweep(
        args.spec,
        executor=args.executor,
        max_parallel=args.max_parallel,
        dry_run=args.dry_run,
        retry_failed=args.retry_failed,
        progress=not args.quiet,
    )
    if args.dry_run:
        grid = plan.grid_table()
        print(f"{len(plan.runs)} runs, all configs valid; executor {plan.spec.executor.kind}; nothing submitted")
        print(grid.drop(columns="command").to_string())
        print("\ncommands:")
        for cmd in grid["command"]:
            print(f"  {cmd}")
        return 0
    print(f"{len(plan.submitted)} runs submitted, {len(plan.skipped)} skipped (finished or in flight) in {plan.root}")
    if plan.spec.executor.kind == "slurm":
        print(f"follow them with: ncprobe sweep --status {plan.root}")
        return 0
    return _print_status(plan.root)
