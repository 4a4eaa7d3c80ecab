"""Prompt tuning with per-epoch neural-collapse tracking: ``ncprobe.train(config)``.

* :func:`train` / :class:`TrainConfig` (:mod:`.config`) — one typed config tree (dict and YAML too);
* :data:`METHODS` (:mod:`.methods`) — zero-shot CLIP, CoOp, CoCoOp, MaPLe, IVLP;
* :data:`REGULARIZERS` (:mod:`.regularizers`) — loss terms that plug into any method;
* :data:`PRESETS` (:mod:`.presets`) — embedded-testbed runs and the published paper settings;
* :func:`evaluate` — evaluate a trained run folder (never trains).

See ``docs/training.md`` for the engine, the protocols and each deliberate difference from the original code.
"""

from .api import RunResult, TrainResult, evaluate, load_run, resolve_config, summarize, train, validate_config
from .config import TrainConfig, load_config
from .loop import TrainingDivergedError
from .methods import METHODS
from .presets import PRESETS, get_preset
from .regularizers import REGULARIZERS, Regularizer, register_regularizer

__all__ = [
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
