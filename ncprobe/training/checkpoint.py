"""Checkpoints: written atomically after every epoch, and what a resumed run continues from.

``checkpoints/epoch_NNNN.pt`` holds the trainable parameters (the prompt learner's ``state_dict``, which
excludes the per-class token buffers, so it loads into learners for other class names), the optimizer and
regularizer states, the history records so far, the random-number states and the config hash. A run killed
at any point — mid-epoch included — resumes from the last complete epoch; since each epoch's batch order is
drawn from a generator seeded by ``(seed, epoch)`` and the random states are restored, the resumed run ends
with exactly the result of an uninterrupted one.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import torch

from ncprobe._io import atomic_path

__all__ = [
    "CHECKPOINT_DIR",
    "checkpoint_path",
    "latest_checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "rng_state",
    "set_rng_state",
]

CHECKPOINT_DIR = "checkpoints"
_PATTERN = re.compile(r"^epoch_(\d{4,})\.pt$")


def checkpoint_path(run_dir: str | Path, epoch: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"epoch_{int(epoch):04d}.pt"


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint of the highest completed epoch in ``run_dir``, or ``None``."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _PATTERN.match(p.name))]
    return max(found)[1] if found else None


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, state: dict) -> None:
    """``torch.save`` through a temporary file renamed into place."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, *, config_hash: str | None = None) -> dict:
    """Load a checkpoint; refuses a missing file, a damaged file, and one from another config (naming it)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # pickle/zip errors of a truncated or foreign file
        raise ValueError(f"{path} is not a readable ncprobe checkpoint: {type(err).__name__}: {err}") from None
    if not isinstance(state, dict) or "config_hash" not in state:
        raise ValueError(f"{path} is not an ncprobe checkpoint")
    if config_hash is not None and state["config_hash"] != config_hash:
        raise ValueError(
            f"{path} was written by a run with another config (hash {state['config_hash']}, this config {config_hash})"
        )
    return state
