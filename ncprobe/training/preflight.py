"""The checks of a run outside its config: the data folders, the weights and the run folders.

Part of the validation step (:func:`~.validation.check_run`); each function returns its problems as lines, in
command-line words, and reads without writing:

* :func:`dataset_problems` — ``data.root``, each dataset folder the run reads and its ``split_zhou_<Name>.json``
  (unless ``data.create_split``);
* :func:`weights_problem` — ``model.pretrained``: an existing file, a cached tag, or a download that can start.
  With ``HF_HUB_OFFLINE`` set, or when one TCP connection to the weights' host does not open within 2 s, it
  fails at once instead of letting the Hub client retry for about a minute;
* :func:`folder_problems` — another config's work in a run folder (a checkpoint, a history or a result; a bare
  ``config.yaml`` is no work and is replaced), the same run without ``resume``, a resumed checkpoint of
  another config; for several seeds the root folder too, and for one seed the ``seed_<s>/`` folders of a
  multi-seed run.
"""

from __future__ import annotations

from pathlib import Path

from ncprobe.data import BENCHMARK_11, DATASETS, DG_TARGETS, resolve_name
from ncprobe.models.clip import hf_offline, network_reachable, pretrained_download

from .checkpoint import latest_checkpoint, load_checkpoint
from .config import TESTBED_V3_DATASETS, TrainConfig, config_hash, load_config

__all__ = [
    "dataset_problems",
    "weights_problem",
    "folder_problems",
    "run_folder_problems",
    "run_dirs",
    "seed_config",
    "holds_work",
]


def _canonical(name: str) -> str | None:
    try:
        return resolve_name(name)
    except ValueError:
        return None


def dataset_problems(cfg: TrainConfig) -> list[str]:
    """The data folders a run of ``cfg`` reads: ``data.root``, the dataset folder and its split file, each target's
    and the ``ood_target``'s folder (read-only checks: nothing is listed or rebuilt)."""
    d, out = cfg.data, []
    if d.dataset.startswith("testbed") or d.dataset in TESTBED_V3_DATASETS:
        return out  # embedded (an unknown testbed-like name is validate_config's to report)
    if d.root is None:
        out.append(
            f"data.root is required for dataset {d.dataset!r}: pass --data.root DIR, the folder holding the CoOp "
            "datasets (CoOp's $DATA)"
        )
        return out
    root = Path(d.root).expanduser()
    if not root.is_dir():
        out.append(f"data.root {root} is not a folder: pass --data.root DIR, the folder holding the CoOp datasets")
        return out
    names = [d.dataset]
    if d.protocol in ("cross_dataset", "domain_generalization"):
        source = _canonical(d.dataset)
        default = BENCHMARK_11 if d.protocol == "cross_dataset" else DG_TARGETS
        names += list(d.targets) or [t for t in default if t != source]
    if d.ood_target:
        names.append(d.ood_target)
    for name in dict.fromkeys(names):
        canonical = _canonical(name)
        if canonical is None:  # an unknown name: validate_config reports it
            continue
        spec = DATASETS[canonical]
        folder = root / spec.folder
        if not folder.is_dir():
            out.append(
                f"{spec.name} dataset folder not found: expected {folder} (data.root must be the folder that "
                f"contains {spec.folder}/; the layouts are in CoOp's DATASETS.md)"
            )
            continue
        split = f"split_zhou_{spec.name}.json"
        if split in spec.layout and not (folder / split).is_file() and not d.create_split:
            out.append(
                f"split file not found: expected {folder / split}; download it (links in CoOp's DATASETS.md), or pass "
                "--data.create_split true to rebuild a split from the raw annotations (not the published split)"
            )
    return out


def weights_problem(model_name: str, pretrained: str | None) -> str | None:
    """Why ``model.pretrained`` cannot be loaded now (in command-line words), or ``None``: an unknown tag or
    missing file; or weights that must be downloaded while ``HF_HUB_OFFLINE`` is set or the host is unreachable
    (checked with one TCP connection, not the Hub client's minute of retries)."""
    if model_name == "testbed":
        return None
    try:
        need = pretrained_download(model_name, pretrained)
    except (ValueError, FileNotFoundError) as err:
        return f"model.pretrained: {err}"
    if need is None:
        return None
    source, url = need
    if hf_offline():
        why = "HF_HUB_OFFLINE is set"
    elif not network_reachable(url):
        why = f"no network reaches {url}"
    else:
        return None
    return (
        f"the weights {pretrained!r} of {model_name!r} are not in the local cache and {why}: download them on a "
        f"machine with internet ({source}), copy the checkpoint file here and pass --model.pretrained PATH "
        "(model.pretrained: PATH in YAML)"
    )


