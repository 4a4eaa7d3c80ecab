"""Command line: ``ncprobe measure FEATURES``, ``ncprobe quickstart``, ``ncprobe testbed``, ``ncprobe demo``.

``FEATURES`` is a ``.npz``, ``.pt``/``.pth`` (a dict of tensors) or ``.safetensors`` file with the
arrays ``features`` (N×D) and ``labels`` (N,), and optionally ``text_features`` (C×D),
``classifier`` (C×D) and ``classifier_bias`` (C,).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "load_feature_file"]

_KEYS = ("features", "labels", "text_features", "classifier", "classifier_bias")


def load_feature_file(path: str | Path) -> dict[str, Any]:
    """Read a features file (``.npz``, ``.pt``/``.pth``, ``.safetensors``) into a dict of arrays/tensors."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such features file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    elif suffix in (".pt", ".pth"):
        import torch

        data = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold a dict of tensors with keys {list(_KEYS)}")
    elif suffix == ".safetensors":
        from safetensors.torch import load_file

        data = load_file(str(path))
    else:
        raise ValueError(f"unsupported features file type {suffix!r}: use .npz, .pt/.pth or .safetensors")
    missing = [k for k in ("features", "labels") if k not in data]
    if missing:
        raise KeyError(f"{path} lacks {missing}; it has {sorted(data)}. Expected keys: {list(_KEYS)}")
    return data


def _cmd_measure(args: argparse.Namespace) -> int:
    from .measure import measure

    data = load_feature_file(args.features)
    classifier = data.get("classifier")
    if classifier is not None and "classifier_bias" in data:
        classifier = (classifier, data["classifier_bias"])
    report = measure(data["features"], data["labels"], text_features=data.get("text_features"),
                     classifier=classifier, groups="counts" if args.groups else None, center=not args.raw,
                     precision=args.precision, device=args.device, progress=True)
    print(report)
    if args.per_class:
        print(report.per_class().to_string())
    if args.output:
        report.to_netcdf(args.output)
        print(f"report written to {args.output}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .measure import measure
    from .synthetic import make_collapse

    print(f"ncprobe demo: synthetic features, {args.classes} classes, dim {args.dim}, imbalance {args.imbalance}, "
          f"noise {args.noise} (built-in dataset; nothing is downloaded)\n")
    data = make_collapse(num_classes=args.classes, dim=args.dim, samples_per_class=args.samples,
                         noise=args.noise, imbalance=args.imbalance, offset=10.0, seed=args.seed)
    report = measure(data.features, data.labels, text_features=data.text_features, groups="counts",
                     class_names=data.class_names)
    print(report)
    print("\nper group:\n" + report.per_group().to_string(float_format=lambda v: f"{v:.4g}"))
    return 0


def _cmd_quickstart(args: argparse.Namespace) -> int:
    """The main job on embedded data: build/load the testbed V-L model, extract its image features of the
    embedded benchmark's test split and its class text embeddings, and measure them."""
    from .features import extract_features, text_features
    from .measure import measure
    from .testbed import EmbeddedBenchmark, base_novel_labels, load_testbed, testbed_metadata

    bundle = load_testbed(args.preset, seed=args.seed, device=args.device, progress=not args.quiet)
    meta = testbed_metadata(bundle)
    data = EmbeddedBenchmark("test")
    feats, labels = extract_features(bundle, data, split_name="test", progress=not args.quiet)
    text = text_features(bundle, data.classnames, data.template)
    base, _ = base_novel_labels(len(data.classnames))
    groups = ["base" if k in set(base) else "novel" for k in range(len(data.classnames))]
    report = measure(feats, labels, text_features=text, groups=groups, class_names=data.classnames)
    zs = meta.get("zero_shot", meta)
    print(f"ncprobe quickstart: embedded testbed '{args.preset}' (frozen MiniLM text tower + small ViT trained "
          f"on base classes), {len(data)} test images, {len(data.classnames)} classes")
    if isinstance(zs, dict):
        shown = {k: zs[k] for k in ("base", "novel", "hm", "all") if isinstance(zs.get(k), (int, float))}
        if shown:
            print("zero-shot accuracy (CoOp protocol): " + ", ".join(f"{k} {v:.3f}" for k, v in shown.items()))
    print()
    print(report)
    print("\nper group (base classes were seen in training, novel only through text):")
    print(report.per_group().to_string(float_format=lambda v: f"{v:.4g}"))
    if args.output:
        report.to_netcdf(args.output)
        print(f"report written to {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ncprobe", description="Neural-collapse diagnostics.")
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="measure NC metrics of a features file")
    m.add_argument("features", help=".npz / .pt / .safetensors with features, labels[, text_features, classifier]")
    m.add_argument("--raw", action="store_true", help="cross-modal metrics on raw (uncentred) features")
    m.add_argument("--groups", action="store_true", help="head/medium/tail groups from class counts")
    m.add_argument("--precision", choices=["float64", "float32"], default="float64")
    m.add_argument("--device", default=None, help="e.g. cuda; default: where the data is (CPU for files)")
    m.add_argument("--per-class", action="store_true", help="also print the per-class table")
    m.add_argument("-o", "--output", help="write the report as netCDF")
    m.set_defaults(func=_cmd_measure)
    d = sub.add_parser("demo", help="measure a built-in synthetic collapse dataset and print the report")
    d.add_argument("--classes", type=int, default=10)
    d.add_argument("--dim", type=int, default=64)
    d.add_argument("--samples", type=int, default=200, help="samples of the largest class")
    d.add_argument("--noise", type=float, default=1.0)
    d.add_argument("--imbalance", type=float, default=10.0)
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=_cmd_demo)
    q = sub.add_parser("quickstart", help="build/load the embedded V-L testbed, extract features, measure them")
    q.add_argument("--preset", choices=["default", "fast"], default="default")
    q.add_argument("--seed", type=int, default=None)
    q.add_argument("--device", default=None)
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.add_argument("-o", "--output", help="write the report as netCDF")
    q.set_defaults(func=_cmd_quickstart)
    from .testbed.__main__ import add_arguments, run

    t = sub.add_parser("testbed", help="build (or load) the embedded testbed model and print its accuracies")
    add_arguments(t)
    t.set_defaults(func=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, TypeError, KeyError, FileNotFoundError) as err:
        print(f"ncprobe: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
