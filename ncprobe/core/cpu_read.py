"""The second read over the features on CPU, in parts: each thread runs the whole per-chunk pipeline.

The rows are split into a fixed number of contiguous parts (:data:`PARTS`, fewer for small inputs), and the
threads (``torch.get_num_threads()``) take the next part whenever they are free. A thread takes its parts one chunk of
:func:`part_rows` rows at a time, through every step, with the BLAS library single-threaded
(threadpoolctl) for the duration of the read:

1. the residuals R = X − M[y] (numba kernel, float64 and/or rounded to float32) and each row's ‖r_i‖²;
2. the products: A = R M̃ᵀ and the classifier logits (C < D, "projected"), or R [M̃; W]ᵀ (C ≥ D), and the
   scatter RᵀR or the projected scatter K = AᵀA (numpy ``matmul``, which releases the GIL);
3. the certified decisions and their per-class tallies (:meth:`DecisionTables.count_arrays`: one numba kernel
   per rule for the top two scores, the certification test and the tallies; near-tied rows re-scored in
   float64).

Why not one multi-threaded step after another, as on a GPU: each step of a 2-core CPU then hands the chunk
from one thread pool to the next (numba's, then BLAS's, whose threads spin after each product), and the
chunk leaves the cache between steps. Measured on 2 AMD EPYC cores at N×D×C = 100000×512×100 (float32
features with a classifier; numpy float32 ``X @ [M; W]ᵀ`` is the floor): the step-by-step read with torch's
products took 4.7× the floor for the whole of :func:`ncprobe.measure`, this one 2.2–2.6×
(benchmarks/README.md).

Each part accumulates its own class sums of squares, scatter and tallies, and the parts are added in a fixed
order, so the results do not depend on the number of threads.
"""

from __future__ import annotations

import functools
import itertools
import threading
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import _numba_kernels
from .certified import DecisionTables

__all__ = ["ReadPlan", "ReadResult", "read_in_parts", "blas_single_threaded", "PARTS"]

PARTS = 16  # parts of the rows, added in a fixed order: results do not depend on the thread count
_CHUNK_ELEMENTS = 1 << 18  # 256K elements per chunk: 2 MiB of float64 residuals stay in a core's L2/L3
_MIN_PART_ROWS = 2048  # parts of a small batch: fewer partial results to allocate and add


@functools.lru_cache(maxsize=1)
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def blas_single_threaded():
    """A context in which the BLAS libraries loaded in this process (numpy's OpenBLAS, MKL) run on the
    calling thread: each thread of the read then runs its own products."""
    return _controller().limit(limits=1, user_api="blas")


