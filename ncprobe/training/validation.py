"""The validation step of a run: every check, before any model is loaded or any file written.

:func:`check_run` is the one step :func:`ncprobe.train` takes first. It collects every problem it finds and
raises one :class:`ConfigError` (a ``ValueError``) listing each on its own line, so a config with three
mistakes costs one try, not three, and a refused run leaves its folder as it was. It checks:

* the fields (:func:`validate_config`): names (method, protocol, dataset, regularizers, targets), ranges,
  option combinations and each regularizer's own :meth:`~.regularizers.Regularizer.check`;
* the manifest (``data.manifest``): a manifest is a promise about the dataset, the protocol (its class
  subsample: ``base`` for base-to-novel, ``all`` otherwise), the classes, the shots, the seed and the imbalance
  (ratio, profile, class order); each fact is compared with the config, and a mismatch names the field, both
  values and the fix. Facts the config leaves open (``None``: shots, imbalance ratio and profile, class order
  seed) are taken from the manifest (:func:`resolve_config`);
* the data (``data.root``, the dataset folder and its split file, each target's folder) and the weights
  (``model.pretrained``: an existing file, a cached tag, or a download that can start: with
  ``HF_HUB_OFFLINE`` set or no network reachable it fails at once, without trying the Hub);
* the run folder: another config's finished or checkpointed run is refused, the same run continues only with
  ``resume``, and a resumed checkpoint must come from this config.

Advice is written as command-line flags (``--data.root DIR``), the form the YAML keys share.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable

from ncprobe.data import FewShotManifest, load_manifest, resolve_name

from .config import TESTBED_V3_DATASETS, TrainConfig, default_testbed_preset, load_config
from .methods import METHODS, get_method
from .preflight import dataset_problems, folder_problems, weights_problem
from .protocols import PROTOCOLS, published
from .regularizers import REGULARIZERS, build_regularizer
from .task_spec import DEFAULT_SHOTS, protocol_subsamples, training_class_count
from .tb_writer import tensorboard_problem
from .testbed_tasks import TESTBED_DATASETS, is_testbed, testbed_ood_targets, testbed_targets

__all__ = [
    "ConfigError",
    "DEFAULT_SHOTS",
    "validate_config",
    "resolve_config",
    "check_run",
]

_TESTBED_DATASET = "EmbeddedBenchmark"  # the dataset name the testbed's manifests record


class ConfigError(ValueError):
    """Every problem the validation step found, one per line (``problems`` keeps them as a list)."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            message = f"{len(self.problems)} problems with the config:\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


@dataclass
class _Problems:
    """Collects the message of each failing check (``ValueError``/``OSError`` raised by a check become lines)."""

    lines: list[str]

    def add(self, message: str) -> None:
        self.lines.append(message)

    def run(self, check: Callable[[], Any]) -> Any:
        try:
            return check()
        except (ValueError, OSError, KeyError) as err:
            self.lines.extend(err.problems if isinstance(err, ConfigError) else [_text(err)])
            return None

    def raise_if_any(self) -> None:
        if self.lines:
            raise ConfigError(list(dict.fromkeys(self.lines)))


def _text(err: BaseException) -> str:
    return str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)


# ------------------------------------------------------------------ fields
def _names_ok(cfg: TrainConfig, out: _Problems) -> bool:
    """Method, protocol and dataset names (everything else needs them); each bad one is a problem."""
    ok = True
    if cfg.method.name not in METHODS:
        out.run(lambda: get_method(cfg.method.name))
        ok = False
    if cfg.data.protocol not in PROTOCOLS:
        out.add(f"unknown protocol {cfg.data.protocol!r}; valid protocols: {', '.join(PROTOCOLS)}")
        ok = False
    dataset = cfg.data.dataset
    close = difflib.get_close_matches(dataset, TESTBED_DATASETS, n=1, cutoff=0.8)
    if not is_testbed(dataset) and (dataset.startswith("testbed") or close):
        hint = f" (did you mean {close[0]}?)" if close else ""
        out.add(f"unknown embedded dataset {dataset!r}{hint}; embedded datasets: {', '.join(TESTBED_DATASETS)}")
        ok = False
    elif not is_testbed(dataset) and out.run(lambda: resolve_name(dataset)) is None:
        ok = False
    return ok


