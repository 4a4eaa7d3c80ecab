"""``ncprobe.train(config)`` and ``ncprobe.training.evaluate(run_dir)``.

A run folder (``output_dir``) holds, each written atomically:

* ``config.yaml`` — the resolved config (published defaults filled in);
* ``manifest.json`` — the few-shot selection as a portable :class:`~ncprobe.data.FewShotManifest` (image paths
  relative to the dataset folder, labels, class names, shots, seed, imbalance profile and per-class counts,
  content hash); ``data.manifest`` starts another run from it;
* ``history.nc`` — the history dataset (``docs/history.md``);
* ``result.json`` — final metrics plus provenance (versions, device, precision, config hash, regularizer facts);
* ``checkpoints/epoch_NNNN.pt`` — one per epoch.

A folder that holds another config is refused; the same config continues only with ``resume=True``. Several
seeds run one after the other into ``output_dir/seed_<s>/`` and stack along a ``seed`` dimension.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

from ncprobe._io import atomic_path
from ncprobe._version import __version__
from ncprobe.core.report import load_dataset, save_dataset

from .checkpoint import latest_checkpoint, load_checkpoint
from .config import TrainConfig, config_hash, load_config
from .distributed import DistInfo, init_distributed
from .history import EpochRecord, build_history
from .loop import Engine, RunPlan
from .methods import build_model, get_method
from .protocols import PROTOCOLS, published
from .regularizers import REGULARIZERS, build_regularizer
from .tasks import build_task

__all__ = ["TrainResult", "RunResult", "train", "evaluate", "resolve_config", "validate_config"]


@dataclass
class RunResult:
    """One seed's run: its history, final metrics, folder and (in memory only) the trained model."""

    seed: int
    history: xr.Dataset
    result: dict
    run_dir: Path | None
    model: torch.nn.Module | None = None


@dataclass
class TrainResult:
    """The result of :func:`train`: ``history`` (stacked along ``seed`` when several seeds ran)."""

    config: TrainConfig
    runs: list[RunResult] = field(default_factory=list)

    @property
    def history(self) -> xr.Dataset:
        if len(self.runs) == 1:
            return self.runs[0].history
        return stack_seeds([r.history for r in self.runs], [r.seed for r in self.runs])

    def summary(self) -> pd.DataFrame:
        """Final values as mean ± std over seeds (see :func:`summarize`)."""
        return summarize(self.history)


def stack_seeds(histories: list[xr.Dataset], seeds: list[int]) -> xr.Dataset:
    """Stack per-seed histories along a ``seed`` dimension (epochs aligned; missing values NaN)."""
    common = {k: v for k, v in histories[0].attrs.items() if all(h.attrs.get(k) == v for h in histories[1:])}
    out = xr.concat([h.drop_attrs(deep=False) for h in histories], dim=pd.Index(seeds, name="seed"), join="outer")
    out.attrs = common
    return out


def summarize(history: xr.Dataset) -> pd.DataFrame:
    """Final-epoch accuracy per evaluation set (and HM) as mean ± std over seeds.

    For base-to-novel, ``hm`` is the harmonic mean of the **seed-averaged** base and novel accuracies (how the
    papers report it) and ``hm_mean_of_seeds`` the average of the per-seed harmonic means, each under its own
    label.
    """
    last = history.isel(epoch=-1)
    acc = last["accuracy"]
    seeds = acc["seed"].values if "seed" in acc.dims else [None]
    rows = []
    for s in last["eval_set"].values.tolist():
        v = acc.sel(eval_set=s).values.reshape(-1)
        rows.append((s, float(np.mean(v)), float(np.std(v)), len(v)))
    if "hm" in last:
        b = float(acc.sel(eval_set="base").values.mean())
        n = float(acc.sel(eval_set="novel").values.mean())
        rows.append(("hm", 2 * b * n / (b + n) if b + n > 0 else 0.0, float("nan"), len(seeds)))
        per_seed = last["hm"].values.reshape(-1)
        rows.append(("hm_mean_of_seeds", float(per_seed.mean()), float(per_seed.std()), len(per_seed)))
    frame = pd.DataFrame(rows, columns=["metric", "mean", "std", "seeds"]).set_index("metric")
    frame["mean ± std"] = [
        f"{m:.4f} ± {sd:.4f}" if np.isfinite(sd) else f"{m:.4f}" for m, sd in zip(frame["mean"], frame["std"])
    ]
    return frame


