"""``ncprobe testbed``: build (or load) the embedded testbed model and print its accuracies."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import check_device

__all__ = ["add_parser", "add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The testbed options (shared with ``python -m ncprobe.testbed``)."""
    p.add_argument(
        "--preset",
        choices=["default", "fast", "transfer"],
        default="default",
        help="build configuration (default: %(default)s; 'fast' is what the tests use; 'transfer' adds the "
        "synthetic compositional set: better novel accuracy, about six times the build time)",
    )
    p.add_argument("--seed", type=int, default=None, help="override the preset's seed")
    p.add_argument("--force", action="store_true", help="retrain even if a cached build exists")
    p.add_argument(
        "--fallback",
        action="store_true",
        help="allow a digits-only / sklearn-digits benchmark when a source package is missing",
    )
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--num-threads", type=int, default=None, help="torch threads while training")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "testbed", help="build (or load) the embedded testbed model and print its accuracies", description=__doc__
    )
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    device = check_device(args.device)
    from ncprobe.testbed.build import build_testbed, testbed_metadata

    bundle = build_testbed(
        args.preset,
        seed=args.seed,
        force=args.force,
        fallback=True if args.fallback else None,
        device=device,
        num_threads=args.num_threads,
        progress=False if args.quiet else None,
    )
    meta = testbed_metadata(bundle)
    zs = meta["zero_shot"]
    print(f"ncprobe testbed ({args.preset}, seed {meta['config']['seed']}), key {meta['key']}")
    print(f"  cached at      {Path(bundle.pretrained).parent}")
    print(f"  sources        {meta['sources']}")
    print(
        f"  classes        {len(meta['classnames'])} ({len(meta['base_labels'])} base, "
        f"{len(meta['novel_labels'])} novel), benchmark {meta['benchmark']}"
    )
    print(
        f"  zero-shot accuracy, CoOp base-to-novel (base images among base classes only, novel among novel only; "
        f"chance {zs['chance_base']:.2f} / {zs['chance_novel']:.2f}; all-class chance {zs['chance_all']:.2f})"
    )
    labels = {
        "descriptions": "class text = mean of its descriptions (primary)",
        "names": f"class text = {meta['template']!r} with the class name",
    }
    for protocol, label in labels.items():
        p = zs["protocols"][protocol]
        domains = ", ".join(f"{d} {p[f'novel_{d}']:.3f}" for d in ("clothes", "digits") if f"novel_{d}" in p)
        print(f"  {protocol:<12}  {label}")
        print(f"    zero-shot base  {p['base']:.4f}")
        print(f"    zero-shot novel {p['novel']:.4f}  ({domains})")
        print(f"    harmonic mean   {p['hm']:.4f};  all-class {p['all']:.4f}")
    train = meta["training"]
    print(
        f"  built in {meta['build_seconds']:.1f} s on {meta['device']} ({train['num_threads']} threads; "
        f"training {train['train_seconds']:.1f} s, {train['num_train_images']} base images)"
    )
    return 0
