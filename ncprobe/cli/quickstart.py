"""``ncprobe quickstart``: the main job on embedded data, nothing downloaded.

Builds (first run, a few CPU minutes, cached afterwards) or loads the embedded vision-language testbed,
extracts its image features of the embedded benchmark's test split and its class text embeddings, and
measures neural collapse of both, base vs. novel classes.

The class text follows the benchmark's primary protocol (v2: each class's text is the mean of its
descriptions). The zero-shot accuracies are printed from the build's metadata under that protocol and,
labelled, under the v1 name-template protocol, as the data card reports them.
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
        choices=["default", "fast", "transfer"],
        default="default",
        help="testbed build (default: %(default)s; 'fast' is what the tests use; 'transfer' adds the "
        "synthetic compositional set: better novel accuracy, about six times the build time)",
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
    from ncprobe.models.features import extract_features
    from ncprobe.testbed import EmbeddedBenchmark, class_text_features, load_testbed, testbed_metadata

    progress = None if not args.quiet else False
    bundle = load_testbed(args.preset, seed=args.seed, device=device, progress=progress)
    meta = testbed_metadata(bundle)
    data = EmbeddedBenchmark("test")
    feats, labels = extract_features(bundle, data, split_name="test", progress=progress)
    text = class_text_features(bundle, data, protocol=data.protocol)
    base, _ = base_novel_labels(range(len(data.classnames)))
    groups = ["base" if k in set(base) else "novel" for k in range(len(data.classnames))]
    report = measure(
        feats, labels, text_features=text, groups=groups, class_names=data.classnames, normalize_images=True
    )
    zs = meta["zero_shot"]
    header = "\n".join(
        [
            f"ncprobe quickstart: embedded testbed '{args.preset}' (frozen MiniLM text tower + small ViT trained on "
            f"the base classes), benchmark {meta['benchmark']}, {len(data)} test images, "
            f"{len(data.classnames)} classes ({len(base)} base, {len(data.classnames) - len(base)} novel)",
            "zero-shot accuracy, CoOp base-to-novel protocol "
            f"(each half classified among its own {len(base)} classes):",
            *(_zero_shot_line(zs["protocols"][p], p, p == zs["protocol"]) for p in _protocol_order(zs)),
            f"the report below uses the {zs['protocol']} class text and classifies among all classes "
            f"(t2i_zero_shot_accuracy is {len(data.classnames)}-way), on L2-normalised image features",
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


def _protocol_order(zs: dict) -> list[str]:
    """The primary protocol first, then the others (v1's ``"names"``) in stored order."""
    return [zs["protocol"], *(p for p in zs["protocols"] if p != zs["protocol"])]


def _zero_shot_line(scores: dict, protocol: str, primary: bool) -> str:
    what = {"descriptions": "class text = mean of its descriptions", "names": 'class text = "a photo of a {name}."'}
    label = f"{protocol} protocol{' (primary)' if primary else ''} [{what.get(protocol, protocol)}]"
    domains = ", ".join(f"{k.removeprefix('novel_')} {v:.3f}" for k, v in scores.items() if k.startswith("novel_"))
    extra = f" (novel {domains})" if domains else ""
    return f"  {label}: base {scores['base']:.3f}, novel {scores['novel']:.3f}, HM {scores['hm']:.3f}{extra}"
