"""``ncprobe.train(config)`` and ``ncprobe.training.evaluate(run_dir)``.

A run folder (``output_dir``) holds, each written atomically:

* ``config.yaml`` — the resolved config (published defaults filled in);
* ``manifest.json`` — the few-shot selection as a portable :class:`~ncprobe.data.FewShotManifest` (image paths
  relative to the dataset folder, labels, class names, shots, seed, imbalance profile and per-class counts,
  content hash); ``data.manifest`` starts another run from it;
* ``history.nc`` — the history dataset (``docs/history.md``);
* ``result.json`` — final metrics plus provenance (versions, device, precision, config hash, regularizer facts);
* ``checkpoints/epoch_NNNN.pt`` — one per epoch.

Before anything is loaded or written, :func:`~.validation.check_run` checks the config, the manifest, the
data folders, the weights and the run folder, and reports every problem at once: a refused run leaves its
folder as it was. A folder that holds another config's work is refused; the same config continues only with
``resume=True`` (``--resume true``). Several seeds run one after the other into ``output_dir/seed_<s>/`` and
stack along a ``seed`` dimension. Every JSON file is strict JSON: a value that is not finite is ``null``.
"""

from __future__ import annotations

import math
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ncprobe._io import atomic_write_json
from ncprobe._version import __version__
from ncprobe.core.report import save_dataset

from .checkpoint import latest_checkpoint, load_checkpoint
from .config import TrainConfig, config_hash, default_testbed_preset, load_config
from .distributed import DistInfo, init_distributed
from .history import EpochRecord, build_history
from .loop import Engine, RunPlan
from .methods import build_model, get_method
from .preflight import run_dirs, run_folder_problems, seed_config
from .regularizers import build_regularizer
from .results import RunResult, TrainResult, load_run, stack_seeds, summarize
from .tasks import build_task
from .validation import ConfigError, check_run, resolve_config, validate_config

__all__ = [
    "TrainResult",
    "RunResult",
    "train",
    "evaluate",
    "load_run",
    "resolve_config",
    "stack_seeds",
    "summarize",
    "validate_config",
]


# ------------------------------------------------------------------ folders
def strict_json(value: Any) -> Any:
    """``value`` with every float that is not finite (NaN, ±inf) replaced by ``None`` (JSON ``null``), numpy
    scalars as Python numbers and other unknown objects as strings: what :func:`json.dumps` with
    ``allow_nan=False`` accepts."""
    if isinstance(value, dict):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(float(value)) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _write_json(path: Path, data: dict) -> None:
    atomic_write_json(path, strict_json(data), sort_keys=True)


def _prepare_folder(run_dir: Path, cfg: TrainConfig, resume: bool) -> None:
    """Write ``config.yaml``. The validation step checked the folder; it is checked again here (the same checks,
    :func:`~.preflight.run_folder_problems`), so a folder changed since is refused: another config's work, the
    same run without ``resume``. A folder without work, e.g. a run stopped before its first checkpoint, starts
    afresh."""
    problems = run_folder_problems(run_dir, cfg, resume)
    if problems:
        raise ConfigError(problems)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.to_yaml(run_dir / "config.yaml")


def _load_bundle(cfg: TrainConfig, device: torch.device):
    if cfg.model.name == "testbed":
        from ncprobe.testbed import load_testbed

        preset = cfg.model.testbed_preset or default_testbed_preset(cfg.data.dataset)
        return load_testbed(preset, seed=cfg.model.testbed_seed, device=device, progress=cfg.progress)
    from ncprobe.models import PretrainedWeightsUnavailableError, load_clip

    try:
        return load_clip(cfg.model.name, cfg.model.pretrained, device=device)
    except PretrainedWeightsUnavailableError as err:  # the download started and failed
        why = " ".join(str(err.__cause__ or err).split())  # one line: the cause may span several
        raise PretrainedWeightsUnavailableError(
            f"could not download the weights {cfg.model.pretrained!r} of {cfg.model.name!r} ({why}); "
            "download them on a machine with internet, copy the checkpoint file here and pass "
            "--model.pretrained PATH (model.pretrained: PATH in YAML)"
        ) from err


def _image_size(bundle) -> int:
    size = getattr(bundle.model.visual, "image_size", 224)
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def _check_depth(cfg: TrainConfig, bundle) -> None:
    depth = cfg.method.prompt_depth
    if depth is None or cfg.method.name not in ("maple", "ivlp"):
        return
    from ncprobe.models import text_backbone_for
    from ncprobe.models.vision_prompts import vision_num_layers

    text_layers = text_backbone_for(bundle.model).num_layers
    vision_layers = vision_num_layers(bundle.model.visual)
    if depth > min(text_layers, vision_layers):
        raise ValueError(
            f"method.prompt_depth={depth} exceeds the model's layers ({vision_layers} vision, "
            f"{text_layers} text); use at most {min(text_layers, vision_layers)}"
        )


