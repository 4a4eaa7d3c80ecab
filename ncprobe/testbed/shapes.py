"""A procedural compositional image task: shape × colour × texture (36 classes).

Each class is one combination of three attributes: a shape (:data:`SHAPES`), a colour (:data:`COLOURS`)
and a texture (:data:`TEXTURES`); its name reads ``f"{texture} {colour} {shape}"`` ("striped red
circle", "solid blue square"). Images are 28×28 RGB drawings of one filled shape on a black background
(:func:`render_shapes`), each with its own random position, size, rotation, colour shade, brightness
and texture phase, drawn from a generator seeded by the caller (never torch's global RNG).

Base and novel classes (for base-to-novel prompt tuning) follow one parity rule: a class is *base*
iff ``shape_index + colour_index + texture_index`` is even, else *novel*. Each half holds 18 classes
and every value of every attribute, so a novel class is an unseen combination of seen attributes
(a novel "dotted red circle" has a base "dotted red square", "solid red circle", "dotted blue
circle"...). Labels put the 18 base classes first (0..17), then the 18 novel ones (18..35), each half
ordered by (shape, colour, texture) index (:func:`shape_classes`, :func:`base_novel_split`).

Pretraining captions (:func:`shape_captions`) are fixed attribute phrases and paraphrases built by a
rule, never the evaluation template ``"a photo of a {name}."`` nor anything starting "a photo of"::

    a striped red circle
    a red circle with stripes
    a striped shape that is red and round
    a drawing of a red circle with a striped pattern
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

__all__ = [
    "SHAPES",
    "COLOURS",
    "TEXTURES",
    "ShapeClass",
    "shape_classes",
    "base_novel_split",
    "render_shapes",
    "shape_captions",
]

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
COLOURS: tuple[str, ...] = ("red", "green", "blue")
TEXTURES: tuple[str, ...] = ("solid", "striped", "dotted")

_SIDE = 28
_CENTRE = (_SIDE - 1) / 2  # pixel centres are 0..27
_OFFSET = 3.0  # centre jitter, ± px
_SIZE = (8.0, 11.0)  # radius of the disc; the other shapes scale from it to a similar extent
_ROTATION = math.radians(15.0)  # ± (no visible effect on the disc)
_COLOUR_JITTER = 40.0  # each channel of the pure colour moves by up to ± this, within [0, 255]
_BRIGHTNESS = (0.7, 1.0)
_DARK = 0.25  # "off" pixels of a stripe/dot texture are the colour times this
_STRIPE_PERIOD = 4.0
_DOT_PERIODS = (4, 5)
_DOT_RADIUS = 1.15
_CHUNK = 4096  # images rendered at once (bounds memory; results do not depend on it)

# per-shape extent relative to the drawn size: square half-side, triangle circumradius, cross half-length
_SQUARE_HALF = 0.85
_TRIANGLE_R = 1.2
_CROSS_HALF = 0.9


@dataclass(frozen=True)
class ShapeClass:
    """One class: a shape, a colour and a texture (each a value of :data:`SHAPES`, :data:`COLOURS`,
    :data:`TEXTURES`).

    >>> ShapeClass("circle", "red", "striped").name
    'striped red circle'
    """

    shape: str
    colour: str
    texture: str

    def __post_init__(self) -> None:
        if self.shape not in SHAPES or self.colour not in COLOURS or self.texture not in TEXTURES:
            raise ValueError(f"unknown attribute in {self!r}")

    @property
    def name(self) -> str:
        """``f"{texture} {colour} {shape}"``, e.g. ``"solid blue square"``."""
        return f"{self.texture} {self.colour} {self.shape}"

    @property
    def indices(self) -> tuple[int, int, int]:
        """``(shape_index, colour_index, texture_index)``."""
        return SHAPES.index(self.shape), COLOURS.index(self.colour), TEXTURES.index(self.texture)

    @property
    def is_base(self) -> bool:
        """Whether the class is a base class (even sum of its attribute indices)."""
        return sum(self.indices) % 2 == 0


@lru_cache(maxsize=1)
def _classes() -> tuple[ShapeClass, ...]:
    every = [ShapeClass(s, c, t) for s in SHAPES for c in COLOURS for t in TEXTURES]  # (shape, colour, texture) order
    return tuple([k for k in every if k.is_base] + [k for k in every if not k.is_base])


def shape_classes() -> list[ShapeClass]:
    """All 36 classes in label order: the 18 base classes first, then the 18 novel ones.

    A class is base iff ``shape_index + colour_index + texture_index`` is even; within each half the
    classes are ordered by (shape, colour, texture) index. Every value of every attribute occurs in both
    halves.

    Returns:
        A new list of :class:`ShapeClass`; ``shape_classes()[label]`` is the class of ``label``.

    >>> [k.name for k in shape_classes()[:3]]
    ['solid red circle', 'dotted red circle', 'striped green circle']
    >>> shape_classes()[18].name
    'striped red circle'
    """
    return list(_classes())


def base_novel_split() -> tuple[list[int], list[int]]:
    """The labels of the base and of the novel classes.

    Returns:
        ``(list(range(18)), list(range(18, 36)))``: base labels, novel labels.

    >>> base, novel = base_novel_split()
    >>> len(base), novel[0]
    (18, 18)
    """
    classes = _classes()
    base = [i for i, k in enumerate(classes) if k.is_base]
    novel = [i for i, k in enumerate(classes) if not k.is_base]
    return base, novel


# --------------------------------------------------------------------------------------------- captions

_SHAPE_ADJ = {"circle": "round", "square": "square", "triangle": "triangular", "cross": "cross-shaped"}
_SHAPE_ALT = {"circle": "disc", "square": "square block", "triangle": "triangle pointing up", "cross": "plus sign"}
_WITH = {"solid": "with a plain fill", "striped": "with stripes", "dotted": "with polka dots"}
_FILLED = {"solid": "a single flat colour", "striped": "stripes", "dotted": "dots"}
_PATTERN = {"solid": "no pattern", "striped": "a striped pattern", "dotted": "a dotted pattern"}


def shape_captions(cls: ShapeClass) -> tuple[str, ...]:
    """Seven fixed pretraining captions for a class: its name and rule-built paraphrases.

    None is the evaluation template ``"a photo of a {name}."`` and none starts with "a photo of"; every
    caption names the colour, and each names the shape and the texture in one wording or another.

    Args:
        cls: the class to caption.

    Returns:
        A tuple of 7 distinct captions (no two classes share a caption).

    >>> shape_captions(ShapeClass("circle", "red", "striped"))[:3]
    ('a striped red circle', 'a red circle with stripes', 'a red circle filled with stripes')
    """
    s, c, t = cls.shape, cls.colour, cls.texture
    return (
        f"a {t} {c} {s}",
        f"a {c} {s} {_WITH[t]}",
        f"a {c} {s} filled with {_FILLED[t]}",
        f"a {t} shape that is {c} and {_SHAPE_ADJ[s]}",
        f"a drawing of a {c} {s} with {_PATTERN[t]}",
        f"a {t} {c} {_SHAPE_ALT[s]}",
        f"a {s} on a black background, {c} and {t}",
    )


# -------------------------------------------------------------------------------------------- rendering

_PURE = torch.eye(3) * 255.0  # row k: the pure colour COLOURS[k] (red, green, blue)


def _label_indices(labels) -> torch.Tensor:
    if isinstance(labels, torch.Tensor):
        y = labels.detach().cpu()
    else:
        y = torch.as_tensor(np.asarray(labels))
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {tuple(y.shape)}")
    if y.numel() and (y.dtype.is_floating_point or y.dtype == torch.bool or y.is_complex()):
        raise TypeError(f"labels must be integers, got {y.dtype}")
    y = y.to(torch.int64)
    n = len(_classes())
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n):
        raise ValueError(f"labels must lie in 0..{n - 1}")
    return y


def _attributes() -> torch.Tensor:
    """(36, 3) int64: the (shape, colour, texture) index of each label."""
    return torch.tensor([k.indices for k in _classes()], dtype=torch.int64)


def _uniform(g: torch.Generator, n: int, lo: float, hi: float, *extra: int) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand((n, *extra), generator=g, dtype=torch.float32)


def _draw_params(n: int, seed: int) -> dict[str, torch.Tensor]:
    """Every random quantity of ``n`` drawings, drawn for every image whatever its class (so the draws
    depend only on ``(n, seed)``)."""
    g = torch.Generator(device="cpu")
    g.manual_seed(int(seed))
    return {
        "centre": _CENTRE + _uniform(g, n, -_OFFSET, _OFFSET, 2),  # (x, y)
        "size": _uniform(g, n, *_SIZE),
        "angle": _uniform(g, n, -_ROTATION, _ROTATION),
        "jitter": _uniform(g, n, -_COLOUR_JITTER, _COLOUR_JITTER, 3),
        "brightness": _uniform(g, n, *_BRIGHTNESS),
        "stripe_dir": torch.randint(0, 4, (n,), generator=g),  # × 45°
        "stripe_phase": _uniform(g, n, 0.0, _STRIPE_PERIOD),
        "dot_period": torch.randint(_DOT_PERIODS[0], _DOT_PERIODS[1] + 1, (n,), generator=g).to(torch.float32),
        "dot_phase": torch.rand((n, 2), generator=g, dtype=torch.float32),  # × period
    }


def _render_chunk(attrs: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    shape, colour, texture = attrs.unbind(1)
    n = attrs.shape[0]
    coords = torch.arange(_SIDE, dtype=torch.float32)
    ys, xs = coords.view(1, _SIDE, 1), coords.view(1, 1, _SIDE)  # rows (y, down) and columns (x)

    def col(t: torch.Tensor) -> torch.Tensor:
        return t.view(n, 1, 1)

    dx, dy = xs - col(p["centre"][:, 0]), ys - col(p["centre"][:, 1])
    cos, sin = col(torch.cos(p["angle"])), col(torch.sin(p["angle"]))
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy  # shape frame (v points down)
    size = col(p["size"])

    disc = dx * dx + dy * dy <= size * size
    square = torch.maximum(u.abs(), v.abs()) <= _SQUARE_HALF * size
    r = _TRIANGLE_R * size
    vt = v - r / 4  # centre the triangle's bounding box (apex at -3r/4, base at +3r/4)
    half_sqrt3 = math.sqrt(3) / 2
    triangle = (vt <= r / 2) & (-half_sqrt3 * u - 0.5 * vt <= r / 2) & (half_sqrt3 * u - 0.5 * vt <= r / 2)
    arm, half_width = _CROSS_HALF * size, _CROSS_HALF * size / 3
    au, av = u.abs(), v.abs()
    cross = ((au <= arm) & (av <= half_width)) | ((av <= arm) & (au <= half_width))
    masks = torch.stack([disc, square, triangle, cross], 1)  # (n, 4, H, W), order of SHAPES
    mask = masks[torch.arange(n), shape]

    theta = p["stripe_dir"].to(torch.float32) * (math.pi / 4)
    t = col(torch.cos(theta)) * xs + col(torch.sin(theta)) * ys + col(p["stripe_phase"])
    stripes = torch.remainder(t, _STRIPE_PERIOD) < _STRIPE_PERIOD / 2
    period = col(p["dot_period"])
    ox, oy = (col(p["dot_phase"][:, k]) * period for k in (0, 1))
    fx, fy = torch.remainder(xs - ox, period), torch.remainder(ys - oy, period)
    fx, fy = torch.minimum(fx, period - fx), torch.minimum(fy, period - fy)
    dots = fx * fx + fy * fy <= _DOT_RADIUS**2
    solid = torch.ones_like(stripes)
    lit = torch.stack([solid, stripes, dots], 1)[torch.arange(n), texture]  # (n, H, W), order of TEXTURES

    rgb = (_PURE[colour] + p["jitter"]).clamp(0.0, 255.0) * p["brightness"].view(n, 1)  # (n, 3)
    level = torch.where(lit, 1.0, _DARK) * mask  # (n, H, W)
    img = level.unsqueeze(1) * rgb.view(n, 3, 1, 1)
    return img.round_().clamp_(0, 255).to(torch.uint8)


def render_shapes(labels, *, seed: int) -> torch.Tensor:
    """Draw one image per label.

    Each image is one shape on a black background: a filled disc, square, upward equilateral triangle
    or plus-shaped cross, centred within ±3 px of the middle, of size 8–11 px (disc radius; the others
    scaled to a similar extent), rotated by up to ±15°, in its colour (each channel of the pure colour
    moved by up to ±40, times a brightness of 0.7–1.0) and textured inside the shape: *solid* (uniform),
    *striped* (period-4 stripes at 0°, 45°, 90° or 135°, random phase) or *dotted* (dots of radius ~1 px
    on a grid of period 4 or 5 px, random phase); the "off" pixels of a texture are the colour ×0.25.

    Args:
        labels: 1-D integer tensor, array or sequence of indices into :func:`shape_classes`.
        seed: seeds a private ``torch.Generator``; torch's global RNG is neither read nor advanced.

    Returns:
        ``uint8`` tensor of shape ``(N, 3, 28, 28)`` (RGB). The same ``(labels, seed)`` give
        bitwise-identical images; image ``i``'s random draws depend only on ``(i, len(labels), seed)``.

    >>> x = render_shapes(torch.tensor([0, 18, 35]), seed=0)
    >>> x.shape, x.dtype
    (torch.Size([3, 3, 28, 28]), torch.uint8)
    """
    y = _label_indices(labels)
    n = y.numel()
    out = torch.zeros((n, 3, _SIDE, _SIDE), dtype=torch.uint8)
    if n == 0:
        return out
    params = _draw_params(n, seed)
    attrs = _attributes()[y]
    for lo in range(0, n, _CHUNK):
        hi = min(lo + _CHUNK, n)
        out[lo:hi] = _render_chunk(attrs[lo:hi], {k: v[lo:hi] for k, v in params.items()})
    return out


def _grid(images: torch.Tensor, columns: int, pad: int = 2) -> torch.Tensor:
    """Tile ``(N, 3, H, W)`` uint8 images into one ``(3, rows·(H+pad)+pad, columns·(W+pad)+pad)`` image
    on a grey frame (for looking at the drawings)."""
    n, c, h, w = images.shape
    rows = -(-n // columns)
    grid = torch.full((c, rows * (h + pad) + pad, columns * (w + pad) + pad), 96, dtype=torch.uint8)
    for i in range(n):
        r, k = divmod(i, columns)
        grid[:, pad + r * (h + pad) : pad + r * (h + pad) + h, pad + k * (w + pad) : pad + k * (w + pad) + w] = images[
            i
        ]
    return grid
