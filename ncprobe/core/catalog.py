"""The metric catalog: every metric ncprobe reports, held as data.

One :class:`MetricSpec` per metric gives its name, what it measures, its formula and source, the inputs
it needs, its range, which direction means collapse, and the transformations it is invariant to.
Everything else reads this table: :func:`ncprobe.measure` (which metrics the given inputs allow, and the
``metrics=`` selection), the report's descriptions, the plots' axis ranges, the README's metric table
(checked by a test) and the common tests (one invariance / streaming / reference test per entry).

This module is plain data (no torch), so the command line and the plotting layer can read it cheaply.

Inputs a metric may need (``MetricSpec.needs``):

* ``"classifier"`` — a classifier W (or the text embeddings standing in for it);
* ``"text"`` — class text embeddings of a V-L model;
* ``"decisions"`` — a second pass over the samples (NC4; automatic for in-memory features);
* ``"scatter"`` — the within-class scatter (full D×D, or projected on the class means when C < D);
* ``"full_scatter"`` — the full D×D scatter (``measure(..., scatter="full")``);
* ``"ood"`` — features of out-of-distribution data.

Invariances (``MetricSpec.invariances``), each checked by ``tests/core/test_common.py``:

* ``"rotation"`` — an orthogonal map applied to the features and to classifier/text rows alike;
* ``"scale"`` — multiplying the features by a positive number;
* ``"offset"`` — adding one vector to every feature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Literal

__all__ = ["MetricSpec", "METRICS", "INPUTS", "get", "names", "available", "check_names", "markdown_table"]

INPUTS = ("classifier", "text", "decisions", "scatter", "full_scatter", "ood")
INF = math.inf

Kind = Literal["scalar", "per_class", "per_group", "per_pair"]
Direction = Literal["lower", "higher", "target", "none"]


@dataclass(frozen=True)
class MetricSpec:
    """One metric of the catalog.

    Attributes
    ----------
    name:
        The name under which reports and histories store it.
    family:
        NC1, NC2, GNC2, NC3, UNC3, NC4, NC5, VCI, T2I (text-to-image) or minority.
    description:
        One line for tables.
    formula:
        The definition, in the notation of ``docs/metrics.md``.
    source:
        Where the definition comes from.
    kind:
        ``"scalar"``, ``"per_class"`` (on the ``class`` coordinate), ``"per_group"`` or ``"per_pair"``.
    needs:
        Inputs beyond features and labels (see the module docstring).
    range:
        Smallest and largest possible value.
    direction:
        Which way means more collapse: ``"lower"``, ``"higher"``, ``"target"`` (a value of the ideal
        geometry inside the range, e.g. −1/(C−1) for the largest cosine), or ``"none"`` (a reference value).
    invariances:
        Transformations that leave it unchanged (see the module docstring).
    function:
        The public function computing it alone (``ncprobe.<function>``), if any.
    """

    name: str
    family: str
    description: str
    formula: str
    source: str
    kind: Kind = "scalar"
    needs: frozenset[str] = field(default_factory=frozenset)
    range: tuple[float, float] = (0.0, INF)
    direction: Direction = "lower"
    invariances: frozenset[str] = field(default_factory=lambda: frozenset({"rotation", "scale", "offset"}))
    function: str | None = None

    def __post_init__(self) -> None:
        unknown = set(self.needs) - set(INPUTS)
        if unknown:
            raise ValueError(f"{self.name}: unknown inputs {sorted(unknown)}")


def _m(name, family, description, formula, source, **kw) -> MetricSpec:
    kw = {k: frozenset(v) if k in ("needs", "invariances") else v for k, v in kw.items()}
    return MetricSpec(name, family, description, formula, source, **kw)


_PAPYAN = "Papyan, Han & Donoho (PNAS 2020)"
_RHUBARB = "rhubarbwu/neural-collapse measure.py"
_ALL = ("rotation", "scale", "offset")
_ROT_SCALE = ("rotation", "scale")

#: Every metric, in report order.
METRICS: tuple[MetricSpec, ...] = (
    # ------------------------------------------------------------------ NC1
    _m(
        "nc1",
        "NC1",
        "NC1 tr(Σ_W Σ_B^†)/C",
        "tr(Σ_W Σ_B^†)/C, Σ_B^† by eigen-decomposition with tolerance max(C, D)·eps",
        _PAPYAN + ", Fig. 6",
        needs={"scatter"},
        function="nc1",
    ),
    _m(
        "nc1_quotient",
        "NC1",
        "NC1 quotient tr Σ_W / tr Σ_B",
        "tr Σ_W / tr Σ_B",
        "Tirer, Huang & Niles-Weed (ICML 2023)",
        function="nc1_quotient",
    ),
    _m(
        "cdnv",
        "NC1",
        "mean class-distance normalised variance",
        "mean_{k<k'} (Var_k + Var_k')/(2‖μ_k − μ_k'‖²)",
        "Galanti, György & Hutter (ICLR 2022)",
        function="cdnv",
    ),
    _m(
        "vci",
        "VCI",
        "variability collapse index",
        "1 − tr(Σ_T^† Σ_B^n)/rank(Σ_B^n), Σ_B^n sample-weighted, Σ_T = Σ_W + Σ_B^n",
        "Xu & Liu (ICML 2023)",
        needs={"full_scatter"},
        range=(0.0, 1.0),
        invariances=_ALL,
        function="vci",
    ),
    # ------------------------------------------------------------------ NC2
    _m(
        "nc2_equinorm",
        "NC2",
        "NC2 CV of centred class-mean norms",
        "std_k ‖μ̃_k‖ / mean_k ‖μ̃_k‖ (ddof 0)",
        _PAPYAN + ", Fig. 2",
        function="nc2_equinorm",
    ),
    _m(
        "nc2_equiangularity",
        "NC2",
        "NC2 std of pairwise cosines",
        "std_{k≠k'} cos(μ̃_k, μ̃_k') (ddof 0)",
        _PAPYAN + ", Fig. 3",
        range=(0.0, 1.0),
        function="nc2_equiangularity",
    ),
    _m(
        "nc2_max_angle",
        "NC2",
        "NC2 mean |cos + 1/(C-1)|",
        "mean_{k≠k'} |cos(μ̃_k, μ̃_k') + 1/(C−1)|",
        _PAPYAN + ", Fig. 4",
        range=(0.0, 2.0),
        function="nc2_max_angle",
    ),
    _m(
        "nc2_max_cosine",
        "NC2",
        "largest pairwise cosine of centred means",
        "max_{k≠k'} cos(μ̃_k, μ̃_k'); the ETF attains −1/(C−1)",
        _PAPYAN,
        range=(-1.0, 1.0),
        direction="target",
        function="nc2_max_cosine",
    ),
    _m(
        "nc2_etf_error",
        "NC2",
        "NC2 distance of mean Gram to ETF Gram",
        "‖G/‖G‖_F − (I − 11ᵀ/C)/√(C−1)‖_F, G = M̃M̃ᵀ",
        _RHUBARB + " simplex_etf_error",
        range=(0.0, 2.0),
        function="nc2_etf_error",
    ),
    _m(
        "nc2_etf_error_floor",
        "NC2",
        "smallest ETF error reachable in dim D",
        "√(2 − 2√(r/(C−1))), r = min(D, C−1); 0 when a simplex ETF exists (C ≤ D+1)",
        "ncprobe (Eckart–Young bound; docs/metrics.md)",
        range=(0.0, math.sqrt(2.0)),
        direction="none",
    ),
    _m(
        "gnc2_log_energy",
        "GNC2",
        "log-kernel hyperspherical energy of means",
        "mean_{k<k'} log(1/‖μ̂_k − μ̂_k'‖), μ̂ = μ̃/‖μ̃‖",
        "Liu et al. (ICLR 2023), hyperspherical uniformity",
        range=(-math.log(2.0), INF),
        function="gnc2_log_energy",
    ),
    _m(
        "gnc2_log_variance",
        "GNC2",
        "variance of log-kernel over pairs",
        "var_{k<k'} log(1/‖μ̂_k − μ̂_k'‖) (ddof 0)",
        "Wu & Papyan (NeurIPS 2024); " + _RHUBARB + " kernel_stats(log_kernel)",
        function="gnc2_log_variance",
    ),
    _m(
        "gnc2_riesz_energy",
        "GNC2",
        "Riesz s-energy of means (power mean)",
        "(mean_{k<k'} ‖μ̂_k − μ̂_k'‖^{−s})^{1/s}, s = D − 2",
        "Liu et al. (ICLR 2023); " + _RHUBARB + " riesz_kernel",
        range=(0.5, INF),
        function="gnc2_riesz_energy",
    ),
    # ------------------------------------------------------------------ NC3
    _m(
        "nc3_self_duality",
        "NC3",
        "NC3 ‖W/‖W‖ − M/‖M‖‖²",
        "‖W/‖W‖_F − M̃/‖M̃‖_F‖_F²",
        _PAPYAN + ", Fig. 5",
        needs={"classifier"},
        range=(0.0, 4.0),
        function="nc3_self_duality",
    ),
    _m(
        "nc3_duality_gram",
        "NC3",
        "NC3 distance of W Mᵀ to ETF Gram",
        "‖WM̃ᵀ/‖WM̃ᵀ‖_F − (I − 11ᵀ/C)/√(C−1)‖_F",
        _RHUBARB + " self_duality_error",
        needs={"classifier"},
        range=(0.0, 2.0),
        function="nc3_duality_gram",
    ),
    _m(
        "unc3_uniform_duality",
        "UNC3",
        "CV of classifier-mean cosines",
        "std_k cos(w_k, μ̃_k) / |mean_k cos(w_k, μ̃_k)| (ddof 0)",
        "Wu & Papyan (NeurIPS 2024), uniform duality",
        needs={"classifier"},
        function="unc3_uniform_duality",
    ),
    # ------------------------------------------------------------------ NC4
    _m(
        "nc4_ncc_agreement",
        "NC4",
        "NC4 classifier/NCC agreement",
        "mean_i [argmax_k h_i·w_k + b_k = argmin_k ‖h_i − μ_k‖]",
        _PAPYAN + ", Fig. 7",
        needs={"classifier", "decisions"},
        range=(0.0, 1.0),
        direction="higher",
        invariances=_ROT_SCALE,
        function="nc4_ncc_agreement",
    ),
    _m(
        "ncc_accuracy",
        "NC4",
        "nearest-class-centre accuracy",
        "mean_i [argmin_k ‖h_i − μ_k‖ = y_i]",
        _PAPYAN,
        needs={"decisions"},
        range=(0.0, 1.0),
        direction="higher",
        function="ncc_accuracy",
    ),
    _m(
        "classifier_accuracy",
        "NC4",
        "classifier accuracy",
        "mean_i [argmax_k h_i·w_k + b_k = y_i]",
        "standard",
        needs={"classifier", "decisions"},
        range=(0.0, 1.0),
        direction="higher",
        invariances=_ROT_SCALE,
    ),
    # ------------------------------------------------------------------ NC5
    _m(
        "nc5_ood_orthogonality",
        "NC5",
        "mean |cos| of ID means to the OOD mean",
        "mean_k |cos(μ_k − μ_G, μ_OOD − μ_G)|",
        "Ammar et al. (ICLR 2024, NECO); " + _RHUBARB + " orthogonality_deviation",
        needs={"ood"},
        range=(0.0, 1.0),
        function="nc5_ood_orthogonality",
    ),
    # ------------------------------------------------------------------ text-to-image
    _m(
        "t2i_text_etf_error",
        "T2I",
        "text embeddings' distance to ETF",
        "‖G/‖G‖_F − (I − 11ᵀ/C)/√(C−1)‖_F, G = T̃T̃ᵀ",
        "NPT (Zhu et al., KDD 2024), language-modality collapse",
        needs={"text"},
        range=(0.0, 2.0),
        function="text_etf_error",
    ),
    _m(
        "t2i_self_duality",
        "T2I",
        "text/image-mean self-duality",
        "‖T̃/‖T̃‖_F − M̃/‖M̃‖_F‖_F²",
        "NC3 with the text classifier",
        needs={"text"},
        range=(0.0, 4.0),
        function="text_self_duality",
    ),
    _m(
        "t2i_cross_etf_error",
        "T2I",
        "cross Gram M̂T̂ᵀ distance to ETF",
        "‖P/‖P‖_F − (I − 11ᵀ/C)/√(C−1)‖_F, P = M̂T̂ᵀ",
        "NPT (Zhu et al., KDD 2024), multi-modality isomorphism",
        needs={"text"},
        range=(0.0, 2.0),
        function="cross_etf_error",
    ),
    _m(
        "t2i_ncc_agreement",
        "T2I",
        "text-classifier/NCC agreement",
        "NC4 with W = T̂ (cosine rule)",
        _PAPYAN + ", Fig. 7, with the text classifier",
        needs={"text", "decisions"},
        range=(0.0, 1.0),
        direction="higher",
        invariances=_ROT_SCALE,
    ),
    _m(
        "t2i_zero_shot_accuracy",
        "T2I",
        "text-classifier (zero-shot) accuracy",
        "mean_i [argmax_k x_i·t̂_k = y_i]",
        "Radford et al. (ICML 2021)",
        needs={"text", "decisions"},
        range=(0.0, 1.0),
        direction="higher",
        invariances=_ROT_SCALE,
    ),
    _m(
        "t2i_modality_gap",
        "T2I",
        "distance between modality centroids",
        "‖(1/N)Σ_i x̂_i − Σ_k (n_k/N) t̂_k‖",
        "Liang et al. (NeurIPS 2022)",
        needs={"text"},
        range=(0.0, 2.0),
        invariances=_ROT_SCALE,
        function="modality_gap",
    ),
    # ------------------------------------------------------------------ per class
    _m("class_count", "counts", "samples per class", "n_k", "", kind="per_class", direction="none"),
    _m(
        "class_variance",
        "NC1",
        "within-class variance",
        "Var_k = (1/n_k) Σ_{i∈k} ‖h_i − μ_k‖²",
        _PAPYAN,
        kind="per_class",
        invariances=("rotation", "offset"),
        function="class_variances",
    ),
    _m(
        "class_mean_norm",
        "NC2",
        "norm of the centred class mean",
        "‖μ̃_k‖",
        _PAPYAN,
        kind="per_class",
        direction="none",
        invariances=("rotation", "offset"),
        function="class_mean_norms",
    ),
    _m(
        "class_ncc_accuracy",
        "NC4",
        "NCC accuracy per class",
        "per-class ncc_accuracy",
        _PAPYAN,
        kind="per_class",
        needs={"decisions"},
        range=(0.0, 1.0),
        direction="higher",
    ),
    _m(
        "class_nc4_agreement",
        "NC4",
        "classifier/NCC agreement per class",
        "per-class nc4_ncc_agreement",
        _PAPYAN,
        kind="per_class",
        needs={"classifier", "decisions"},
        range=(0.0, 1.0),
        direction="higher",
        invariances=_ROT_SCALE,
    ),
    _m(
        "class_classifier_accuracy",
        "NC4",
        "classifier accuracy per class",
        "per-class classifier_accuracy",
        "standard",
        kind="per_class",
        needs={"classifier", "decisions"},
        range=(0.0, 1.0),
        direction="higher",
        invariances=_ROT_SCALE,
    ),
    _m(
        "class_t2i_zero_shot_accuracy",
        "T2I",
        "zero-shot accuracy per class",
        "per-class t2i_zero_shot_accuracy",
        "Radford et al. (ICML 2021)",
        kind="per_class",
        needs={"text", "decisions"},
        range=(0.0, 1.0),
        direction="higher",
        invariances=_ROT_SCALE,
    ),
    _m(
        "class_t2i_alignment",
        "T2I",
        "cosine of text embedding and image class mean",
        "cos(t̃_k, μ̃_k)",
        "NPT (Zhu et al., KDD 2024)",
        kind="per_class",
        needs={"text"},
        range=(-1.0, 1.0),
        direction="higher",
        function="class_alignment",
    ),
    # ------------------------------------------------------------------ per pair (figures)
    _m(
        "cdnv_pairs",
        "NC1",
        "CDNV per pair of classes",
        "(Var_k + Var_k')/(2‖μ_k − μ_k'‖²)",
        "Galanti, György & Hutter (ICLR 2022)",
        kind="per_pair",
        function="cdnv_pairs",
    ),
    _m(
        "mean_cosines",
        "NC2",
        "cosines between centred class means",
        "cos(μ̃_k, μ̃_k')",
        _PAPYAN,
        kind="per_pair",
        range=(-1.0, 1.0),
        direction="none",
    ),
    _m(
        "text_cosines",
        "T2I",
        "cosines between (centred) text embeddings",
        "cos(t̃_k, t̃_k')",
        "NPT (Zhu et al., KDD 2024)",
        kind="per_pair",
        needs={"text"},
        range=(-1.0, 1.0),
        direction="none",
    ),
    _m(
        "cross_cosines",
        "T2I",
        "cosines between class means and text embeddings",
        "cos(μ̃_k, t̃_k')",
        "NPT (Zhu et al., KDD 2024)",
        kind="per_pair",
        needs={"text"},
        range=(-1.0, 1.0),
        direction="none",
    ),
    # ------------------------------------------------------------------ per group (minority collapse)
    _m(
        "group_mean_cosine",
        "minority",
        "mean pairwise cosine of the group's centred means",
        "mean_{k<k' in g} cos(μ̃_k, μ̃_k')",
        "Fang et al. (PNAS 2021), minority collapse",
        kind="per_group",
        range=(-1.0, 1.0),
        direction="higher",
    ),
    _m(
        "group_classifier_cosine",
        "minority",
        "mean pairwise cosine of the group's classifier rows",
        "mean_{k<k' in g} cos(w̃_k, w̃_k'), rows centred on their mean",
        "Fang et al. (PNAS 2021), minority collapse",
        kind="per_group",
        needs={"classifier"},
        range=(-1.0, 1.0),
        direction="higher",
    ),
)

_BY_NAME = {spec.name: spec for spec in METRICS}


def get(name: str) -> MetricSpec:
    """The catalog entry of ``name``; an unknown name lists the valid ones."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no metric {name!r}; known metrics: {', '.join(_BY_NAME)}") from None


