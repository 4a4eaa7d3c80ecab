"""``ncprobe train``: every config field is a flag named by its path, with the field's own help text.

Precedence: the preset (``--preset NAME``), then the config file (``--config run.yaml``), then the flags.
Lists take several values (``--seeds 1 2 3``); ``None`` is written ``none``. Regularizers are added with
``--regularizer NAME[,weight=W][,option=value...]`` (repeatable; values are read as YAML scalars).
``--evaluate`` evaluates the run in ``--output_dir`` (its last checkpoint, or ``--checkpoint PATH``) and never
trains.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import typing
from typing import Any, Callable, Sequence

__all__ = ["build_parser", "main", "parse_config", "preset_table"]

# This module imports only the config tree (and, for --list-presets, the presets): the help, the parsing and
# its errors stay fast. The training stack (torch, open_clip, transformers) loads in main(), to train.


class _OpenChoices(tuple):
    """The named choices of a field whose default is None: ``none`` is accepted too, and the error lists only the
    names."""

    def __contains__(self, value: object) -> bool:
        return value is None or tuple.__contains__(self, value)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are ``ValueError`` (one ``ncprobe: error: ...`` line, exit 2)."""

    def error(self, message: str) -> typing.NoReturn:
        if message.startswith("argument "):
            message = message[len("argument ") :]
        if message.startswith("unrecognized arguments: "):
            message += self._suggest(message[len("unrecognized arguments: ") :].split())
        raise ValueError(message)

    def _suggest(self, words: list[str]) -> str:
        """Close flags for the unknown ones, else a pointer to the help."""
        flags = [s for a in self._actions for s in a.option_strings if s.startswith("--")]
        close = [
            match
            for word in words
            if word.startswith("--")
            for match in difflib.get_close_matches(word.split("=", 1)[0], flags, n=1)
        ]
        return f" (did you mean {', '.join(close)}?)" if close else " (ncprobe train --help lists the flags)"


def _is_none(text: str) -> bool:
    return text.lower() in ("none", "null")


def _scalar(text: str) -> Any:
    import yaml

    if _is_none(text):
        return None
    return yaml.safe_load(text)


def _bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _typed(base: type, *, optional: bool) -> Callable[[str], Any]:
    """A flag converter for ``int``, ``float`` or ``str`` whose error is in the user's words."""
    words = {int: "an integer", float: "a number"}

    def convert(text: str) -> Any:
        if optional and _is_none(text):
            return None
        try:
            return base(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {words[base]}{' or none' if optional else ''}, got {text!r}"
            ) from None

    return convert


def _flag_type(hint: Any) -> tuple[Callable[[str], Any], str | None]:
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = type(None) in typing.get_args(hint)
    if origin is list:
        item = args[0] if args else None
        return (_typed(item, optional=False) if item in (int, float, str) else _scalar), "+"
    base = args[0] if args else hint
    if base is bool:
        return (lambda text: None if optional and _is_none(text) else _bool(text)), None
    if base in (int, float, str):
        return _typed(base, optional=optional), None
    return _scalar, None


def build_parser() -> argparse.ArgumentParser:
    """The ``ncprobe train`` parser: a flag per config field (imports only the config tree)."""
    from .config import config_fields

    p = _Parser(prog="ncprobe train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML (or JSON) config file")
    p.add_argument("--preset", help="start from a named preset (--list-presets shows them)")
    p.add_argument(
        "--list-presets",
        action="store_true",
        help="print the presets (method, regularizers, protocol, dataset, epochs, learning rate) and exit",
    )
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
        choices = info.choices
        if choices is not None and info.default is None:  # `none` restores an open field's default
            choices = _OpenChoices(choices)
        group.add_argument(
            f"--{info.path}",
            dest=info.path,
            type=kind,
            nargs=nargs,
            default=argparse.SUPPRESS,
            choices=choices,
            help=f"{info.help} (default: {info.default!r})",
            metavar="V",
        )
    return p


def _regularizer(spec: str) -> dict:
    """``NAME[,weight=W][,key=value...]`` as a regularizer config dict (option names are checked with the
    config: ``validate_config``)."""
    name, *rest = spec.split(",")
    out: dict[str, Any] = {"name": name.strip(), "options": {}}
    for part in rest:
        if "=" not in part:
            raise ValueError(f"--regularizer {spec}: option {part!r} must be key=value")
        key, value = (s.strip() for s in part.split("=", 1))
        if key == "weight":
            try:
                out["weight"] = float(value)
            except ValueError:
                raise ValueError(f"--regularizer {spec}: weight must be a number, got {value!r}") from None
        else:
            out["options"][key] = _scalar(value)
    return out


def parse_config(argv: Sequence[str]):
    """The :class:`~.config.TrainConfig` the arguments describe, and the parsed namespace."""
    return _config_from(build_parser().parse_args(list(argv)))


def _config_from(args: argparse.Namespace):
    from .config import TrainConfig, merge_into

    if args.preset:
        from .presets import get_preset

        cfg = get_preset(args.preset)
    else:
        cfg = TrainConfig()
    data = cfg.to_dict()
    if args.config:
        merge_into(data, _raw_config(args.config))
    for path, value in vars(args).items():
        if "." in path or path in _TOP_FIELDS:
            merge_into(_section(data, path), {path.rsplit(".", 1)[-1]: value})
    data["regularizers"] = data["regularizers"] + [_regularizer(s) for s in args.regularizer]
    return TrainConfig.from_dict(data), args


def _section(data: dict, path: str) -> dict:
    for key in path.split(".")[:-1]:
        data = data[key]
    return data


_TOP_FIELDS = ("seeds", "output_dir", "resume", "device", "feature_bank", "progress")


def _raw_config(path: str) -> dict:
    from pathlib import Path

    import yaml

    if not Path(path).is_file():
        raise FileNotFoundError(f"no such config file: {path}")
    try:
        data = yaml.safe_load(Path(path).read_text())  # YAML reads JSON too
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ValueError(f"{path} is not valid YAML{where}: {getattr(err, 'problem', None) or err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a config mapping")
    return data


def preset_table() -> str:
    """The presets as a table: method, regularizers (with their weight), protocol, dataset, epochs and
    learning rate ("published": the method's published value for the protocol, :mod:`.protocols`)."""
    from .presets import PRESETS

    header = ("preset", "method", "regularizers", "protocol", "dataset", "epochs", "lr")
    rows = [header]
    for name, cfg in PRESETS.items():
        regs = " + ".join(r.name if r.weight == 1.0 else f"{r.name} w={r.weight:g}" for r in cfg.regularizers)
        rows.append(
            (
                name,
                cfg.method.name,
                regs or "-",
                cfg.data.protocol,
                cfg.data.dataset,
                "published" if cfg.optim.epochs is None else str(cfg.optim.epochs),
                "published" if cfg.optim.lr is None else f"{cfg.optim.lr:g}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    note = "published: the method's published value for the protocol (ncprobe.training.protocols)"
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:], "", note])


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.list_presets:
        print(preset_table())
        return 0
    cfg, args = _config_from(args)
    if args.evaluate:
        from .api import evaluate, strict_json

        if not cfg.output_dir:
            raise ValueError("--evaluate needs --output_dir (the run folder to evaluate)")
        found = evaluate(cfg.output_dir, checkpoint=args.checkpoint)
        print(json.dumps(strict_json(found), indent=2, allow_nan=False))  # NaN is null: strict JSON
        return 0
    from .api import train

    result = train(cfg)
    print(result.summary().to_string())
    if cfg.output_dir:
        print(f"run written to {cfg.output_dir}")
    return 0
