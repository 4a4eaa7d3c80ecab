"""Relative representations and anchor selection (Moschella et al., ICLR 2023; Craft, WACV 2025).

A relative representation describes an embedding by its scaled cosine similarities to a set of
anchors, ``rel(x) = s · x̂ Âᵀ`` with x̂, â L2-normalised. Craft takes the anchors from the *other*
modality: static anchors are per-class means of frozen CLIP image features (for text), stochastic
anchors are the batch's hand-written class sentences (for images). All functions here are
differentiable torch code: the training losses reuse them.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from ._validation import check_count, check_features, encode_labels
from .geometry import normalize_rows

__all__ = ["relative_representation", "select_anchors"]


def relative_representation(features: torch.Tensor, anchors: torch.Tensor, *, scale: float = 1.0) -> torch.Tensor:
    r"""``s · normalize(features) @ normalize(anchors)ᵀ`` — an (N, A) matrix of scaled cosines.

    Source: Moschella et al. (2023), eq. 2; Craft's ``logits_xeimage = s · Ŝ Âᵀ`` with s = CLIP's
    ``logit_scale.exp()`` (100 for OpenAI weights). Differentiable in both arguments.

    >>> x = torch.tensor([[1., 0.], [0., 2.]])
    >>> relative_representation(x, torch.tensor([[3., 0.]]), scale=10.0)
    tensor([[10.],
            [ 0.]])
    """
    if features.ndim != 2 or anchors.ndim != 2:
        raise ValueError(
            f"features and anchors must be 2-D, got shapes {tuple(features.shape)} and {tuple(anchors.shape)}"
        )
    if features.shape[1] != anchors.shape[1]:
        raise ValueError(f"features have dimension {features.shape[1]} but anchors have {anchors.shape[1]}")
    return scale * normalize_rows(features) @ normalize_rows(anchors).T


def _farthest_points(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """Greedy farthest-point sampling (Gonzalez 1985) in cosine distance, seeded start."""
    u = normalize_rows(x)
    first = int(torch.randint(len(u), (1,), generator=gen))
    chosen = [first]
    dist = 1.0 - u @ u[first]
    for _ in range(1, k):
        nxt = int(dist.argmax())
        chosen.append(nxt)
        dist = torch.minimum(dist, 1.0 - u @ u[nxt])
    return torch.tensor(chosen)


def select_anchors(
    features: Any,
    labels: Any = None,
    *,
    method: Literal["class_mean", "kmeans", "farthest", "random"] = "class_mean",
    per_class: int = 1,
    num_anchors: int | None = None,
    seed: int = 0,
    normalize: bool = False,
) -> tuple[torch.Tensor, np.ndarray]:
    """Choose anchors among (or from) features.

    Parameters
    ----------
    features:
        (N, D) features (e.g. frozen CLIP image features of the few-shot training set).
    labels:
        (N,) labels; needed for ``class_mean`` and for per-class selection.
    method:
        * ``"class_mean"`` — one anchor per class, its mean (Craft's static anchors; Craft runs
          KMeans with k=1, which is the mean);
        * ``"kmeans"`` — ``per_class`` k-means centres per class (scikit-learn ``KMeans``,
          ``n_init=10``, ``random_state=seed``, as in Craft's ``static_anchor.py``);
        * ``"farthest"`` — farthest-point sampling in cosine distance, ``per_class`` per class when
          labels are given, else ``num_anchors`` overall;
        * ``"random"`` — a seeded uniform sample, per class or overall likewise.
    normalize:
        L2-normalise features before selection (Craft's static anchors are *not* normalised at
        extraction; they are normalised inside the loss).

    Returns
    -------
    (anchors, anchor_labels): an (A, D) float tensor on the features' device and the class label of
    each anchor (−1 when selected without labels).
    """
    x = check_features(features, name="features")
    per_class = check_count(per_class, name="per_class", minimum=1)
    if num_anchors is not None:
        num_anchors = check_count(num_anchors, name="num_anchors", minimum=1)
    if normalize:
        x = normalize_rows(x.float()).to(x.dtype)
    gen = torch.Generator().manual_seed(int(seed))
    if method not in ("class_mean", "kmeans", "farthest", "random"):
        raise ValueError(f"unknown anchor method {method!r}; use class_mean, kmeans, farthest or random")
    if labels is None:
        if method in ("class_mean", "kmeans"):
            raise ValueError(f"method={method!r} needs labels")
        k = num_anchors or per_class
        if k > len(x):
            raise ValueError(f"asked for {k} anchors from {len(x)} features")
        idx = (
            _farthest_points(x.double().cpu(), k, gen)
            if method == "farthest"
            else torch.randperm(len(x), generator=gen)[:k]
        )
        return x[idx.to(x.device)], np.full(k, -1)
    enc = encode_labels(labels, n_samples=len(x), min_classes=1)
    codes = enc.codes.to(x.device)
    anchors, owners = [], []
    for code, cid in enumerate(enc.class_ids):
        xc = x[codes == code]
        if method == "class_mean":
            a = xc.double().mean(0, keepdim=True).to(x.dtype)
        elif method == "kmeans":
            if len(xc) < per_class:
                raise ValueError(f"class {cid} has {len(xc)} samples, fewer than per_class={per_class}")
            from sklearn.cluster import KMeans

            km = KMeans(n_clusters=per_class, n_init=10, random_state=seed).fit(xc.double().cpu().numpy())
            a = torch.as_tensor(km.cluster_centers_, dtype=x.dtype, device=x.device)
        else:
            k = min(per_class, len(xc))
            idx = (
                _farthest_points(xc.double().cpu(), k, gen)
                if method == "farthest"
                else torch.randperm(len(xc), generator=gen)[:k]
            )
            a = xc[idx.to(x.device)]
        anchors.append(a)
        owners.extend([cid] * len(a))
    return torch.cat(anchors), np.asarray(owners)
