"""numba CPU kernels for the memory-bound parts of the class statistics.

The matrix products go to BLAS (numpy/torch); what is left is scatter-adds and residuals, which
numpy and torch do with large temporaries (``x.double()``, ``means[codes]``). These kernels do them
in one pass without temporaries, accumulating in float64, and split work over columns (sums) or rows
(residuals) so no two threads write the same memory.

numba is optional at import time: :data:`AVAILABLE` says whether the kernels can be used.
"""

from __future__ import annotations

import numpy as np

try:  # pragma: no cover - exercised implicitly
    import numba  # noqa: F401
    from numba import njit, prange

    AVAILABLE = True
except ImportError:  # pragma: no cover
    AVAILABLE = False

__all__ = ["AVAILABLE", "class_sums", "residuals"]

_BLOCK = 64

if AVAILABLE:

    @njit(parallel=True, cache=True, fastmath=False)
    def _class_sums(x, codes, num_classes, nparts):  # pragma: no cover - compiled
        # One read of x: each part of the rows accumulates into its own (C, D) buffer (no write sharing),
        # then the parts are added in a fixed order, so the result does not depend on thread timing.
        n, d = x.shape
        part_sums = np.zeros((nparts, num_classes, d), dtype=np.float64)
        part_norm = np.zeros((nparts, d), dtype=np.float64)
        part_counts = np.zeros((nparts, num_classes), dtype=np.int64)
        step = (n + nparts - 1) // nparts
        for p in prange(nparts):
            lo = p * step
            hi = min(n, lo + step)
            for i in range(lo, hi):
                k = codes[i]
                s = 0.0
                for j in range(d):
                    v = np.float64(x[i, j])
                    s += v * v
                    part_sums[p, k, j] += v
                part_counts[p, k] += 1
                if s > 0.0:
                    w = 1.0 / np.sqrt(s)
                    for j in range(d):
                        part_norm[p, j] += np.float64(x[i, j]) * w
        sums = part_sums[0].copy()
        normalized = part_norm[0].copy()
        counts = part_counts[0].copy()
        for p in range(1, nparts):
            sums += part_sums[p]
            normalized += part_norm[p]
            counts += part_counts[p]
        return counts, sums, normalized

    @njit(parallel=True, cache=True, fastmath=False)
    def _residuals(x, codes, means, out):  # pragma: no cover - compiled
        n, d = x.shape
        row_ss = np.empty(n, dtype=np.float64)
        for i in prange(n):
            k = codes[i]
            s = 0.0
            for j in range(d):
                r = np.float64(x[i, j]) - means[k, j]
                out[i, j] = r
                rr = np.float64(out[i, j])
                s += rr * rr
            row_ss[i] = s
        return row_ss


def class_sums(x: np.ndarray, codes: np.ndarray, num_classes: int):
    """Per-class counts (int64), float64 sums (C×D) and the float64 sum of L2-normalised rows (D).

    ``x`` is a C-contiguous float32/float64 array; ``codes`` int64 in ``[0, num_classes)``.
    """
    # A fixed number of parts (not the thread count) keeps results bit-identical across machines.
    nparts = max(1, min(8, x.shape[0] // 1024))
    return _class_sums(np.ascontiguousarray(x), np.ascontiguousarray(codes, dtype=np.int64), num_classes, nparts)


def residuals(x: np.ndarray, codes: np.ndarray, means: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Write ``x - means[codes]`` into ``out`` (its dtype sets the rounding) and return each row's
    float64 squared norm of the rounded residual."""
    return _residuals(
        np.ascontiguousarray(x),
        np.ascontiguousarray(codes, dtype=np.int64),
        np.ascontiguousarray(means, dtype=np.float64),
        out,
    )
