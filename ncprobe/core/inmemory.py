"""One-shot statistics for data held in memory: two reads of the features give every NC metric.

Read 1 forms class counts, float64 class means and Σ x_i/‖x_i‖ (one numba pass on CPU, ``index_add_``
on GPU). Read 2 forms, per chunk, the residuals R = H − M[y] in float64 (and, where a float32 product of
them follows, rounded to float32), and then:

* C < D ("projected"): A = R M̃ᵀ in float64 (N·D·C flops), shared by NC1 and NCC. NC1 needs only the
  projected within-class scatter K = M̃ S_W M̃ᵀ = AᵀA (C×C): tr(Σ_W Σ_B^†)/C = tr(G^{†2} K)/N with
  G = M̃M̃ᵀ (see :func:`ncprobe.metrics.nc1`), so the D×D scatter (N·D² flops) is never formed. The
  NCC scores ‖μ_k‖² − 2 μ_y·μ_k − 2 A_k come from A exactly; the classifier logits from one float32
  product (of the float32 features themselves when they are float32, else of R), certified (see
  :class:`~ncprobe.core.decisions.DecisionTables`).
* C ≥ D ("full"): S_W = RᵀR in float64 (N·D² flops ≤ N·D·C), and every decision from one certified
  float32 product R [M̃; W]ᵀ — the shape of the floor ``X @ [M; W]ᵀ`` itself.

Certification re-scores in float64 only the rows whose top-2 margin is within the float32 error bound,
so the decisions equal float64 decisions, and NC1 is float64-grade (the tests hold it to 1e-9 of a float64
reference).

On CPU (numba available) read 2 runs in parts (:mod:`ncprobe.core.cpu_read`): each thread takes its rows
chunk by chunk through every step, with numpy's BLAS single-threaded, so a chunk stays in the core's cache
and no step waits for another thread pool. Elsewhere (GPU; CPU without numba) it runs chunk after chunk,
each step on all threads (:func:`_read_in_chunks`). The streaming :class:`~ncprobe.ClassStatistics` /
:class:`~ncprobe.DecisionStatistics` pair runs the same second-read code on each batch; tests check both
against a float64 reference.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping

import numpy as np
import torch
from tqdm.auto import tqdm

from ._validation import check_features, encode_labels, resolve_device
from .chunks import (
    ResidualWorkspace,
    class_sums,
    compute_dtype,
    numba_arrays,
    pick_backend,
    raise_not_finite,
)
from .chunks import chunk_rows as default_chunk_rows
from .cpu_read import ReadPlan, read_in_parts
from .decisions import DecisionStatistics
from .prepared import ClassGeometry
from .statistics import ClassStatistics

__all__ = ["compute_statistics", "as_geometry"]


def _chunks(n: int, rows: int):
    for start in range(0, n, rows):
        yield start, min(n, start + rows)


def compute_statistics(
    features: Any,
    labels: Any,
    *,
    classifiers: Mapping[str, Any] | None = None,
    text_features: Any = None,
    num_classes: int | None = None,
    precision: str = "float64",
    backend: str = "auto",
    scatter: Literal["auto", "full", "projected"] = "auto",
    device: Any = None,
    chunk_rows: int | None = None,
    progress: bool = False,
    min_classes: int = 2,
) -> tuple[ClassStatistics, DecisionStatistics]:
    """Class statistics and NC4 decision tallies of in-memory features in two reads.

    Parameters
    ----------
    features:
        (N, D) array or tensor of any float dtype, on any device.
    labels:
        (N,) integer labels. Without ``num_classes`` they are mapped to ``0..C-1`` (sorted unique
        values; the originals become ``class_ids``).
    classifiers:
        ``{name: W}``, ``{name: (W, b)}`` or ``{name: nn.Linear}``, W of shape (C, D), for NC4.
    text_features:
        (C, D) class text embeddings, decided by cosine (the CLIP zero-shot rule) under the name ``"text"``.
    num_classes:
        Use labels as class indices ``0..num_classes-1`` directly: classes without samples keep their
        place (so the class order still matches ``text_features`` rows on an evaluation subset).
    precision:
        ``"float64"`` (default) or ``"float32"`` rounding of the centred residual products.
    backend:
        ``"auto"``, ``"numba"`` or ``"torch"`` for the scatter-add and residual kernels.
    scatter:
        ``"projected"`` keeps only K = M̃ S_W M̃ᵀ (C×C), ``"full"`` the D×D scatter; ``"auto"`` picks
        projected when C < D.
    device:
        Where to compute; defaults to the features' device.
    chunk_rows:
        Rows per chunk of the second read (default: on CPU about 256K elements, see
        :func:`ncprobe.core.cpu_read.part_rows`; on a GPU 64M elements).

    Returns
    -------
    (ClassStatistics, DecisionStatistics)
    """
    dev = resolve_device(device, features if isinstance(features, torch.Tensor) else None)
    # Finiteness is checked on the float64 class sums of the first read (NaN/inf propagate into them),
    # which saves a separate pass over the data; only then are the rows searched for the message.
    x = check_features(features, device=dev, check_finite=False)
    enc = encode_labels(labels, n_samples=x.shape[0], num_classes=num_classes, device=dev, min_classes=min_classes)
    c, (n, d) = enc.num_classes, x.shape
    dtype = compute_dtype(precision)
    be = pick_backend(backend, x)
    codes = enc.codes.cpu() if be == "numba" else enc.codes
    rows = chunk_rows or default_chunk_rows(d, dev)
    bar = tqdm(total=2 * n, desc="ncprobe statistics", unit="row", disable=not progress, leave=False)

    counts = torch.zeros(c, dtype=torch.float64, device=dev)
    sums = torch.zeros(c, d, dtype=torch.float64, device=dev)
    nsum = torch.zeros(d, dtype=torch.float64, device=dev)
    # numba needs no temporaries: one call over all rows. torch forms x.double() per chunk.
    first_chunks = [(0, n)] if be == "numba" else list(_chunks(n, max(rows, (1 << 22) // d)))
    for lo, hi in first_chunks:
        cc, ss, ns = class_sums(x[lo:hi], codes[lo:hi], c, be)
        counts += cc.to(dev)
        sums += ss.to(dev)
        nsum += ns.to(dev)
    bar.update(n)

    if not (bool(torch.isfinite(sums).all()) and bool(torch.isfinite(nsum).all())):
        check_features(x)  # raises, naming the rows with NaN/inf
        raise ValueError("features are too large to accumulate in float64 (a class sum overflows)")

    means = sums / counts.clamp_min(1)[:, None]
    first = ClassStatistics.from_moments(
        counts,
        means,
        torch.zeros_like(counts),
        normalized_sum=nsum,
        class_ids=enc.class_ids,
        precision=precision,
        backend=backend,
    )
    if scatter not in ("auto", "full", "projected"):
        raise ValueError(f"scatter must be 'auto', 'full' or 'projected', got {scatter!r}")
    projected = scatter == "projected" or (scatter == "auto" and c < d)
    # C ≥ D: the D×D scatter, and every decision by one certified float32 product
    dec = DecisionStatistics(
        first,
        classifiers=classifiers,
        text_features=text_features,
        precision=precision,
        scatter="projected" if projected else "full",
    )
    if be == "numba":
        _read_on_cpu(x, enc.codes, means, dec, precision=precision, rows=chunk_rows, bar=bar)
    else:
        _read_in_chunks(x, enc.codes, means, dec, dtype=dtype, rows=rows, bar=bar)
    bar.close()
    return dec.statistics(), dec


def _read_on_cpu(x, codes, means, dec: DecisionStatistics, *, precision: str, rows, bar) -> None:
    """Read 2 on CPU: every chunk's whole pipeline on one thread (:mod:`ncprobe.core.cpu_read`)."""
    xn, cn = numba_arrays(x, codes)
    plan = ReadPlan(
        np.ascontiguousarray(means.cpu().numpy()),
        precision=precision,
        scatter=dec.scatter_kind,
        tables=dec.tables,
        features_dtype=xn.dtype,
        rows=rows,
    )
    res = read_in_parts(xn, cn, plan, progress=bar.update)
    if not res.finite:
        raise_not_finite(x)
    dec.add_read(res)