def _provenance(cfg: TrainConfig, digest: str, device: torch.device, info: DistInfo) -> dict:
    import open_clip

    return {
        "ncprobe": __version__,
        "torch": str(torch.__version__),
        "open_clip": open_clip.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "world_size": info.world_size,
        "precision": cfg.model.precision,
        "config_hash": digest,
        "method": cfg.method.name,
        "dataset": cfg.data.dataset,
        "protocol": cfg.data.protocol,
        "preset": cfg.preset,
        "regularizers": [r.name for r in cfg.regularizers],
    }


def _run_seed(
    cfg: TrainConfig, seed: int, bundle, device: torch.device, info: DistInfo, run_dir: Path | None
) -> RunResult:
    one, digest = seed_config(cfg, seed)
    spec = get_method(cfg.method.name)
    task, model = _task_and_model(cfg, spec, bundle, seed, device)  # the data is read before the folder is written
    regs = [(r.name, float(r.weight), build_regularizer(r.name, r.options)) for r in cfg.regularizers]
    use_bank = spec.frozen_image_features and cfg.feature_bank != "off"
    if run_dir is not None and info.is_main:
        _prepare_folder(run_dir, one, cfg.resume)
        task.selection.to_json(run_dir / "manifest.json")
    plan = RunPlan(
        model=model,
        task=task,
        regularizers=regs,
        method=spec.name,
        conditional=spec.name == "cocoop",
        frozen_image_features=spec.frozen_image_features,
        use_bank=use_bank,
        epochs=int(cfg.optim.epochs),
        batch_size=int(cfg.optim.batch_size),
        lr=float(cfg.optim.lr),
        momentum=cfg.optim.momentum,
        weight_decay=cfg.optim.weight_decay,
        warmup_epochs=cfg.optim.warmup_epochs,
        warmup_lr=cfg.optim.warmup_lr,
        max_steps=cfg.optim.max_steps,
        seed=seed,
        device=device,
        precision=cfg.model.precision,
        augment_views=cfg.data.augment_views,
        eval_batch_size=cfg.data.eval_batch_size,
        num_workers=cfg.data.num_workers,
        track_every=cfg.track.every,
        eval_every=cfg.track.eval_every,
        center=cfg.track.center,
        max_pair_classes=cfg.track.max_pair_classes,
        max_per_class=cfg.track.max_per_class,
        imbalanced=cfg.data.imbalance_ratio > 1,
        config_hash=digest,
        run_dir=run_dir,
        resume=cfg.resume,
        progress=cfg.progress,
        info=info,
        tensorboard=cfg.track.tensorboard,
    )
    engine = Engine(plan)
    started = time.perf_counter()
    engine.setup()
    records = engine.run()
    groups = ["none"] * len(task.classnames)
    if engine.train_groups is not None:
        for k, g in zip(task.train_class_index, engine.train_groups):
            groups[int(k)] = str(g)
    attrs = {
        **_provenance(one, digest, device, info),
        "seed": seed,
        "imbalance_ratio": cfg.data.imbalance_ratio,
        "num_shots": cfg.data.num_shots,
        "center": cfg.track.center,
        "normalize_images": True,
        "feature_bank": use_bank,
        "frozen_image_features": spec.frozen_image_features,
        "regularizer_weights": {name: w for name, w, _ in regs},
    }
    history = build_history(
        records,
        classnames=task.classnames,
        class_split=task.class_split,
        class_group=groups,
        eval_sets=[e.name for e in task.eval_sets],
        attrs=attrs,
    )
    for name, weight, reg in regs:  # each loss term records its effective weight in the total loss
        for var in history.data_vars:
            if var.startswith(f"loss_{name}_"):
                history[var].attrs["weight"] = weight * reg.term_weight(var.removeprefix(f"loss_{name}_"))
    result = _final(records, attrs, regs, time.perf_counter() - started)
    if run_dir is not None and info.is_main:
        save_dataset(history, run_dir / "history.nc")
        _write_json(run_dir / "result.json", result)
    return RunResult(seed, history, result, run_dir, model)


def _final(records: list[EpochRecord], attrs: dict, regs: list, seconds: float) -> dict:
    last = records[-1]
    final = {"epoch": last.epoch, "accuracy": last.accuracy, "metrics": last.scalars}
    if "base" in last.accuracy and "novel" in last.accuracy:
        b, n = last.accuracy["base"], last.accuracy["novel"]
        final["hm"] = 2 * b * n / (b + n) if b + n > 0 else 0.0
    return {
        "final": final,
        "provenance": attrs,
        "regularizers": {name: reg.info() for name, _, reg in regs},
        "seconds": round(seconds, 2),
    }


