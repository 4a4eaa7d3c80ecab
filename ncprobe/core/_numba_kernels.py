"""numba CPU kernels for the memory-bound parts of the class statistics and the decisions.

The matrix products go to BLAS; what is left is scatter-adds, residuals and per-row top-2 searches (with
their tallies), which numpy and torch do with large temporaries (``x.double()``, ``means[codes]``,
``table[codes]``). These kernels do them in one pass without temporaries, accumulating in float64.

Threads: the kernels are serial and release the GIL. A small thread pool (as many threads as
``torch.get_num_threads()``, sleeping between calls) runs either one block of rows per thread
(``serial=False``) or, for the CPU read in parts (:mod:`ncprobe.core.cpu_read`), one task per thread that
calls the kernels and numpy's BLAS (single-threaded) itself. numba's own ``parallel=True`` would start a
second OpenMP runtime whose spinning threads fight BLAS's and torch's threads for the cores.

Sums of squares are accumulated in eight interleaved partial sums (a fixed order, so results do not
depend on the machine's vector width, yet the loop runs without a serial dependency).

numba is optional at import time: :data:`AVAILABLE` says whether the kernels can be used.

Compilation is cached on disk (numba's ``cache=True``: next to this module, else ``~/.cache/numba``, or
``$NUMBA_CACHE_DIR``); the first use on a machine compiles for a few seconds and says so on stderr. Where no
cache folder is writable the kernels compile in memory each process, with one warning, instead of failing.
The notice appears when a kernel's first call takes longer than ``$NCPROBE_COMPILE_NOTICE_SECONDS`` (1 s).
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

try:  # pragma: no cover - exercised implicitly
    import numba  # noqa: F401
    from numba import njit

    AVAILABLE = True
except ImportError:  # pragma: no cover
    AVAILABLE = False

__all__ = [
    "AVAILABLE",
    "class_sums",
    "residuals",
    "residual_pair",
    "residual_norms",
    "best_two",
    "decide_count",
    "run_tasks",
]


def _jit(**options):
    """``numba.njit(cache=True, **options)``, falling back to an in-memory compile (one warning) when numba finds
    no writable cache folder ("cannot cache function ...: no locator available")."""

    def decorate(func):
        try:
            return njit(cache=True, **options)(func)
        except RuntimeError as err:
            if "cannot cache" not in str(err):
                raise
            warnings.warn(
                f"numba cannot cache ncprobe's CPU kernels ({err}); they compile in each process. "
                "Set NUMBA_CACHE_DIR to a writable folder to keep them",
                stacklevel=2,
            )
            return njit(cache=False, **options)(func)

    return decorate


_COMPILED: set = set()  # kernels called at least once in this process
_ANNOUNCED = False
_ANNOUNCE_LOCK = threading.Lock()


def _cache_misses(kernel) -> int:
    """How many signatures of ``kernel`` numba has had to compile (it counts a miss just before compiling)."""
    stats = getattr(kernel, "stats", None)
    return sum(stats.cache_misses.values()) if stats is not None else 0


def _uncached(kernel) -> bool:
    return type(getattr(kernel, "_cache", None)).__name__ in ("NullCache", "NoneType")


def _first_call(kernel, call):
    """Run a kernel's first call of the process; if numba is compiling it (a cache miss, or no disk cache) and
    the call has taken more than a second, say once on stderr what is happening. A first call that only loads
    the cache says nothing, however long it takes (loading numba and the cache takes ~1 s on a loaded CPU)."""
    global _ANNOUNCED
    if kernel in _COMPILED or _ANNOUNCED:
        _COMPILED.add(kernel)
        return call()

    def announce():
        global _ANNOUNCED
        with _ANNOUNCE_LOCK:  # kernels may compile on two threads at once (the CPU read in parts)
            if _ANNOUNCED:
                return
            _ANNOUNCED = True
        print(
            "ncprobe: compiling the numba CPU kernels (first use on this machine, a few seconds; cached on disk "
            "afterwards, see NUMBA_CACHE_DIR)",
            file=sys.stderr,
            flush=True,
        )

    misses, done = _cache_misses(kernel), threading.Event()

    def watch():
        if done.wait(float(os.environ.get("NCPROBE_COMPILE_NOTICE_SECONDS", "1.0"))):
            return
        while not done.is_set():
            if _uncached(kernel) or _cache_misses(kernel) > misses:
                announce()
                return
            done.wait(0.05)

    threading.Thread(target=watch, daemon=True, name="ncprobe-compile-notice").start()
    try:
        return call()
    finally:
        done.set()
        _COMPILED.add(kernel)


if AVAILABLE:

    @_jit(inline="always")
    def _sumsq(v):  # pragma: no cover - compiled
        # Σ v_j² in float64 with eight partial sums in a fixed order.
        d = v.shape[0]
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
        j = 0
        while j + 8 <= d:
            a0 = np.float64(v[j])
            a1 = np.float64(v[j + 1])
            a2 = np.float64(v[j + 2])
            a3 = np.float64(v[j + 3])
            a4 = np.float64(v[j + 4])
            a5 = np.float64(v[j + 5])
            a6 = np.float64(v[j + 6])
            a7 = np.float64(v[j + 7])
            s0 += a0 * a0
            s1 += a1 * a1
            s2 += a2 * a2
            s3 += a3 * a3
            s4 += a4 * a4
            s5 += a5 * a5
            s6 += a6 * a6
            s7 += a7 * a7
            j += 8
        while j < d:
            a0 = np.float64(v[j])
            s0 += a0 * a0
            j += 1
        return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))

    @_jit(nogil=True, fastmath=False)
    def _class_sums(x, codes, lo, hi, sums, normalized, counts):  # pragma: no cover - compiled
        # Rows [lo, hi) into this part's own buffers (class sums, Σ x_i/‖x_i‖, counts).
        d = x.shape[1]
        for i in range(lo, hi):
            k = codes[i]
            row = x[i]
            acc = sums[k]
            for j in range(d):
                acc[j] += np.float64(row[j])
            counts[k] += 1
            s = _sumsq(row)
            if s > 0.0:
                w = 1.0 / np.sqrt(s)
                for j in range(d):
                    normalized[j] += np.float64(row[j]) * w

    @_jit(nogil=True, fastmath=False)
    def _residuals(x, codes, means, out, row_ss, x_ss, lo, hi):  # pragma: no cover - compiled
        # x_ss (if not empty) receives ‖x_i‖² as well.
        d = x.shape[1]
        with_x = x_ss.shape[0] > 0
        for i in range(lo, hi):
            k = codes[i]
            o = out[i]
            for j in range(d):
                o[j] = np.float64(x[i, j]) - means[k, j]
            row_ss[i] = _sumsq(o)
            if with_x:
                x_ss[i] = _sumsq(x[i])

    @_jit(nogil=True, fastmath=False)
    def _residual_norms(x, codes, means, single, row_ss, lo, hi):  # pragma: no cover - compiled
        # ‖x_i − μ_{y_i}‖² of the residual rounded to float32 (single) or float64, nothing written.
        d = x.shape[1]
        if not single:
            for i in range(lo, hi):
                row_ss[i] = _diff_sumsq(x[i], means[codes[i]])
            return
        buf = np.empty(d, dtype=np.float64)
        for i in range(lo, hi):
            k = codes[i]
            for j in range(d):
                buf[j] = np.float64(np.float32(np.float64(x[i, j]) - means[k, j]))
            row_ss[i] = _sumsq(buf)

    @_jit(inline="always")
    def _diff_sumsq(row, mu):  # pragma: no cover - compiled
        # Σ (row_j − mu_j)² in float64 with _sumsq's eight partial sums (the same order, so the same bits as
        # _sumsq of the written residual), without writing the residual.
        d = row.shape[0]
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
        j = 0
        while j + 8 <= d:
            a0 = np.float64(row[j]) - mu[j]
            a1 = np.float64(row[j + 1]) - mu[j + 1]
            a2 = np.float64(row[j + 2]) - mu[j + 2]
            a3 = np.float64(row[j + 3]) - mu[j + 3]
            a4 = np.float64(row[j + 4]) - mu[j + 4]
            a5 = np.float64(row[j + 5]) - mu[j + 5]
            a6 = np.float64(row[j + 6]) - mu[j + 6]
            a7 = np.float64(row[j + 7]) - mu[j + 7]
            s0 += a0 * a0
            s1 += a1 * a1
            s2 += a2 * a2
            s3 += a3 * a3
            s4 += a4 * a4
            s5 += a5 * a5
            s6 += a6 * a6
            s7 += a7 * a7
            j += 8
        while j < d:
            a0 = np.float64(row[j]) - mu[j]
            s0 += a0 * a0
            j += 1
        return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))

    @_jit(nogil=True, fastmath=False)
    def _residual_pair(x, codes, means, out64, out32, row_ss, lo, hi):  # pragma: no cover - compiled
        d = x.shape[1]
        for i in range(lo, hi):
            k = codes[i]
            o = out64[i]
            h = out32[i]
            for j in range(d):
                r = np.float64(x[i, j]) - means[k, j]
                o[j] = r
                h[j] = np.float32(r)
            row_ss[i] = _sumsq(o)

    @_jit(inline="always", fastmath={"nnan"})
    def _max(v, c):  # pragma: no cover - compiled
        # max of v[:c] in four interleaved lanes ("no NaN" lets the compiler vectorise it; -inf is allowed).
        m0 = m1 = m2 = m3 = -np.inf
        k = 0
        while k + 4 <= c:
            m0 = max(m0, v[k])
            m1 = max(m1, v[k + 1])
            m2 = max(m2, v[k + 2])
            m3 = max(m3, v[k + 3])
            k += 4
        while k < c:
            m0 = max(m0, v[k])
            k += 1
        return max(max(m0, m1), max(m2, m3))

    @_jit(nogil=True, fastmath={"nnan"})
    def _best_two(products, alpha, table, codes, pred, margin, lo, hi):  # pragma: no cover - compiled
        # score_ik = alpha·products_ik + table[codes_i, k] (table row 0 for all when it has one row);
        # the first index of the largest score and its margin over the second largest. Scores are never
        # NaN (the features were checked), so the "no NaN" flag changes no result.
        c = products.shape[1]
        shared = table.shape[0] == 1
        buf = np.empty(c, dtype=np.float64)
        for i in range(lo, hi):
            pred[i], margin[i] = _row_best_two(products[i], alpha, table[0] if shared else table[codes[i]], buf)

    @_jit(inline="always", fastmath={"nnan"})
    def _row_best_two(p, alpha, t, buf):  # pragma: no cover - compiled
        # The first index of the largest alpha·p_k + t_k and its margin over the second largest (buf: scratch).
        c = buf.shape[0]
        for k in range(c):
            buf[k] = alpha * np.float64(p[k]) + t[k]
        b1 = _max(buf, c)
        k1 = 0
        while buf[k1] != b1:
            k1 += 1
        buf[k1] = -np.inf
        return k1, b1 - _max(buf, c)

    @_jit(nogil=True, fastmath={"nnan"})
    def _decide_count(
        products, alpha, table, codes, bound, scale, reference, pred, correct, agree, unsure
    ):  # pragma: no cover - compiled
        # _best_two's decision per row, tallied at once: rows whose margin is within bound·scale[i] are
        # listed in unsure (their number is returned) and left untallied; the others add to correct[y_i]
        # (pred == y_i) and, with a reference decision, to agree[y_i] (pred == reference_i).
        n, c = products.shape
        shared = table.shape[0] == 1
        with_reference = reference.shape[0] > 0
        buf = np.empty(c, dtype=np.float64)
        nb = 0
        for i in range(n):
            y = codes[i]
            k1, margin = _row_best_two(products[i], alpha, table[0] if shared else table[y], buf)
            pred[i] = k1
            if margin <= bound * scale[i]:
                unsure[nb] = i
                nb += 1
                continue
            if k1 == y:
                correct[y] += 1
            if with_reference and k1 == reference[i]:
                agree[y] += 1
        return nb


_NO_REFERENCE = np.empty(0, dtype=np.int64)


def decide_count(
    products: np.ndarray,
    alpha: float,
    table: np.ndarray,
    codes: np.ndarray,
    *,
    bound: float,
    scale: np.ndarray,
    pred: np.ndarray,
    correct: np.ndarray,
    agree: np.ndarray | None = None,
    reference: np.ndarray | None = None,
) -> np.ndarray:
    """On the calling thread: per row i, ``pred[i] = argmax_k (alpha·products[i, k] + table[codes[i], k])``
    (as :func:`best_two`); rows whose top-2 margin is at most ``bound·scale[i]`` are returned (row indices)
    and not tallied; every other row adds 1 to ``correct[codes[i]]`` when ``pred[i] == codes[i]`` and to
    ``agree[codes[i]]`` when ``pred[i] == reference[i]`` (int64 tallies, updated in place). A negative
    ``bound`` certifies every row."""
    unsure = np.empty(len(codes), dtype=np.int64)
    ref = _NO_REFERENCE if reference is None else reference
    agree = correct if agree is None else agree
    args = (products, float(alpha), table, codes, float(bound), scale, ref, pred, correct, agree, unsure)
    if _decide_count in _COMPILED:
        nb = _decide_count(*args)
    else:
        nb = _first_call(_decide_count, lambda: _decide_count(*args))
    return unsure[:nb]


def _contiguous_codes(codes: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(codes, dtype=np.int64)


_POOL: ThreadPoolExecutor | None = None
_MIN_ROWS = 2048  # fewer rows per thread than this run on the calling thread


def threads() -> int:
    """Threads for the kernels: torch's setting (``torch.set_num_threads``), so one knob sets both pools."""
    import torch

    return max(1, torch.get_num_threads())


