"""``ncprobe measure FILE``: every NC metric of a features file.

``FILE`` is a ``.npz``, ``.pt``/``.pth`` (a dict of tensors) or ``.safetensors`` file with the arrays
``features`` (N×D) and ``labels`` (N,), and optionally ``text_features`` (C×D), ``classifier`` (C×D),
``classifier_bias`` (C,) and ``ood_features`` (M×D).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import CLIError, add_format_argument, check_device, check_output_path, print_report

__all__ = ["add_parser", "run", "load_feature_file", "KEYS"]

KEYS = ("features", "labels", "text_features", "classifier", "classifier_bias", "ood_features")


def load_feature_file(path: str | Path) -> dict[str, Any]:
    """Read a features file into a dict of arrays/tensors; a clear error for a missing, damaged or foreign
    file, for unknown keys (listing the valid ones), and for ``classifier_bias`` without ``classifier``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such features file: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".pt", ".pth", ".safetensors"):
        raise CLIError(f"unsupported features file type {suffix!r}: use .npz, .pt/.pth or .safetensors")
    try:
        if suffix == ".npz":
            import numpy as np

            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        elif suffix == ".safetensors":
            from safetensors.torch import load_file

            data = load_file(str(path))
        else:
            import torch

            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # zipfile, pickle, safetensors and torch each raise their own types
        raise CLIError(
            f"{path} is not a readable {suffix} file (empty, truncated or another format): {type(err).__name__}: {err}"
        ) from None
    if not isinstance(data, dict):
        raise CLIError(f"{path} must hold a dict of arrays with keys {list(KEYS)}, got {type(data).__name__}")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise CLIError(f"{path} has unknown arrays {unknown}; valid keys: {list(KEYS)}")
    missing = [k for k in ("features", "labels") if k not in data]
    if missing:
        raise CLIError(f"{path} lacks {missing}; it has {sorted(data)}. Expected keys: {list(KEYS)}")
    if "classifier_bias" in data and "classifier" not in data:
        raise CLIError(f"{path} has classifier_bias but no classifier")
    return data


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "measure",
        help="measure NC metrics of a features file",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("features", help=".npz / .pt / .safetensors with features, labels[, text_features, classifier]")
    p.add_argument("--raw", action="store_true", help="cross-modal metrics on raw (uncentred) features")
    p.add_argument(
        "--normalize-images", action="store_true", help="L2-normalise image features first (CLIP's convention)"
    )
    p.add_argument(
        "--groups", action="store_true", help="head/medium/tail groups from class counts, and print the per-group table"
    )
    p.add_argument("--precision", choices=["float64", "float32"], default="float64")
    p.add_argument("--device", default=None, help="e.g. cuda; default: CPU")
    p.add_argument("--per-class", action="store_true", help="also print the per-class table")
    add_format_argument(p)
    p.add_argument("-o", "--output", help="write the report as netCDF (checked before computing)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = check_output_path(args.output)
    device = check_device(args.device)
    data = load_feature_file(args.features)
    from ncprobe.core.measure import measure

    classifier = data.get("classifier")
    if classifier is not None and "classifier_bias" in data:
        classifier = (classifier, data["classifier_bias"])
    report = measure(
        data["features"],
        data["labels"],
        text_features=data.get("text_features"),
        classifier=classifier,
        ood_features=data.get("ood_features"),
        groups="counts" if args.groups else None,
        center=not args.raw,
        normalize_images=args.normalize_images,
        precision=args.precision,
        device=device,
        progress=None,
    )
    print_report(report, args.format, per_group=args.groups, per_class=args.per_class)
    if out is not None:
        report.to_netcdf(out)
        if args.format == "text":
            print(f"report written to {out}")
    return 0
