"""Second pass for NC4: nearest-class-centre (NCC) and classifier decisions, counted per class.

For a sample h with label y, residual r = h − μ_y and centred means M̃ (rows μ_k − μ_G),

    ‖h − μ_k‖² = ‖h‖² − 2 h·μ_k + ‖μ_k‖²,   h·μ_k = r·(μ_k − μ_G) + μ_y·μ_k + r·μ_G,

so ``argmin_k ‖h − μ_k‖² = argmin_k (‖μ_k‖² − 2 μ_y·μ_k − 2 [R M̃ᵀ]_k)``; likewise a linear classifier's
logit ``h·w_k + b_k = [R Wᵀ]_k + μ_y·w_k + b_k``. One product of the centred residuals with
``[M̃; W]ᵀ`` thus gives every decision without cancellation, and the product A = R M̃ᵀ also serves
NC1: K = AᵀA = M̃ S_W M̃ᵀ is all NC1 needs when C < D (see :mod:`ncprobe.core.inmemory`). A second pass
over a stream whose first pass kept no scatter accumulates what it lacks: K when C < D
(:attr:`DecisionStatistics.projected_scatter`), the D×D scatter S_W = RᵀR when C ≥ D
(:attr:`DecisionStatistics.scatter`), and the per-class sums of squares; :meth:`DecisionStatistics.statistics`
completes the first pass with them. The label is used only as an algebraic shift: the decisions are the
ordinary label-free NCC and classifier decisions.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping

import numpy as np
import torch

from ._validation import check_features, encode_labels
from .certified import DecisionTables
from .chunks import (
    ResidualWorkspace,
    add_scatter,
    chunk_rows,
    numba_arrays,
    pick_backend,
    raise_not_finite,
    require_finite,
)
from .cpu_read import ReadPlan, read_in_parts
from .embeddings import prepare_classifiers
from .statistics import ClassStatistics

__all__ = ["DecisionStatistics", "DecisionTables", "prepare_classifiers", "statistics_fingerprint"]


def statistics_fingerprint(stats: ClassStatistics) -> str:
    """A digest of the class counts and means: decisions made against other statistics differ in it."""
    h = hashlib.sha256()
    for t in (stats.counts, stats.means):
        h.update(t.detach().double().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class DecisionStatistics:
    """Accumulate NCC / classifier decisions per class over a second pass of the data.

    Parameters
    ----------
    stats:
        The :class:`~ncprobe.ClassStatistics` of the first pass (its class means define the NCC rule).
        The decisions remember a fingerprint of these statistics; :func:`ncprobe.measure` refuses to
        combine them with other statistics.
    classifiers:
        ``{name: W}``, ``{name: (W, b)}`` or ``{name: nn.Linear}`` with W of shape (C, D): linear rules
        h ↦ argmax_k h·w_k + b_k to compare with NCC (NC4), under any names. The name ``"text"`` is
        reserved for class text embeddings (same as ``text_features``).
    text_features:
        (C, D) class text embeddings of a V-L model: their rows are L2-normalised (the zero-shot cosine
        rule) and :func:`ncprobe.measure` reports them under the ``t2i_`` names.
    precision:
        ``"float64"`` (default) or ``"float32"`` for the residual product.
    scatter:
        The within-class scatter this pass accumulates: ``"auto"`` (default) what the first pass lacks, the
        C×C projected scatter K = M̃ S_W M̃ᵀ when C < D, the D×D scatter S_W when C ≥ D, nothing when the
        first pass holds one; or ``"projected"``, ``"full"``, ``None``. See :meth:`statistics`.

    After the pass, ``counts``, ``ncc_correct`` and, per classifier, ``<name>_correct`` and
    ``<name>_ncc_agree`` hold per-class tallies (float64 tensors, mergeable by addition), and ``class_ss`` the
    per-class sums of squares Σ_{i∈k} ‖h_i − μ_k‖² about the first pass's means (the residual norms this pass
    forms anyway; two-pass exact, and what completes a first pass made with ``track_variance=False``).

    Examples
    --------
    >>> import torch
    >>> from ncprobe import ClassStatistics
    >>> x = torch.randn(60, 5) + 4 * torch.eye(3, 5).repeat(20, 1); y = torch.arange(60) % 3
    >>> stats = ClassStatistics(3).update(x, y)
    >>> dec = DecisionStatistics(stats).update(x, y)
    >>> float(dec.ncc_correct.sum() / dec.counts.sum()) > 0.9
    True
    """

    def __init__(
        self,
        stats: ClassStatistics,
        *,
        classifiers: Mapping[str, Any] | None = None,
        text_features: Any = None,
        precision: str = "float64",
        scatter: str | None = "auto",
    ):
        if not isinstance(stats, ClassStatistics):
            raise TypeError(f"DecisionStatistics needs the ClassStatistics of a first pass, got {type(stats).__name__}")
        stats.require_data()
        if precision not in ("float64", "float32"):
            raise ValueError(f"precision must be 'float64' or 'float32', got {precision!r}")
        self.num_classes, self.dim = stats.num_classes, stats.dim
        self.class_ids = stats.class_ids
        self.device = stats.device
        self.means = stats.means
        self.precision = precision
        self.dtype = torch.float64 if precision == "float64" else torch.float32
        self.source = statistics_fingerprint(stats)
        present = stats.counts > 0
        self.classifiers = prepare_classifiers(
            classifiers, num_classes=self.num_classes, dim=self.dim, device=self.device, text_features=text_features
        )
        self.tables = DecisionTables(self.means, present, self.classifiers)
        self.tallies: dict[str, torch.Tensor] = {}
        self.counts = torch.zeros(self.num_classes, dtype=torch.float64, device=self.device)
        # Without a scatter in the first pass, this pass accumulates K = M̃ S_W M̃ᵀ (C×C) from the products it
        # forms anyway (C < D), or S_W = RᵀR (C ≥ D); see statistics().
        self._stats = stats
        if scatter not in ("auto", "projected", "full", None):
            raise ValueError(f"scatter must be 'auto', 'projected', 'full' or None, got {scatter!r}")
        if scatter == "auto":
            complete = stats.scatter is not None or stats.projected_scatter is not None
            scatter = None if complete else ("projected" if self.num_classes < self.dim else "full")
        self.scatter_kind = scatter
        self.projected_scatter = None
        self.reset()

    @property
    def classifier_names(self) -> list[str]:
        return list(self.classifiers)

    def _tally_keys(self) -> list[str]:
        keys = ["ncc_correct"]
        for name in self.classifiers:
            keys += [f"{name}_correct", f"{name}_ncc_agree"]
        return keys

    def reset(self) -> "DecisionStatistics":
        """Zero every tally (the statistics and classifiers stay). Returns ``self``."""
        zeros = lambda: torch.zeros(self.num_classes, dtype=torch.float64, device=self.device)  # noqa: E731
        self.counts = zeros()
        self.class_ss = zeros()
        self.tallies = {k: zeros() for k in self._tally_keys()}
        c, d, f64 = self.num_classes, self.dim, dict(dtype=torch.float64, device=self.device)
        self.projected_scatter = torch.zeros(c, c, **f64) if self.scatter_kind == "projected" else None
        self.scatter = torch.zeros(d, d, **f64) if self.scatter_kind == "full" else None
        return self

    def update(self, features: Any, labels: Any) -> "DecisionStatistics":
        """Add the decisions of a batch (features (n, D), labels in ``[0, C)``). Returns ``self``."""
        x = check_features(features, device=self.device, check_finite=False)  # checked on the row norms
        if x.shape[1] != self.dim:
            raise ValueError(f"features have {x.shape[1]} dimensions, the statistics hold {self.dim}")
        enc = encode_labels(
            labels, n_samples=x.shape[0], num_classes=self.num_classes, device=self.device, min_classes=0
        )
        backend = pick_backend("auto", x)
        if backend == "numba":
            xn, cn = numba_arrays(x, enc.codes)
            # numpy, not torch: a torch op here wakes torch's OpenMP threads, which spin and slow the read
            if not self.tables.present.cpu().numpy()[cn].all():
                raise ValueError("labels include a class that had no samples in the first pass")
            plan = ReadPlan(
                np.ascontiguousarray(self.means.cpu().numpy()),
                precision=self.precision,
                scatter=self.scatter_kind,
                tables=self.tables,
                features_dtype=xn.dtype,
            )
            res = read_in_parts(xn, cn, plan)
            if not res.finite:
                raise_not_finite(x)
            self.add_read(res)
            return self
        if not bool(self.tables.present[enc.codes].all()):
            raise ValueError("labels include a class that had no samples in the first pass")
        rows = chunk_rows(self.dim, x.device)
        size = min(rows, max(1, x.shape[0]))
        keep = self.residuals_needed(None)
        work = ResidualWorkspace(self.means, rows=size, dtype=self.dtype, backend=backend, keep=keep)
        for lo in range(0, x.shape[0], rows):
            codes, xs = enc.codes[lo : lo + rows], x[lo : lo + rows]
            r, r32, row_ss = work(xs, codes)
            require_finite(row_ss, xs)
            self.add_residuals(r, r32, codes, row_ss, features=xs, feature_ss=work.feature_ss)
        return self

    def residuals_needed(self, features: torch.Tensor | None = None) -> str:
        """What :meth:`add_residuals` reads (a :class:`ResidualWorkspace` ``keep``): ``"pair"`` (residuals and
        their float32 copy), ``"residuals"``, or ``"features"`` when the classifier logits are best taken of
        the float32 ``features`` themselves (CPU, float64 NCC products: no float32 residuals to write)."""
        if self.scatter_kind != "projected":
            return "pair"
        if not self.tables.weights:
            return "residuals"
        usable = features is not None and features.dtype == torch.float32 and features.device.type == "cpu"
        return "features" if usable and self.dtype == torch.float64 else "pair"

    def add_residuals(
        self,
        r: torch.Tensor,
        r32: torch.Tensor | None,
        codes: torch.Tensor,
        row_ss: torch.Tensor,
        *,
        features: torch.Tensor | None = None,
        feature_ss: torch.Tensor | None = None,
    ) -> None:
        """Decide one chunk from its residuals r = h − μ_y (``r32``: the same rounded to float32; ``row_ss``:
        float64 ‖r_i‖²) and add the tallies and sums of squares; with a scatter tracked, also add AᵀA
        (:attr:`projected_scatter`) or RᵀR (:attr:`scatter`).

        With the projected scatter the NCC products A = R M̃ᵀ are formed in the compute precision (float64:
        exact decisions, and K = AᵀA to float64 rounding); without it, one certified float32 product
        ``R [M̃; W]ᵀ`` gives every score. With float32 ``features`` (and their ‖x_i‖², ``feature_ss``) and no
        ``r32``, the logits come from ``features @ Wᵀ`` instead, certified with ‖x_i‖."""
        c = self.num_classes
        tables = self.tables
        products = feature_norms = None
        if self.scatter_kind == "projected":
            a_m = r @ (tables.centered if r.dtype == torch.float64 else tables.centered32).T
            self._pending.append(a_m.double())  # K += AᵀA in fewer, larger products (see projected_scatter)
            if sum(len(t) for t in self._pending) * c >= 1 << 22:
                self._flush()
            if tables.weights and r32 is None and features is not None:
                products, feature_norms = features @ tables.weights32.T, feature_ss.sqrt()
            elif tables.weights:
                products = r32 @ tables.weights32.T
        else:
            both = r32 @ tables.stacked32.T
            a_m, products = both[:, :c], both[:, c:]
            if self.scatter is not None:
                add_scatter(self.scatter, r)
        tallies = tables.count(
            r, a_m, codes, c, row_norms=row_ss.sqrt(), products=products, feature_norms=feature_norms
        )
        self.add_tallies(tallies, codes)
        if self.class_ss is not None:
            self.class_ss.index_add_(0, codes.to(self.device), row_ss.to(self.device, torch.float64))

    @property
    def projected_scatter(self) -> torch.Tensor | None:
        """K = M̃ S_W M̃ᵀ (C×C, float64) of the samples of this pass, when it tracks that scatter
        (``scatter_kind == "projected"``; else ``None``); see :meth:`statistics`."""
        self._flush()
        return self.__dict__.get("_k")

    @projected_scatter.setter
    def projected_scatter(self, value: torch.Tensor | None) -> None:
        self._pending: list[torch.Tensor] = []
        self._k = value

    def _flush(self) -> None:
        pending = self.__dict__.get("_pending")
        if pending:
            a = torch.cat(pending)
            pending.clear()
            self._k.addmm_(a.T, a)

    def statistics(self) -> ClassStatistics:
        """The class statistics for :func:`ncprobe.measure`: the first pass's, completed with what this pass
        accumulated when the first pass kept no scatter.

        The completed statistics hold the first pass's counts and means, this pass's per-class sums of squares
        (:attr:`class_ss`) and its scatter: the C×C projected scatter K = M̃ S_W M̃ᵀ (C < D; enough for NC1,
        but such statistics cannot be merged) or the D×D S_W (C ≥ D). The fast stream keeps only counts and
        means in the first pass (``ClassStatistics(track_scatter=False, track_variance=False)``: one read of
        each batch) and then calls ``measure(dec.statistics(), decisions=dec)``. What this pass adds is
        exact for its data, which must be the data of the first pass (as for the decisions). When the first
        pass holds a scatter, it is returned as it is.

        Examples
        --------
        >>> import torch
        >>> from ncprobe import ClassStatistics, measure
        >>> x = torch.randn(600, 16) + 3 * torch.eye(4, 16).repeat(150, 1); y = torch.arange(600) % 4
        >>> stats = ClassStatistics(4, track_scatter=False, track_variance=False)
        >>> for lo in range(0, 600, 200):
        ...     _ = stats.update(x[lo : lo + 200], y[lo : lo + 200])
        >>> dec = DecisionStatistics(stats)
        >>> for lo in range(0, 600, 200):
        ...     _ = dec.update(x[lo : lo + 200], y[lo : lo + 200])
        >>> streamed = measure(dec.statistics(), decisions=dec)
        >>> bool(abs(streamed["nc1"] - measure(x, y)["nc1"]) < 1e-12 * measure(x, y)["nc1"])
        True
        """
        st = self._stats
        if self.scatter_kind is None:
            if st.scatter is None and st.projected_scatter is None:
                raise ValueError("neither pass holds a within-class scatter (this pass was made with scatter=None)")
            return st
        if statistics_fingerprint(st) != self.source:
            raise ValueError("the first-pass statistics changed since these decisions were made")
        if int(self.counts.sum()) != st.n_samples:
            raise ValueError(
                f"this pass saw {int(self.counts.sum())} samples, the first pass {st.n_samples}: "
                "the scatter and sums of squares of this pass need the same data in both passes"
            )
        class_ss = st.class_ss if self.class_ss is None else self.class_ss
        if class_ss is None:
            raise ValueError("neither pass holds the per-class sums of squares (restored from an older state?)")
        return ClassStatistics.from_moments(
            st.counts,
            st.means,
            class_ss,
            scatter=self.scatter,
            projected_scatter=self.projected_scatter,
            normalized_sum=st.normalized_sum,
            class_ids=st.class_ids,
            precision=st.precision,
            backend=st.backend,
        )

    projected_statistics = statistics  # the name before C ≥ D streams could be completed too

    def completes(self, stats: ClassStatistics) -> bool:
        """Whether :meth:`statistics` completes ``stats``: they are this pass's first-pass statistics, which kept
        no scatter, and this pass saw as many samples (what :func:`ncprobe.measure` checks before using it;
        :meth:`statistics` then refuses statistics changed since this pass began)."""
        return self.scatter_kind is not None and stats is self._stats and int(self.counts.sum()) == stats.n_samples

    def add_read(self, result: Any) -> None:
        """Add what a :func:`~ncprobe.core.cpu_read.read_in_parts` read with these tables (and
        ``scatter=self.scatter_kind``) found: counts, sums of squares, tallies and the scatter tracked."""
        if self.device.type == "cpu":  # in numpy: no torch op (and its spinning OpenMP threads) between reads
            add = lambda t, v: torch.from_numpy(t.numpy() + v)  # noqa: E731
        else:
            add = lambda t, v: t + torch.from_numpy(v).to(self.device)  # noqa: E731
        self.counts = add(self.counts, result.counts)
        if self.class_ss is not None:
            self.class_ss = add(self.class_ss, result.class_ss)
        for k, v in result.tallies.items():
            self.tallies[k] = add(self.tallies[k], v)
        if result.scatter is not None:
            if self.scatter_kind == "projected":
                self._k = add(self._k, result.scatter)
            elif self.scatter_kind == "full":
                self.scatter = add(self.scatter, result.scatter)

    def add_tallies(self, tallies: dict[str, torch.Tensor], codes: torch.Tensor) -> None:
        """Add per-class tallies counted elsewhere (e.g. by :meth:`DecisionTables.count` inside the
        in-memory path) for samples with the given class codes."""
        unknown = set(tallies) - set(self.tallies)
        if unknown:
            raise ValueError(f"unknown tallies {sorted(unknown)}; expected {sorted(self.tallies)}")
        self.counts += torch.bincount(codes, minlength=self.num_classes).double().to(self.device)
        for k, v in tallies.items():
            self.tallies[k] = self.tallies[k] + v.to(self.device)

    def _check_compatible(self, other: "DecisionStatistics") -> None:
        if not isinstance(other, DecisionStatistics):
            raise TypeError(f"can only merge DecisionStatistics, got {type(other).__name__}")
        if other.source != self.source:
            raise ValueError("cannot merge decisions made against different class statistics")
        if set(other.classifiers) != set(self.classifiers) or not all(
            self.classifiers[k].same_as(other.classifiers[k]) for k in self.classifiers
        ):
            raise ValueError("cannot merge decisions made with different classifiers")
        if other.scatter_kind != self.scatter_kind:
            raise ValueError(
                f"cannot merge a pass with scatter {other.scatter_kind!r} into one with {self.scatter_kind!r}"
            )

    def merge(self, other: "DecisionStatistics") -> "DecisionStatistics":
        """Add another accumulator's tallies (same statistics and classifiers). Returns ``self``."""
        self._check_compatible(other)
        self.counts = self.counts + other.counts.to(self.device)
        self.class_ss = None if self.class_ss is None or other.class_ss is None else self.class_ss + other.class_ss
        for k, v in other.tallies.items():
            self.tallies[k] = self.tallies[k] + v.to(self.device)
        if self.projected_scatter is not None and other.projected_scatter is not None:
            self.projected_scatter = self.projected_scatter + other.projected_scatter.to(self.device)
        if self.scatter is not None and other.scatter is not None:
            self.scatter = self.scatter + other.scatter.to(self.device)
        return self

    def all_reduce(self, group: Any = None) -> "DecisionStatistics":
        """Sum the tallies over a ``torch.distributed`` group (a no-op when not distributed)."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self
        keys = sorted(self.tallies)
        vectors = [self.counts] + [self.tallies[k] for k in keys]
        if self.class_ss is not None:
            vectors.append(self.class_ss)
        parts = list(vectors)
        square = self.projected_scatter if self.projected_scatter is not None else self.scatter
        if square is not None:
            parts.append(square.flatten())
        flat = torch.cat(parts)
        dist.all_reduce(flat, group=group)
        c = self.num_classes
        self.counts = flat[:c]
        for j, k in enumerate(keys):
            self.tallies[k] = flat[c * (j + 1) : c * (j + 2)]
        if self.class_ss is not None:
            self.class_ss = flat[c * (len(keys) + 1) : c * (len(keys) + 2)]
        if self.projected_scatter is not None:
            self.projected_scatter = flat[c * len(vectors) :].reshape(c, c)
        elif self.scatter is not None:
            self.scatter = flat[c * len(vectors) :].reshape(self.dim, self.dim)
        return self

    def state_dict(self) -> dict:
        """The tallies and the fingerprint of the statistics and classifiers they belong to."""
        state = {
            "counts": self.counts,
            "tallies": dict(self.tallies),
            "meta": {"source": self.source, "classifiers": sorted(self.classifiers), "num_classes": self.num_classes},
        }
        if self.class_ss is not None:
            state["class_ss"] = self.class_ss
        if self.projected_scatter is not None:
            state["projected_scatter"] = self.projected_scatter
        if self.scatter is not None:
            state["scatter"] = self.scatter
        return state

    def load_state_dict(self, state: dict) -> "DecisionStatistics":
        """Restore tallies saved by :meth:`state_dict`; they must belong to the same statistics and
        classifier names. Returns ``self``."""
        meta = state.get("meta") if isinstance(state, dict) else None
        if not isinstance(meta, dict):
            raise ValueError("not a DecisionStatistics state dict (missing 'meta')")
        if meta["source"] != self.source:
            raise ValueError("these tallies were made against different class statistics")
        if sorted(meta["classifiers"]) != sorted(self.classifiers):
            raise ValueError(f"these tallies are for classifiers {meta['classifiers']}, not {sorted(self.classifiers)}")
        self.counts = state["counts"].to(self.device, torch.float64).clone()
        self.tallies = {k: v.to(self.device, torch.float64).clone() for k, v in state["tallies"].items()}
        ss = state.get("class_ss")  # absent in states saved before these sums were kept
        self.class_ss = None if ss is None else ss.to(self.device, torch.float64).clone()
        key = {"projected": "projected_scatter", "full": "scatter"}.get(self.scatter_kind)
        if key is not None:
            if key not in state:
                raise ValueError(f"this state holds no {key.replace('_', ' ')}, which these decisions track")
            setattr(self, key, state[key].to(self.device, torch.float64).clone())
        return self

    def __getattr__(self, name: str) -> torch.Tensor:
        tallies = self.__dict__.get("tallies", {})
        if name in tallies:
            return tallies[name]
        raise AttributeError(name)

    def rates(self) -> dict[str, np.ndarray]:
        """Per-class rates (numpy float64, NaN where a class had no samples): ``ncc_accuracy``,
        ``<name>_accuracy`` and ``<name>_ncc_agreement``."""
        n = self.counts.cpu().numpy()
        out = {}
        with np.errstate(invalid="ignore", divide="ignore"):
            for k, v in self.tallies.items():
                key = k.replace("_correct", "_accuracy").replace("_ncc_agree", "_ncc_agreement")
                out[key] = np.where(n > 0, v.cpu().numpy() / np.maximum(n, 1), np.nan)
        return out

    def __repr__(self) -> str:
        names = ", ".join(repr(n) for n in self.classifiers) or "none"
        return (
            f"DecisionStatistics(num_classes={self.num_classes}, dim={self.dim}, "
            f"n_samples={int(self.counts.sum())}, classifiers=[{names}], precision={self.precision!r})"
        )
