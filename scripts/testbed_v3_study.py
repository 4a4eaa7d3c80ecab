"""The measurements behind the v3 testbed's data card (``data_cards/embedded_benchmark.md``, "v3: goals").

Every run goes through :func:`ncprobe.train`; each row of the output (JSON lines, one per run and prompt seed) holds
the condition, task, tower seed, prompt seed, base/novel accuracy and HM, the base set's text-to-image ETF errors
and head/medium/tail accuracy. The file is appended run by run and rows already present are skipped, so an
interrupted study continues where it stopped.

Two stages:

* ``select`` — hyper-parameters on the **validation** split (``data.eval_split=val``): CoOp's learning rate and
  number of full-batch steps, and the regularizers' weights. Never the test split.
* ``goals`` — the goals on the **test** split with the presets' (selected) values: zero-shot, CoOp at ρ = 1 / 4 /
  16 at a fixed total shot budget (:func:`ncprobe.data.budget_matched_shots`), KgCoOp, NPT (both families) and
  Craft.

Usage::

    python scripts/testbed_v3_study.py goals --out data_cards/results/testbed_v3_goals.jsonl
    python scripts/testbed_v3_study.py select --out /tmp/select.jsonl --conditions coop_lr0.1_e100
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import ncprobe
from ncprobe.data import budget_matched_shots
from ncprobe.testbed.benchmark_v3 import V3_TASKS, base_novel
from ncprobe.training import get_preset

TASKS = tuple(V3_TASKS)
SHOTS = 16


def _ratio_changes(task: str, ratio: float) -> dict:
    n_base = len(base_novel(task)[0])
    return {"data.imbalance_ratio": ratio, "data.num_shots": budget_matched_shots(n_base, shots=SHOTS, ratio=ratio)}


def goal_conditions() -> dict[str, tuple[str, dict]]:
    """Condition name → (preset, changes) of the goals stage (ratio-dependent shots are added per task)."""
    out = {"zeroshot": ("testbed-zeroshot-b2n", {})}
    for rho in (1, 4, 16):
        out[f"coop_r{rho}"] = ("testbed-coop-b2n", {"_ratio": rho})
        out[f"npt_r{rho}"] = ("testbed-coop-npt-b2n", {"_ratio": rho})
        out[f"npt_anchored_r{rho}"] = ("testbed-coop-npt-anchored-b2n", {"_ratio": rho})
        out[f"craft_r{rho}"] = ("testbed-coop-craft-b2n", {"_ratio": rho})
    out["kgcoop_r1"] = ("testbed-kgcoop-b2n", {"_ratio": 1})
    return out


def select_conditions() -> dict[str, tuple[str, dict]]:
    """The validation grid: CoOp's learning rate × full-batch steps."""
    out = {}
    for lr in (0.025, 0.1, 0.4):
        for epochs in (50, 150):
            out[f"coop_lr{lr}_e{epochs}"] = ("testbed-coop-b2n", {"optim.lr": lr, "optim.epochs": epochs})
    return out


def _groups_accuracy(history, eval_set: str = "base") -> dict:
    last = history.isel(epoch=-1)
    acc = last["class_t2i_zero_shot_accuracy"]
    if "eval_set" in acc.dims:
        acc = acc.sel(eval_set=eval_set)
    split = np.asarray(history["class_split"].values)
    groups = np.asarray(history["class_group"].values)
    values = np.asarray(acc.values, dtype=float)
    out = {}
    for g in ("head", "medium", "tail"):
        keep = (split == eval_set) & (groups == g)
        out[f"acc_{g}"] = float(np.nanmean(values[keep])) if keep.any() else None
    out["class_accuracy"] = [None if not np.isfinite(v) else float(v) for v in values[split == eval_set]]
    out["class_group"] = groups[split == eval_set].tolist()
    return out


def _rows(result, meta: dict) -> list[dict]:
    rows = []
    for run in result.runs:
        final = run.result["final"]
        m = final["metrics"]
        rows.append(
            {
                **meta,
                "seed": run.seed,
                "base": final["accuracy"]["base"],
                "novel": final["accuracy"]["novel"],
                "hm": final.get("hm"),
                "text_etf_error": m["t2i_text_etf_error"]["base"],
                "cross_etf_error": m["t2i_cross_etf_error"]["base"],
                "nc1": m["nc1"]["base"],
                "seconds": run.result.get("seconds"),
                **_groups_accuracy(run.history),
            }
        )
    return rows


def run_study(stage: str, out: Path, *, tasks, towers, seeds, conditions=None, split: str | None = None) -> None:
    table = goal_conditions() if stage == "goals" else select_conditions()
    names = list(conditions or table)
    unknown = sorted(set(names) - set(table))
    if unknown:
        raise SystemExit(f"unknown conditions {unknown}; valid: {', '.join(table)}")
    split = split or ("test" if stage == "goals" else "val")
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["condition"], r["task"], r["tower"], r["seed"], r["split"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        preset, changes = table[name]
        for task in tasks:
            for tower in towers:
                todo = [s for s in seeds if (name, task, tower, s, split) not in done]
                if not todo:
                    continue
                ch = {k: v for k, v in changes.items() if not k.startswith("_")}
                if "_ratio" in changes:
                    ch.update(_ratio_changes(task, float(changes["_ratio"])))
                cfg = get_preset(preset).replace(
                    **{
                        "data.dataset": task,
                        "data.eval_split": split,
                        "model.testbed_seed": tower,
                        "seeds": todo,
                        "progress": False,
                        "track.every": 10_000,  # NC at the first and last epoch only (the study reads the last)
                        "track.eval_every": 10_000,  # accuracy likewise
                        **ch,
                    }
                )
                t0 = time.perf_counter()
                result = ncprobe.train(cfg)
                meta = {"condition": name, "task": task, "tower": tower, "split": split, "preset": preset, **ch}
                meta.pop("seeds", None)
                with out.open("a") as fh:
                    for row in _rows(result, meta):
                        fh.write(json.dumps(row, sort_keys=True) + "\n")
                print(f"{name:20s} {task:16s} tower {tower} seeds {todo}: {time.perf_counter() - t0:.0f} s", flush=True)


def main() -> None:
    import torch

    torch.set_num_threads(1)  # several studies share a 2-core machine; one thread each avoids oversubscription
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stage", choices=("select", "goals"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    ap.add_argument("--towers", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    ap.add_argument("--conditions", nargs="+")
    ap.add_argument("--split", choices=("val", "test"))
    args = ap.parse_args()
    run_study(
        args.stage,
        args.out,
        tasks=args.tasks,
        towers=args.towers,
        seeds=args.seeds,
        conditions=args.conditions,
        split=args.split,
    )


if __name__ == "__main__":
    main()
