"""``ncprobe.measure``: every neural-collapse metric of a set of features in one call.

Data flows one way: the inputs are checked and the statistics computed once (:mod:`.inmemory`, or a
stream's :class:`~ncprobe.ClassStatistics` and :class:`~ncprobe.DecisionStatistics`), then prepared once
(:class:`~.prepared.ClassGeometry`, :class:`~.prepared.ClassEmbeddings` for the classifier and the text),
and these prepared objects are handed to the metric functions. Which metrics are computed follows the
catalog (:mod:`.catalog`): those whose inputs are available, or the ``metrics=`` selection.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import torch

from . import catalog, crossmodal, generalized, metrics
from ._validation import check_features
from .decisions import DecisionStatistics, statistics_fingerprint
from .geometry import center_rows, etf_error_floor, normalize_rows
from .groups import equal_counts_note, group_order, resolve_groups
from .inmemory import compute_statistics
from .prepared import ClassEmbeddings, ClassGeometry, SingletonClassWarning, prepare_classifier, prepare_text
from .projection import geometry_coordinates, sample_cloud
from .report import NCReport, build_dataset
from .statistics import ClassStatistics

__all__ = ["measure"]


@dataclass
class _Inputs:
    """Everything the metrics of one report are computed from, prepared once."""

    geometry: ClassGeometry
    decisions: DecisionStatistics | None
    classifier: ClassEmbeddings | None
    classifier_name: str | None  # its name in the decisions, when they hold it
    classifier_source: str
    text: ClassEmbeddings | None
    text_name: str | None
    ood_mean: torch.Tensor | None
    features: torch.Tensor | None = None  # in-memory features as measured (for the sample cloud)
    labels: Any = None

    def available(self) -> set[str]:
        st = self.geometry.stats
        have = set()
        if st.scatter is not None or st.projected_scatter is not None:
            have.add("scatter")
        if st.scatter is not None:
            have.add("full_scatter")
        if self.classifier is not None:
            have.add("classifier")
        if self.text is not None:
            have.add("text")
        if self.decisions is not None:
            have.add("decisions")
        if self.ood_mean is not None:
            have.add("ood")
        return have


def _find(dec: DecisionStatistics, emb: ClassEmbeddings) -> str | None:
    return next((name for name, e in dec.classifiers.items() if e.same_as(emb)), None)


def _resolve_decisions(
    dec: DecisionStatistics, stats: ClassStatistics, classifier: ClassEmbeddings | None, text: ClassEmbeddings | None
):
    """Match given decisions to the statistics, the classifier and the text (see :func:`measure`)."""
    if not isinstance(dec, DecisionStatistics):
        raise TypeError(f"decisions must be DecisionStatistics, got {type(dec).__name__}")
    if dec.source != statistics_fingerprint(stats):
        raise ValueError(
            "decisions were made against other class statistics (their class means differ); "
            "build DecisionStatistics from the same ClassStatistics passed to measure"
        )
    rules = {n: e for n, e in dec.classifiers.items() if e.role == "classifier"}
    texts = {n: e for n, e in dec.classifiers.items() if e.role == "text"}
    clf_name = source = None
    if classifier is not None:
        clf_name = _find(dec, classifier)
        if clf_name is None and rules:
            raise ValueError(
                f"decisions were made with classifiers {sorted(rules)}, none of which is the "
                "classifier passed to measure (NC3 and NC4 must describe the same classifier)"
            )
    elif len(rules) == 1:
        clf_name = next(iter(rules))
        classifier, source = rules[clf_name], f"decisions:{clf_name}"
    elif len(rules) > 1:
        raise ValueError(
            f"decisions hold several classifiers {sorted(rules)}; pass classifier= to choose the "
            "one that NC3/NC4 describe"
        )
    text_name = None
    if text is not None:
        text_name = _find(dec, text)
        if text_name is None and texts:
            raise ValueError("decisions were made with other text embeddings than the text_features passed")
    elif texts:
        text_name = next(iter(texts))
        text = texts[text_name]
    return classifier, clf_name, source, text, text_name


def _prepare(
    features,
    labels,
    *,
    text_features,
    classifier,
    decisions,
    num_classes,
    normalize_images,
    ood_features,
    precision,
    backend,
    scatter,
    device,
    progress,
) -> _Inputs:
    if isinstance(features, ClassStatistics):
        if labels is not None:
            raise TypeError("pass labels only with raw features, not with ClassStatistics")
        if normalize_images:
            raise ValueError(
                "normalize_images applies to raw features; normalise each batch before ClassStatistics.update instead"
            )
        if num_classes is not None and num_classes != features.num_classes:
            raise ValueError(f"num_classes={num_classes} but the statistics hold {features.num_classes} classes")
        stats, dec = features, decisions
        if isinstance(dec, DecisionStatistics) and dec.completes(stats):
            stats = dec.statistics()  # a first pass without scatter (or variances), completed by the second
    else:
        if labels is None:
            raise TypeError("labels are required with raw features")
        if decisions is not None:
            raise TypeError(
                "decisions are only used with ClassStatistics input (in-memory features are decided in the same call)"
            )
        if normalize_images:
            x = check_features(features, device=None if device is None else torch.device(device))
            features = normalize_rows(x if x.dtype in (torch.float32, torch.float64) else x.float())
        raw_features, raw_labels = features, labels
        stats, dec = compute_statistics(
            features,
            labels,
            classifiers=None if classifier is None else {"classifier": classifier},
            text_features=text_features,
            num_classes=num_classes,
            precision=precision,
            backend=backend,
            scatter=scatter,
            device=device,
            progress=progress,
        )
    shape = dict(num_classes=stats.num_classes, dim=stats.dim, device=stats.device)
    clf = None if classifier is None else prepare_classifier(classifier, **shape)
    text = None if text_features is None else prepare_text(text_features, **shape)
    clf_name, text_name, source = None, None, "given" if clf is not None else "none"
    if dec is not None:
        clf, clf_name, found, text, text_name = _resolve_decisions(dec, stats, clf, text)
        source = found or source
    ood = None
    if ood_features is not None:
        ood = generalized.ood_mean(ood_features, dim=stats.dim, device=stats.device)
    inputs = _Inputs(ClassGeometry(stats), dec, clf, clf_name, source, text, text_name, ood)
    if not isinstance(features, ClassStatistics):
        inputs.features, inputs.labels = raw_features, raw_labels
    return inputs


def _figure_data(inp: _Inputs, *, projection: int, cloud: int, center: bool) -> dict[str, tuple]:
    """Coordinates for the geometry figure (see :mod:`.projection`), as ``{name: (dims, values)}``."""
    if projection <= 0:
        return {}
    basis, coords = geometry_coordinates(inp.geometry, inp.text, components=projection, center=center)
    out = {name: (("class", "component"), values) for name, values in coords.items()}
    if cloud > 0 and inp.features is not None:
        x = check_features(inp.features, check_finite=False)
        st = inp.geometry.stats
        raw = np.asarray(inp.labels.detach().cpu() if isinstance(inp.labels, torch.Tensor) else inp.labels)
        codes = (
            raw.astype(np.int64)
            if len(st.class_ids) == st.num_classes and np.array_equal(st.class_ids, np.arange(st.num_classes))
            else np.searchsorted(st.class_ids, raw)
        )
        cl = sample_cloud(x, codes, inp.geometry, basis, size=cloud, components=projection)
        out["sample_coords"] = (("sample", "component"), cl["sample_coords"])
        out["sample_class"] = (("sample",), cl["sample_class"])
    return out


def _rate(dec: DecisionStatistics, key: str) -> float:
    return float(dec.tallies[key].sum() / dec.counts.sum())


def _present_pairs(geom: ClassGeometry, values: torch.Tensor) -> np.ndarray:
    """A (C, C) array with ``values`` (present × present) in place and NaN for absent classes."""
    c = geom.stats.num_classes
    out = np.full((c, c), np.nan)
    idx = np.flatnonzero(geom.present.cpu().numpy())
    out[np.ix_(idx, idx)] = values.detach().cpu().numpy()
    return out


def _compute(
    inp: _Inputs,
    wanted: set[str],
    *,
    center: bool,
    gap_weighting: str,
    pinv_rtol: float | None,
    group_labels: np.ndarray | None,
) -> tuple[dict, dict, dict, dict]:
    geom, st, dec, w, t = inp.geometry, inp.geometry.stats, inp.decisions, inp.classifier, inp.text
    present = geom.present
    scalars: dict[str, float] = {}
    per_class: dict[str, np.ndarray] = {"class_count": st.counts.cpu().numpy()}
    pairs: dict[str, np.ndarray] = {}
    groups: dict[str, list[float]] = {}

    def want(*names: str) -> bool:
        return any(n in wanted for n in names)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingletonClassWarning)
        if want("nc1"):
            scalars["nc1"] = metrics.nc1(geom, pinv_rtol=pinv_rtol)
        if want("vci"):
            scalars["vci"] = metrics.vci(geom, pinv_rtol=pinv_rtol)
        if want("nc1_quotient"):
            scalars["nc1_quotient"] = metrics.nc1_quotient(geom)
        if want("cdnv", "cdnv_pairs"):
            pairs["cdnv_pairs"] = metrics.cdnv_pairs(geom)
            scalars["cdnv"] = metrics.mean_over_pairs(pairs["cdnv_pairs"])
        if want("class_variance"):
            per_class["class_variance"] = metrics.class_variances(geom)
    if want(*catalog.names(family="NC2")):
        scalars.update(metrics.nc2_values(geom))
        scalars["nc2_etf_error_floor"] = etf_error_floor(geom.num_present, st.dim)
    if want(*catalog.names(family="GNC2")):
        scalars.update(generalized.gnc2_values(geom))
    if want("class_mean_norm"):
        per_class["class_mean_norm"] = metrics.class_mean_norms(geom)
    if want("mean_cosines"):
        pairs["mean_cosines"] = _present_pairs(geom, geom.mean_cosines)
    if w is not None and want("nc3_self_duality", "nc3_duality_gram", "unc3_uniform_duality"):
        scalars["nc3_self_duality"] = metrics.nc3_self_duality(w, geom)
        scalars["nc3_duality_gram"] = metrics.nc3_duality_gram(w, geom)
        scalars["unc3_uniform_duality"] = generalized.unc3_uniform_duality(w, geom)
    if dec is not None:
        rates = dec.rates()
        scalars["ncc_accuracy"] = _rate(dec, "ncc_correct")
        per_class["class_ncc_accuracy"] = rates["ncc_accuracy"]
        if inp.classifier_name is not None:
            name = inp.classifier_name
            scalars["nc4_ncc_agreement"] = _rate(dec, f"{name}_ncc_agree")
            scalars["classifier_accuracy"] = _rate(dec, f"{name}_correct")
            per_class["class_nc4_agreement"] = rates[f"{name}_ncc_agreement"]
            per_class["class_classifier_accuracy"] = rates[f"{name}_accuracy"]
        if inp.text_name is not None:
            scalars["t2i_ncc_agreement"] = _rate(dec, f"{inp.text_name}_ncc_agree")
            scalars["t2i_zero_shot_accuracy"] = _rate(dec, f"{inp.text_name}_correct")
            per_class["class_t2i_zero_shot_accuracy"] = rates[f"{inp.text_name}_accuracy"]
    if inp.ood_mean is not None and want("nc5_ood_orthogonality"):
        scalars["nc5_ood_orthogonality"] = generalized.nc5_ood_orthogonality(inp.ood_mean, geom)
    if t is not None:
        tp = t.weights[present]
        scalars["t2i_text_etf_error"] = crossmodal.text_etf_error(
            ClassEmbeddings(tp, t.bias[present], "text"), center=center
        )
        scalars["t2i_self_duality"] = crossmodal.text_self_duality(t, geom, center=center)
        scalars["t2i_cross_etf_error"] = crossmodal.cross_etf_error(t, geom, center=center)
        scalars["t2i_modality_gap"] = crossmodal.modality_gap(t, geom, weighting=gap_weighting)
        per_class["class_t2i_alignment"] = crossmodal.class_alignment(t, geom, center=center)
        if want("text_cosines", "cross_cosines"):
            tc = normalize_rows(center_rows(tp) if center else tp)
            mc = normalize_rows(geom.centered_means if center else st.means[present])
            pairs["text_cosines"] = _present_pairs(geom, tc @ tc.T)
            pairs["cross_cosines"] = _present_pairs(geom, mc @ tc.T)
    if group_labels is not None and want("group_mean_cosine", "group_classifier_cosine"):
        groups = generalized.group_cosines(geom, group_labels, group_order(group_labels), classifier=w)
    keep = lambda d: {k: v for k, v in d.items() if k in wanted}  # noqa: E731
    per_class = {"class_count": per_class["class_count"], **keep(per_class)}
    return keep(scalars), per_class, keep(pairs), keep(groups)


def measure(
    features: Any,
    labels: Any = None,
    *,
    text_features: Any = None,
    classifier: Any = None,
    decisions: DecisionStatistics | None = None,
    groups: Any = None,
    center: bool = True,
    normalize_images: bool = False,
    gap_weighting: str = "paired",
    class_names: Any = None,
    num_classes: int | None = None,
    ood_features: Any = None,
    metrics: Iterable[str] | None = None,
    projection: int = 3,
    cloud: int = 0,
    precision: str = "float64",
    backend: str = "auto",
    scatter: str = "auto",
    pinv_rtol: float | None = None,
    device: Any = None,
    progress: bool = False,
) -> NCReport:
    """Measure neural collapse of ``features`` (and, for a V-L model, of its class text embeddings).

    Parameters
    ----------
    features:
        (N, D) image features — numpy array or torch tensor, any device, float16/bfloat16/float32/
        float64 — or a :class:`ClassStatistics` accumulated over a stream (then NC4 needs
        ``decisions``, a :class:`DecisionStatistics` from a second pass).
    labels:
        (N,) integer labels. Non-contiguous labels are mapped to ``0..C-1`` in sorted order (unless
        ``num_classes`` is given); the originals label the ``class`` coordinate.
    text_features:
        (C, D) class text embeddings in class order. Enables the ``t2i_`` metrics (text rows are
        L2-normalised: CLIP scores by cosine).
    classifier:
        (C, D) classifier W, ``(W, b)`` or a ``torch.nn.Linear``: enables NC3, UNC3 and NC4. Without it,
        these metrics are not reported; with ``text_features`` alone their text-to-image versions
        (``t2i_self_duality``, ``t2i_ncc_agreement``) are.
    decisions:
        With streamed statistics: the :class:`DecisionStatistics` of a second pass. Its classifiers may have
        any names: with ``classifier`` given, the decisions must include exactly that classifier; without,
        a single classifier in the decisions is used for NC3/NC4 (several are ambiguous: pass
        ``classifier``). Its text embeddings, if any, must equal ``text_features`` (or stand in for them).
        Decisions made against other statistics are refused. When the first pass kept no scatter (or only
        counts and means) and the second saw the same samples, the second pass completes the statistics
        (:meth:`DecisionStatistics.statistics`), so NC1 and the variances are reported too.
    groups:
        ``"counts"`` (head/medium/tail thirds by class count, :func:`ncprobe.core.groups.assign_groups`),
        ``"log_count"``, a per-class sequence of group names, or a ``{class_label: group}`` mapping. Equal
        counts form no groups (an :class:`~ncprobe.core.groups.EqualCountsWarning`; attribute ``groups_note``).
    center:
        Cross-modal convention (see :mod:`ncprobe.core.crossmodal`): ``True`` (default) compares centred
        text embeddings with centred image class means; ``False`` the raw ones. NC1–NC4 always use
        means centred on μ_G, as defined.
    normalize_images:
        L2-normalise every image feature first (CLIP's own convention: it compares unit vectors), for every
        metric. Default ``False``, because ``measure`` is also the general NC tool, and Papyan et al. define
        the metrics on raw features; pass ``True`` to measure what a CLIP model compares (the quickstart and
        the training histories do). The modality gap always uses normalised rows (its definition).
    gap_weighting:
        ``"paired"`` (default; Liang et al.'s definition) or ``"class"``: see :func:`ncprobe.modality_gap`.
    class_names:
        Optional names per class (in class order) stored as a coordinate.
    num_classes:
        Take labels as class indices ``0..num_classes-1``: classes absent from this data keep their place
        (NaN per-class values), so class order matches ``text_features`` on an evaluation subset.
    ood_features:
        (N_ood, D) features of out-of-distribution data: enables NC5.
    metrics:
        Names of the metrics to compute (catalog names, any kind); default every metric the inputs allow.
    projection:
        Store the class means (and text embeddings) projected on their top ``projection`` principal
        directions for the geometry figure (``mean_coords``, ``text_coords``; see
        :mod:`ncprobe.core.projection`); 0 stores none.
    cloud:
        Also store a seeded subsample of this many feature rows in the same coordinates (``sample_coords``,
        ``sample_class``; in-memory features only).
    precision, backend, scatter:
        See :func:`ncprobe.compute_statistics`. ``scatter="full"`` forms the D×D scatter (needed by ``vci``).
    pinv_rtol:
        Pseudo-inverse tolerance for NC1 and VCI (default ``max(C, D)·eps``).

    Returns
    -------
    NCReport
        Scalars under the catalog's names (``report.keys()``; descriptions in ``report.to_dataframe()``),
        per-class, per-pair and per-group variables. When C > D + 1 no simplex ETF exists: the report's
        ``simplex_etf_exists`` attribute is ``False`` and ``nc2_etf_error_floor`` gives the smallest ETF error
        reachable in dimension D (compare ``nc2_etf_error`` with it).

    Examples
    --------
    >>> from ncprobe.core.synthetic import make_collapse
    >>> data = make_collapse(num_classes=5, dim=16, samples_per_class=40, noise=0.1, seed=0)
    >>> report = measure(data.features, data.labels, classifier=data.classifier)
    >>> report["nc4_ncc_agreement"]
    1.0
    """
    if gap_weighting not in crossmodal.GAP_WEIGHTINGS:
        raise ValueError(f"gap_weighting must be one of {crossmodal.GAP_WEIGHTINGS}, got {gap_weighting!r}")
    inp = _prepare(
        features,
        labels,
        text_features=text_features,
        classifier=classifier,
        decisions=decisions,
        num_classes=num_classes,
        normalize_images=normalize_images,
        ood_features=ood_features,
        precision=precision,
        backend=backend,
        scatter=scatter,
        device=device,
        progress=progress,
    )
    have = inp.available()
    if metrics is None:
        wanted = set(catalog.available(have, kind=None))
    else:
        wanted = set(catalog.check_names(metrics))
        missing = {n: sorted(catalog.get(n).needs - have) for n in wanted if not catalog.get(n).needs <= have}
        if missing:
            raise ValueError(f"these metrics need inputs that were not given: {missing}")
    geom = inp.geometry
    st = geom.stats
    if geom.singleton_ids and wanted & {"nc1", "nc1_quotient", "cdnv", "cdnv_pairs"}:
        warnings.warn(
            f"classes {geom.singleton_ids} have a single sample and are excluded from NC1, NC1 quotient and CDNV",
            SingletonClassWarning,
            stacklevel=2,
        )
    group_labels = resolve_groups(groups, class_ids=st.class_ids, counts=st.counts.cpu().numpy())
    scalars, per_class, pairs, group_values = _compute(
        inp, wanted, center=center, gap_weighting=gap_weighting, pinv_rtol=pinv_rtol, group_labels=group_labels
    )
    c_present = geom.num_present
    attrs = {
        "n_samples": st.n_samples,
        "num_classes": c_present,
        "dim": st.dim,
        "center": bool(center),
        "normalize_images": bool(normalize_images),
        "gap_weighting": gap_weighting,
        "precision": precision,
        "pinv_rtol": metrics_rtol(pinv_rtol, c_present, st.dim),
        "global_mean": "unweighted mean of class means",
        "within_covariance": "sample-weighted, ddof=0",
        "singleton_classes": [str(s) for s in geom.singleton_ids],
        "absent_classes": [str(s) for s in st.class_ids[(st.counts == 0).cpu().numpy()].tolist()],
        "simplex_etf_exists": bool(c_present <= st.dim + 1),
        "classifier": inp.classifier_source,
    }
    if group_labels is None and isinstance(groups, str):  # count-based groups on equal counts: none, and why
        attrs["groups_note"] = equal_counts_note(st.counts.cpu().numpy())
    ds = build_dataset(
        scalars,
        per_class,
        pairs,
        class_ids=st.class_ids,
        class_names=class_names,
        group_labels=group_labels,
        group_values=group_values,
        attrs=attrs,
        figure_data=_figure_data(inp, projection=int(projection), cloud=int(cloud), center=center),
    )
    return NCReport(ds)


def metrics_rtol(pinv_rtol: float | None, num_classes: int, dim: int) -> float:
    """The pseudo-inverse tolerance a report used (the default when ``pinv_rtol`` is ``None``)."""
    return float(pinv_rtol) if pinv_rtol is not None else metrics.default_pinv_rtol(num_classes, dim)
