"""Streaming per-class statistics: the one pass over the data that every NC metric starts from.

:class:`ClassStatistics` holds, in float64 on the features' device,

* ``counts[k]``  — samples of class k,
* ``means[k]``   — class means μ_k,
* ``class_ss[k]`` — within-class sum of squares Σ_{i∈k} ‖h_i − μ_k‖²,
* ``scatter``    — within-class scatter S_W = Σ_i (h_i − μ_{y_i})(h_i − μ_{y_i})ᵀ (D×D),
* ``normalized_sum`` — Σ_i h_i/‖h_i‖ (for the modality gap).

Batches are combined with the pairwise update of Chan, Golub & LeVeque (1979): for two sets a, b
of one class with n = n_a + n_b and δ = μ_b − μ_a,

    μ = μ_a + δ n_b/n,    SS = SS_a + SS_b + (n_a n_b/n) ‖δ‖²,    S = S_a + S_b + (n_a n_b/n) δδᵀ.

Each batch is centred on its own class means before its scatter is formed, so no large raw
second moment is ever subtracted (accumulating XᵀX and subtracting Σ n_k μ_k μ_kᵀ loses about as
many digits as ‖μ‖²/Var_W has). Updating, merging and :meth:`all_reduce` therefore give the same
result as one pass over all data up to float64 rounding.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from ._validation import check_count, check_features, encode_labels
from .chunks import (
    ResidualWorkspace,
    add_scatter,
    chunk_rows,
    class_sums,
    compute_dtype,
    numba_arrays,
    pick_backend,
    raise_not_finite,
    require_finite,
    residuals,  # noqa: F401 (part of this module's public names, as before)
)
from .cpu_read import ReadPlan, read_in_parts

__all__ = ["ClassStatistics", "compute_dtype", "pick_backend", "class_sums", "residuals"]

Precision = Literal["float64", "float32"]
Backend = Literal["auto", "torch", "numba"]


class ClassStatistics:
    """Mergeable, streaming per-class moments in float64 (``update`` / ``merge`` / ``all_reduce``).

    Parameters
    ----------
    num_classes:
        Number of classes C; labels passed to :meth:`update` must lie in ``[0, C)``.
    dim:
        Feature dimension D; inferred from the first batch when ``None``.
    device:
        Where the float64 state lives; defaults to the first batch's device (GPU stays GPU).
    track_scatter:
        Keep the D×D within-class scatter (needed for NC1 ``tr(Σ_W Σ_B^†)``). ``False`` keeps only
        per-class sums of squares (enough for CDNV, NC1 quotient, NC2), using O(C·D) memory.
    track_variance:
        Keep the per-class sums of squares (needs a second read of each batch, about its class means).
        ``False`` keeps only counts and means (one read per batch): the first pass of a two-pass stream whose
        second pass, a :class:`~ncprobe.DecisionStatistics`, measures the sums of squares about the final
        means and completes the statistics (:meth:`DecisionStatistics.statistics`). Needs
        ``track_scatter=False``.
    precision:
        Rounding of each batch's centred residuals before the scatter product: ``"float64"``
        (default; exact to float64 rounding) or ``"float32"`` (about twice as fast on CPU; since
        residuals are centred first, the relative error stays near 1e-6 rather than the 1e-2 that
        an uncentred float32 XᵀX can give).
    backend:
        ``"auto"`` (numba for CPU data when installed, torch otherwise), ``"torch"`` or ``"numba"``.
    class_ids:
        Labels to report per class (defaults to ``0..C-1``).

    Examples
    --------
    >>> import torch
    >>> stats = ClassStatistics(num_classes=3)
    >>> for _ in range(4):
    ...     x = torch.randn(32, 8); y = torch.arange(32) % 3
    ...     _ = stats.update(x, y)
    >>> stats.counts.tolist()
    [44.0, 44.0, 40.0]
    """

    def __init__(
        self,
        num_classes: int,
        dim: int | None = None,
        *,
        device: Any = None,
        track_scatter: bool = True,
        track_variance: bool = True,
        precision: Precision = "float64",
        backend: Backend = "auto",
        class_ids: Any = None,
    ):
        self.num_classes = check_count(num_classes, name="num_classes", minimum=1)
        self.dim = None if dim is None else check_count(dim, name="dim", minimum=1)
        self.track_scatter = bool(track_scatter)
        self.track_variance = bool(track_variance)
        if self.track_scatter and not self.track_variance:
            raise ValueError("track_scatter=True needs track_variance=True (the scatter's trace is the variance)")
        self.precision = precision
        compute_dtype(precision)
        self.backend = backend
        self.class_ids = np.arange(self.num_classes) if class_ids is None else np.asarray(class_ids)
        if len(self.class_ids) != self.num_classes:
            raise ValueError(f"class_ids has {len(self.class_ids)} entries for {self.num_classes} classes")
        self._device = None if device is None else torch.device(device)
        self.counts: torch.Tensor | None = None
        self.means: torch.Tensor | None = None
        self.class_ss: torch.Tensor | None = None
        self.scatter: torch.Tensor | None = None
        self.normalized_sum: torch.Tensor | None = None
        # Set only through from_moments(): M̃ S_W M̃ᵀ for the final centred means, when the full
        # scatter was not formed (C < D). Such statistics cannot be merged.
        self.projected_scatter: torch.Tensor | None = None
        if self.dim is not None:
            self._allocate(self._device or torch.device("cpu"))

    # ------------------------------------------------------------------ state
    def _allocate(self, device: torch.device) -> None:
        c, d = self.num_classes, self.dim
        f64 = dict(dtype=torch.float64, device=device)
        self._device = device
        self.counts = torch.zeros(c, **f64)
        self.means = torch.zeros(c, d, **f64)
        self.class_ss = torch.zeros(c, **f64) if self.track_variance else None
        self.scatter = torch.zeros(d, d, **f64) if self.track_scatter else None
        self.normalized_sum = torch.zeros(d, **f64)

    @property
    def device(self) -> torch.device:
        return self._device or torch.device("cpu")

    @property
    def n_samples(self) -> int:
        return 0 if self.counts is None else int(self.counts.sum().item())

    def require_data(self) -> None:
        """Raise ``ValueError`` unless at least one sample was added."""
        if self.counts is None or self.n_samples == 0:
            raise ValueError("ClassStatistics is empty: call update() with data first")

    @property
    def global_mean(self) -> torch.Tensor:
        """Unweighted mean of the class means of non-empty classes, μ_G = (1/C) Σ_k μ_k (the
        convention of Papyan et al. 2020 for Σ_B; it does not shift with class imbalance)."""
        self.require_data()
        present = self.counts > 0
        return self.means[present].mean(0)

    @property
    def sample_mean(self) -> torch.Tensor:
        """Sample-weighted global mean (1/N) Σ_i h_i."""
        self.require_data()
        return (self.counts[:, None] * self.means).sum(0) / self.counts.sum()

    @property
    def within_covariance(self) -> torch.Tensor:
        """Σ_W = S_W / N, the sample-weighted within-class covariance (ddof = 0)."""
        self.require_data()
        if self.scatter is None:
            raise ValueError("the within-class scatter was not tracked (track_scatter=False)")
        return self.scatter / self.counts.sum()

    @property
    def class_variances(self) -> torch.Tensor:
        """Per-class total variance Var_k = (1/n_k) Σ_{i∈k} ‖h_i − μ_k‖² (NaN for empty classes)."""
        self.require_data()
        self.require_variances()
        return torch.where(self.counts > 0, self.class_ss / self.counts.clamp_min(1), float("nan"))

    # ---------------------------------------------------------------- updates
    def update(self, features: Any, labels: Any) -> "ClassStatistics":
        """Add a batch. ``features`` (n×D, any float dtype, numpy or torch, any device); ``labels``
        integers in ``[0, num_classes)``. Returns ``self``."""
        # NaN/inf are found in the float64 row norms of the residuals (no separate pass over the data).
        x = check_features(features, device=self._device, check_finite=False)
        if self.dim is None:
            self.dim = x.shape[1]
        elif x.shape[1] != self.dim:
            raise ValueError(f"features have {x.shape[1]} dimensions, the statistics hold {self.dim}")
        if self.counts is None:
            self._allocate(self._device or x.device)
        x = x.to(self.device)
        enc = encode_labels(
            labels, n_samples=x.shape[0], num_classes=self.num_classes, device=self.device, min_classes=0
        )
        if x.shape[0] == 0:
            return self
        backend = pick_backend(self.backend, x)
        codes = enc.codes.cpu() if backend == "numba" else enc.codes
        counts, sums, nsum = class_sums(x, codes, self.num_classes, backend)
        cpu = sums.device.type == "cpu"  # numpy for the C×D bookkeeping on CPU (see _combine)
        if cpu:
            means = torch.from_numpy(sums.numpy() / np.maximum(counts.numpy(), 1)[:, None])
        else:
            means = sums / counts.clamp_min(1)[:, None]
        if not self.track_variance:  # counts and means only: NaN/inf show in the sums
            xp, arr = (np, lambda t: t.numpy()) if cpu else (torch, lambda t: t)
            if not (bool(xp.isfinite(arr(sums)).all()) and bool(xp.isfinite(arr(nsum)).all())):
                raise_not_finite(x)
            dev = self.device
            self._combine(counts.to(dev), means.to(dev), None, None, nsum.to(dev))
            return self
        dtype = compute_dtype(self.precision)
        d = x.shape[1]
        if backend == "numba":
            xn, cn = numba_arrays(x, codes)
            scatter_kind = "full" if self.track_scatter else None
            plan = ReadPlan(np.ascontiguousarray(means.numpy()), precision=self.precision, scatter=scatter_kind)
            res = read_in_parts(xn, cn, plan)
            if not res.finite:
                raise_not_finite(x)
            class_ss = torch.from_numpy(res.class_ss)
            scatter = None if res.scatter is None else torch.from_numpy(res.scatter)
        else:
            rows = min(chunk_rows(d, x.device), x.shape[0])
            keep = "residuals" if self.track_scatter else "norms"
            work = ResidualWorkspace(means, rows=rows, dtype=dtype, backend=backend, keep=keep)
            class_ss = torch.zeros(self.num_classes, dtype=torch.float64, device=means.device)
            scatter = torch.zeros(d, d, dtype=torch.float64, device=means.device) if self.track_scatter else None
            for lo in range(0, x.shape[0], rows):
                r, _, row_ss = work(x[lo : lo + rows], codes[lo : lo + rows])
                require_finite(row_ss, x)
                class_ss.index_add_(0, codes[lo : lo + rows].to(means.device), row_ss.to(means.device))
                if scatter is not None:
                    add_scatter(scatter, r)
        dev = self.device
        self._combine(
            counts.to(dev), means.to(dev), class_ss.to(dev), None if scatter is None else scatter.to(dev), nsum.to(dev)
        )
        return self

    def _combine(self, counts, means, class_ss, scatter, nsum) -> None:
        # Chan et al.'s pairwise update (module docstring). On CPU in numpy: a torch op of C×D elements runs on
        # torch's OpenMP threads, which then spin for milliseconds and slow the next batch's read threads (a
        # streamed second pass measured ~20 % slower with that bookkeeping in torch).
        if self.projected_scatter is not None:
            raise ValueError(
                "these statistics were computed in one shot without the full scatter and "
                "cannot be updated or merged; use ClassStatistics.update() to stream"
            )
        if self.scatter is not None and scatter is None:
            raise ValueError("cannot merge statistics without a scatter into ones that track it")
        cpu = self.device.type == "cpu"
        xp = np if cpu else torch
        arr = (lambda t: None if t is None else t.numpy()) if cpu else (lambda t: t)  # noqa: E731
        out = torch.from_numpy if cpu else (lambda v: v)  # noqa: E731
        n_a, n_b, mu_a = arr(self.counts), arr(counts), arr(self.means)
        n = n_a + n_b
        present = n_b > 0
        delta = arr(means) - mu_a
        w = xp.where(present, n_a * n_b / n.clip(min=1), 0.0)
        frac = xp.where(present, n_b / n.clip(min=1), 0.0)
        self.means = out(mu_a + delta * frac[:, None])
        if self.class_ss is not None:
            self.class_ss = out(arr(self.class_ss) + arr(class_ss) + w * (delta * delta).sum(1))
        if self.scatter is not None:
            keep = w > 0
            dw = delta[keep] * xp.sqrt(w[keep])[:, None]
            self.scatter = out(arr(self.scatter) + arr(scatter) + dw.T @ dw)
        self.counts = out(n)
        self.normalized_sum = out(arr(self.normalized_sum) + arr(nsum))

    def merge(self, other: "ClassStatistics") -> "ClassStatistics":
        """Fold another accumulator's data into this one (exact Chan update). Returns ``self``."""
        if not isinstance(other, ClassStatistics):
            raise TypeError(f"can only merge ClassStatistics, got {type(other).__name__}")
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge statistics of {other.num_classes} classes into {self.num_classes}")
        if other.counts is None:
            return self
        if self.dim is None:
            self.dim = other.dim
        if other.dim != self.dim:
            raise ValueError(f"cannot merge {other.dim}-dimensional statistics into {self.dim}-dimensional")
        if self.counts is None:
            self._allocate(self._device or other.device)
        if other.projected_scatter is not None:
            raise ValueError("statistics computed in one shot without the full scatter cannot be merged")
        if self.scatter is not None and other.scatter is None:
            raise ValueError("cannot merge statistics without a scatter into ones that track it")
        if self.class_ss is not None and other.class_ss is None:
            raise ValueError(
                "cannot merge statistics without per-class sums of squares (track_variance=False) into ones "
                "that track them"
            )
        dev = self.device
        self._combine(
            other.counts.to(dev),
            other.means.to(dev),
            None if self.class_ss is None else other.class_ss.to(dev),
            None if self.scatter is None else other.scatter.to(dev),
            other.normalized_sum.to(dev),
        )
        return self

    def __add__(self, other: "ClassStatistics") -> "ClassStatistics":
        return self.copy().merge(other)

    def copy(self) -> "ClassStatistics":
        new = ClassStatistics(
            self.num_classes,
            self.dim,
            device=self._device,
            track_scatter=self.track_scatter,
            track_variance=self.track_variance,
            precision=self.precision,
            backend=self.backend,
            class_ids=self.class_ids,
        )
        for name in self._STATE:
            val = getattr(self, name)
            setattr(new, name, None if val is None else val.clone())
        return new

    def all_reduce(self, group: Any = None) -> "ClassStatistics":
        """Combine the statistics of all processes of a ``torch.distributed`` group, in place.

        Two all-reduces: (1) counts and count-weighted sums give the global class means μ_k;
        (2) each process re-centres its sums of squares and scatter on μ_k,
        SS_k += n_k‖μ_k^(p) − μ_k‖² and S += Σ_k n_k (μ_k^(p) − μ_k)(μ_k^(p) − μ_k)ᵀ, and these are summed.
        Every process ends with identical statistics. A no-op when not distributed.
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self
        self.require_allocated()
        counts = self.counts.clone()
        wsum = self.means * counts[:, None]
        dist.all_reduce(counts, group=group)
        dist.all_reduce(wsum, group=group)
        means = torch.where(counts[:, None] > 0, wsum / counts.clamp_min(1)[:, None], 0.0)
        delta = self.means - means
        parts = [self.normalized_sum]
        if self.class_ss is not None:
            parts.append(self.class_ss + self.counts * (delta * delta).sum(1))
        if self.scatter is not None:
            dw = delta * self.counts.sqrt()[:, None]
            parts.append((self.scatter + dw.T @ dw).flatten())
        flat = torch.cat(parts)
        dist.all_reduce(flat, group=group)
        c, d = self.num_classes, self.dim
        self.counts, self.means = counts, means
        self.normalized_sum = flat[:d]
        if self.class_ss is not None:
            self.class_ss = flat[d : d + c]
        if self.scatter is not None:
            self.scatter = flat[d + c :].reshape(d, d)
        return self

    def require_variances(self) -> None:
        """Raise ``ValueError`` when the per-class sums of squares were not tracked (``track_variance=False``)."""
        if self.class_ss is None:
            raise ValueError(
                "these statistics hold counts and means only (track_variance=False): a second pass over the "
                "same samples supplies the sums of squares, dec = DecisionStatistics(stats, ...) and "
                "dec.update(...); then measure(stats, decisions=dec), or dec.statistics()"
            )

    def require_allocated(self) -> None:
        """Raise ``ValueError`` unless the state tensors exist (after the first update)."""
        if self.counts is None:
            raise ValueError("ClassStatistics has no data yet: call update() first")

    # ----------------------------------------------------------- protocol
    _STATE = ("counts", "means", "class_ss", "scatter", "normalized_sum", "projected_scatter")

    def reset(self) -> "ClassStatistics":
        """Forget all data (keeping the settings and, when known, the dimension). Returns ``self``."""
        for name in self._STATE:
            setattr(self, name, None)
        if self.dim is not None:
            self._allocate(self.device)
        return self

    @classmethod
    def from_moments(
        cls,
        counts: Any,
        means: Any,
        class_ss: Any,
        *,
        scatter: Any = None,
        projected_scatter: Any = None,
        normalized_sum: Any = None,
        class_ids: Any = None,
        precision: Precision = "float64",
        backend: Backend = "auto",
    ) -> "ClassStatistics":
        """Statistics from already-computed moments (float64 on the device of ``means``).

        Parameters
        ----------
        counts, means, class_ss:
            Per-class sample counts (C,), means (C, D) and within-class sums of squares (C,); ``class_ss=None``
            gives counts and means only (as ``track_variance=False``).
        scatter:
            The D×D within-class scatter S_W (enables NC1 and merging into tracking statistics).
        projected_scatter:
            Instead of ``scatter``: K = M̃ S_W M̃ᵀ over the present classes (C×C); enough for NC1 when
            C < D, but such statistics cannot be updated or merged.
        normalized_sum:
            Σ_i h_i/‖h_i‖ (D,), for the modality gap; zeros when omitted.
        """
        means = torch.as_tensor(means).double()
        c, d = means.shape
        new = cls(
            c,
            d,
            device=means.device,
            track_scatter=scatter is not None,
            track_variance=class_ss is not None,
            precision=precision,
            backend=backend,
            class_ids=class_ids,
        )
        f64 = dict(dtype=torch.float64, device=means.device)
        new.counts = torch.as_tensor(counts, **f64).reshape(c)
        new.means = means
        new.class_ss = None if class_ss is None else torch.as_tensor(class_ss, **f64).reshape(c)
        new.scatter = None if scatter is None else torch.as_tensor(scatter, **f64).reshape(d, d)
        new.projected_scatter = None if projected_scatter is None else torch.as_tensor(projected_scatter, **f64)
        new.normalized_sum = (
            torch.zeros(d, **f64) if normalized_sum is None else torch.as_tensor(normalized_sum, **f64).reshape(d)
        )
        return new

    def state_dict(self) -> dict:
        """Tensors and settings (a plain dict that ``torch.save`` can store); restore with
        :meth:`load_state_dict` or :meth:`from_state_dict`."""
        self.require_allocated()
        state = {k: getattr(self, k) for k in self._STATE if getattr(self, k) is not None}
        state["meta"] = {
            "num_classes": self.num_classes,
            "dim": self.dim,
            "precision": self.precision,
            "track_scatter": self.track_scatter,
            "track_variance": self.track_variance,
            "backend": self.backend,
            "class_ids": self.class_ids.tolist(),
        }
        return state

    def load_state_dict(self, state: dict) -> "ClassStatistics":
        """Replace this accumulator's data with ``state`` (from :meth:`state_dict`), on this device.

        The number of classes must match; the dimension is taken from the state. Returns ``self``.
        """
        meta = state.get("meta")
        if not isinstance(meta, dict) or "counts" not in state:
            raise ValueError("not a ClassStatistics state dict (missing 'meta' or 'counts')")
        if int(meta["num_classes"]) != self.num_classes:
            raise ValueError(f"state holds {meta['num_classes']} classes, these statistics {self.num_classes}")
        self.dim = int(meta["dim"])
        self.precision = meta["precision"]
        self.track_scatter = bool(meta["track_scatter"])
        self.track_variance = bool(meta.get("track_variance", True))
        self.class_ids = np.asarray(meta["class_ids"])
        dev = self._device or state["counts"].device
        self._device = torch.device(dev)
        for k in self._STATE:
            val = state.get(k)
            setattr(self, k, None if val is None else val.to(self._device, torch.float64).clone())
        return self

    @classmethod
    def from_state_dict(cls, state: dict, *, device: Any = None) -> "ClassStatistics":
        """A new accumulator restored from :meth:`state_dict` (on ``device``, default the state's)."""
        meta = state["meta"]
        new = cls(
            meta["num_classes"],
            device=device or state["counts"].device,
            precision=meta["precision"],
            backend=meta.get("backend", "auto"),
            class_ids=meta["class_ids"],
        )
        return new.load_state_dict(state)

    def to(self, device: Any) -> "ClassStatistics":
        """Move the state to ``device`` (in place) and return ``self``."""
        self._device = torch.device(device)
        for name in self._STATE:
            val = getattr(self, name)
            if val is not None:
                setattr(self, name, val.to(self._device))
        return self

    def __repr__(self) -> str:
        if self.counts is None:
            return f"ClassStatistics(num_classes={self.num_classes}, empty)"
        return (
            f"ClassStatistics(num_classes={self.num_classes}, dim={self.dim}, n_samples={self.n_samples}, "
            f"device={self.device}, scatter={'yes' if self.scatter is not None else 'no'}"
            + ("" if self.track_variance else ", variances=no")
            + ")"
        )
