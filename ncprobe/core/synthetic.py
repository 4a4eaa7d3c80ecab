"""Synthetic features with a controllable degree of neural collapse (the built-in demo dataset).

Class means are a scaled simplex ETF (optionally blended with random directions, ``etf_blend``),
samples are means plus isotropic Gaussian noise of standard deviation ``noise`` per coordinate,
class sizes follow an optional exponential long-tail profile, and the "classifier" and "text
features" are noisy copies of the means. With isotropic noise the population NC1 is known in
closed form (:func:`isotropic_nc1`), which the tests use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import simplex_etf

__all__ = ["CollapseData", "make_collapse", "isotropic_nc1"]


@dataclass
class CollapseData:
    """Features (N×D float32), labels (N,), class means (C×D), classifier (C×D), text features (C×D)."""

    features: np.ndarray
    labels: np.ndarray
    means: np.ndarray
    classifier: np.ndarray
    text_features: np.ndarray
    class_names: list[str]


def make_collapse(
    num_classes: int = 10,
    dim: int = 32,
    samples_per_class: int = 100,
    *,
    noise: float = 0.5,
    scale: float = 5.0,
    etf_blend: float = 1.0,
    imbalance: float = 1.0,
    offset: float = 0.0,
    classifier_noise: float = 0.1,
    text_noise: float = 0.3,
    seed: int = 0,
) -> CollapseData:
    """Draw a Gaussian mixture whose class means approach a simplex ETF.

    Parameters
    ----------
    num_classes, dim, samples_per_class:
        C, D and the size n_max of the largest class.
    noise:
        Per-coordinate standard deviation σ of the within-class noise (0 → exact collapse).
    scale:
        Norm of each class mean's ETF part.
    etf_blend:
        1 → means are exactly a rotated ETF; 0 → random Gaussian means (no NC2).
    imbalance:
        ρ = n_max/n_min ≥ 1; class k gets ``max(1, floor(n_max · ρ^(−k/(C−1))))`` samples.
    offset:
        Norm of a common vector added to every sample (a CLIP-like cone; NC metrics are invariant).
    classifier_noise, text_noise:
        Relative noise of the classifier / text-feature copies of the means.
    seed:
        Seed of numpy's ``default_rng``.
    """
    if imbalance < 1:
        raise ValueError(f"imbalance ratio must be >= 1, got {imbalance}")
    rng = np.random.default_rng(seed)
    c, d = int(num_classes), int(dim)
    etf = simplex_etf(c, d, seed=seed, approximate=True).numpy()
    rand = rng.normal(size=(c, d))
    rand /= np.linalg.norm(rand, axis=1, keepdims=True)
    means = scale * (etf_blend * etf + (1 - etf_blend) * rand)
    if offset:
        direction = rng.normal(size=d)
        means = means + offset * direction / np.linalg.norm(direction)
    sizes = np.maximum(1, np.floor(samples_per_class * imbalance ** (-np.arange(c) / max(c - 1, 1)))).astype(int)
    labels = np.repeat(np.arange(c), sizes)
    features = means[labels] + noise * rng.normal(size=(len(labels), d))
    centred = means - means.mean(0)
    classifier = centred + classifier_noise * scale * rng.normal(size=(c, d)) / np.sqrt(d)
    text = means + text_noise * scale * rng.normal(size=(c, d)) / np.sqrt(d)
    return CollapseData(
        features=features.astype(np.float32),
        labels=labels,
        means=means,
        classifier=classifier,
        text_features=text,
        class_names=[f"class {k}" for k in range(c)],
    )


def isotropic_nc1(means: np.ndarray, noise: float) -> float:
    r"""Population NC1 of a Gaussian mixture with class means ``means`` and covariance σ² I.

    With Σ_W = σ² I, ``tr(Σ_W Σ_B^†)/C = σ² tr(Σ_B^†)/C = (σ²/C) Σ_j 1/λ_j`` over the non-zero
    eigenvalues λ_j of Σ_B = M̃ᵀM̃/C.
    """
    mt = means - means.mean(0)
    c = len(means)
    lam = np.linalg.eigvalsh(mt @ mt.T / c)
    lam = lam[lam > lam.max() * 1e-10]
    return float(noise**2 * np.sum(1.0 / lam) / c)
