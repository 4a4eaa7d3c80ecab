"""``ncprobe train``: every config field is a flag named by its path, with the field's own help text.

Precedence: the preset (``--preset NAME``), then the config file (``--config run.yaml``), then the flags.
Lists take several values (``--seeds 1 2 3``); ``None`` is written ``none``. Regularizers are added with
``--regularizer NAME[,weight=W][,option=value...]`` (repeatable; values are read as YAML scalars).
``--evaluate`` evaluates the run in ``--output_dir`` (its last checkpoint, or ``--checkpoint PATH``) and never
trains.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing
from typing import Any, Sequence

__all__ = ["build_parser", "main", "parse_config"]


def _scalar(text: str) -> Any:
    import yaml

    if text.lower() in ("none", "null"):
        return None
    return yaml.safe_load(text)


def _flag_type(hint: Any):
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if origin is list:
        return _scalar, "+"
    base = args[0] if args else hint
    if base is bool:
        return _bool, None
    if base in (int, float, str):
        return (lambda text, _b=base: None if text.lower() in ("none", "null") else _b(text)), None
    return _scalar, None


def _bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    from .config import config_fields

    p = argparse.ArgumentParser(
        prog="ncprobe train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", help="YAML (or JSON) config file")
    p.add_argument("--preset", help="start from a named preset (--list-presets shows them)")
    p.add_argument("--list-presets", action="store_true", help="print the presets and exit")
    p.add_argument(
        "--regularizer",
        action="append",
        default=[],
        metavar="NAME[,weight=W][,key=value...]",
        help="add a regularizer term (repeatable)",
    )
    p.add_argument("--evaluate", action="store_true", help="evaluate the run in --output_dir; never trains")
    p.add_argument("--checkpoint", help="with --evaluate: the checkpoint to evaluate (default: the last)")
    group = p.add_argument_group("config fields")
    for info in config_fields():
        if info.path in ("regularizers", "preset"):
            continue
        kind, nargs = _flag_type(info.type)
        help_text = f"{info.help} (default: {info.default!r})"
        group.add_argument(
            f"--{info.path}",
            dest=info.path,
            type=kind,
            nargs=nargs,
            default=argparse.SUPPRESS,
            choices=info.choices,
            help=help_text,
            metavar="V",
        )
    return p


def _regularizer(spec: str) -> dict:
    name, *rest = spec.split(",")
    out: dict[str, Any] = {"name": name.strip(), "options": {}}
    for part in rest:
        if "=" not in part:
            raise ValueError(f"regularizer option {part!r} must be key=value (in {spec!r})")
        key, value = part.split("=", 1)
        key = key.strip()
        if key == "weight":
            out["weight"] = float(value)
        else:
            out["options"][key] = _scalar(value)
    return out


def parse_config(argv: Sequence[str]):
    """The :class:`~.config.TrainConfig` the arguments describe, and the parsed namespace."""
    from .config import TrainConfig
    from .presets import get_preset

    args = build_parser().parse_args(list(argv))
    cfg = get_preset(args.preset) if args.preset else TrainConfig()
    if args.config:
        data = cfg.to_dict()
        _merge(data, _raw_yaml(args.config))
        cfg = TrainConfig.from_dict(data)
    changes = {k: v for k, v in vars(args).items() if "." in k or k in _TOP_FIELDS}
    if changes:
        cfg = cfg.replace(**changes)
    if args.regularizer:
        data = cfg.to_dict()
        data["regularizers"] = data["regularizers"] + [_regularizer(s) for s in args.regularizer]
        cfg = TrainConfig.from_dict(data)
    return cfg, args


_TOP_FIELDS = ("seeds", "output_dir", "resume", "device", "feature_bank", "progress")


def _raw_yaml(path: str) -> dict:
    from pathlib import Path

    import yaml

    if not Path(path).is_file():
        raise FileNotFoundError(f"no such config file: {path}")
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a config mapping")
    return data


def _merge(base: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and key != "options":
            _merge(base[key], value)
        else:
            base[key] = value


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    cfg, args = parse_config(argv)
    if args.list_presets:
        from .presets import PRESETS

        for name, preset in PRESETS.items():
            print(f"{name:<40} {preset.method.name:<9} {preset.data.dataset:<12} {preset.data.protocol}")
        return 0
    if args.evaluate:
        from .api import evaluate

        if not cfg.output_dir:
            raise ValueError("--evaluate needs --output_dir (the run folder to evaluate)")
        print(json.dumps(evaluate(cfg.output_dir, checkpoint=args.checkpoint), indent=2, default=str))
        return 0
    from .api import train

    result = train(cfg)
    print(result.summary().to_string())
    if cfg.output_dir:
        print(f"run written to {cfg.output_dir}")
    return 0