def _read_in_chunks(x, codes, means, dec: DecisionStatistics, *, dtype, rows: int, bar) -> None:
    """Read 2 in torch (GPU, or CPU without numba): one chunk after another, each step on all threads."""
    work = ResidualWorkspace(means, rows=rows, dtype=dtype, backend="torch", keep=dec.residuals_needed(None))
    for lo, hi in _chunks(x.shape[0], rows):
        r, r32, row_ss = work(x[lo:hi], codes[lo:hi])
        dec.add_residuals(r, r32, codes[lo:hi], row_ss, features=x[lo:hi], feature_ss=work.feature_ss)
        bar.update(hi - lo)


def as_geometry(features: Any, labels: Any = None, **kw: Any) -> ClassGeometry:
    """A :class:`~ncprobe.core.prepared.ClassGeometry` from ``(features, labels)`` (through
    :func:`compute_statistics`, options ``kw``), a :class:`ClassStatistics`, or a geometry (returned as is)."""
    if isinstance(features, (ClassGeometry, ClassStatistics)):
        if labels is not None:
            raise TypeError("pass labels only with raw features, not with ClassStatistics")
        if kw:
            raise TypeError(f"options {sorted(kw)} apply only to raw features")
        return features if isinstance(features, ClassGeometry) else ClassGeometry(features)
    if labels is None:
        raise TypeError("labels are required when features are not ClassStatistics")
    stats, _ = compute_statistics(features, labels, **kw)
    return ClassGeometry(stats)
