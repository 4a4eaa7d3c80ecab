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
    def _class_sums(x, codes, num_classes):  # pragma: no cover - compiled
        n, d = x.shape
        sums = np.zeros((num_classes, d), dtype=np.float64)
        normalized = np.zeros(d, dtype=np.float64)
        counts = np.zeros(num_classes, dtype=np.int64)
        inv_norms = np.empty(n, dtype=np.float64)
        for i in prange(n):
            s = 0.0
            for j in range(d):
                v = np.float64(x[i, j])
                s += v * v
            inv_norms[i] = 1.0 / np.sqrt(s) if s > 0.0 else 0.0
        for i in range(n):
            counts[codes[i]] += 1
        nblocks = (d + _BLOCK - 1) // _BLOCK
        for b in prange(nblocks):
            lo = b * _BLOCK
            hi = min(d, lo + _BLOCK)
            for i in range(n):
                k = codes[i]
                w = inv_norms[i]
                for j in range(lo, hi):
                    v = np.float64(x[i, j])
                    sums[k, j] += v
                    normalized[j] += v * w
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
    return _class_sums(np.ascontiguousarray(x), np.ascontiguousarray(codes, dtype=np.int64), num_classes)


def residuals(x: np.ndarray, codes: np.ndarray, means: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Write ``x - means[codes]`` into ``out`` (its dtype sets the rounding) and return each row's
    float64 squared norm of the rounded residual."""
    return _residuals(np.ascontiguousarray(x), np.ascontiguousarray(codes, dtype=np.int64),
                      np.ascontiguousarray(means, dtype=np.float64), out)