def _field_problems(cfg: TrainConfig, out: _Problems) -> None:
    d, o = cfg.data, cfg.optim
    if d.num_shots is not None and (type(d.num_shots) is not int or d.num_shots < 1):
        out.add(f"data.num_shots must be at least 1 (a whole number), got {d.num_shots!r}")
    if d.imbalance_ratio is not None and not d.imbalance_ratio >= 1:
        out.add(f"data.imbalance_ratio must be >= 1 (n_max/n_min), got {d.imbalance_ratio}")
    if d.imbalance_profile not in (None, "exp", "step"):
        out.add(f"data.imbalance_profile must be 'exp' or 'step', got {d.imbalance_profile!r}")
    if d.augment_views < 0:
        out.add(f"data.augment_views must be >= 0, got {d.augment_views}")
    if not cfg.seeds:
        out.add("seeds is empty: give at least one (--seeds 1 2 3)")
    for key in ("epochs", "batch_size"):
        value = getattr(o, key)
        if value is not None and value < (0 if key == "epochs" else 1):
            out.add(f"optim.{key} must be {'>= 0' if key == 'epochs' else '>= 1'}, got {value}")
    if o.lr is not None and o.lr < 0:
        out.add(f"optim.lr must be >= 0, got {o.lr}")
    if cfg.model.precision not in ("fp32", "bf16", "fp16"):
        out.add(f"model.precision must be fp32, bf16 or fp16, got {cfg.model.precision!r}")
    _testbed_problems(cfg, out)
    if d.class_text != "names" and not is_testbed(d.dataset):
        out.add(
            "data.class_text='descriptions' is the embedded testbed's protocol; the CoOp datasets use "
            "their class names in the dataset template"
        )
    if cfg.method.class_specific and d.protocol != "few_shot":
        out.add(
            f"method.class_specific contexts cannot transfer to other classes: the {d.protocol} "
            "protocol evaluates unseen classes; use protocol few_shot"
        )
    if cfg.track.every < 1:
        out.add(f"track.every must be >= 1, got {cfg.track.every}")
    if cfg.track.eval_every < 1:
        out.add(f"track.eval_every must be >= 1, got {cfg.track.eval_every}")
    if cfg.track.max_per_class is not None and cfg.track.max_per_class < 1:
        out.add(f"track.max_per_class must be >= 1 (or None: every held-out image), got {cfg.track.max_per_class}")
    names = [reg.name for reg in cfg.regularizers]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        out.add(
            f"regularizers {twice} appear more than once; give each name once (its terms are recorded as "
            "loss_<name>_<term> and its facts under its name in result.json)"
        )


def _testbed_problems(cfg: TrainConfig, out: _Problems) -> None:
    """The embedded model and the embedded datasets go together, v2 with v2 and v3 with v3; ``val`` is v3's."""
    d, m = cfg.data, cfg.model
    v3_data = d.dataset in TESTBED_V3_DATASETS
    if m.name == "testbed" and m.testbed_preset is not None and is_testbed(d.dataset):
        v3_model = m.testbed_preset.startswith("v3")
        if v3_data != v3_model:
            want = "v3 or v3-fast" if v3_data else "default (alias v2), fast or transfer"
            out.add(
                f"model.testbed_preset {m.testbed_preset!r} is a {'v3' if v3_model else 'v2'} build, but dataset "
                f"{d.dataset!r} belongs to {'v3' if v3_data else 'v2'}: use --model.testbed_preset {want} "
                "(or none: the dataset's own)"
            )
    if is_testbed(d.dataset) and m.name != "testbed":
        out.add(f"dataset {d.dataset!r} is an embedded testbed task: it runs on --model.name testbed")
    if d.eval_split == "val" and not v3_data:
        out.add(
            f"data.eval_split='val': {d.dataset!r} has no validation split here (the v3 testbed tasks "
            f"{', '.join(TESTBED_V3_DATASETS)} have one)"
        )


def _target_problems(cfg: TrainConfig, out: _Problems) -> None:
    """``data.targets`` (cross-dataset / domain-generalisation evaluation) and ``data.ood_target``."""
    d = cfg.data
    testbed = is_testbed(d.dataset)
    if d.targets and d.protocol not in ("cross_dataset", "domain_generalization"):
        out.add(
            f"data.targets {list(d.targets)} are evaluated by the cross_dataset and domain_generalization protocols "
            f"only; protocol {d.protocol!r} would ignore them: remove them or set --data.protocol cross_dataset"
        )
    for target in d.targets:
        if testbed and target not in testbed_targets(d.dataset, d.protocol):
            valid = ", ".join(testbed_targets(d.dataset, d.protocol)) or "none"
            out.add(f"unknown data.targets entry {target!r}; valid {d.protocol} targets of {d.dataset}: {valid}")
        elif not testbed:
            out.run(lambda t=target: resolve_name(t))
    if d.ood_target:
        if testbed and d.ood_target not in testbed_ood_targets(d.dataset):
            out.add(
                f"unknown data.ood_target {d.ood_target!r}; valid targets of {d.dataset}: "
                f"{', '.join(testbed_ood_targets(d.dataset)) or 'none'}"
            )
        elif not testbed:
            out.run(lambda: resolve_name(d.ood_target))


