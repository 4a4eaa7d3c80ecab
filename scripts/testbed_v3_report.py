"""Tables of the v3 data card from ``scripts/testbed_v3_study.py``'s JSON lines (``ncprobe.stats`` throughout).

Units: a (task, tower seed, prompt seed) triple. "All tasks" rows pair the task-averaged values of each (tower
seed, prompt seed) unit (n = towers × seeds); per-task rows pair the units of one task. Every interval is a 95 %
t interval of the paired differences; ``p_perm`` is the sign-flip permutation test; ``p_holm`` is Holm's
correction across every all-task test of the table.

    python scripts/testbed_v3_report.py data_cards/results/testbed_v3_goals.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ncprobe.stats import holm, paired_difference

KEY = ["task", "tower", "seed"]


def load(path: str | Path) -> pd.DataFrame:
    """The study's rows as a frame (one row per condition and unit), with tail accuracy for every ratio.

    A balanced run has no head/medium/tail groups of its own; its group accuracies use the groups of the ρ = 16 run
    with the same unit (the class order is drawn from the prompt seed, so both rank the classes alike).
    """
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    frame = pd.DataFrame(rows)
    groups = {}
    for r in rows:
        if "r16" in r["condition"] and r["condition"].startswith("coop"):
            groups[(r["task"], r["tower"], r["seed"])] = r["class_group"]
    for g in ("head", "medium", "tail"):
        values = []
        for r in rows:
            labels = groups.get((r["task"], r["tower"], r["seed"]))
            acc = np.array([np.nan if v is None else v for v in r["class_accuracy"]], dtype=float)
            if labels is None or len(labels) != len(acc):
                values.append(np.nan)
                continue
            keep = np.array(labels) == g
            values.append(float(np.nanmean(acc[keep])) if keep.any() else np.nan)
        frame[f"acc_{g}"] = values
    return frame


def _series(frame: pd.DataFrame, condition: str, metric: str, task: str | None) -> pd.Series:
    sub = frame[frame["condition"] == condition]
    if task is not None:
        return sub[sub["task"] == task].set_index(KEY)[metric].sort_index()
    per_unit = sub.groupby(["tower", "seed"])[metric]
    counts = per_unit.count()
    full = counts[counts == frame["task"].nunique()].index  # units with every task of the study present
    return per_unit.mean().loc[full].sort_index()


def compare(frame: pd.DataFrame, a: str, b: str, metric: str, task: str | None = None) -> dict | None:
    """Paired ``a − b`` on ``metric``; ``None`` when either condition is missing."""
    x, y = _series(frame, a, metric, task), _series(frame, b, metric, task)
    common = x.index.intersection(y.index)
    x, y = x.loc[common].astype(float), y.loc[common].astype(float)
    ok = np.isfinite(x.values) & np.isfinite(y.values)
    if ok.sum() < 2:
        return None
    d = paired_difference(x[ok], y[ok], names=(a, b))
    return {
        "comparison": f"{a} − {b}",
        "metric": metric,
        "task": task or "all tasks",
        "n": d.n,
        "mean": d.mean,
        "ci_low": d.ci_low,
        "ci_high": d.ci_high,
        "p_t": d.p_t,
        "p_perm": d.p_perm,
    }


def comparisons(frame: pd.DataFrame) -> list[tuple[str, str, str]]:
    out = [("coop_r1", "zeroshot", m) for m in ("base", "novel", "hm")]
    out += [("coop_r16", "coop_r1", m) for m in ("base", "acc_tail", "text_etf_error", "cross_etf_error")]
    out += [("coop_r4", "coop_r1", m) for m in ("base", "acc_tail", "text_etf_error")]
    out += [("kgcoop_r1", "coop_r1", m) for m in ("base", "novel", "hm")]
    for reg in ("npt", "npt_anchored", "craft"):
        for rho in (1, 4, 16):
            out += [(f"{reg}_r{rho}", f"coop_r{rho}", m) for m in ("base", "novel", "hm")]
    present = set(frame["condition"])
    return [c for c in out if c[0] in present and c[1] in present]


def table(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for a, b, metric in comparisons(frame):
        for task in (None, *sorted(frame["task"].unique())):
            r = compare(frame, a, b, metric, task)
            if r is not None:
                rows.append(r)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    mask = out["task"] == "all tasks"
    adj = holm(out.loc[mask, "p_t"].to_numpy())
    out["p_holm"] = np.nan
    out.loc[mask, "p_holm"] = adj["p_holm"].to_numpy()
    return out


def zero_shot_table(frame: pd.DataFrame) -> pd.DataFrame:
    zs = frame[frame["condition"] == "zeroshot"]
    return zs.groupby(["task", "tower"])[["base", "novel", "hm"]].first().round(4)


def means_table(frame: pd.DataFrame) -> pd.DataFrame:
    cols = ["base", "novel", "hm", "acc_tail", "text_etf_error", "cross_etf_error"]
    g = frame.groupby("condition")
    return g[cols].mean().round(4).join(g["base"].count().rename("runs"))


def _md(df: pd.DataFrame, index: bool = True) -> str:
    """A pipe table (pandas' ``to_markdown`` needs ``tabulate``, which ncprobe does not depend on)."""
    df = df.reset_index() if index else df
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def markdown(frame: pd.DataFrame) -> str:
    parts = ["### Zero-shot (test split)", _md(zero_shot_table(frame)), ""]
    parts += ["### Means over all runs of each condition (test split)", _md(means_table(frame)), ""]
    t = table(frame)
    if not t.empty:
        t = t.assign(
            delta=[f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]" for m, lo, hi in zip(t["mean"], t["ci_low"], t["ci_high"])]
        )
        cols = ["comparison", "metric", "task", "n", "delta", "p_t", "p_perm", "p_holm"]
        fmt = t[cols].copy()
        for c in ("p_t", "p_perm", "p_holm"):
            fmt[c] = [("" if not np.isfinite(v) else f"{v:.2g}") for v in fmt[c]]
        parts += ["### Paired differences (95 % t intervals; Holm across the all-task rows)", _md(fmt, index=False)]
    return "\n".join(parts)


if __name__ == "__main__":
    print(markdown(load(sys.argv[1])))