def _run(tasks: list, kernel) -> None:
    """Run the callables, one per thread. The kernels release the GIL; the pool's threads sleep between
    calls, so they do not spin against torch's OpenMP threads (as numba's own OpenMP pool would). The first
    call of ``kernel`` runs alone first (it may compile)."""
    if kernel not in _COMPILED:
        _first_call(kernel, tasks[0])
        tasks = tasks[1:]
    run_tasks(tasks)


def run_tasks(tasks: list) -> list:
    """The callables' results, in order; each runs on one of the pool's threads (the last on the calling
    thread). Used for the kernels above and for the CPU read in parts (:mod:`ncprobe.core.cpu_read`), whose
    tasks call the kernels serially (a task must not submit to the pool itself)."""
    global _POOL
    if len(tasks) <= 1:
        return [task() for task in tasks]
    if _POOL is None or _POOL._max_workers < len(tasks) - 1:
        _POOL = ThreadPoolExecutor(max_workers=len(tasks) - 1, thread_name_prefix="ncprobe")
    futures = [_POOL.submit(task) for task in tasks[:-1]]
    last = tasks[-1]()
    return [f.result() for f in futures] + [last]


def _rows_in_parallel(kernel, n: int, *args, serial: bool = False) -> None:
    """``kernel(*args, lo, hi)`` over one block of rows per thread (all rows on the calling thread when
    ``serial``)."""
    if serial and kernel in _COMPILED:
        kernel(*args, 0, n)
        return
    t = 1 if serial else min(threads(), max(1, n // _MIN_ROWS))
    b = [n * i // t for i in range(t + 1)]
    _run([functools.partial(kernel, *args, b[i], b[i + 1]) for i in range(t)], kernel)


def class_sums(x: np.ndarray, codes: np.ndarray, num_classes: int):
    """Per-class counts (int64), float64 sums (C×D) and the float64 sum of L2-normalised rows (D).

    ``x`` is a C-contiguous float32/float64 array; ``codes`` int64 in ``[0, num_classes)``. The rows are
    split into a fixed number of parts (not the thread count), each with its own buffers, added in a fixed
    order: results are bit-identical on any machine.
    """
    x, codes = np.ascontiguousarray(x), _contiguous_codes(codes)
    n, d = x.shape
    nparts = max(1, min(8, n // 4096))  # a streamed batch of 8192 rows: 2 parts, not 8 C×D tables to add
    sums, normalized, counts = _zeroed_part_buffers(nparts, num_classes, d)
    bounds = [n * p // nparts for p in range(nparts + 1)]

    def parts(first: int, last: int) -> None:
        for q in range(first, last):
            _class_sums(x, codes, bounds[q], bounds[q + 1], sums[q], normalized[q], counts[q])

    t = min(threads(), nparts)
    split = [nparts * i // t for i in range(t + 1)]
    _run([functools.partial(parts, split[i], split[i + 1]) for i in range(t)], _class_sums)
    for p in range(1, nparts):
        sums[0] += sums[p]
        normalized[0] += normalized[p]
        counts[0] += counts[p]
    return counts[0].copy(), sums[0].copy(), normalized[0].copy()


_PART_BUFFERS = threading.local()


def _zeroed_part_buffers(nparts: int, c: int, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`class_sums`' per-part sums, normalised sums and counts, zeroed; kept between calls of this thread
    (a stream of batches then reuses warm memory instead of faulting in fresh zero pages for every batch)."""
    key = (nparts, c, d)
    held = getattr(_PART_BUFFERS, "buffers", None)
    if held is None or held[0] != key:
        held = (key, np.empty((nparts, c, d)), np.empty((nparts, d)), np.empty((nparts, c), dtype=np.int64))
        _PART_BUFFERS.buffers = held
    for b in held[1:]:
        b.fill(0)
    return held[1], held[2], held[3]


def residuals(
    x: np.ndarray,
    codes: np.ndarray,
    means: np.ndarray,
    out: np.ndarray,
    x_ss: np.ndarray | None = None,
    *,
    row_ss: np.ndarray | None = None,
    serial: bool = False,
) -> np.ndarray:
    """Write ``x - means[codes]`` into ``out`` (its dtype sets the rounding) and return each row's
    float64 squared norm of the rounded residual (into ``row_ss`` if given); ``x_ss``, if given, receives
    each row's ‖x_i‖². ``serial`` runs on the calling thread (the default splits the rows over threads)."""
    row_ss = np.empty(x.shape[0], dtype=np.float64) if row_ss is None else row_ss
    args = (np.ascontiguousarray(x), _contiguous_codes(codes), np.ascontiguousarray(means, dtype=np.float64))
    x_ss = np.empty(0, dtype=np.float64) if x_ss is None else x_ss
    _rows_in_parallel(_residuals, x.shape[0], *args, out, row_ss, x_ss, serial=serial)
    return row_ss


def residual_pair(
    x: np.ndarray,
    codes: np.ndarray,
    means: np.ndarray,
    out64: np.ndarray,
    out32: np.ndarray,
    row_ss: np.ndarray,
    *,
    serial: bool = False,
) -> None:
    """Write ``x - means[codes]`` in float64 into ``out64`` and rounded to float32 into ``out32``, and
    each row's float64 squared norm into ``row_ss`` (one read of ``x``)."""
    _rows_in_parallel(_residual_pair, x.shape[0], x, codes, means, out64, out32, row_ss, serial=serial)


def residual_norms(
    x: np.ndarray, codes: np.ndarray, means: np.ndarray, single: bool, row_ss: np.ndarray, *, serial: bool = False
) -> None:
    """Each row's float64 ‖x_i − means[codes_i]‖² (of the residual rounded to float32 when ``single``)
    into ``row_ss``, without writing the residuals."""
    _rows_in_parallel(_residual_norms, x.shape[0], x, codes, means, bool(single), row_ss, serial=serial)


def best_two(
    products: np.ndarray,
    alpha: float,
    table: np.ndarray,
    codes: np.ndarray,
    pred: np.ndarray,
    margin: np.ndarray,
) -> None:
    """Per row i: ``pred[i] = argmax_k (alpha·products[i, k] + table[codes[i], k])`` (first index on ties;
    ``table`` with one row is shared by all rows) and ``margin[i]`` = best − second best score."""
    _rows_in_parallel(_best_two, products.shape[0], products, float(alpha), table, codes, pred, margin)
