"""Sweeps: a grid of training runs on Slurm, local GPUs/CPUs or in this process, through submitit.

``ncprobe.sweep(spec)`` / ``ncprobe sweep --spec sweep.yaml``: one folder per run under ``<sweep>/runs/``, named
from what differs and keyed by the engine's config hash; finished runs are skipped, killed runs resume (the
engine's exact resume), a folder holding another config is an error before anything is launched. See
``docs/sweeps.md``. The package itself is callable: ``ncprobe.sweep(spec)`` is :func:`sweep`.
"""

from __future__ import annotations

import sys
import types

from .api import STATES, SweepPlan, plan_sweep, sweep, sweep_status
from .grid import GridRun, check_grid, expand_grid
from .spec import ExecutorSpec, SweepSpec, load_spec

__all__ = [
    "STATES",
    "ExecutorSpec",
    "GridRun",
    "SweepPlan",
    "SweepSpec",
    "check_grid",
    "expand_grid",
    "load_spec",
    "plan_sweep",
    "sweep",
    "sweep_status",
]


class _SweepModule(types.ModuleType):
    """``ncprobe.sweep`` is this package and, called, :func:`~.api.sweep`: ``ncprobe.sweep("sweep.yaml")`` runs a
    sweep while ``ncprobe.sweep.sweep_status`` and the other names stay reachable (a package named like the function
    would otherwise hide it)."""

    def __call__(self, spec, **options):
        """Run :func:`~.api.sweep` on ``spec``."""
        return sweep(spec, **options)


sys.modules[__name__].__class__ = _SweepModule
