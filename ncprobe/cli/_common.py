"""Helpers shared by the sub-commands: early checks of paths and devices, and output formats."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["CLIError", "check_output_path", "check_device", "add_format_argument", "print_report"]


class CLIError(Exception):
    """An expected command-line failure: printed as one line, exit status 2."""


def check_output_path(path: str | None) -> Path | None:
    """Fail before any work when ``-o PATH`` cannot be written (missing or read-only folder, a directory)."""
    if path is None:
        return None
    out = Path(path)
    if out.is_dir():
        raise CLIError(f"cannot write {out}: it is a directory")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise CLIError(f"cannot write {out}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise CLIError(f"cannot write {out}: permission denied")
    return out


def check_device(name: str | None) -> str | None:
    """Fail early for a device torch does not know or cannot use here (e.g. ``cuda`` without a GPU)."""
    if name is None:
        return None
    import torch

    try:
        dev = torch.device(name)
    except RuntimeError as err:
        raise CLIError(f"unknown device {name!r}: {err}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise CLIError(f"device {name!r} is not available: no CUDA device found")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise CLIError(f"device {name!r} is not available: {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise CLIError(f"device {name!r} is not available")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise CLIError(f"device {name!r} is not supported; use cpu or cuda")
    return name


def add_format_argument(parser: Any) -> None:
    parser.add_argument(
        "--format",
        choices=["text", "json", "csv"],
        default="text",
        help="how to print the report: a readable table (default), JSON, or CSV of the scalars",
    )


def print_report(
    report: Any, fmt: str, *, per_group: bool = False, per_class: bool = False, header: str | None = None
) -> None:
    """Print a report as text (with optional per-group / per-class tables), JSON or CSV."""
    if fmt == "json":
        out: dict[str, Any] = {"metrics": report.scalars(), "attrs": _jsonable(report.attrs)}
        groups = report.per_group()
        if groups is not None:
            out["per_group"] = _jsonable(groups.to_dict(orient="index"))
        if per_class:
            out["per_class"] = _jsonable(report.per_class().reset_index().to_dict(orient="records"))
        json.dump(out, sys.stdout, indent=2, allow_nan=True, default=str)
        print()
        return
    if fmt == "csv":
        report.to_dataframe().to_csv(sys.stdout)
        return
    if header:
        print(header)
    print(report)
    groups = report.per_group()
    if per_group and groups is not None:
        print("\nper group:\n" + groups.to_string(float_format=lambda v: f"{v:.4g}"))
    if per_class:
        print("\nper class:\n" + report.per_class().to_string(float_format=lambda v: f"{v:.4g}"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return value.item()
        except (TypeError, ValueError):
            return str(value)
    return value
