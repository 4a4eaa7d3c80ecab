"""Low-dimensional coordinates of the class geometry, stored in reports for the figures.

Figures never recompute geometry; :func:`ncprobe.measure` stores what the geometry view draws:

* ``mean_coords`` (class, component) — the centred class means μ̃_k projected on their own top principal
  directions (the right singular vectors of M̃; with C classes at most C−1 of them carry variance). The basis
  is fixed up to sign by making each direction's largest-magnitude mean coordinate positive.
* ``text_coords`` (class, component) — the class text embeddings in the same basis, after the report's
  ``center`` convention (normalised, then centred when ``center=True``) and scaled to the means' root-mean-
  square norm, so both modalities share one picture. Only with ``text_features``.
* ``sample_coords`` (sample, component) and ``sample_class`` (sample) — a seeded uniform subsample of the
  features, centred on μ_G and projected the same way (only for in-memory features and ``cloud > 0``).
"""

from __future__ import annotations

import numpy as np
import torch

from .geometry import center_rows, normalize_rows
from .prepared import ClassEmbeddings, ClassGeometry

__all__ = ["principal_basis", "geometry_coordinates", "sample_cloud"]


def principal_basis(centered_means: torch.Tensor, components: int) -> torch.Tensor:
    """(D, k) top right singular vectors of the centred means, signs fixed deterministically."""
    _, _, vh = torch.linalg.svd(centered_means, full_matrices=False)
    basis = vh[:components].T
    coords = centered_means @ basis
    flip = torch.sign(coords.gather(0, coords.abs().argmax(0, keepdim=True)))[0]
    return basis * torch.where(flip == 0, torch.ones_like(flip), flip)


def geometry_coordinates(
    geom: ClassGeometry, text: ClassEmbeddings | None, *, components: int = 3, center: bool = True
) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    """The basis and ``{"mean_coords", "text_coords"}`` as (C, k) arrays (NaN rows for absent classes)."""
    mt = geom.centered_means
    k = min(int(components), mt.shape[0], mt.shape[1])
    basis = principal_basis(mt, k)
    out = {"mean_coords": _place(geom, mt @ basis, components)}
    if text is not None:
        t = text.weights[geom.present]
        t = center_rows(t) if center else t
        rms = lambda v: v.norm(dim=1).pow(2).mean().sqrt().clamp_min(torch.finfo(v.dtype).tiny)  # noqa: E731
        t = t * (rms(mt) / rms(t))
        out["text_coords"] = _place(geom, t @ basis, components)
    return basis, out


def _place(geom: ClassGeometry, values: torch.Tensor, components: int) -> np.ndarray:
    out = np.full((geom.stats.num_classes, components), np.nan)
    out[geom.present.cpu().numpy(), : values.shape[1]] = values.detach().cpu().numpy()
    return out


def sample_cloud(
    features: torch.Tensor,
    codes: np.ndarray,
    geom: ClassGeometry,
    basis: torch.Tensor,
    *,
    size: int,
    components: int,
    seed: int = 0,
    normalize: bool = False,
) -> dict[str, np.ndarray]:
    """A seeded subsample of ``size`` rows projected on ``basis`` after centring on μ_G."""
    n = features.shape[0]
    idx = np.sort(np.random.default_rng(seed).choice(n, size=min(size, n), replace=False))
    rows = features[torch.as_tensor(idx, device=features.device)].to(basis.device).double()
    if normalize:
        rows = normalize_rows(rows)
    mu_g = geom.stats.means[geom.present].mean(0)
    coords = np.full((len(idx), components), np.nan)
    coords[:, : basis.shape[1]] = ((rows - mu_g) @ basis).cpu().numpy()
    return {"sample_coords": coords, "sample_class": geom.stats.class_ids[codes[idx]]}