# ------------------------------------------------------------------ configuration
def validate_config(cfg: TrainConfig) -> None:
    """Every check that needs no model or data: names, weights, shots, imbalance, epochs, options."""
    get_method(cfg.method.name)
    if cfg.data.protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {cfg.data.protocol!r}; valid protocols: {', '.join(PROTOCOLS)}")
    if cfg.data.dataset != "testbed":
        from ncprobe.data import resolve_name

        resolve_name(cfg.data.dataset)
    if cfg.data.num_shots < 1:
        raise ValueError(f"data.num_shots must be at least 1, got {cfg.data.num_shots}")
    if cfg.data.imbalance_ratio < 1:
        raise ValueError(f"data.imbalance_ratio must be >= 1 (n_max/n_min), got {cfg.data.imbalance_ratio}")
    if cfg.data.imbalance_profile not in ("exp", "step"):
        raise ValueError(f"data.imbalance_profile must be 'exp' or 'step', got {cfg.data.imbalance_profile!r}")
    if cfg.data.augment_views < 0:
        raise ValueError(f"data.augment_views must be >= 0, got {cfg.data.augment_views}")
    if not cfg.seeds:
        raise ValueError("seeds is empty")
    for key in ("epochs", "batch_size"):
        value = getattr(cfg.optim, key)
        if value is not None and value < (0 if key == "epochs" else 1):
            raise ValueError(f"optim.{key} must be {'>= 0' if key == 'epochs' else '>= 1'}, got {value}")
    if cfg.optim.lr is not None and cfg.optim.lr < 0:
        raise ValueError(f"optim.lr must be >= 0, got {cfg.optim.lr}")
    if cfg.model.precision not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"model.precision must be fp32, bf16 or fp16, got {cfg.model.precision!r}")
    if cfg.data.class_text != "names" and cfg.data.dataset != "testbed":
        raise ValueError(
            "data.class_text='descriptions' is the embedded testbed's protocol; the CoOp datasets use "
            "their class names in the dataset template"
        )
    if cfg.method.class_specific and cfg.data.protocol != "few_shot":
        raise ValueError(
            f"method.class_specific contexts cannot transfer to other classes: the {cfg.data.protocol} "
            "protocol evaluates unseen classes; use protocol few_shot"
        )
    if cfg.track.every < 1:
        raise ValueError(f"track.every must be >= 1, got {cfg.track.every}")
    names = [reg.name for reg in cfg.regularizers]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(
            f"regularizers {twice} appear more than once; give each name once (its terms are recorded as "
            "loss_<name>_<term> and its facts under its name in result.json)"
        )
    for reg in cfg.regularizers:
        if reg.name not in REGULARIZERS:
            raise ValueError(f"unknown regularizer {reg.name!r}; valid regularizers: {', '.join(sorted(REGULARIZERS))}")
        if not reg.weight >= 0:
            raise ValueError(f"regularizer {reg.name!r}: weight must be >= 0, got {reg.weight}")
        term = build_regularizer(reg.name, reg.options)  # option errors now, before any work
        if "target" in term.needs and not cfg.data.ood_target:
            raise ValueError(
                f"regularizer {reg.name!r} needs an unlabelled target set: set data.ood_target (e.g. testbed-shifted)"
            )
        if term.methods is not None and cfg.method.name not in term.methods:
            raise ValueError(
                f"regularizer {reg.name!r} applies to methods {sorted(term.methods)}, not {cfg.method.name!r}"
            )
        term.check(cfg)


