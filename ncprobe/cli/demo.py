"""``ncprobe demo``: measure a built-in synthetic collapse dataset (seconds, no model, no download)."""

from __future__ import annotations

import argparse

from ._common import add_format_argument, print_report

__all__ = ["add_parser", "run"]


def _nonnegative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="measure a built-in synthetic collapse dataset and print the report", description=__doc__
    )
    p.add_argument("--classes", type=_positive_int, default=10, help="number of classes (default %(default)s)")
    p.add_argument("--dim", type=_positive_int, default=64, help="feature dimension (default %(default)s)")
    p.add_argument("--samples", type=_positive_int, default=200, help="samples of the largest class")
    p.add_argument("--noise", type=_nonnegative, default=1.0, help="within-class noise std (>= 0)")
    p.add_argument("--imbalance", type=float, default=10.0, help="ratio n_max/n_min (>= 1)")
    p.add_argument("--seed", type=int, default=0)
    add_format_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ncprobe.core.measure import measure
    from ncprobe.core.synthetic import make_collapse

    data = make_collapse(
        num_classes=args.classes,
        dim=args.dim,
        samples_per_class=args.samples,
        noise=args.noise,
        imbalance=args.imbalance,
        offset=10.0,
        seed=args.seed,
    )
    report = measure(
        data.features,
        data.labels,
        text_features=data.text_features,
        classifier=data.classifier,
        groups="counts",
        class_names=data.class_names,
    )
    header = (
        f"ncprobe demo: synthetic features, {args.classes} classes, dim {args.dim}, imbalance "
        f"{args.imbalance}, noise {args.noise} (built-in dataset; nothing is downloaded)\n"
    )
    print_report(report, args.format, per_group=True, header=header)
    return 0
