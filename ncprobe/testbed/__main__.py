"""``python -m ncprobe.testbed``: build (or load) the testbed model and report it.

The ``ncprobe`` CLI can call :func:`main` with its own argument list.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ncprobe.testbed.images import MissingSourceError
from ncprobe.testbed.model import MissingTextTowerError

__all__ = ["add_arguments", "main", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the testbed command's options to ``parser`` (for reuse as a CLI sub-command)."""
    parser.add_argument(
        "--preset",
        choices=["default", "fast"],
        default="default",
        help="build configuration (default: %(default)s; 'fast' is what the tests use)",
    )
    parser.add_argument("--seed", type=int, default=None, help="override the preset's seed")
    parser.add_argument("--force", action="store_true", help="retrain even if a cached build exists")
    parser.add_argument(
        "--fallback",
        action="store_true",
        help="allow a digits-only / sklearn-digits benchmark when a source package is missing",
    )
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--num-threads", type=int, default=None, help="torch threads while training")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def run(args: argparse.Namespace) -> int:
    """Build or load the testbed as ``args`` say and print its accuracies and cache location.

    Returns
    -------
    int
        Exit status: 0 on success, 2 when a required package is missing.
    """
    from ncprobe.testbed.build import build_testbed, testbed_metadata

    try:
        bundle = build_testbed(
            args.preset,
            seed=args.seed,
            force=args.force,
            fallback=True if args.fallback else None,
            device=args.device,
            num_threads=args.num_threads,
            progress=not args.quiet,
        )
    except (MissingSourceError, MissingTextTowerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    meta = testbed_metadata(bundle)
    zs = meta["zero_shot"]
    print(f"ncprobe testbed ({args.preset}, seed {meta['config']['seed']}), key {meta['key']}")
    print(f"  cached at      {Path(bundle.pretrained).parent}")
    print(f"  sources        {meta['sources']}")
    print(
        f"  classes        {len(meta['classnames'])} ({len(meta['base_labels'])} base, "
        f"{len(meta['novel_labels'])} novel), template {meta['template']!r}"
    )
    print(f"  zero-shot base  {zs['base']:.4f}  (chance {zs['chance_base']:.2f}, base names only)")
    print(f"  zero-shot novel {zs['novel']:.4f}  (chance {zs['chance_novel']:.2f}, novel names only)")
    print(f"  harmonic mean   {zs['hm']:.4f};  all-class {zs['all']:.4f} (chance {zs['chance_all']:.2f})")
    train = meta["training"]
    print(
        f"  built in {meta['build_seconds']:.1f} s on {meta['device']} "
        f"({train['num_threads']} threads; training {train['train_seconds']:.1f} s, "
        f"{train['num_train_images']} base images)"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse ``argv`` (default ``sys.argv[1:]``) and :func:`run`."""
    parser = add_arguments(argparse.ArgumentParser(prog="python -m ncprobe.testbed", description=__doc__))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
