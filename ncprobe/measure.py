"""``ncprobe.measure``: every neural-collapse metric of a set of features in one call."""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import numpy as np
import torch
import xarray as xr

from . import crossmodal, metrics
from .compute import compute_statistics
from .decisions import DecisionStatistics
from .metrics import SingletonClassWarning, default_pinv_rtol
from .report import NCReport
from .statistics import ClassStatistics

__all__ = ["measure", "count_groups"]


def count_groups(counts: Any, *, fractions: tuple[float, float] = (1 / 3, 1 / 3)) -> np.ndarray:
    """Head / medium / tail labels from per-class sample counts.

    Classes are ranked by count (ties broken by class order); the first ``fractions[0]`` of the
    ranking is ``"head"``, the next ``fractions[1]`` ``"medium"``, the rest ``"tail"``.

    >>> count_groups([100, 5, 50, 10, 80, 1]).tolist()
    ['head', 'tail', 'medium', 'medium', 'head', 'tail']
    """
    counts = np.asarray(counts)
    c = len(counts)
    order = np.argsort(-counts, kind="stable")
    n_head = int(round(fractions[0] * c))
    n_med = int(round(fractions[1] * c))
    out = np.empty(c, dtype=object)
    out[order[:n_head]] = "head"
    out[order[n_head:n_head + n_med]] = "medium"
    out[order[n_head + n_med:]] = "tail"
    return out.astype(str)


def _resolve_groups(groups: Any, stats: ClassStatistics) -> np.ndarray | None:
    if groups is None:
        return None
    if isinstance(groups, str):
        if groups != "counts":
            raise ValueError(f"groups must be 'counts', a per-class sequence or a mapping, got {groups!r}")
        return count_groups(stats.counts.cpu().numpy())
    if isinstance(groups, Mapping):
        missing = [c for c in stats.class_ids.tolist() if c not in groups]
        if missing:
            raise ValueError(f"groups mapping has no entry for classes {missing[:10]}")
        return np.asarray([str(groups[c]) for c in stats.class_ids.tolist()])
    arr = np.asarray(groups).astype(str)
    if arr.shape != (stats.num_classes,):
        raise ValueError(f"groups must have one entry per class ({stats.num_classes}), got shape {arr.shape}")
    return arr


