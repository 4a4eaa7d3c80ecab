"""Certified decisions from float32 products: the per-class tables that turn products of centred
residuals into NCC and classifier scores, and the top-2 test that says which float32 decisions are exact.

For residual r = h − μ_y and centred means M̃, the NCC score of class k is ‖μ_k‖² − 2 μ_y·μ_k − 2 r·m̃_k and a
linear classifier's logit is r·w_k + μ_y·w_k + b_k (see :mod:`.decisions`). A float32 dot product of D terms
errs by at most γ_{D+3}·‖r‖·‖w‖ with γ_n = n·u/(1 − n·u), u = 2⁻²⁴ (Higham, *Accuracy and Stability*, §3.1:
γ_D for the D-term sum, plus rounding r and w to float32 and taking ‖r‖ of a float32-rounded residual); a row
whose top two scores differ by more than twice that bound has the float64 decision, and the other rows are
re-scored in float64.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from . import _numba_kernels
from .embeddings import ClassEmbeddings

__all__ = ["DecisionTables"]

_CPU = torch.device("cpu")


class DecisionTables:
    """Precomputed per-class tables for scoring residual products (see module docstring).

    Classifier logits (and, without float64 products, the NCC scores) come from float32 products of the
    centred residuals. Each row's decision is *certified*: a float32 dot product of D terms errs by at most
    γ_{D+3}·‖r‖·‖w‖ (γ_n = n·u/(1 − n·u), u = 2⁻²⁴; Higham, *Accuracy and Stability*, §3.1, plus rounding r
    and w to float32), so
    when the top two scores differ by more than twice that bound the float32 decision is the exact one;
    the remaining near-tied rows are re-scored in float64. The decisions therefore equal float64
    decisions while the large product runs at float32 speed. On a GPU the bound also covers TF32 tensor
    cores (inputs with 10 mantissa bits, truncated, and accumulation by truncation), so decisions stay
    exact whatever ``torch.backends.cuda.matmul`` allows.

    On CPU the per-row top-2 search runs in one numba pass over the products (no N×C gathered table).
    """

    def __init__(self, means: torch.Tensor, present: torch.Tensor, classifiers: dict[str, ClassEmbeddings]):
        self.present = present
        self.centered = (means - means[present].mean(0)) * present[:, None]
        sq = (means * means).sum(1)
        # Absent classes can never be the nearest centre.
        sq = torch.where(present, sq, torch.inf)
        self.ncc = sq[None, :] - 2.0 * means @ means.T
        self.names = list(classifiers)
        self.weights = [e.weights for e in classifiers.values()]
        self.weights32 = torch.cat(self.weights, 0).float() if self.weights else None
        self.centered32 = self.centered.float()
        # [M̃; W_1; …] in float32: one product gives the NCC scores and every classifier's logits.
        self.stacked32 = torch.cat([self.centered32] + ([self.weights32] if self.weights else []), 0)
        self.logit_tables = [means @ e.weights.T + e.bias[None, :] for e in classifiers.values()]
        self.bias_tables = [e.bias[None, :].contiguous() for e in classifiers.values()]
        self.centered_norm = float(self.centered.norm(dim=1).max())
        self.weight_norms = [float(w.norm(dim=1).max()) for w in self.weights]
        self._neg_ncc = (-self.ncc).contiguous()

    @staticmethod
    def unit(dim: int, device: torch.device) -> float:
        """Bound on |float32 product − exact| per unit ‖r‖·‖w‖ for dot products of ``dim`` terms."""
        if device.type == "cpu":
            # γ_{D+3} ≥ γ_D·(1 + u)² + 2u + u² (D-term sum of inputs rounded to float32) times 1/(1 − u) (‖r‖
            # may be the norm of the float32-rounded residual)
            n = (dim + 3) * 2.0**-24
            return n / (1.0 - n)
        # TF32 inputs keep 10 mantissa bits (error < 2⁻¹⁰ each when truncated); accumulation in float32.
        return 2.0**-9 + 2.0**-20 + (dim + 2) * 2.0**-23

    def _best(self, products, alpha, table, codes):
        """Per row: argmax_k (alpha·products + table[codes]) and the margin over the second best."""
        n, c = products.shape
        if products.device.type == "cpu" and _numba_kernels.AVAILABLE:
            pred = np.empty(n, dtype=np.int64)
            margin = np.empty(n, dtype=np.float64)
            args = (products.numpy(), alpha, table.numpy(), codes.numpy(), pred, margin)
            _numba_kernels.best_two(*args)
            return torch.from_numpy(pred), torch.from_numpy(margin)
        scores = alpha * products.double() + (table[codes] if table.shape[0] > 1 else table)
        pred = scores.argmax(1)
        if c < 2:
            return pred, torch.full((n,), torch.inf, dtype=torch.float64, device=scores.device)
        top = scores.topk(2, dim=1).values
        return pred, top[:, 0] - top[:, 1]

    def count_arrays(
        self,
        exact_rows: Callable[[np.ndarray], np.ndarray],
        a_m: np.ndarray,
        codes: np.ndarray,
        *,
        row_norms: np.ndarray,
        products: np.ndarray | None = None,
        feature_norms: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """:meth:`count` on numpy arrays, on the calling thread (the CPU read in parts,
        :mod:`ncprobe.core.cpu_read`, runs one chunk per thread): the same scores, certification and
        re-scoring, with the numba top-2 kernel and numpy, without torch's per-call overhead. Tallies are
        int64 arrays; ``row_norms`` (‖r_i‖) is required, ``products`` too when there are classifiers.
        ``exact_rows(rows)`` gives the float64 residuals of the given rows (only the near-tied rows are asked
        for), so a caller need not keep a float64 copy of every residual."""
        t = self._arrays()
        c = t["ncc"].shape[0]
        unit = self.unit(t["centered"].shape[1], _CPU)
        n = len(codes)
        ncc_pred = np.empty(n, dtype=np.int64)
        out = {"ncc_correct": np.zeros(c, dtype=np.int64)}
        certify = a_m.dtype != np.float64
        bound = 4.0 * unit * self.centered_norm if certify else -1.0
        kw = dict(bound=bound, scale=row_norms, pred=ncc_pred, correct=out["ncc_correct"])
        bad = _numba_kernels.decide_count(a_m, 2.0, t["neg_ncc"], codes, **kw)
        if len(bad):
            exact = t["ncc"][codes[bad]] - 2.0 * exact_rows(bad) @ t["centered"].T
            ncc_pred[bad] = exact.argmin(1)
            out["ncc_correct"] += _tally(codes[bad], ncc_pred[bad] == codes[bad], c)
        of_features = feature_norms is not None
        pred = np.empty(n, dtype=np.int64)
        for j, name in enumerate(self.names):
            table = t["bias"][j] if of_features else t["logits"][j]
            correct, agree = np.zeros(c, dtype=np.int64), np.zeros(c, dtype=np.int64)
            kw = dict(bound=2.0 * unit * self.weight_norms[j], pred=pred, correct=correct, agree=agree)
            scale = feature_norms if of_features else row_norms
            bad = _numba_kernels.decide_count(
                products[:, c * j : c * (j + 1)], 1.0, table, codes, scale=scale, reference=ncc_pred, **kw
            )
            if len(bad):
                exact = exact_rows(bad) @ t["weights"][j].T + t["logits"][j][codes[bad]]
                pred[bad] = exact.argmax(1)
                correct += _tally(codes[bad], pred[bad] == codes[bad], c)
                agree += _tally(codes[bad], pred[bad] == ncc_pred[bad], c)
            out[f"{name}_correct"], out[f"{name}_ncc_agree"] = correct, agree
        return out

    def _arrays(self) -> dict:
        """numpy views of the CPU tables (made once)."""
        if not hasattr(self, "_np"):
            as_np = lambda v: np.ascontiguousarray(v.detach().cpu().numpy())  # noqa: E731
            self._np = {
                "ncc": as_np(self.ncc),
                "neg_ncc": as_np(self._neg_ncc),
                "centered": as_np(self.centered),
                "weights": [as_np(w) for w in self.weights],
                "logits": [as_np(v) for v in self.logit_tables],
                "bias": [as_np(v) for v in self.bias_tables],
            }
        return self._np

    def count(
        self,
        r: torch.Tensor,
        a_m: torch.Tensor,
        codes: torch.Tensor,
        num_classes: int,
        *,
        row_norms: torch.Tensor | None = None,
        products: torch.Tensor | None = None,
        feature_norms: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Per-class counts of correct / agreeing decisions for one chunk.

        ``r`` holds the chunk's centred residuals (float32 or float64) and ``a_m = r @ centeredᵀ``, in float64
        (taken as exact) or float32 (certified); ``row_norms`` the float64 ‖r_i‖ if already known;
        ``products`` the float32 ``r @ weights32ᵀ`` if already formed (else they are computed here) or, with
        ``feature_norms`` (‖x_i‖), the float32 products ``x @ weights32ᵀ`` of the features themselves
        (logit = product + bias, certified with ‖x_i‖).
        """
        c = num_classes
        unit = self.unit(r.shape[1], r.device)
        rnorm = row_norms
        if rnorm is None and (a_m.dtype != torch.float64 or self.weights):
            rnorm = r.double().norm(dim=1)
        # argmin_k ncc[y, k] − 2 a_k  =  argmax_k 2 a_k − ncc[y, k]
        ncc_pred, margin = self._best(a_m, 2.0, self._neg_ncc, codes)
        if a_m.dtype != torch.float64 and c >= 2:
            bad = (margin <= 4.0 * unit * self.centered_norm * rnorm).nonzero().flatten()
            if len(bad):
                exact = self.ncc[codes[bad]] - 2.0 * r[bad].double() @ self.centered.T
                ncc_pred[bad] = exact.argmin(1)
        out = {"ncc_correct": _bincount(codes, ncc_pred == codes, c)}
        if self.weights and products is None:
            products = r.float() @ self.weights32.T
        of_features = feature_norms is not None
        for j, name in enumerate(self.names):
            table = self.bias_tables[j] if of_features else self.logit_tables[j]
            pred, margin = self._best(products[:, c * j : c * (j + 1)], 1.0, table, codes)
            if c >= 2:
                scale = feature_norms if of_features else rnorm
                bad = (margin <= 2.0 * unit * self.weight_norms[j] * scale).nonzero().flatten()
                if len(bad):
                    exact = r[bad].double() @ self.weights[j].T + self.logit_tables[j][codes[bad]]
                    pred[bad] = exact.argmax(1)
            out[f"{name}_correct"] = _bincount(codes, pred == codes, c)
            out[f"{name}_ncc_agree"] = _bincount(codes, pred == ncc_pred, c)
        return out


def _tally(codes: np.ndarray, mask: np.ndarray, c: int) -> np.ndarray:
    return np.bincount(codes[mask], minlength=c)


def _bincount(codes: torch.Tensor, mask: torch.Tensor, c: int) -> torch.Tensor:
    return torch.bincount(codes[mask], minlength=c).double()
