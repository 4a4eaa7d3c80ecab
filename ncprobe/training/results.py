"""What a training run returns: :class:`TrainResult` (all seeds) and :class:`RunResult` (one seed).

Both print in a few lines (the run folder, the final accuracy per evaluation set, the harmonic mean of base and
novel where both exist, the seeds), never the model or the history. :func:`summarize` turns a history into
mean ± std tables over seeds; :func:`load_run` reads a finished run folder back.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

from ncprobe.core.report import load_dataset

from .config import TrainConfig

__all__ = ["RunResult", "TrainResult", "stack_seeds", "summarize", "load_run"]


@dataclass
class RunResult:
    """One seed's run: its history, final metrics, folder and (in memory only) the trained model."""

    seed: int
    history: xr.Dataset
    result: dict
    run_dir: Path | None
    model: torch.nn.Module | None = None

    def __repr__(self) -> str:
        final = self.result.get("final", {})
        return f"RunResult(seed={self.seed}, {_metrics_text(final)}, run_dir={_dir_text(self.run_dir)})"


@dataclass
class TrainResult:
    """The result of :func:`train`: ``history`` (stacked along ``seed`` when several seeds ran)."""

    config: TrainConfig
    runs: list[RunResult] = field(default_factory=list)

    def __repr__(self) -> str:
        cfg = self.config
        head = f"TrainResult({cfg.method.name} on {cfg.data.dataset} {cfg.data.protocol}"
        if cfg.regularizers:
            head += " + " + "+".join(r.name for r in cfg.regularizers)
        seeds = [r.seed for r in self.runs]
        if len(self.runs) == 1:
            run = self.runs[0]
            final = _metrics_text(run.result.get("final", {}))
            return f"{head}, seed={run.seed}, {final}, run_dir={_dir_text(run.run_dir)})"
        lines = [f"{head}, seeds={seeds}, output_dir={_dir_text(cfg.output_dir)}"]
        lines += [f"  {r!r}" for r in self.runs]
        return "\n".join(lines) + ")"

    @property
    def history(self) -> xr.Dataset:
        if len(self.runs) == 1:
            return self.runs[0].history
        return stack_seeds([r.history for r in self.runs], [r.seed for r in self.runs])

    def summary(self) -> pd.DataFrame:
        """Final values as mean ± std over seeds (see :func:`summarize`)."""
        return summarize(self.history)


def _metrics_text(final: dict) -> str:
    """``epoch E, accuracy base 0.812 novel 0.701, hm 0.752`` from a result's ``final`` block."""
    acc = " ".join(f"{k} {_num(v)}" for k, v in final.get("accuracy", {}).items())
    text = f"epoch {final.get('epoch')}, accuracy {acc or '-'}"
    return text + (f", hm {_num(final['hm'])}" if "hm" in final else "")


def _num(value: Any) -> str:
    return "nan" if value is None or not math.isfinite(float(value)) else f"{float(value):.4f}"


def _dir_text(path: Any) -> str:
    return "None (no files)" if path is None else repr(str(path))


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


def load_run(run_dir: str | Path) -> RunResult:
    """A finished run folder's history and result (no model is loaded)."""
    run_dir = Path(run_dir)
    result_file = run_dir / "result.json"
    if not result_file.is_file():
        raise FileNotFoundError(f"no finished run at {run_dir} (missing {result_file.name})")
    result = json.loads(result_file.read_text())
    return RunResult(int(result["provenance"]["seed"]), load_dataset(run_dir / "history.nc"), result, run_dir)