def resolve_config(cfg: TrainConfig) -> TrainConfig:
    """Fill the published defaults (epochs, batch size, learning rate, method options) the config leaves open."""
    validate_config(cfg)
    dataset = None
    if cfg.data.dataset != "testbed":
        from ncprobe.data import resolve_name

        dataset = resolve_name(cfg.data.dataset)
    hp = published(cfg.method.name, cfg.data.protocol, dataset)
    changes: dict[str, Any] = {}
    for key in ("epochs", "batch_size", "lr"):
        if getattr(cfg.optim, key) is None:
            changes[f"optim.{key}"] = getattr(hp, key)
    for key, value in hp.method_options:
        if getattr(cfg.method, key) is None:
            changes[f"method.{key}"] = value
    return cfg.replace(**changes) if changes else cfg


# ------------------------------------------------------------------ folders
def _write_json(path: Path, data: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))


def _prepare_folder(run_dir: Path, cfg: TrainConfig, digest: str, resume: bool) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    existing = run_dir / "config.yaml"
    if existing.is_file():
        old = config_hash(load_config(existing))
        if old != digest:
            raise ValueError(
                f"{run_dir} holds a run of another config (hash {old}, this config {digest}); choose another output_dir"
            )
        if not resume and (latest_checkpoint(run_dir) is not None or (run_dir / "result.json").is_file()):
            raise ValueError(f"{run_dir} already holds this run; pass resume=True to continue it")
    cfg.to_yaml(existing)


def _load_bundle(cfg: TrainConfig, device: torch.device):
    if cfg.model.name == "testbed":
        from ncprobe.testbed import load_testbed

        return load_testbed(cfg.model.testbed_preset, device=device, progress=cfg.progress)
    from ncprobe.models import load_clip

    return load_clip(cfg.model.name, cfg.model.pretrained, device=device)


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
    one = cfg.replace(seeds=[seed])
    digest = config_hash(one)
    if run_dir is not None and info.is_main:
        _prepare_folder(run_dir, one, digest, cfg.resume)
    spec = get_method(cfg.method.name)
    task, model = _task_and_model(cfg, spec, bundle, seed, device)
    regs = [(r.name, float(r.weight), build_regularizer(r.name, r.options)) for r in cfg.regularizers]
    use_bank = spec.frozen_image_features and cfg.feature_bank != "off"
    if cfg.feature_bank == "on" and not spec.frozen_image_features:
        raise ValueError(f"feature_bank='on' needs a frozen, unprompted image tower; {spec.name} prompts it")
    if run_dir is not None and info.is_main:
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
        center=cfg.track.center,
        max_pair_classes=cfg.track.max_pair_classes,
        max_per_class=cfg.track.max_per_class,
        imbalanced=cfg.data.imbalance_ratio > 1,
        config_hash=digest,
        run_dir=run_dir,
        resume=cfg.resume,
        progress=cfg.progress,
        info=info,
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
        Fields left ``None`` take the protocol's published values (:mod:`.protocols`).

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
    cfg = resolve_config(load_config(config))
    info, device = init_distributed(cfg.device)
    bundle = _load_bundle(cfg, device)
    _check_depth(cfg, bundle)
    result = TrainResult(cfg)
    root = Path(cfg.output_dir) if cfg.output_dir else None
    for seed in cfg.seeds:
        run_dir = None if root is None else (root if len(cfg.seeds) == 1 else root / f"seed_{seed}")
        result.runs.append(_run_seed(cfg, int(seed), bundle, device, info, run_dir))
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


def load_run(run_dir: str | Path) -> RunResult:
    """A finished run folder's history and result (no model is loaded)."""
    run_dir = Path(run_dir)
    result_file = run_dir / "result.json"
    if not result_file.is_file():
        raise FileNotFoundError(f"no finished run at {run_dir} (missing {result_file.name})")
    result = json.loads(result_file.read_text())
    return RunResult(int(result["provenance"]["seed"]), load_dataset(run_dir / "history.nc"), result, run_dir)