def _regularizer_problems(cfg: TrainConfig, out: _Problems) -> None:
    """Each regularizer's name, weight, options, needs and own check (on the resolved config)."""
    for reg in cfg.regularizers:
        if reg.name not in REGULARIZERS:
            out.add(f"unknown regularizer {reg.name!r}; valid regularizers: {', '.join(sorted(REGULARIZERS))}")
            continue
        if not reg.weight >= 0:
            out.add(f"regularizer {reg.name!r}: weight must be >= 0, got {reg.weight}")
        term = out.run(lambda r=reg: build_regularizer(r.name, r.options))
        if term is None:
            continue
        if "target" in term.needs and not cfg.data.ood_target:
            out.add(
                f"regularizer {reg.name!r} needs an unlabelled target set: pass --data.ood_target NAME "
                "(e.g. testbed-shifted)"
            )
        if term.methods is not None and cfg.method.name not in term.methods:
            out.add(f"regularizer {reg.name!r} applies to methods {sorted(term.methods)}, not {cfg.method.name!r}")
        out.run(lambda t=term: t.check(cfg))


# ------------------------------------------------------------------ the manifest
def _manifest_dataset(cfg: TrainConfig) -> str:
    if is_testbed(cfg.data.dataset):
        return _TESTBED_DATASET if cfg.data.dataset == "testbed" else cfg.data.dataset
    return resolve_name(cfg.data.dataset)


def _from_manifest(cfg: TrainConfig, manifest: FewShotManifest, out: _Problems) -> dict[str, Any]:
    """The config changes that take the manifest's facts the config leaves open; a problem per contradiction."""
    d, path = cfg.data, cfg.data.manifest
    imb = manifest.imbalance or {}
    changes: dict[str, Any] = {}
    where = f"data.manifest {path}"

    def clash(field: str, given: Any, recorded: Any, fix: str) -> None:
        out.add(f"{where} was drawn with {field}={recorded!r} but the config sets {given!r}: {fix}")

    dataset = _manifest_dataset(cfg)
    if manifest.dataset != dataset:
        out.add(
            f"{where} is a selection of dataset {manifest.dataset!r} but data.dataset is {d.dataset!r} "
            f"({dataset}): set --data.dataset to the manifest's dataset or use a manifest of {dataset}"
        )
    subsample = protocol_subsamples(d.protocol)[0]
    if manifest.subsample != subsample:
        fits = "base_to_novel" if manifest.subsample == "base" else "few_shot, cross_dataset or domain_generalization"
        out.add(
            f"{where} holds the {manifest.subsample!r} classes ({manifest.num_classes} classes), but protocol "
            f"{d.protocol!r} trains the {subsample!r} classes: set --data.protocol to {fits}, or draw a new "
            "manifest under this protocol"
        )
    if manifest.num_shots < 1:
        out.add(f"{where} keeps every image (num_shots=0); prompt tuning trains on a K-shot manifest")
    elif d.num_shots is None:
        changes["data.num_shots"] = manifest.num_shots
    elif d.num_shots != manifest.num_shots:
        clash(
            "num_shots",
            d.num_shots,
            manifest.num_shots,
            "omit data.num_shots (on the command line: --data.num_shots none) to take the manifest's, or use a "
            "manifest with these shots",
        )
    if manifest.seed is not None and list(cfg.seeds) != [manifest.seed]:
        out.add(
            f"{where} was drawn with seed {manifest.seed} but seeds is {list(cfg.seeds)}: a manifest fixes one "
            f"seed's draw; set --seeds {manifest.seed} (seeds: [{manifest.seed}])"
        )
    ratio = float(imb["ratio"]) if imb else 1.0
    if d.imbalance_ratio is None:
        changes["data.imbalance_ratio"] = ratio
    elif float(d.imbalance_ratio) != ratio:
        clash(
            "imbalance_ratio",
            d.imbalance_ratio,
            ratio,
            "omit data.imbalance_ratio (--data.imbalance_ratio none) to take the manifest's",
        )
    if imb:
        if d.imbalance_profile is None:
            changes["data.imbalance_profile"] = imb["profile"]
        elif d.imbalance_profile != imb["profile"]:
            clash(
                "imbalance_profile",
                d.imbalance_profile,
                imb["profile"],
                "omit data.imbalance_profile (--data.imbalance_profile none) to take the manifest's",
            )
        order = imb.get("seed")
        run_seed = manifest.seed if manifest.seed is not None else (cfg.seeds[0] if cfg.seeds else None)
        if d.class_order_seed is None and order is not None and order != run_seed:
            changes["data.class_order_seed"] = order
        elif d.class_order_seed is not None and order is not None and d.class_order_seed != order:
            clash(
                "class_order_seed",
                d.class_order_seed,
                order,
                "omit data.class_order_seed (--data.class_order_seed none) to take the manifest's",
            )
    return changes