def measure(features: Any, labels: Any = None, *, text_features: Any = None, classifier: Any = None,
            groups: Any = None, center: bool = True, class_names: Any = None,
            decisions: DecisionStatistics | None = None, precision: str = "float64", backend: str = "auto",
            pinv_rtol: float | None = None, device: Any = None, progress: bool = False) -> NCReport:
    """Measure neural collapse of ``features`` (and, for a V-L model, of its class text embeddings).

    Parameters
    ----------
    features:
        (N, D) image features — numpy array or torch tensor, any device, float16/bfloat16/float32/
        float64 — or a :class:`ClassStatistics` accumulated over a stream (then NC4 needs
        ``decisions``, a :class:`DecisionStatistics` from a second pass).
    labels:
        (N,) integer labels. Non-contiguous labels are mapped; the originals label the ``class``
        coordinate.
    text_features:
        (C, D) class text embeddings in class order (sorted label order). Enables the ``t2i_``
        metrics and, when ``classifier`` is not given, serves as the classifier W (L2-normalised rows,
        the CLIP zero-shot rule) for NC3/NC4.
    classifier:
        (C, D) classifier weights W, or ``(W, b)``.
    groups:
        ``"counts"`` (head/medium/tail thirds by class count, :func:`count_groups`), a per-class
        sequence of group names, or a ``{class_label: group}`` mapping.
    center:
        Cross-modal convention (see :mod:`ncprobe.crossmodal`): ``True`` (default) compares centred
        text embeddings with centred image class means; ``False`` the raw ones. NC1–NC4 always use
        means centred on μ_G, as defined.
    class_names:
        Optional names per class (in class order) stored as a coordinate.
    precision, backend:
        See :func:`ncprobe.compute.compute_statistics`.
    pinv_rtol:
        Pseudo-inverse tolerance for NC1 (default ``max(C, D)·eps``).

    Returns
    -------
    NCReport
        Scalars under stable names — ``nc1``, ``nc1_quotient``, ``cdnv``, ``nc2_equinorm``,
        ``nc2_equiangularity``, ``nc2_max_angle``, ``nc2_max_cosine``, ``nc2_etf_error``,
        ``ncc_accuracy``; with a classifier (or text features): ``nc3_self_duality``,
        ``nc3_duality_gram``, ``nc4_ncc_agreement``, ``classifier_accuracy``; with text features:
        ``t2i_text_etf_error``, ``t2i_self_duality``, ``t2i_cross_etf_error``, ``t2i_ncc_agreement``,
        ``t2i_zero_shot_accuracy``, ``t2i_modality_gap`` — plus per-class, per-pair and per-group
        variables. Conventions: μ_G is the unweighted mean of class means; Σ_W is sample-weighted;
        standard deviations use ddof = 0 (see :mod:`ncprobe.metrics`).

    Examples
    --------
    >>> from ncprobe.synthetic import make_collapse
    >>> data = make_collapse(num_classes=5, dim=16, samples_per_class=40, noise=0.1, seed=0)
    >>> report = measure(data.features, data.labels, classifier=data.classifier)
    >>> report["nc4_ncc_agreement"]
    1.0
    """
    if isinstance(features, ClassStatistics):
        if labels is not None:
            raise TypeError("pass labels only with raw features, not with ClassStatistics")
        stats, dec = features, decisions
        stats._require_data()
    else:
        if labels is None:
            raise TypeError("labels are required with raw features")
        if decisions is not None:
            raise TypeError("decisions are only used with ClassStatistics input")
        clfs: dict[str, Any] = {}
        if classifier is not None:
            clfs["classifier"] = classifier
        if text_features is not None:
            clfs["text"] = crossmodal.normalize_rows(text_features)
        stats, dec = compute_statistics(features, labels, classifiers=clfs or None, precision=precision,
                                        backend=backend, device=device, progress=progress)
    return _assemble(stats, dec, text_features=text_features, classifier=classifier, groups=groups,
                     center=center, class_names=class_names, precision=precision, pinv_rtol=pinv_rtol)


