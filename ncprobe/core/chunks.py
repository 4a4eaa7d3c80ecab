"""The per-chunk work of the two reads over the features, shared by the streaming accumulators
(:class:`~ncprobe.ClassStatistics`, :class:`~ncprobe.DecisionStatistics`) and the in-memory path.

* :func:`class_sums` — counts, float64 class sums and Σ x_i/‖x_i‖ (read 1);
* :class:`ResidualWorkspace` — R = X − M[y] of one chunk, in float64 and/or rounded to float32, with each
  row's float64 ‖r_i‖², in reused buffers (read 2), so R stays in the cache for the products that follow;
* :func:`add_scatter` — S += RᵀR into a float64 accumulator; :func:`require_finite` — NaN/inf found on the
  row norms instead of a separate pass over the data.

On CPU the elementwise work runs in the numba kernels (:mod:`._numba_kernels`), elsewhere in torch.
"""

from __future__ import annotations

import numpy as np
import torch

from . import _numba_kernels
from ._validation import check_features

__all__ = [
    "ResidualWorkspace",
    "add_scatter",
    "require_finite",
    "raise_not_finite",
    "numba_arrays",
    "chunk_rows",
    "compute_dtype",
    "pick_backend",
    "class_sums",
    "residuals",
]


def compute_dtype(precision: str) -> torch.dtype:
    if precision == "float64":
        return torch.float64
    if precision == "float32":
        return torch.float32
    raise ValueError(f"precision must be 'float64' or 'float32', got {precision!r}")


def pick_backend(backend: str, x: torch.Tensor) -> str:
    """Resolve ``backend='auto'``: numba for CPU tensors when numba is installed, torch otherwise."""
    if backend not in ("auto", "torch", "numba"):
        raise ValueError(f"backend must be 'auto', 'torch' or 'numba', got {backend!r}")
    if backend == "numba":
        if x.device.type != "cpu":
            raise ValueError("backend='numba' needs CPU features; use backend='torch' for GPU tensors")
        if not _numba_kernels.AVAILABLE:
            raise ImportError("backend='numba' needs the numba package (pip install numba)")
        return "numba"
    if backend == "auto":
        return "numba" if (x.device.type == "cpu" and _numba_kernels.AVAILABLE) else "torch"
    return "torch"


def _numba_input(x: torch.Tensor) -> np.ndarray:
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    return x.contiguous().numpy()


