"""The optional TensorBoard writer (``track.tensorboard: true``): every history scalar of every epoch.

Off by default, and imported only when a run turns it on, so a run without it never loads TensorBoard. The
event files go into the run folder itself, so ``tensorboard --logdir <sweep>/runs`` shows each run of a sweep under
its run name on one dashboard (``--logdir <output_dir>`` for a single run). A resumed run appends the epochs it
trains. Tags: ``loss/<term>``, ``train/accuracy``, ``train/lr``, ``accuracy/<eval set>`` and ``<metric>/<eval set>``
for every NC scalar the epoch tracked (the ``history.nc`` variables of the same names).
"""

from __future__ import annotations

import math
from pathlib import Path

from .history import EpochRecord

__all__ = ["HistoryWriter", "open_writer", "tensorboard_problem"]


def tensorboard_problem(output_dir: str | None) -> str | None:
    """Why ``track.tensorboard`` cannot be honoured (no run folder, no ``tensorboard`` package), or ``None``."""
    if not output_dir:
        return "track.tensorboard writes into the run folder: pass --output_dir DIR, or --track.tensorboard false"
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return "track.tensorboard needs the tensorboard package: pip install 'ncprobe[tensorboard]' (or tensorboard)"
    return None


def open_writer(run_dir: str | Path) -> HistoryWriter:
    """A :class:`HistoryWriter` into ``run_dir`` (TensorBoard is imported here, not before)."""
    return HistoryWriter(run_dir)


class HistoryWriter:
    """Writes each :class:`~.history.EpochRecord`'s scalars to TensorBoard event files in ``run_dir``."""

    def __init__(self, run_dir: str | Path):
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(run_dir))

    def _add(self, tag: str, value: float, epoch: int) -> None:
        if value is not None and math.isfinite(float(value)):
            self._writer.add_scalar(tag, float(value), epoch)

    def write(self, rec: EpochRecord) -> None:
        """Log one epoch: losses, training accuracy and learning rate, accuracy and NC scalars per evaluation set."""
        for name, value in rec.losses.items():
            self._add(f"loss/{name}", value, rec.epoch)
        self._add("train/accuracy", rec.train_accuracy, rec.epoch)
        self._add("train/lr", rec.lr, rec.epoch)
        for eval_set, value in rec.accuracy.items():
            self._add(f"accuracy/{eval_set}", value, rec.epoch)
        for metric, per_set in rec.scalars.items():
            for eval_set, value in per_set.items():
                self._add(f"{metric}/{eval_set}", value, rec.epoch)
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self._writer.close()
