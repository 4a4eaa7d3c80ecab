"""The training configuration: a dataclass tree whose fields carry their own help text.

One :class:`TrainConfig` describes a run completely. It round-trips through a plain dict and YAML
(:meth:`TrainConfig.from_dict`, :meth:`TrainConfig.to_yaml`), and every field is a command-line flag of
``ncprobe train`` named by its path (``--optim.lr 0.002``, ``--data.num_shots 4``), with the field's
``help`` metadata as its help text (:func:`config_fields`). Unknown keys are errors that list the valid
ones. :func:`config_hash` is the run's identity: a run folder holding another config is refused.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ncprobe._io import atomic_path, stable_hash

__all__ = [
    "ModelConfig",
    "DataConfig",
    "MethodConfig",
    "RegularizerConfig",
    "OptimConfig",
    "TrackConfig",
    "TrainConfig",
    "config_fields",
    "config_hash",
    "load_config",
    "merge_into",
]


def _f(default: Any = dataclasses.MISSING, *, help: str, choices: tuple | None = None, factory: Any = None) -> Any:
    meta = {"help": help, "choices": choices}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class ModelConfig:
    """Which CLIP model to prompt."""

    name: str = _f(
        "testbed",
        help="'testbed' (the embedded model) or an open_clip model name, e.g. "
        "ViT-B-16-quickgelu (OpenAI weights need the -quickgelu configs)",
    )
    pretrained: str | None = _f(
        None,
        help="open_clip pretrained tag or local checkpoint path (None: random "
        "init; ignored for the testbed, which loads its cached build)",
    )
    testbed_preset: str | None = _f(
        None,
        help="embedded testbed build (data_cards/embedded_benchmark.md; None: the dataset's own, v3 for the "
        "testbed-strokes/-colour/-shapes tasks, default (v2) for testbed)",
        choices=("v3", "v3-fast", "default", "v2", "fast", "transfer"),
    )
    testbed_seed: int = _f(0, help="seed of the embedded testbed's image-tower build (a second tower: 1)")
    precision: str = _f(
        "fp32",
        help="fp32, or autocast in bf16/fp16 (the Dassl code ran CLIP in fp16; a NaN "
        "guard stops the run with a clear message)",
        choices=("fp32", "bf16", "fp16"),
    )


@dataclass
class DataConfig:
    """Which data, under which protocol."""

    dataset: str = _f(
        "testbed",
        help="an embedded testbed task (testbed-strokes, testbed-colour, testbed-shapes; testbed: the v2 benchmark) "
        "or a CoOp-benchmark dataset (oxford_pets, dtd, imagenet, ...)",
    )
    root: str | None = _f(None, help="the folder holding the CoOp datasets ($DATA); not used by the testbed")
    create_split: bool = _f(
        False,
        help="rebuild a missing split_zhou_<Name>.json from the raw annotations (not the published split: "
        "results are not comparable with the papers)",
    )
    protocol: str = _f(
        "base_to_novel",
        help="evaluation protocol",
        choices=("few_shot", "base_to_novel", "cross_dataset", "domain_generalization"),
    )
    num_shots: int | None = _f(
        None, help="training images per class (Dassl's seeded K-shot draw; None: the manifest's, else 16)"
    )
    imbalance_ratio: float | None = _f(
        None,
        help="n_max/n_min of the training classes (1: balanced; NPT's newest comparison uses 1, 4 and 16; "
        "None: the manifest's, else 1)",
    )
    imbalance_profile: str | None = _f(
        None, help="long-tail profile of the class counts (None: the manifest's, else exp)", choices=("exp", "step")
    )
    class_order_seed: int | None = _f(
        None, help="seed of the class order of the imbalance profile (None: the manifest's, else the run seed)"
    )
    eval_split: str = _f(
        "test",
        help="held-out split the evaluation sets come from: test, or val to choose designs and hyper-parameters "
        "(the v3 testbed tasks)",
        choices=("test", "val"),
    )
    targets: list[str] = _f(help="target datasets of cross-dataset / domain-generalisation evaluation", factory=list)
    ood_target: str | None = _f(
        None,
        help="unlabelled target set for out-of-distribution training terms "
        "(Craft's MMD), e.g. testbed-shifted or imagenet_sketch",
    )
    class_text: str = _f(
        "names",
        help="class text of the testbed: class names in the template, or the benchmark's class descriptions",
        choices=("names", "descriptions"),
    )
    augment_views: int = _f(
        0,
        help="augmented views per training image (0: the evaluation transform; K > 0: "
        "a bank of K augmented views when the image tower is frozen, fresh draws otherwise)",
    )
    eval_batch_size: int = _f(256, help="images per batch at evaluation")
    manifest: str | None = _f(None, help="start from an exported few-shot manifest (manifest.json)")
    num_workers: int = _f(0, help="DataLoader workers for image files")


@dataclass
class MethodConfig:
    """The prompt-tuning method and its prompt options (None: the method's published default)."""

    name: str = _f("coop", help="prompt-tuning method")
    n_ctx: int | None = _f(None, help="learnable text context tokens")
    ctx_init: str | None = _f(None, help="context initialisation words, e.g. 'a photo of a' ('' for random)")
    prompt_depth: int | None = _f(None, help="layers receiving deep prompts (MaPLe J; IVLP text and vision)")
    n_ctx_vision: int | None = _f(None, help="IVLP vision prompt tokens")
    class_specific: bool = _f(False, help="CoOp class-specific contexts (CSC)")
    class_token_position: str = _f("end", help="CoOp class token position", choices=("end", "middle", "front"))
    trim_padding: bool = _f(
        True,
        help="run class prompts only up to their last non-padding token (same features, less work; False runs "
        "the full context as the original code does)",
    )


@dataclass
class RegularizerConfig:
    """One regularizer term added to the method's loss."""

    name: str = _f(help="regularizer name (see ncprobe.training.REGULARIZERS)")
    weight: float = _f(1.0, help="weight λ ≥ 0 of the term in the total loss")
    options: dict = _f(help="regularizer options", factory=dict)


@dataclass
class OptimConfig:
    """The reference schedule: SGD with momentum, cosine decay after one constant warm-up epoch (Dassl)."""

    epochs: int | None = _f(None, help="training epochs (None: the protocol's published value)")
    batch_size: int | None = _f(None, help="images per step (None: the protocol's published value)")
    lr: float | None = _f(None, help="peak learning rate (None: the protocol's published value)")
    momentum: float = _f(0.9, help="SGD momentum")
    weight_decay: float = _f(5e-4, help="SGD weight decay")
    warmup_epochs: int = _f(1, help="epochs at the constant warm-up learning rate (Dassl ConstantWarmupScheduler)")
    warmup_lr: float = _f(1e-5, help="learning rate during warm-up")
    max_steps: int | None = _f(None, help="stop after this many steps in total (smoke tests)")


@dataclass
class TrackConfig:
    """Per-epoch neural-collapse tracking on held-out data (L2-normalised image features: what CLIP compares)."""

    every: int = _f(1, help="measure NC every this many epochs (and always at the first and last)")
    eval_every: int = _f(
        1,
        help="evaluate accuracy every this many epochs (and always at the first and last and at NC-tracked epochs; "
        "the others are NaN in the history): long full-batch schedules spend most of their time evaluating",
    )
    center: bool = _f(True, help="cross-modal metrics on centred text and image means")
    max_pair_classes: int = _f(100, help="store the cosine matrices when a set has at most this many classes")
    max_per_class: int | None = _f(None, help="cap the held-out images per class used for tracking")
    tensorboard: bool = _f(
        False,
        help="also write every history scalar per epoch as TensorBoard event files in the run folder "
        "(needs output_dir and the tensorboard package; not part of the run's identity)",
    )


@dataclass
class TrainConfig:
    """A complete run: model, data, method, regularizers, optimisation, tracking and run options."""

    model: ModelConfig = _f(help="the CLIP model", factory=ModelConfig)
    data: DataConfig = _f(help="data and protocol", factory=DataConfig)
    method: MethodConfig = _f(help="prompt-tuning method", factory=MethodConfig)
    regularizers: list[RegularizerConfig] = _f(help="terms added to the loss", factory=list)
    optim: OptimConfig = _f(help="optimisation", factory=OptimConfig)
    track: TrackConfig = _f(help="NC tracking", factory=TrackConfig)
    seeds: list[int] = _f(
        help="seeds (CoOp's --seed: few-shot draw and initialisation); several run in turn "
        "and stack along a seed dimension",
        factory=lambda: [1],
    )
    output_dir: str | None = _f(
        None, help="run folder (config.yaml, manifest.json, history.nc, result.json, checkpoints/); None: no files"
    )
    resume: bool = _f(False, help="continue the run in output_dir from its last checkpoint")
    device: str | None = _f(None, help="torch device (default: cuda if available, else cpu)")
    feature_bank: str = _f(
        "auto",
        help="precompute frozen image features when the image tower is neither trained nor prompted",
        choices=("auto", "on", "off"),
    )
    progress: bool | None = _f(
        None,
        help="progress output (None: bars only on a terminal, a one-line summary per epoch always, so a logged "
        "run is readable; True: bars and summaries; False: quiet, neither)",
    )
    preset: str | None = _f(None, help="the preset this config started from (informational)")

    # ------------------------------------------------------------------ conversions
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Build from a nested dict; unknown keys raise ``ValueError`` listing the valid ones."""
        return _build(cls, data, "")

    def to_yaml(self, path: str | Path | None = None) -> str:
        import yaml

        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            with atomic_path(path) as tmp:
                tmp.write_text(text)
        return text

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with changes applied: dotted paths (``replace(**{"optim.lr": 0.01})``) or sections given as
        dicts (``replace(optim={"epochs": 1})``), which merge into the section: both forms keep what they do
        not name (a preset's learning rate survives a new epoch count)."""
        data = self.to_dict()
        for path, value in changes.items():
            _set_path(data, path, value)
        return TrainConfig.from_dict(data)


def _build(cls: type, data: Any, prefix: str) -> Any:
    unknown = _unknown_keys(cls, data, prefix)
    if unknown:
        raise ValueError(_unknown_message(unknown))
    return _construct(cls, data, prefix)


def _is_config_list(hint: Any) -> bool:
    args = typing.get_args(hint)
    return typing.get_origin(hint) is list and bool(args) and dataclasses.is_dataclass(args[0])


def _unknown_keys(cls: type, data: Any, prefix: str) -> list[tuple[str, str, list[str]]]:
    """Every unknown key of the tree under ``cls``: (dotted key, its section, the section's valid keys)."""
    if not isinstance(data, dict):
        return []  # not a mapping (or already a config): _construct says so
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    section = prefix.rstrip(".") or "the config"
    out = [(prefix + str(k), section, names) for k in data if k not in names]
    for name, value in data.items():
        if name not in names:
            continue
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            out += _unknown_keys(hint, value or {}, f"{prefix}{name}.")
        elif _is_config_list(hint) and isinstance(value, list):
            item = typing.get_args(hint)[0]
            for i, v in enumerate(value):
                out += _unknown_keys(item, v, f"{prefix}{name}[{i}].")
    return out


def _unknown_message(unknown: list[tuple[str, str, list[str]]]) -> str:
    """One line naming every unknown key, a close valid key where there is one, and each section's keys."""
    parts, sections = [], {}
    for key, section, names in unknown:
        leaf = key.rsplit(".", 1)[-1]
        close = difflib.get_close_matches(leaf, names, n=1)
        hint = f" (did you mean {key[: len(key) - len(leaf)] + close[0]!r}?)" if close else ""
        parts.append(f"{key!r}{hint}")
        sections[section] = names
    valid = "; ".join(f"valid keys of {s}: {', '.join(n)}" for s, n in sections.items())
    return f"unknown config key{'s' if len(parts) > 1 else ''} {', '.join(parts)}; {valid}"


def _construct(cls: type, data: Any, prefix: str) -> Any:
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ValueError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _construct(hint, value or {}, f"{prefix}{name}.")
        elif _is_config_list(hint):
            item = typing.get_args(hint)[0]
            kwargs[name] = [_construct(item, v, f"{prefix}{name}[{i}].") for i, v in enumerate(value or [])]
        else:
            kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ValueError(f"{prefix.rstrip('.') or 'config'}: {err}") from None


def merge_into(base: dict, update: dict) -> None:
    """Merge ``update`` into the config dict ``base`` in place: sections (dicts) merge key by key, everything
    else (values, lists such as ``regularizers`` or ``seeds``) replaces."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge_into(base[key], value)
        else:
            base[key] = value


def _set_path(data: dict, path: str, value: Any) -> None:
    keys = path.split(".")
    node = data
    for i, key in enumerate(keys[:-1]):
        if key in node and not isinstance(node[key], dict):
            raise ValueError(f"unknown config key {path!r}: {'.'.join(keys[: i + 1])!r} is a value, not a section")
        if key not in node:
            section = ".".join(keys[:i]) or "the config"
            raise ValueError(_unknown_message([(".".join(keys[: i + 1]), section, list(node))]))
        node = node[key]
    merge_into(node, {keys[-1]: value})


def load_config(source: Any) -> TrainConfig:
    """A :class:`TrainConfig` from a config, a dict, or a YAML/JSON file path."""
    if isinstance(source, TrainConfig):
        return source
    if isinstance(source, dict):
        return TrainConfig.from_dict(source)
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no such config file: {path}")
        text = path.read_text()
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
        if not isinstance(data, dict):
            raise ValueError(f"{path} does not hold a config mapping")
        return TrainConfig.from_dict(data)
    raise TypeError(f"config must be a TrainConfig, a dict or a YAML path, got {type(source).__name__}")


@dataclass(frozen=True)
class FieldInfo:
    """One leaf field of the config tree, for the command line."""

    path: str
    type: Any
    default: Any
    help: str
    choices: tuple | None


def config_fields(cls: type = TrainConfig, prefix: str = "") -> Iterator[FieldInfo]:
    """Every leaf field of the config tree with its dotted path, type, default and help text."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            yield from config_fields(hint, f"{prefix}{f.name}.")
            continue
        default = (
            f.default
            if f.default is not dataclasses.MISSING
            else (f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        )
        yield FieldInfo(f"{prefix}{f.name}", hint, default, f.metadata.get("help", ""), f.metadata.get("choices"))


#: Fields that say where or how a run is shown, not what it computes.
#: Fields (dotted paths) that do not change a run's results: its folder, its display, how a missing split file is
#: made (the split file itself is the identity).
_NOT_IDENTITY = ("output_dir", "resume", "progress", "preset", "data.create_split", "track.tensorboard")


#: The v3 testbed's downstream tasks (``ncprobe.testbed.benchmark_v3.V3_TASKS``; a test keeps the two equal).
TESTBED_V3_DATASETS = ("testbed-strokes", "testbed-colour", "testbed-shapes")


def default_testbed_preset(dataset: str) -> str:
    """The testbed build a dataset runs on when ``model.testbed_preset`` is None: v3 for v3's tasks, else v2's."""
    return "v3" if dataset in TESTBED_V3_DATASETS else "default"


#: Fields added after runs were first hashed, with the value those runs had implicitly: at that value a field
#: leaves the hash out, so earlier runs keep their hash (and resume). ``model.testbed_preset`` None stands for
#: the dataset's own build (:func:`default_testbed_preset`).
_ADDED_AT_DEFAULT = {"model.testbed_seed": 0, "data.eval_split": "test", "track.eval_every": 1}


def config_hash(config: TrainConfig) -> str:
    """A stable digest of everything that determines a run's results (not its folder or display)."""
    data = config.to_dict()
    if data["model"].get("testbed_preset") is None and data["model"].get("name") == "testbed":
        data["model"]["testbed_preset"] = default_testbed_preset(data["data"]["dataset"])
    for path, value in _ADDED_AT_DEFAULT.items():
        section, key = path.split(".")
        if data[section].get(key) == value:
            data[section].pop(key)
    for path in _NOT_IDENTITY:
        *sections, key = path.split(".")
        node = data
        for section in sections:
            node = node[section]
        node.pop(key, None)
    return stable_hash(data, length=16)