def numba_arrays(x: torch.Tensor, codes: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """CPU features as a C-contiguous float32/float64 array and codes as int64, for the numba kernels."""
    return np.ascontiguousarray(_numba_input(x)), np.ascontiguousarray(codes.cpu().numpy(), dtype=np.int64)


def class_sums(x: torch.Tensor, codes: torch.Tensor, num_classes: int, backend: str):
    """Counts (float64), float64 class sums (C×D) and the sum of L2-normalised rows, on x's device."""
    if backend == "numba":
        counts, sums, nsum = _numba_kernels.class_sums(_numba_input(x), codes.numpy(), num_classes)
        return (torch.from_numpy(counts).double(), torch.from_numpy(sums), torch.from_numpy(nsum))
    xd = x.double()
    counts = torch.bincount(codes, minlength=num_classes).double()
    sums = torch.zeros(num_classes, x.shape[1], dtype=torch.float64, device=x.device).index_add_(0, codes, xd)
    norms = xd.norm(dim=1, keepdim=True)
    nsum = torch.where(norms > 0, xd / norms.clamp_min(torch.finfo(torch.float64).tiny), 0.0).sum(0)
    return counts, sums, nsum


def residuals(
    x: torch.Tensor, codes: torch.Tensor, means: torch.Tensor, dtype: torch.dtype, backend: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``R = x − means[codes]`` rounded to ``dtype``, and each row's float64 ‖R_i‖²."""
    if backend == "numba":
        out = np.empty(tuple(x.shape), dtype=np.float64 if dtype == torch.float64 else np.float32)
        row_ss = _numba_kernels.residuals(_numba_input(x), codes.numpy(), means.cpu().numpy(), out)
        return torch.from_numpy(out), torch.from_numpy(row_ss)
    r = (x.double() - means[codes]).to(dtype)
    return r, r.double().pow(2).sum(1)


def chunk_rows(dim: int, device: torch.device) -> int:
    """Rows per chunk of a second read in torch (:class:`ResidualWorkspace`): about 2M elements on CPU (16 MiB
    of float64 residuals), 64M on a GPU. The CPU read with numba chunks by
    :func:`ncprobe.core.cpu_read.part_rows` instead. ``compute_statistics(chunk_rows=...)`` overrides both."""
    return max(256, (1 << 26 if device.type == "cuda" else 1 << 21) // dim)


def require_finite(row_ss: torch.Tensor, x: torch.Tensor) -> None:
    """Raise unless every residual row norm is finite: NaN/inf in ``x`` (the message names the rows) or
    features so large that their squares overflow float64."""
    if not bool(torch.isfinite(row_ss).all()):
        raise_not_finite(x)


def raise_not_finite(x: torch.Tensor) -> None:
    """Raise for features whose residual row norms were not finite (see :func:`require_finite`)."""
    check_features(x)
    raise ValueError("features are too large for float64 statistics (squared norms overflow); rescale them")


def add_scatter(scatter: torch.Tensor, r: torch.Tensor) -> None:
    """``scatter += rᵀr`` into a float64 accumulator (a float32 chunk's product is formed in float32)."""
    if r.dtype == torch.float64:
        scatter.addmm_(r.T, r)
    else:
        scatter += (r.T @ r).double()


class ResidualWorkspace:
    """Residuals of one chunk at a time, R = x − μ[codes], with the buffers reused between chunks.

    Each call returns ``(r, r32, row_ss)``: ``r`` rounded to the compute precision, ``r32`` the same rows
    rounded to float32 (for the certified float32 products; ``r32 is r`` in float32 precision) and the
    float64 ‖r_i‖² of the rounded residual. ``keep`` says what is needed: ``"pair"`` (all three),
    ``"residuals"`` (``r32`` is ``None``), ``"features"`` (as ``"residuals"``, and :attr:`feature_ss` holds
    each row's ‖x_i‖², for products taken of float32 features directly) or ``"norms"`` (only ``row_ss``;
    nothing is written on numba). On the numba backend the tensors are views of the buffers, valid until
    the next call.
    """

    def __init__(self, means: torch.Tensor, *, rows: int, dtype: torch.dtype, backend: str, keep: str = "pair"):
        self.means = means
        self.dtype = dtype
        self.backend = backend
        self.keep = keep
        if backend == "numba":
            d = means.shape[1]
            self._means_np = np.ascontiguousarray(means.cpu().numpy(), dtype=np.float64)
            wide = dtype == torch.float64 and keep != "norms"
            self._r64 = np.empty((rows, d), dtype=np.float64) if wide else None
            narrow = dtype == torch.float32 or keep == "pair"  # "features": float64 residuals only
            self._r32 = np.empty((rows, d), dtype=np.float32) if narrow and keep != "norms" else None
            self._ss = np.empty(rows, dtype=np.float64)
            self._xss = np.empty(rows if keep == "features" else 0, dtype=np.float64)
        self.feature_ss: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor, codes: torch.Tensor):
        m = x.shape[0]
        if self.backend != "numba":
            r = (x.double() - self.means[codes]).to(self.dtype)
            r32 = (r if self.dtype == torch.float32 else r.float()) if self.keep == "pair" else None
            if self.keep == "features":
                self.feature_ss = x.double().pow(2).sum(1)
            return r, r32, r.double().pow(2).sum(1)
        xn, cn = np.ascontiguousarray(_numba_input(x)), np.ascontiguousarray(codes.numpy(), dtype=np.int64)
        ss = self._ss[:m]
        if self.keep == "norms":
            _numba_kernels.residual_norms(xn, cn, self._means_np, self.dtype == torch.float32, ss)
            return None, None, torch.from_numpy(ss)
        if self._r64 is None:  # float32 residuals
            ss[:] = _numba_kernels.residuals(xn, cn, self._means_np, self._r32[:m])
            r32 = torch.from_numpy(self._r32[:m])
            return r32, (r32 if self.keep == "pair" else None), torch.from_numpy(ss)
        if self._r32 is None:
            xss = self._xss[:m] if self.keep == "features" else None
            ss[:] = _numba_kernels.residuals(xn, cn, self._means_np, self._r64[:m], xss)
            self.feature_ss = None if xss is None else torch.from_numpy(xss)
            return torch.from_numpy(self._r64[:m]), None, torch.from_numpy(ss)
        _numba_kernels.residual_pair(xn, cn, self._means_np, self._r64[:m], self._r32[:m], ss)
        return torch.from_numpy(self._r64[:m]), torch.from_numpy(self._r32[:m]), torch.from_numpy(ss)
