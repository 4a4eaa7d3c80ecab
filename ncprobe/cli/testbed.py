"""``ncprobe testbed``: build (or load) the embedded testbed model and print its accuracies.

The default build is v3's (``ncprobe-embedded-v3``): its zero-shot accuracies are printed per task (base, novel,
harmonic mean and all-class accuracy on the validation and test splits). v2's builds (``--preset v2``/``default``,
``fast``, ``transfer``) print v2's two class-text protocols.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import check_device

__all__ = ["add_parser", "add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The testbed options (shared with ``python -m ncprobe.testbed``)."""
    p.add_argument(
        "--preset",
        choices=["v3", "v3-fast", "default", "v2", "fast", "transfer"],
        default="v3",
        help="build configuration (default: %(default)s, the v3 benchmark's tower, about two minutes on 2 CPU cores; "
        "'v3-fast' is v3's test build; 'default' (alias 'v2'), 'fast' and 'transfer' are v2's: 'fast' is what its "
        "tests use, 'transfer' adds the synthetic compositional set)",
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
    print(f"ncprobe testbed ({args.preset}, seed {meta['config']['seed']}), key {meta['key']}")
    print(f"  cached at      {Path(bundle.pretrained).parent}")
    if meta.get("benchmark") == "ncprobe-embedded-v3":
        _print_v3(meta)
    else:
        _print_v2(meta)
    return 0


#: v3's tasks in the benchmark's order (the metadata stores them sorted).
_V3_ORDER = ("testbed-strokes", "testbed-colour", "testbed-shapes")


def _print_v3(meta: dict) -> None:
    zs, tasks, train = meta["zero_shot"], meta.get("tasks", {}), meta["training"]
    print(
        f"  benchmark      {meta['benchmark']}: pretrained on all {train['num_classes']} classes of its tasks "
        "(neutral style), evaluated on each task's shifted domain"
    )
    print(
        f"  zero-shot accuracy, class text {meta['template']!r} with the class name; CoOp base-to-novel (base images "
        "among base classes only, novel among novel only); HM = harmonic mean"
    )
    order = [*(t for t in _V3_ORDER if t in zs), *(t for t in zs if t not in _V3_ORDER)]
    width = max(len(t) for t in order)
    print(f"    {'task':<{width}}  {'split':<5}  {'base':>6}  {'novel':>6}  {'HM':>6}  {'all':>6}  shift")
    for task in order:
        summary = tasks.get(task, {}).get("summary", "")
        for split in ("val", "test"):
            s = zs[task][split]
            b, n = s["base"], s["novel"]
            hm = 0.0 if b + n == 0 else 2 * b * n / (b + n)
            print(
                f"    {task:<{width}}  {split:<5}  {b:>6.4f}  {n:>6.4f}  {hm:>6.4f}  {s['all']:>6.4f}  "
                f"{summary if split == 'val' else ''}".rstrip()
            )
    print(
        f"  built in {meta['build_seconds']:.1f} s on {meta['device']} ({train['num_threads']} threads; "
        f"training {train['train_seconds']:.1f} s, {train['num_train_images']} images; "
        f"logit scale {train['logit_scale']:.1f})"
    )


def _print_v2(meta: dict) -> None:
    zs = meta["zero_shot"]
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
