"""Prompt tuning with per-epoch neural-collapse tracking: ``ncprobe.train(config)``.

* :func:`train` / :class:`TrainConfig` (:mod:`.config`) — one typed config tree (dict and YAML too);
* :data:`METHODS` (:mod:`.methods`) — zero-shot CLIP, CoOp, CoCoOp, MaPLe, IVLP;
* :data:`REGULARIZERS` (:mod:`.regularizers`) — loss terms that plug into any method;
* :data:`PRESETS` (:mod:`.presets`) — embedded-testbed runs and the published paper settings;
* :func:`evaluate` — evaluate a trained run folder (never trains).

Every public name is imported on first use (module ``__getattr__``, as in :mod:`ncprobe`), so importing
``ncprobe.training.cli`` or ``ncprobe.training.config`` — the help, the config parsing and its errors — loads
only the config tree, never torch, open_clip or transformers.

See ``docs/training.md`` for the engine, the protocols and each deliberate difference from the original code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Public name → the module that defines it.
_EXPORTS: dict[str, str] = {
    "METHODS": "ncprobe.training.methods",
    "PRESETS": "ncprobe.training.presets",
    "REGULARIZERS": "ncprobe.training.regularizers",
    "ConfigError": "ncprobe.training.validation",
    "Regularizer": "ncprobe.training.regularizers",
    "RunResult": "ncprobe.training.api",
    "TrainConfig": "ncprobe.training.config",
    "TrainResult": "ncprobe.training.api",
    "TrainingDivergedError": "ncprobe.training.loop",
    "evaluate": "ncprobe.training.api",
    "get_preset": "ncprobe.training.presets",
    "load_config": "ncprobe.training.config",
    "load_run": "ncprobe.training.api",
    "register_regularizer": "ncprobe.training.regularizers",
    "resolve_config": "ncprobe.training.api",
    "summarize": "ncprobe.training.api",
    "train": "ncprobe.training.api",
    "validate_config": "ncprobe.training.api",
}

__all__ = [
    "ConfigError",
    "METHODS",
    "PRESETS",
    "REGULARIZERS",
    "Regularizer",
    "RunResult",
    "TrainConfig",
    "TrainResult",
    "TrainingDivergedError",
    "evaluate",
    "get_preset",
    "load_config",
    "load_run",
    "register_regularizer",
    "resolve_config",
    "summarize",
    "train",
    "validate_config",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ncprobe.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - static analysers see the real names
    from .api import RunResult, TrainResult, evaluate, load_run, resolve_config, summarize, train, validate_config
    from .config import TrainConfig, load_config
    from .loop import TrainingDivergedError
    from .methods import METHODS
    from .presets import PRESETS, get_preset
    from .regularizers import REGULARIZERS, Regularizer, register_regularizer
    from .validation import ConfigError