def run_dirs(cfg: TrainConfig) -> list[tuple[int, Path | None]]:
    """Each seed with its run folder: ``output_dir`` for one seed, ``output_dir/seed_<s>`` for several."""
    root = Path(cfg.output_dir) if cfg.output_dir else None
    if root is None:
        return [(int(s), None) for s in cfg.seeds]
    return [(int(s), root if len(cfg.seeds) == 1 else root / f"seed_{s}") for s in cfg.seeds]


def seed_config(cfg: TrainConfig, seed: int) -> tuple[TrainConfig, str]:
    """One seed's config and its hash (the identity recorded in its folder and checkpoints)."""
    one = cfg.replace(seeds=[seed])
    return one, config_hash(one)


def holds_work(run_dir: Path) -> bool:
    """Whether a run folder holds a checkpoint, a history or a finished result (a bare ``config.yaml`` is no
    work)."""
    return (
        latest_checkpoint(run_dir) is not None
        or (run_dir / "result.json").is_file()
        or (run_dir / "history.nc").is_file()
    )


def run_folder_problems(run_dir: Path, cfg: TrainConfig, resume: bool) -> list[str]:
    """The problems of writing the run of ``cfg`` (one seed's config, or a multi-seed run's whole config for its
    root folder) into ``run_dir``: a file there, another config's work, the same run without ``resume``, a resumed
    checkpoint of another config."""
    if run_dir.exists() and not run_dir.is_dir():
        return [f"output_dir {run_dir} is a file, not a folder: choose another --output_dir"]
    existing = run_dir / "config.yaml"
    if not existing.is_file() or not holds_work(run_dir):
        return []
    digest = config_hash(cfg)
    try:
        old = config_hash(load_config(existing))
    except (ValueError, OSError) as err:
        return [f"{existing}: {err}"]
    if old != digest:
        return [
            f"{run_dir} holds a run of another config (hash {old}, this config {digest}); choose another --output_dir"
        ]
    if len(cfg.seeds) > 1:  # a multi-seed root: each seed's folder decides whether the run continues
        return []
    if not resume:
        return [
            f"{run_dir} already holds this run; pass --resume true (resume=True in Python) to continue it, "
            "or choose another --output_dir"
        ]
    if (last := latest_checkpoint(run_dir)) is not None:
        try:
            load_checkpoint(last, config_hash=digest)
        except (ValueError, OSError) as err:
            return [str(err)]
    return []


def _seed_folders_with_work(root: Path) -> list[str]:
    return sorted(p.name for p in root.glob("seed_*") if p.is_dir() and holds_work(p))


def folder_problems(cfg: TrainConfig) -> list[str]:
    """The run folders of the resolved ``cfg``: another config's work is refused, the same run continues only
    with ``resume``, and a resumed checkpoint must come from this config. With several seeds the root folder (its
    ``config.yaml`` and stacked ``history.nc``) is checked too; a single-seed run is refused in a folder whose
    ``seed_<s>/`` folders hold a multi-seed run's work."""
    out: list[str] = []
    if cfg.output_dir and len(cfg.seeds) > 1:
        out.extend(run_folder_problems(Path(cfg.output_dir), cfg, cfg.resume))
    elif cfg.output_dir and Path(cfg.output_dir).is_dir() and (seeds := _seed_folders_with_work(Path(cfg.output_dir))):
        out.append(
            f"{cfg.output_dir} holds a multi-seed run ({', '.join(seeds)}); a single-seed run there would overwrite "
            "its config.yaml and history.nc: choose another --output_dir"
        )
    if out and "is a file, not a folder" in out[0]:
        return out
    for seed, run_dir in run_dirs(cfg):
        if run_dir is not None:
            out.extend(run_folder_problems(run_dir, seed_config(cfg, seed)[0], cfg.resume))
    return out