def _task_and_model(cfg: TrainConfig, spec, bundle, seed: int, device) -> tuple:
    """The seed's task (data under the protocol) and the method's model on ``device`` (training and evaluation
    build them the same way, so an evaluated checkpoint meets the model it was trained in)."""
    task = build_task(cfg.data, protocol=cfg.data.protocol, seed=seed, image_size=_image_size(bundle))
    model = build_model(
        spec,
        cfg.method,
        bundle,
        task.train_classnames,
        templates=task.templates,
        seed=seed,
        class_texts=task.train_class_texts,
    )
    return task, model.to(device)


def train(config: Any) -> TrainResult:
    """Train prompts and track neural collapse every epoch.

    Parameters
    ----------
    config:
        A :class:`TrainConfig`, a dict of the same tree, or a YAML path (``ncprobe train --config run.yaml``).
        Fields left ``None`` take the manifest's facts and the protocol's published values
        (:func:`~.validation.resolve_config`). Every problem is reported before any work, in one
        :class:`~.validation.ConfigError` (a ``ValueError``).

    Returns
    -------
    TrainResult
        ``.history`` (an ``xarray.Dataset`` with dimension ``epoch``, stacked along ``seed`` for several seeds;
        ``docs/history.md``), ``.summary()`` (mean ± std tables) and ``.runs`` (per seed: history, result dict,
        run folder).

    Examples
    --------
    >>> from ncprobe.training import PRESETS                                  # doctest: +SKIP
    >>> result = ncprobe.train(PRESETS["testbed-coop-b2n"])                  # doctest: +SKIP
    >>> result.history["accuracy"].sel(eval_set="novel")                     # doctest: +SKIP
    """
    cfg = check_run(config)  # every check, before any model is loaded or any file written
    info, device = init_distributed(cfg.device)
    bundle = _load_bundle(cfg, device)
    _check_depth(cfg, bundle)
    result = TrainResult(cfg)
    root = Path(cfg.output_dir) if cfg.output_dir else None
    for seed, run_dir in run_dirs(cfg):
        result.runs.append(_run_seed(cfg, seed, bundle, device, info, run_dir))
    if root is not None and len(cfg.seeds) > 1 and info.is_main:
        cfg.to_yaml(root / "config.yaml")
        save_dataset(result.history, root / "history.nc")
        summary = result.summary()
        _write_json(
            root / "result.json",
            {"summary": summary.drop(columns="mean ± std").to_dict(orient="index"), "seeds": list(cfg.seeds)},
        )
    return result


def evaluate(run_dir: str | Path, *, checkpoint: str | Path | None = None) -> dict:
    """Evaluate a trained run without training: the run's config, the given (or last) checkpoint's prompts.

    Raises ``FileNotFoundError`` naming the path when the run folder, its config or the checkpoint is missing:
    evaluation never starts training (some public scripts silently do).
    """
    run_dir = Path(run_dir)
    config_file = run_dir / "config.yaml"
    if not config_file.is_file():
        raise FileNotFoundError(f"no run config at {config_file}")
    cfg = load_config(config_file)
    ckpt = Path(checkpoint) if checkpoint is not None else latest_checkpoint(run_dir)
    if ckpt is None:
        raise FileNotFoundError(f"no checkpoint in {run_dir / 'checkpoints'}")
    state = load_checkpoint(ckpt, config_hash=config_hash(cfg))
    info, device = init_distributed(cfg.device)
    bundle = _load_bundle(cfg, device)
    spec = get_method(cfg.method.name)
    seed = int(cfg.seeds[0])
    task, model = _task_and_model(cfg, spec, bundle, seed, device)
    if state["learner"] is not None:
        model.prompt_learner.load_state_dict(state["learner"])
    plan_cfg = cfg.replace(resume=False, output_dir=None)
    plan = RunPlan(
        model=model,
        task=task,
        regularizers=[],
        method=spec.name,
        conditional=spec.name == "cocoop",
        frozen_image_features=spec.frozen_image_features,
        use_bank=spec.frozen_image_features and cfg.feature_bank != "off",
        epochs=0,
        batch_size=1,
        lr=0.0,
        momentum=0.0,
        weight_decay=0.0,
        warmup_epochs=0,
        warmup_lr=0.0,
        max_steps=None,
        seed=seed,
        device=device,
        precision=cfg.model.precision,
        augment_views=0,
        eval_batch_size=cfg.data.eval_batch_size,
        num_workers=cfg.data.num_workers,
        track_every=1,
        center=cfg.track.center,
        max_pair_classes=cfg.track.max_pair_classes,
        max_per_class=cfg.track.max_per_class,
        imbalanced=cfg.data.imbalance_ratio > 1,
        config_hash=config_hash(plan_cfg),
        run_dir=None,
        resume=False,
        progress=cfg.progress,
        info=info,
    )
    engine = Engine(plan)
    engine.setup()
    rec = EpochRecord(epoch=int(state["epoch"]))
    engine.evaluate(rec, track=True)
    return {"checkpoint": str(ckpt), "epoch": rec.epoch, "accuracy": rec.accuracy, "metrics": rec.scalars}