def _assemble(stats: ClassStatistics, dec: DecisionStatistics | None, *, text_features: Any, classifier: Any,
              groups: Any, center: bool, class_names: Any, precision: str, pinv_rtol: float | None) -> NCReport:
    present = (stats.counts > 0).cpu().numpy()
    singletons = stats.class_ids[(stats.counts == 1).cpu().numpy()].tolist()
    if singletons:
        warnings.warn(f"classes {singletons} have a single sample and are excluded from NC1, NC1 quotient "
                      "and CDNV", SingletonClassWarning, stacklevel=3)
    w = classifier
    if isinstance(w, tuple):
        w = w[0]
    if w is None and text_features is not None:
        w = crossmodal.prepare_text(text_features, stats)
    scalars: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingletonClassWarning)
        if stats.scatter is not None or stats.projected_scatter is not None:
            scalars["nc1"] = metrics.nc1(stats, pinv_rtol=pinv_rtol)
        scalars["nc1_quotient"] = metrics.nc1_quotient(stats)
        pairs = metrics.cdnv_pairs(stats)
        scalars["cdnv"] = metrics.mean_over_pairs(pairs)
        variances = metrics.class_variances(stats)
    scalars.update(metrics.nc2_values(stats))
    if w is not None:
        scalars["nc3_self_duality"] = metrics.nc3_self_duality(w, stats)
        scalars["nc3_duality_gram"] = metrics.nc3_duality_gram(w, stats)
    per_class: dict[str, np.ndarray] = {
        "class_count": stats.counts.cpu().numpy(),
        "class_variance": variances,
        "class_mean_norm": metrics.class_mean_norms(stats),
    }
    if dec is not None:
        n = float(dec.counts.sum())
        rates = dec.rates()
        scalars["ncc_accuracy"] = float(dec.ncc_correct.sum()) / n
        per_class["class_ncc_accuracy"] = rates["ncc_accuracy"]
        clf_name = "classifier" if "classifier_correct" in dec.tallies else (
            "text" if "text_correct" in dec.tallies else None)
        if clf_name is not None:
            scalars["nc4_ncc_agreement"] = float(dec.tallies[f"{clf_name}_ncc_agree"].sum()) / n
            scalars["classifier_accuracy"] = float(dec.tallies[f"{clf_name}_correct"].sum()) / n
            per_class["class_nc4_agreement"] = rates[f"{clf_name}_ncc_agreement"]
            per_class["class_classifier_accuracy"] = rates[f"{clf_name}_accuracy"]
    if text_features is not None:
        scalars["t2i_text_etf_error"] = crossmodal.text_etf_error(
            crossmodal.prepare_text(text_features, stats)[torch.as_tensor(present)], center=center)
        scalars["t2i_self_duality"] = crossmodal.text_self_duality(text_features, stats, center=center)
        scalars["t2i_cross_etf_error"] = crossmodal.cross_etf_error(text_features, stats, center=center)
        if dec is not None and "text_correct" in dec.tallies:
            n = float(dec.counts.sum())
            scalars["t2i_ncc_agreement"] = float(dec.text_ncc_agree.sum()) / n
            scalars["t2i_zero_shot_accuracy"] = float(dec.text_correct.sum()) / n
            per_class["class_t2i_zero_shot_accuracy"] = dec.rates()["text_accuracy"]
        scalars["t2i_modality_gap"] = crossmodal.modality_gap(text_features, stats)
        per_class["class_t2i_alignment"] = crossmodal.class_alignment(text_features, stats, center=center)

    coords: dict[str, Any] = {"class": stats.class_ids, "class_other": stats.class_ids}
    if class_names is not None:
        names = np.asarray(class_names).astype(str)
        if names.shape != (stats.num_classes,):
            raise ValueError(f"class_names must have one entry per class ({stats.num_classes}), got {names.shape}")
        coords["class_name"] = ("class", names)
    group_labels = _resolve_groups(groups, stats)
    if group_labels is not None:
        coords["class_group"] = ("class", group_labels)
    data_vars: dict[str, Any] = {k: ((), float(v)) for k, v in scalars.items()}
    data_vars.update({k: (("class",), np.asarray(v, dtype=np.float64)) for k, v in per_class.items()})
    data_vars["cdnv_pairs"] = (("class", "class_other"), pairs)
    ds = xr.Dataset(data_vars, coords=coords)
    if group_labels is not None:
        ds = _add_group_variables(ds, group_labels)
    ds.attrs.update({
        "n_samples": stats.n_samples, "num_classes": int(present.sum()), "dim": stats.dim,
        "center": bool(center), "precision": precision,
        "pinv_rtol": float(pinv_rtol) if pinv_rtol is not None else default_pinv_rtol(int(present.sum()), stats.dim),
        "global_mean": "unweighted mean of class means", "within_covariance": "sample-weighted, ddof=0",
        "singleton_classes": [str(s) for s in singletons],
        "classifier": "given" if classifier is not None else ("text" if text_features is not None else "none"),
    })
    return NCReport(ds)


def _add_group_variables(ds: xr.Dataset, group_labels: np.ndarray) -> xr.Dataset:
    """Per-group aggregates: sample-weighted accuracies, class-averaged variances and norms."""
    order = list(dict.fromkeys(["head", "medium", "tail"] + sorted(set(group_labels))))
    names = [g for g in order if g in set(group_labels)]
    counts = ds["class_count"].values
    out: dict[str, list[float]] = {"group_num_classes": [], "group_count": []}
    for g in names:
        m = group_labels == g
        out["group_num_classes"].append(float(m.sum()))
        out["group_count"].append(float(counts[m].sum()))
        for var in ds.data_vars:
            if ds[var].dims != ("class",) or var == "class_count":
                continue
            vals = ds[var].values[m]
            key = "group_" + var.removeprefix("class_")
            if var.endswith("accuracy") or var.endswith("agreement"):
                ok = ~np.isnan(vals)
                value = float((vals[ok] * counts[m][ok]).sum() / max(counts[m][ok].sum(), 1)) if ok.any() else np.nan
            else:
                value = float(np.nanmean(vals)) if np.any(~np.isnan(vals)) else np.nan
            out.setdefault(key, []).append(value)
    return ds.assign_coords(group=names).assign({k: (("group",), np.asarray(v)) for k, v in out.items()})