def names(*, kind: str | None = "scalar", family: str | None = None) -> list[str]:
    """Metric names in catalog order, optionally of one kind and family (``kind=None``: every kind)."""
    return [s.name for s in METRICS if (kind is None or s.kind == kind) and (family is None or s.family == family)]


def available(inputs: Iterable[str], *, kind: str | None = "scalar") -> list[str]:
    """Names of the metrics whose needs are all among ``inputs``."""
    have = set(inputs)
    return [s.name for s in METRICS if (kind is None or s.kind == kind) and s.needs <= have]


def check_names(requested: Iterable[str]) -> list[str]:
    """Validate requested metric names (an unknown one raises, listing the valid names)."""
    out = []
    for name in requested:
        get(name)
        out.append(name)
    return out


def markdown_table(kind: str = "scalar") -> str:
    """The README's metric table for ``kind``: name, family, description, needs, range."""
    rows = ["| name | family | metric | needs | range |", "|---|---|---|---|---|"]
    for s in METRICS:
        if s.kind != kind:
            continue
        needs = ", ".join(sorted(s.needs)) or "—"
        lo, hi = s.range
        rng = f"[{lo:g}, {'∞' if hi == INF else f'{hi:g}'}]"
        description = s.description.replace("|", "\\|")  # a literal pipe would split the cell
        rows.append(f"| `{s.name}` | {s.family} | {description} | {needs} | {rng} |")
    return "\n".join(rows)