def part_rows(dim: int) -> int:
    """Rows per chunk: about 256K elements (D = 512: 512 rows)."""
    return max(16, _CHUNK_ELEMENTS // max(1, dim))


@dataclass
class ReadPlan:
    """What one read computes.

    ``means`` (C×D float64) are the first read's class means; ``precision`` rounds the residual products;
    ``scatter`` is ``None``, ``"full"`` (S = RᵀR, D×D) or ``"projected"`` (K = AᵀA with A = R M̃ᵀ, C×C);
    ``tables`` the decision rules (``None``: no decisions). With decisions and ``scatter="projected"`` the NCC
    scores come from A and the logits from float32 products of the features themselves (float64 precision and
    float32 features) or of the float32 residuals; otherwise one certified float32 product R [M̃; W]ᵀ gives
    every score.
    """

    means: np.ndarray
    precision: str = "float64"
    scatter: str | None = None
    tables: DecisionTables | None = None
    features_dtype: np.dtype = field(default_factory=lambda: np.dtype(np.float32))
    rows: int | None = None  # rows per chunk; default part_rows(D)

    @property
    def projected(self) -> bool:
        return self.scatter == "projected"

    @property
    def logits_of_features(self) -> bool:
        t = self.tables
        return (
            t is not None
            and bool(t.weights)
            and self.projected
            and self.precision == "float64"
            and self.features_dtype == np.float32
        )

    def buffers(self) -> tuple[bool, bool]:
        """(float64 residuals needed, float32 residuals needed)."""
        single = self.precision == "float32"
        if self.tables is None:
            return (not single and self.scatter is not None, single and self.scatter is not None)
        if self.projected:
            pair = bool(self.tables.weights) and not self.logits_of_features
            return (not single, single or pair)
        # one float32 product gives every score; float64 residuals only for the scatter (near-tied rows are
        # re-scored from the features)
        return (not single and self.scatter == "full", True)


@dataclass
class ReadResult:
    """Sums over the rows read: per-class ‖r_i‖² sums, the scatter (if planned), per-class counts and
    tallies (if decisions were planned), as float64 numpy arrays."""

    class_ss: np.ndarray
    scatter: np.ndarray | None = None
    counts: np.ndarray | None = None
    tallies: dict[str, np.ndarray] | None = None
    finite: bool = True

    def add(self, other: "ReadResult") -> "ReadResult":
        """Add another part's class sums, counts and tallies (the scatters are added by the caller)."""
        self.class_ss += other.class_ss
        self.finite = self.finite and other.finite
        if self.counts is not None:
            self.counts += other.counts
        if self.tallies is not None:
            for k, v in other.tallies.items():
                self.tallies[k] += v
        return self


_LOCAL = threading.local()


def _buffer(name: str, shape: tuple, dtype) -> np.ndarray:
    """This thread's reusable work array ``name`` of at least ``shape``'s size (a view of that shape): a
    stream of small batches then does not fault in fresh pages for every part."""
    size = int(np.prod(shape))
    have = getattr(_LOCAL, name, None)
    if have is None or have.size < size or have.dtype != dtype:
        have = np.empty(max(size, 1), dtype=dtype)
        setattr(_LOCAL, name, have)
    return have[:size].reshape(shape)


def _read_part(
    x: np.ndarray, codes: np.ndarray, lo: int, hi: int, plan: ReadPlan, scatter: np.ndarray | None
) -> ReadResult:
    """Rows [lo, hi) of x, one chunk at a time, every step on the calling thread; the scatter (if planned) is
    added into ``scatter``, this part's zeroed slot."""
    c, d = plan.means.shape
    rows = min(plan.rows or part_rows(d), max(1, hi - lo))
    wide, narrow = plan.buffers()
    r64 = _buffer("r64", (rows, d), np.float64) if wide else None
    r32 = _buffer("r32", (rows, d), np.float32) if narrow else None
    ss, xss = _buffer("ss", (rows,), np.float64), _buffer("xss", (rows if plan.logits_of_features else 0,), np.float64)
    tables = plan.tables
    single = plan.precision == "float32"
    if tables is not None and plan.projected:
        centered_t = (tables.centered32 if single else tables.centered).numpy().T
    out = ReadResult(np.zeros(c), scatter=scatter)
    if tables is not None:
        out.counts = np.zeros(c)
        out.tallies = {}
        weights_t = tables.weights32.numpy().T if tables.weights else None
        stacked_t = tables.stacked32.numpy().T
    for a in range(lo, hi, rows):
        b = min(hi, a + rows)
        m, xc, yc = b - a, x[a:b], codes[a:b]
        if r64 is not None and r32 is not None:
            _numba_kernels.residual_pair(xc, yc, plan.means, r64[:m], r32[:m], ss[:m], serial=True)
        elif r64 is not None or r32 is not None:
            buf = (r64 if r64 is not None else r32)[:m]
            _numba_kernels.residuals(xc, yc, plan.means, buf, xss[:m] if len(xss) else None, row_ss=ss[:m], serial=True)
        else:
            _numba_kernels.residual_norms(xc, yc, plan.means, single, ss[:m], serial=True)
        if not np.isfinite(ss[:m]).all():
            out.finite = False
            return out
        out.class_ss += np.bincount(yc, weights=ss[:m], minlength=c)
        r = r32[:m] if single else (None if r64 is None else r64[:m])
        if plan.scatter == "full":
            out.scatter += r.T @ r if not single else (r.T @ r).astype(np.float64)
        if tables is None:
            continue
        products = feature_norms = None
        if plan.projected:
            a_m = r @ centered_t
            a64 = a_m if not single else a_m.astype(np.float64)
            out.scatter += a64.T @ a64
            if plan.logits_of_features:
                products, feature_norms = xc @ weights_t, np.sqrt(xss[:m])
            elif tables.weights:
                products = r32[:m] @ weights_t
        else:
            both = r32[:m] @ stacked_t
            a_m, products = both[:, :c], both[:, c:]
        if r is not None:
            exact_rows = lambda rows, r=r: r[rows].astype(np.float64)  # noqa: E731
        else:
            exact_rows = lambda rows, xc=xc, yc=yc: xc[rows].astype(np.float64) - plan.means[yc[rows]]  # noqa: E731
        counted = tables.count_arrays(
            exact_rows, a_m, yc, row_norms=np.sqrt(ss[:m]), products=products, feature_norms=feature_norms
        )
        out.counts += np.bincount(yc, minlength=c)
        for k, v in counted.items():
            out.tallies[k] = out.tallies.get(k, 0.0) + v
    return out


def read_in_parts(
    x: np.ndarray, codes: np.ndarray, plan: ReadPlan, *, progress: Callable[[int], object] | None = None
) -> ReadResult:
    """Run ``plan`` over all rows of ``x`` (C-contiguous float32/float64) with int64 ``codes``: the parts
    taken in turn by ``torch.get_num_threads()`` threads, BLAS single-threaded meanwhile, results added in part order.
    ``finite`` is False when a residual row norm was not finite (NaN/inf in the features). ``progress`` is
    called with the rows of each finished part (e.g. a tqdm bar's ``update``)."""
    n = x.shape[0]
    nparts = max(1, min(PARTS, n // _MIN_PART_ROWS))
    bounds = [n * p // nparts for p in range(nparts + 1)]
    t = min(_numba_kernels.threads(), nparts)
    c, d = plan.means.shape
    shape = {"full": (d, d), "projected": (c, c)}.get(plan.scatter)
    slots = None if shape is None else _scatter_slots(nparts, shape)

    parts: list[ReadResult | None] = [None] * nparts
    next_part = itertools.count()  # parts are handed out in order to whichever thread is free

    def run() -> None:
        while (p := next(next_part)) < nparts:
            parts[p] = _read_part(x, codes, bounds[p], bounds[p + 1], plan, None if slots is None else slots[p])
            if progress is not None:
                progress(bounds[p + 1] - bounds[p])

    with blas_single_threaded():
        _numba_kernels.run_tasks([run] * t)
    total = parts[0]
    for part in parts[1:]:
        total.add(part)
    total.scatter = None if slots is None else slots.sum(0)  # the parts' scatters, added in part order
    return total


def _scatter_slots(nparts: int, shape: tuple[int, int]) -> np.ndarray:
    """One zeroed scatter accumulator per part, kept between calls of this thread: a stream of batches reuses
    warm memory (a fresh D×D array per part and batch faults in new pages every time)."""
    slots = _buffer("scatter_slots", (nparts,) + shape, np.float64)
    slots.fill(0)
    return slots
