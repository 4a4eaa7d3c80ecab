"""``ncprobe quickstart``: the main job on embedded data, nothing downloaded.

Builds (first run, a few CPU minutes, cached afterwards) or loads the embedded vision-language testbed,
extracts its image features of the embedded benchmark's test split and its class text embeddings, and
measures neural collapse of both, base vs. novel classes.
"""

from __future__ import annotations

import argparse

from ._common import add_format_argument, check_device, check_output_path, print_report

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quickstart", help="build/load the embedded V-L testbed, extract features, measure them", description=__doc__
    )
    p.add_argument(
        "--preset",
        choices=["default", "fast"],
        default="default",
        help="testbed build (default: %(default)s; 'fast' is what the tests use)",
    )
    p.add_argument("--seed", type=int, default=None, help="override the preset's seed")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_format_argument(p)
    p.add_argument("-o", "--output", help="write the report as netCDF (checked before any work)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = check_output_path(args.output)
    device = check_device(args.device)
    from ncprobe.core.measure import measure
    from ncprobe.data import base_novel_labels
    from ncprobe.models.features import extract_features, text_features
    from ncprobe.testbed import EmbeddedBenchmark, load_testbed, testbed_metadata

    progress = None if not args.quiet else False
    bundle = load_testbed(args.preset, seed=args.seed, device=device, progress=progress)
    meta = testbed_metadata(bundle)
    data = EmbeddedBenchmark("test")
    feats, labels = extract_features(bundle, data, split_name="test", progress=progress)
    text = text_features(bundle, data.classnames, data.template)
    base, _ = base_novel_labels(range(len(data.classnames)))
    groups = ["base" if k in set(base) else "novel" for k in range(len(data.classnames))]
    report = measure(
        feats, labels, text_features=text, groups=groups, class_names=data.classnames, normalize_images=True
    )
    zs = meta["zero_shot"]
    header = "\n".join(
        [
            f"ncprobe quickstart: embedded testbed '{args.preset}' (frozen MiniLM text tower + small ViT trained on "
            f"the base classes), {len(data)} test images, {len(data.classnames)} classes "
            f"({len(base)} base, {len(data.classnames) - len(base)} novel)",
            f"zero-shot accuracy, CoOp base-to-novel protocol (each half classified among its own "
            f"{len(base)} classes): base {zs['base']:.3f}, novel {zs['novel']:.3f}, HM {zs['hm']:.3f}",
            "the report below classifies among all classes (t2i_zero_shot_accuracy is "
            f"{len(data.classnames)}-way), on L2-normalised image features",
            "",
        ]
    )
    print_report(report, args.format, per_group=True, header=header)
    if args.format == "text":
        print("(per group: base classes were seen in training, novel ones only through their text)")
    if out is not None:
        report.to_netcdf(out)
        if args.format == "text":
            print(f"report written to {out}")
    return 0
