"""Synthetic training histories in the layout of ``docs/history.md``, built without training.

Each epoch's reports come from :func:`ncprobe.measure` on :func:`ncprobe.core.synthetic.make_collapse` data
whose within-class noise (and text noise) shrink with the epoch, so the NC metrics fall smoothly; the
``accuracy`` of an evaluation set is its report's ``t2i_zero_shot_accuracy`` (the text classifier's
accuracy, what a V-L model predicts with), ``hm`` their harmonic mean, and the losses decay. The gallery
script (``docs/gallery/make_gallery.py``) uses the same builder.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr

import ncprobe
from ncprobe.core.report import decode_attrs, encode_attrs
from ncprobe.core.synthetic import make_collapse

__all__ = ["make_history", "make_report"]

_DROP = ("class_name", "class_group")


def make_report(
    *,
    num_classes: int = 6,
    dim: int = 16,
    samples_per_class: int = 40,
    noise: float = 1.0,
    text_noise: float = 0.3,
    imbalance: float = 1.0,
    first_label: int = 0,
    groups: bool | None = None,
    cloud: int = 0,
    seed: int = 0,
    names: Sequence[str] | None = None,
) -> ncprobe.NCReport:
    """One report of synthetic collapse data with text features (labels ``first_label …``); head/medium/tail
    groups by count when ``groups`` (default: when the counts differ, ``imbalance > 1``)."""
    groups = imbalance > 1 if groups is None else groups
    d = make_collapse(
        num_classes=num_classes,
        dim=dim,
        samples_per_class=samples_per_class,
        noise=noise,
        text_noise=text_noise,
        imbalance=imbalance,
        seed=seed,
    )
    names = list(names) if names is not None else [f"class {first_label + k}" for k in range(num_classes)]
    return ncprobe.measure(
        d.features,
        d.labels + first_label,
        text_features=d.text_features,
        class_names=names,
        groups="counts" if groups else None,
        cloud=cloud,
    )


def _epoch(e: int, epochs: int, *, base, novel, dim, spc, imbalance, strength, seed) -> xr.Dataset:
    t = e / max(epochs, 1)
    noise = 3.2 * (1 - 0.5 * t)
    text_noise = 0.9 * (1 - strength * t)
    reports = {
        "base": make_report(
            num_classes=base,
            dim=dim,
            samples_per_class=spc,
            noise=noise,
            text_noise=text_noise,
            imbalance=imbalance,
            seed=seed,
        ),
        "novel": make_report(
            num_classes=novel,
            dim=dim,
            samples_per_class=spc // 2,
            noise=noise * 1.4,
            text_noise=text_noise * (1 + 0.4 * np.log(imbalance)) + 0.2,
            first_label=base,
            groups=False,
            seed=seed + 1000,
        ),
    }
    parts = [r.dataset.drop_vars([c for c in _DROP if c in r.dataset.coords]) for r in reports.values()]
    return xr.concat(parts, dim="eval_set", join="outer", combine_attrs="drop").assign_coords(eval_set=list(reports))


def make_history(
    *,
    method: str = "CoOp",
    epochs: int = 5,
    seeds: Sequence[int] | None = None,
    seed: int = 0,
    imbalance_ratio: float = 1.0,
    strength: float = 0.5,
    num_base: int = 6,
    num_novel: int = 4,
    dim: int = 16,
    samples_per_class: int = 40,
) -> xr.Dataset:
    """A base-to-novel history with dims epoch (0…epochs), eval_set (base, novel), class, group (and seed
    when ``seeds`` is given), following ``docs/history.md``.

    ``strength`` (0–1) is how much the text features' noise shrinks over training: a stand-in for a
    regulariser such as NPT that pulls the text features towards an ETF.
    """
    if seeds is not None:
        runs = [
            make_history(
                method=method,
                epochs=epochs,
                seed=s,
                imbalance_ratio=imbalance_ratio,
                strength=strength,
                num_base=num_base,
                num_novel=num_novel,
                dim=dim,
                samples_per_class=samples_per_class,
            )
            for s in seeds
        ]
        out = xr.concat(runs, dim="seed", combine_attrs="drop_conflicts").assign_coords(seed=list(seeds))
        first = decode_attrs(dict(runs[0].attrs))
        out.attrs = encode_attrs({**{k: v for k, v in first.items() if k != "seed"}, "seeds": list(seeds)})
        return out
    per_epoch = [
        _epoch(
            e,
            epochs,
            base=num_base,
            novel=num_novel,
            dim=dim,
            spc=samples_per_class,
            imbalance=imbalance_ratio,
            strength=strength,
            seed=seed,
        )
        for e in range(epochs + 1)
    ]
    ds = xr.concat(per_epoch, dim="epoch", join="outer").assign_coords(epoch=np.arange(epochs + 1))
    n = num_base + num_novel
    counts = ds["class_count"].sel(eval_set="base").isel(epoch=0).values
    groups = ncprobe.assign_groups(np.nan_to_num(counts[:num_base])) if imbalance_ratio > 1 else ["none"] * num_base
    ds = ds.assign_coords(
        class_name=("class", [f"class {k}" for k in range(n)]),
        class_split=("class", ["base"] * num_base + ["novel"] * num_novel),
        class_group=("class", [*list(groups), *["none"] * num_novel]),
        component=np.arange(ds.sizes["component"]),
    )
    acc = ds["t2i_zero_shot_accuracy"]
    b, v = acc.sel(eval_set="base"), acc.sel(eval_set="novel")
    rng = np.random.default_rng(seed)
    steps = np.arange(epochs + 1, dtype=float)
    loss = 2.3 * np.exp(-steps / max(epochs / 2, 1)) + 0.2 + 0.02 * rng.random(epochs + 1)
    loss[0] = np.nan
    ds = ds.assign(
        accuracy=acc.copy(),
        hm=2 * b * v / (b + v),
        loss=("epoch", loss),
        loss_ce=("epoch", loss * 0.9),
        loss_npt_text=("epoch", loss * 0.1 / max(strength, 1e-3)),
        train_accuracy=("epoch", np.r_[np.nan, 1 - loss[1:] / 3]),
        lr=("epoch", 2e-3 * np.cos(np.pi * steps / (2 * max(epochs, 1)))),
    )
    ds["loss_npt_text"].attrs["weight"] = 1.0
    ds["accuracy"].attrs["description"] = "top-1 accuracy, each set among its own classes"
    ds.attrs = encode_attrs(
        {
            "method": method,
            "dataset": "synthetic",
            "protocol": "base2novel",
            "regularizers": ["npt"] if "NPT" in method else [],
            "seed": int(seed),
            "imbalance_ratio": float(imbalance_ratio),
            "config_hash": f"synthetic-{method}-{seed}-{imbalance_ratio}",
            "ncprobe_version": ncprobe.__version__,
            "center": True,
            "normalize_images": False,
        }
    )
    return ds
