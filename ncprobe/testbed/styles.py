"""Image styles of the v3 testbed: the neutral "web" style the image tower is pretrained in, and the shifted
downstream domains that prompt tuning adapts to (``data_cards/embedded_benchmark.md``, "v3").

Every function takes ``uint8`` images, ``(N, 28, 28)`` grey or ``(N, 3, 28, 28)`` RGB, and returns ``uint8``
RGB ``(N, 3, 28, 28)``. Randomness comes from a generator seeded by ``seed`` only (never torch's global RNG),
so a style is a pure function of its inputs: the same images and seed give the same bytes.

* :func:`neutral` — the pretraining style: grey images become RGB with equal channels; RGB images pass.
* :func:`thick_noise` — strokes thickened by a 3×3 max filter, then Gaussian pixel noise of standard deviation
  ``sigma`` (the v2 ``testbed-shifted`` domain at ``sigma = 40``).
* :func:`tinted` — each image's strokes take a random colour and its background a random dark colour; ``strength``
  blends from the grey image (0) to fully coloured (1). At 1 this is the "random foreground/background colour"
  shift of ``../shared/reference/testbed-v3.md``.
* :func:`cluttered` — a random-colour background at intensity ``strength × 0.5`` under the (brightened) shape and
  Gaussian noise of ``strength × 50``: the shift of the compositional task, whose colours are a class attribute
  and so cannot be recoloured.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["as_rgb", "neutral", "thick_noise", "tinted", "cluttered", "apply_style", "STYLES"]


def as_rgb(images: torch.Tensor) -> torch.Tensor:
    """``uint8`` ``(N, 28, 28)`` grey or ``(N, 3, 28, 28)`` RGB images as ``(N, 3, 28, 28)`` (grey repeated).

    >>> as_rgb(torch.zeros(2, 28, 28, dtype=torch.uint8)).shape
    torch.Size([2, 3, 28, 28])
    """
    if images.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images, got {images.dtype}")
    if images.ndim == 3 and images.shape[-2:] == (28, 28):
        return images.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()
    if images.ndim == 4 and images.shape[1:] == (3, 28, 28):
        return images
    raise ValueError(f"expected (N, 28, 28) or (N, 3, 28, 28) images, got {tuple(images.shape)}")


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.round().clamp(0, 255).to(torch.uint8)


def neutral(images: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
    """The pretraining style: the images unchanged, as RGB (``seed`` is unused; kept for a uniform signature)."""
    return as_rgb(images)


def thick_noise(images: torch.Tensor, *, sigma: float = 40.0, seed: int = 0) -> torch.Tensor:
    """Strokes thickened by a 3×3 max filter (per channel), then Gaussian pixel noise of std ``sigma`` (0–255 scale).

    Grey ``(N, 28, 28)`` input gets grey noise (one draw per pixel, equal in the three channels); RGB input gets
    one draw per pixel and channel.

    >>> x = torch.zeros(1, 28, 28, dtype=torch.uint8); x[0, 14, 14] = 255
    >>> int((thick_noise(x, sigma=0.0)[0, 0] == 255).sum())   # one pixel becomes a 3×3 block
    9
    """
    x = as_rgb(images).to(torch.float32)
    thick = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
    shape = (len(x), 1, 28, 28) if images.ndim == 3 else tuple(thick.shape)
    noise = float(sigma) * torch.randn(shape, generator=_generator(seed))
    return _to_uint8(thick + noise)


def _random_colours(n: int, generator: torch.Generator, *, low: float, high: float) -> torch.Tensor:
    """``(n, 3)`` colours: a random hue at full saturation, value in ``[low, high]`` (0–1 scale)."""
    hue = torch.rand(n, generator=generator) * 6.0
    value = low + (high - low) * torch.rand(n, generator=generator)
    k = (torch.tensor([5.0, 3.0, 1.0]).unsqueeze(0) + hue.unsqueeze(1)) % 6.0
    rgb = 1.0 - torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)  # HSV → RGB at s = 1, v = 1
    return rgb * value.unsqueeze(1)


def tinted(images: torch.Tensor, *, strength: float = 1.0, seed: int = 0) -> torch.Tensor:
    """Random stroke colour and random dark background colour per image, blended with the grey image.

    With ``g`` the grey level in [0, 1], a stroke colour ``f`` (full-saturation hue, value 0.6–1) and a background
    colour ``b`` (value 0–0.35), the coloured image is ``g·f + (1 − g)·b``; the output is
    ``(1 − strength)·g + strength·(g·f + (1 − g)·b)``, scaled to 0–255.

    >>> x = torch.full((1, 28, 28), 255, dtype=torch.uint8)
    >>> bool((tinted(x, strength=0.0) == 255).all())
    True
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must lie in [0, 1], got {strength}")
    g = as_rgb(images).to(torch.float32)[:, :1] / 255.0  # (N, 1, 28, 28)
    gen = _generator(seed)
    fg = _random_colours(len(g), gen, low=0.6, high=1.0).view(-1, 3, 1, 1)
    bg = _random_colours(len(g), gen, low=0.0, high=0.35).view(-1, 3, 1, 1)
    coloured = g * fg + (1.0 - g) * bg
    return _to_uint8(255.0 * ((1.0 - strength) * g + strength * coloured))


def cluttered(images: torch.Tensor, *, strength: float = 1.0, seed: int = 0) -> torch.Tensor:
    """A random-colour background of value ``0.5·strength`` behind the shape, plus noise of std ``50·strength``.

    The background fills where the image is black (all channels below 8); the shape keeps its colours.

    >>> x = torch.zeros(1, 3, 28, 28, dtype=torch.uint8)
    >>> bool((cluttered(x, strength=0.0) == 0).all())
    True
    """
    if strength < 0.0:
        raise ValueError(f"strength must be non-negative, got {strength}")
    x = as_rgb(images).to(torch.float32)
    gen = _generator(seed)
    background = (x.amax(dim=1, keepdim=True) < 8).to(torch.float32)
    bg = 255.0 * _random_colours(len(x), gen, low=0.5 * min(strength, 1.0), high=0.5 * min(strength, 1.0))
    x = x + background * bg.view(-1, 3, 1, 1)
    noise = 50.0 * strength * torch.randn(x.shape, generator=gen)
    return _to_uint8(x + noise)


#: Styles by name, for configs and cache keys.
STYLES = {"neutral": neutral, "thick_noise": thick_noise, "tinted": tinted, "cluttered": cluttered}


def apply_style(images: torch.Tensor, style: str, *, seed: int, **params: float) -> torch.Tensor:
    """Apply the style named ``style`` (:data:`STYLES`) with its parameters; an unknown name lists the valid ones."""
    if style not in STYLES:
        raise ValueError(f"unknown image style {style!r}; valid styles: {', '.join(STYLES)}")
    return STYLES[style](images, seed=seed, **params)