def _class_count_problem(cfg: TrainConfig, manifest: FewShotManifest, out: _Problems) -> None:
    classes = training_class_count(cfg.data)
    if classes is not None and manifest.num_classes != classes:
        out.add(
            f"data.manifest {cfg.data.manifest} lists {manifest.num_classes} classes but {cfg.data.dataset} under "
            f"protocol {cfg.data.protocol!r} trains {classes}: use a manifest of this dataset and protocol"
        )


# ------------------------------------------------------------------ resolution
def _resolve(cfg: TrainConfig, out: _Problems) -> TrainConfig:
    """Manifest facts, then the protocol's published defaults, then the data defaults, for fields left ``None``."""
    changes: dict[str, Any] = {}
    if cfg.data.manifest:
        manifest = out.run(lambda: load_manifest(cfg.data.manifest))
        if manifest is not None:
            changes.update(_from_manifest(cfg, manifest, out))
            if manifest.subsample == protocol_subsamples(cfg.data.protocol)[0]:
                _class_count_problem(cfg, manifest, out)
    if cfg.model.name == "testbed" and cfg.model.testbed_preset is None:
        changes["model.testbed_preset"] = default_testbed_preset(cfg.data.dataset)
    dataset = None if is_testbed(cfg.data.dataset) else resolve_name(cfg.data.dataset)
    hp = published(cfg.method.name, cfg.data.protocol, dataset)
    for key in ("epochs", "batch_size", "lr"):
        if getattr(cfg.optim, key) is None:
            changes[f"optim.{key}"] = getattr(hp, key)
    for key, value in hp.method_options:
        if getattr(cfg.method, key) is None:
            changes[f"method.{key}"] = value
    for key, default in (("num_shots", DEFAULT_SHOTS), ("imbalance_ratio", 1.0), ("imbalance_profile", "exp")):
        if getattr(cfg.data, key) is None:
            changes.setdefault(f"data.{key}", default)
    return cfg.replace(**changes) if changes else cfg


def _config_step(cfg: TrainConfig, out: _Problems) -> TrainConfig | None:
    names_ok = _names_ok(cfg, out)
    _field_problems(cfg, out)
    _target_problems(cfg, out)
    if not names_ok:
        return None
    resolved = out.run(lambda: _resolve(cfg, out))
    if resolved is None:
        return None
    _regularizer_problems(resolved, out)
    spec = get_method(resolved.method.name)
    if resolved.feature_bank == "on" and not spec.frozen_image_features:
        out.add(
            f"feature_bank='on' needs a frozen, unprompted image tower; {spec.name} prompts it: pass "
            "--feature_bank auto or off"
        )
    return resolved


def validate_config(cfg: TrainConfig) -> None:
    """Every check that needs no data folder, weights or run folder (fields, names, targets, the manifest's facts,
    the regularizers' options); raises one :class:`ConfigError` listing every problem (:func:`resolve_config`
    without its result)."""
    resolve_config(cfg)


def resolve_config(cfg: TrainConfig) -> TrainConfig:
    """The config with every field left ``None`` filled: the manifest's facts (shots, imbalance), the protocol's
    published values (epochs, batch size, learning rate, method options), then 16 shots and a balanced draw.
    Runs :func:`validate_config`'s checks first and raises one :class:`ConfigError` listing every problem."""
    out = _Problems([])
    resolved = _config_step(load_config(cfg), out)
    out.raise_if_any()
    return resolved


def check_run(config: Any) -> TrainConfig:
    """The validation step: every check of the module docstring, all problems in one :class:`ConfigError`.

    Returns the resolved config (:func:`resolve_config`). Loads no model and writes nothing.
    """
    out = _Problems([])
    cfg = out.run(lambda: load_config(config))
    if cfg is None:
        out.raise_if_any()
    resolved = _config_step(cfg, out)
    out.lines.extend(dataset_problems(cfg))
    if (problem := weights_problem(cfg.model.name, cfg.model.pretrained)) is not None:
        out.add(problem)
    if cfg.track.tensorboard and (problem := tensorboard_problem(cfg.output_dir)) is not None:
        out.add(problem)
    if resolved is not None:
        out.lines.extend(folder_problems(resolved))
    out.raise_if_any()
    return resolved
