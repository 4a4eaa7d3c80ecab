"""A procedurally drawn compositional set: stroke shapes captioned by a fixed grammar.

The testbed's stand-in for web-scale pretraining. A real CLIP has seen countless images paired with
text that names their parts; the testbed's image tower sees only ten base classes. This set teaches
it a small visual vocabulary in the text encoder's own words: loops, straight lines, bars and
curves, placed in slots (top, bottom, left, ...), randomly composed, drawn as white strokes on
black in MNIST's format (28×28, the glyph's frame fitted into a 20×20 box and centred, so a part
drawn alone still sits in its slot), and captioned by a fixed grammar::

    a drawing of a horizontal bar at the top and a long diagonal line
    a handwritten shape with a closed loop at the top and a vertical line at the bottom
    one large closed loop

No novel image and no class name is used anywhere: compositions are drawn uniformly from a
seeded set that enumerates every one- and two-part composition and samples three-part ones, with
no reference to any digit. Two optional styles widen it: the same compositions cut from
handwritten *base* images (loops from "digit zero", lines from "digit one"; ``n_crop_images``),
and garment silhouettes with an attribute grammar (:mod:`.silhouettes`; ``n_garment_images``).
Everything is deterministic given the seed (numpy ``RandomState`` for the geometry, torch CPU
arithmetic for the rasterisation).

Grammar
-------
* A *part* is a (primitive, slot) pair with a fixed phrase (:data:`PART_PHRASES`, 28 parts).
* A *composition* is 1 to 3 parts with pairwise different slots, ordered top to bottom
  (:data:`SLOT_RANK`, ties in :data:`PARTS` order), joined as ``A``, ``A and B`` or ``A, B and C``.
* A *caption* is a prefix (:data:`PREFIXES`) applied to a composition's phrase.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ncprobe.testbed.silhouettes import (
    GARMENT_PREFIXES,
    draw_garments,
    enumerate_garments,
    garment_parts,
    garment_phrase,
)

__all__ = [
    "PART_PHRASES",
    "PARTS",
    "PREFIXES",
    "SLOT_RANK",
    "SyntheticConfig",
    "SyntheticSet",
    "composition_phrase",
    "caption",
    "enumerate_compositions",
    "draw_compositions",
    "make_synthetic_set",
    "GARMENT_PREFIXES",
]

#: (primitive, slot) → phrase. Primitives: ``loop`` (closed), ``vline``, ``diag``, ``hbar``,
#: ``curve_l`` / ``curve_r`` (open to the left / right), ``arch`` (open at the bottom), ``cup``
#: (open at the top).
PART_PHRASES: dict[tuple[str, str], str] = {
    ("loop", "full"): "one large closed loop",
    ("loop", "top"): "a closed loop at the top",
    ("loop", "bottom"): "a closed loop at the bottom",
    ("vline", "full"): "a straight vertical line from the top to the bottom",
    ("vline", "top"): "a short vertical line at the top",
    ("vline", "bottom"): "a vertical line at the bottom",
    ("vline", "tl"): "a short vertical line at the top left",
    ("vline", "tr"): "a short vertical line at the top right",
    ("vline", "bl"): "a short vertical line at the bottom left",
    ("vline", "br"): "a short vertical line at the bottom right",
    ("vline", "right"): "a vertical line on the right",
    ("vline", "left"): "a vertical line on the left",
    ("diag", "full"): "a long diagonal line",
    ("diag", "top"): "a diagonal line at the top",
    ("diag", "bottom"): "a diagonal line at the bottom",
    ("curve_l", "full"): "a large curve open to the left",
    ("curve_l", "top"): "a curve at the top open to the left",
    ("curve_l", "bottom"): "a curve at the bottom open to the left",
    ("curve_r", "full"): "a large curve open to the right",
    ("curve_r", "top"): "a curve at the top open to the right",
    ("curve_r", "bottom"): "a curve at the bottom open to the right",
    ("arch", "top"): "a curve at the top open at the bottom",
    ("arch", "bottom"): "a curve at the bottom open at the bottom",
    ("cup", "top"): "a curve at the top open at the top",
    ("cup", "bottom"): "a curve at the bottom open at the top",
    ("hbar", "top"): "a horizontal bar at the top",
    ("hbar", "middle"): "a horizontal bar in the middle",
    ("hbar", "bottom"): "a horizontal bar at the bottom",
}
#: The parts in a fixed order (a part's index is its id).
PARTS: tuple[tuple[str, str], ...] = tuple(PART_PHRASES)
#: Caption prefixes; one is drawn for each composition at each training step.
PREFIXES: tuple[str, ...] = ("a drawing of {}", "a handwritten shape with {}", "{}")
#: Vertical order of slots in a caption (top to bottom); ties keep :data:`PARTS` order.
SLOT_RANK: dict[str, int] = {
    "top": 0,
    "tl": 0,
    "tr": 0,
    "full": 1,
    "middle": 1,
    "left": 1,
    "right": 1,
    "bottom": 2,
    "bl": 2,
    "br": 2,
}

# Glyph frame: x in [0, _W] (left → right), y in [0, 1] (top → bottom), about a digit's aspect.
_W = 0.65
_SLOT_BOX = {  # x0, x1, y0, y1
    "full": (0.0, _W, 0.0, 1.0),
    "top": (0.0, _W, 0.0, 0.5),
    "bottom": (0.0, _W, 0.5, 1.0),
    "middle": (0.0, _W, 0.5, 0.5),
    "tl": (0.0, _W / 2, 0.0, 0.5),
    "tr": (_W / 2, _W, 0.0, 0.5),
    "bl": (0.0, _W / 2, 0.5, 1.0),
    "br": (_W / 2, _W, 0.5, 1.0),
    "left": (0.0, _W / 2, 0.0, 1.0),
    "right": (_W / 2, _W, 0.0, 1.0),
}
_POINTS = 13  # points per part polyline (12 segments)
_SIDE = 28  # MNIST's frame
_BOX = 20.0  # MNIST fits each digit into a 20×20 box


@dataclass(frozen=True)
class SyntheticConfig:
    """What determines the synthetic set (all of it goes into the testbed's cache key).

    Attributes
    ----------
    n_images: images drawn as anti-aliased strokes.
    n_garment_images: garment silhouettes (:mod:`ncprobe.testbed.silhouettes`), one random
        attribute combination each, captioned by the garment grammar.
    n_crop_images: images drawn from stroke crops of handwritten base-class images (a loop source
        and a line source; the testbed uses its base training images of "digit zero" and
        "digit one", see :func:`ncprobe.testbed.pretraining.stroke_sources`).
    seed: seeds the composition sample and every drawing (fixed data, independent of the training seed).
    n_triples: three-part compositions sampled (uniformly, seeded) in addition to every one- and
        two-part composition.
    batch_size: synthetic images per training step.
    weight: weight of the synthetic loss next to the base-class loss.
    part_weight: weight of the part loss: a drawing's embedding against every part phrase
        (:meth:`SyntheticSet.part_table`), with the target spread evenly over its own parts.
    logit_scale: the fixed inverse temperature of both synthetic losses. Grammar captions lie close
        together in MiniLM's space, so they need a sharper softmax than the ten class captions
        (the model's learnable scale, shared with the base-class loss, was tried and dropped).

    Each drawing's caption is contrasted with the captions of every composition (one prefix drawn
    per composition and step). Contrasting only with the compositions present in the batch was
    tried and dropped (see the data card's design table).
    """

    n_images: int = 12000
    n_crop_images: int = 0
    n_garment_images: int = 0
    seed: int = 0
    n_triples: int = 300
    batch_size: int = 64
    weight: float = 1.0
    part_weight: float = 1.0
    logit_scale: float = 50.0

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        return asdict(self)


@dataclass(frozen=True)
class SyntheticSet:
    """Drawn images with their compositions.

    Attributes
    ----------
    images: ``uint8`` ``(N, 28, 28)``, light on black (MNIST's and Fashion-MNIST's format).
    composition_ids: ``int64`` ``(N,)``: below ``len(compositions)`` an index into
        :attr:`compositions`, above it (minus ``len(compositions)``) one into :attr:`garments`.
    compositions: the stroke compositions, each a tuple of part ids (indices into :data:`PARTS`),
        in caption order.
    garments: the garment attribute combinations (:func:`ncprobe.testbed.silhouettes.enumerate_garments`);
        empty without garment images.
    """

    images: torch.Tensor
    composition_ids: torch.Tensor
    compositions: tuple[tuple[int, ...], ...]
    garments: tuple[tuple[str, ...], ...] = ()

    @property
    def num_compositions(self) -> int:
        """Stroke compositions plus garment combinations."""
        return len(self.compositions) + len(self.garments)

    def captions(self, prefix: int = 0) -> list[str]:
        """The caption of every composition (strokes, then garments) under prefix number ``prefix``."""
        shapes = [caption(c, prefix) for c in self.compositions]
        return shapes + [GARMENT_PREFIXES[prefix].format(garment_phrase(g)) for g in self.garments]

    def all_captions(self) -> list[str]:
        """Every (composition, prefix) caption, prefix-major: index ``p * num_compositions + c``."""
        return [c for p in range(len(PREFIXES)) for c in self.captions(p)]

    def part_table(self) -> tuple[list[str], torch.Tensor]:
        """The part phrases and which composition holds which: ``(phrases, member (C, P) float)``.

        Strokes: the 28 phrases of :data:`PART_PHRASES`; garments: their attribute phrases
        (:func:`ncprobe.testbed.silhouettes.garment_parts`).
        """
        phrases = list(PART_PHRASES.values())
        garment = [garment_parts(g) for g in self.garments]
        for items in garment:
            phrases += [x for x in items if x not in phrases]
        index = {x: i for i, x in enumerate(phrases)}
        member = torch.zeros(self.num_compositions, len(phrases))
        for c, parts in enumerate(self.compositions):
            member[c, list(parts)] = 1.0
        for g, items in enumerate(garment):
            member[len(self.compositions) + g, [index[x] for x in items]] = 1.0
        return phrases, member


def _ordered(parts: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sorted(parts, key=lambda k: (SLOT_RANK[PARTS[k][1]], k)))


def composition_phrase(parts: tuple[int, ...]) -> str:
    """The grammar's phrase for a composition (part ids), ordered top to bottom."""
    if not 1 <= len(parts) <= 3:
        raise ValueError(f"a composition has 1 to 3 parts, got {len(parts)}")
    phrases = [PART_PHRASES[PARTS[k]] for k in _ordered(tuple(parts))]
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def caption(parts: tuple[int, ...], prefix: int | str = 0) -> str:
    """A composition's caption under a prefix (an index into :data:`PREFIXES` or a format string)."""
    fmt = PREFIXES[prefix] if isinstance(prefix, int) else prefix
    return fmt.format(composition_phrase(parts))


def _valid(parts: tuple[int, ...]) -> bool:
    slots = [PARTS[k][1] for k in parts]
    return len(set(slots)) == len(slots)


def enumerate_compositions(n_triples: int, seed: int) -> tuple[tuple[int, ...], ...]:
    """Every valid one- and two-part composition plus ``n_triples`` sampled three-part ones.

    Valid: the parts' slots differ pairwise. The triples are a seeded uniform sample (without
    replacement) of all valid triples. Each composition is returned in caption order.
    """
    singles = [(k,) for k in range(len(PARTS))]
    pairs = [c for c in itertools.combinations(range(len(PARTS)), 2) if _valid(c)]
    triples = [c for c in itertools.combinations(range(len(PARTS)), 3) if _valid(c)]
    rng = np.random.RandomState(seed)
    pick = rng.choice(len(triples), size=min(n_triples, len(triples)), replace=False)
    chosen = [triples[i] for i in sorted(pick)]
    return tuple(_ordered(c) for c in singles + pairs + chosen)


# ----------------------------------------------------------------------------- drawing


def _jittered_box(slot: str, rng: np.random.RandomState) -> tuple[float, float, float, float]:
    x0, x1, y0, y1 = _SLOT_BOX[slot]
    j = 0.05
    x0, x1 = x0 + rng.uniform(-j, j), x1 + rng.uniform(-j, j)
    y0, y1 = y0 + rng.uniform(-j, j), y1 + rng.uniform(-j, j)
    return x0, x1, y0, y1


def _arc(cx, cy, rx, ry, t0, t1) -> np.ndarray:
    t = np.linspace(t0, t1, _POINTS)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _line(p0, p1) -> np.ndarray:
    t = np.linspace(0.0, 1.0, _POINTS)[:, None]
    return (1 - t) * np.asarray(p0, float) + t * np.asarray(p1, float)


def _part_points(part: tuple[str, str], rng: np.random.RandomState) -> np.ndarray:
    """The polyline ``(_POINTS, 2)`` of one part in glyph coordinates (y grows downwards)."""
    prim, slot = part
    x0, x1, y0, y1 = _jittered_box(slot, rng)
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    if prim == "loop":
        start = rng.uniform(0, 2 * math.pi)
        overshoot = rng.uniform(0.0, 0.35)  # handwritten loops often overlap where they close
        rx, ry = w / 2 * rng.uniform(0.8, 1.0), h / 2 * rng.uniform(0.85, 1.0)
        return _arc(cx, cy, rx, ry, start, start + 2 * math.pi + overshoot)
    if prim == "vline":
        x = {"left": x0, "tl": x0, "bl": x0, "right": x1, "tr": x1, "br": x1}.get(slot, cx)
        return _line((x + rng.uniform(-0.03, 0.03), y0), (x + rng.uniform(-0.03, 0.03), y1))
    if prim == "hbar":
        y = {"top": y0, "bottom": y1}.get(slot, cy)
        return _line((x0, y + rng.uniform(-0.03, 0.03)), (x1, y + rng.uniform(-0.03, 0.03)))
    if prim == "diag":
        if rng.uniform() < 0.75:  # "/" as in most handwriting; sometimes "\"
            return _line((x1, y0), (x0, y1))
        return _line((x0, y0), (x1, y1))
    span = rng.uniform(0.8, 1.1) * math.pi  # open curves: about half an ellipse
    mid = {"curve_l": 0.0, "curve_r": math.pi, "arch": -math.pi / 2, "cup": math.pi / 2}[prim]
    # centre on the open side, so the curve fills the slot's box
    ox = {"curve_l": x0, "curve_r": x1}.get(prim, cx)
    oy = {"arch": y1, "cup": y0}.get(prim, cy)
    rx = w if prim in ("curve_l", "curve_r") else w / 2
    ry = h if prim in ("arch", "cup") else h / 2
    return _arc(ox, oy, rx, ry, mid - span / 2, mid + span / 2)


def _glyph_transform(
    points: np.ndarray, rng: np.random.RandomState, *, margin: float | None = None
) -> tuple[np.ndarray, float]:
    """A random handwriting affine (slant, rotation, aspect) followed by MNIST's normalisation.

    ``points`` (``(..., 2)``, glyph coordinates) are the drawing's extent; the glyph frame is added
    to them, so a part drawn alone keeps its slot. Returns the ``3×3`` matrix from glyph coordinates
    to 28×28 pixel coordinates (the frame and the drawing fit in the central 20×20 box, aspect kept,
    less ``margin`` pixels on each side; default the stroke radius) and the stroke radius in pixels.
    """
    slant = rng.uniform(-0.1, 0.4)  # positive: the top leans right, as in most handwriting
    angle = math.radians(rng.uniform(-8, 8))
    aspect = rng.uniform(0.75, 1.25)
    c, s = math.cos(angle), math.sin(angle)
    shape = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ np.array(
        [[aspect, -slant, 0.5 * slant], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    )
    frame = np.array([[0.0, 0.0], [_W, 0.0], [0.0, 1.0], [_W, 1.0]])
    both = np.concatenate([points.reshape(-1, 2), frame]) @ shape[:2, :2].T + shape[:2, 2]
    radius = rng.uniform(1.1, 2.1)
    lo, hi = both.min(0), both.max(0)
    scale = (_BOX - 2 * (radius if margin is None else margin)) / max(float((hi - lo).max()), 1e-6)
    shift = -(lo + hi) / 2 * scale + _SIDE / 2 + rng.uniform(-1.0, 1.0, size=2)
    to_pixels = np.array([[scale, 0.0, shift[0]], [0.0, scale, shift[1]], [0.0, 0.0, 1.0]])
    return to_pixels @ shape, radius


def _glyph_polylines(parts: tuple[int, ...], rng: np.random.RandomState) -> tuple[np.ndarray, float]:
    """Polylines ``(P, _POINTS, 2)`` of a composition in pixel coordinates and the stroke radius."""
    lines = np.stack([_part_points(PARTS[k], rng) for k in parts])
    # small smooth wobble along each stroke (hand tremor)
    t = np.linspace(0, 1, _POINTS)[None, :, None]
    phase = rng.uniform(0, 2 * math.pi, size=(len(parts), 1, 2))
    lines = lines + 0.02 * np.sin(2 * math.pi * rng.uniform(0.5, 1.5) * t + phase)
    matrix, radius = _glyph_transform(lines, rng)
    return lines @ matrix[:2, :2].T + matrix[:2, 2], radius


# Stroke crops: every primitive is cut from a handwritten base-class image. Loops and the four open
# curves come from an image of the loop source (a whole one, or the half on the curve's side), the
# three straight primitives from an image of the line source, stretched or turned into place.
_CROP_SOURCE = {
    "loop": "loop",
    "curve_l": "loop",
    "curve_r": "loop",
    "arch": "loop",
    "cup": "loop",
    "vline": "line",
    "hbar": "line",
    "diag": "line",
}
_CROP_HALF = {"curve_l": "right", "curve_r": "left", "arch": "top", "cup": "bottom"}


def _crop_map(part: tuple[str, str], aspect: float, rng: np.random.RandomState) -> np.ndarray:
    """``3×3`` map from the source's ink box (``u, v`` in ``[0, 1]``) to glyph coordinates.

    ``aspect`` is the source ink box's width / height (a line keeps its thickness relative to its length).
    """
    prim, slot = part
    x0, x1, y0, y1 = _jittered_box(slot, rng)
    w, h = x1 - x0, y1 - y0
    if prim == "loop":
        return np.array([[w, 0, x0], [0, h, y0], [0, 0, 1.0]])
    if prim in _CROP_HALF:  # the half of a loop on the curve's side fills the slot
        if prim in ("curve_l", "curve_r"):
            off = -0.5 if prim == "curve_l" else 0.0
            return np.array([[2 * w, 0, x0 + 2 * w * off], [0, h, y0], [0, 0, 1.0]])
        off = 0.0 if prim == "arch" else -0.5
        return np.array([[w, 0, x0], [0, 2 * h, y0 + 2 * h * off], [0, 0, 1.0]])
    if prim == "vline":
        x = {"left": x0, "tl": x0, "bl": x0, "right": x1, "tr": x1, "br": x1}.get(slot, (x0 + x1) / 2)
        t = max(h, 0.05) * aspect
        return np.array([[t, 0, x - t / 2], [0, h, y0], [0, 0, 1.0]])
    if prim == "hbar":  # the line turned a quarter: along the source's height runs the bar's width
        y = {"top": y0, "bottom": y1}.get(slot, (y0 + y1) / 2)
        t = max(w, 0.05) * aspect
        return np.array([[0, w, x0], [t, 0, y - t / 2], [0, 0, 1.0]])
    t = h * aspect  # diag: the source's height runs corner to corner
    if rng.uniform() < 0.75:  # "/"
        return np.array([[t, -w, x1 - t / 2], [0, h, y0], [0, 0, 1.0]])
    return np.array([[t, w, x0 - t / 2], [0, h, y0], [0, 0, 1.0]])


def _ink_box(image: np.ndarray) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(image > 32)
    if len(xs) == 0:
        return 0.0, float(_SIDE), 0.0, float(_SIDE)
    return float(xs.min()), float(xs.max() + 1), float(ys.min()), float(ys.max() + 1)


_HALF_BOX = {None: (0.0, 1.0, 0.0, 1.0), "right": (0.5, 1.0, 0.0, 1.0), "left": (0.0, 0.5, 0.0, 1.0)}
_HALF_BOX.update({"top": (0.0, 1.0, 0.0, 0.5), "bottom": (0.0, 1.0, 0.5, 1.0)})


def _draw_crops(
    compositions, rng: np.random.RandomState, sources: dict[str, torch.Tensor], chunk: int = 1024
) -> torch.Tensor:
    """Compositions drawn from stroke crops of ``sources`` (``{"loop": uint8 (K,28,28), "line": ...}``)."""
    boxes = {k: [_ink_box(im) for im in v.numpy()] for k, v in sources.items()}
    # affine_grid works in [-1, 1] coordinates (align_corners=False): pixel = (n + 1) * 28 / 2
    norm = np.array([[2 / _SIDE, 0, -1], [0, 2 / _SIDE, -1], [0, 0, 1.0]])
    stack, thetas, owners, halves, thin = [], [], [], [], []
    for i, parts in enumerate(compositions):
        maps, picks, extent = [], [], []
        for k in parts:
            prim = PARTS[k][0]
            kind, half = _CROP_SOURCE[prim], _CROP_HALF.get(prim)
            j = int(rng.randint(len(sources[kind])))
            bx0, bx1, by0, by1 = boxes[kind][j]
            bw, bh = max(bx1 - bx0, 1.0), max(by1 - by0, 1.0)
            unit_map = _crop_map(PARTS[k], bw / bh, rng)
            u0, u1, v0, v1 = _HALF_BOX[half]
            corners = np.array([[u0, u1, u0, u1], [v0, v0, v1, v1], [1.0, 1.0, 1.0, 1.0]])
            extent.append((unit_map @ corners)[:2].T)
            to_unit = np.array([[1 / bw, 0, -bx0 / bw], [0, 1 / bh, -by0 / bh], [0, 0, 1.0]])
            maps.append(unit_map @ to_unit)
            picks.append((kind, j, half, (bx0, bx1, by0, by1)))
        glyph, _ = _glyph_transform(np.concatenate(extent), rng, margin=1.0)
        for m, (kind, j, half, box) in zip(maps, picks):
            full = glyph @ m  # source pixels → output pixels
            thetas.append((norm @ np.linalg.inv(full) @ np.linalg.inv(norm))[:2])
            stack.append(sources[kind][j])
            owners.append(i)
            halves.append((half, box))
            # a source shrunk to less than 60% would draw a stroke thinner than a handwritten one
            thin.append(math.sqrt(abs(np.linalg.det(full[:2, :2]))) < 0.6)
    images = torch.stack(stack).float()[:, None] / 255  # (M, 1, 28, 28)
    ys, xs = torch.meshgrid(torch.arange(_SIDE) + 0.5, torch.arange(_SIDE) + 0.5, indexing="ij")
    for m, (half, (bx0, bx1, by0, by1)) in enumerate(halves):  # keep only the curve's half of the loop
        if half is not None:
            cx, cy = (bx0 + bx1) / 2, (by0 + by1) / 2
            keep = {"right": xs >= cx, "left": xs < cx, "top": ys < cy, "bottom": ys >= cy}[half]
            images[m, 0] *= keep
    theta = torch.from_numpy(np.stack(thetas).astype(np.float32))
    thin_t = torch.tensor(thin)
    out = torch.zeros(len(compositions), _SIDE, _SIDE)
    owner = torch.tensor(owners)
    for s in range(0, len(stack), chunk):
        th = theta[s : s + chunk]
        grid = torch.nn.functional.affine_grid(th, [len(th), 1, _SIDE, _SIDE], align_corners=False)
        warped = torch.nn.functional.grid_sample(images[s : s + chunk], grid, align_corners=False)
        thick = torch.nn.functional.max_pool2d(warped, 3, stride=1, padding=1)
        warped = torch.where(thin_t[s : s + chunk, None, None, None], torch.maximum(warped, 0.7 * thick), warped)[:, 0]
        for m in range(len(th)):  # each drawing: the brightest of its parts
            o = owner[s + m]
            out[o] = torch.maximum(out[o], warped[m])
    return (out * 255).round().to(torch.uint8)


def _rasterise(segments: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Anti-aliased strokes: ``segments (N, S, 2, 2)`` pixel coordinates → ``uint8 (N, 28, 28)``."""
    coords = torch.arange(_SIDE, dtype=torch.float32) + 0.5
    gy, gx = torch.meshgrid(coords, coords, indexing="ij")
    pix = torch.stack([gx.flatten(), gy.flatten()], dim=1)  # (784, 2)
    a, ab = segments[:, :, 0], segments[:, :, 1] - segments[:, :, 0]  # (N, S, 2)
    denom = (ab * ab).sum(-1).clamp_min(1e-9)  # (N, S)
    apx = pix[None, None, :, 0] - a[:, :, None, 0]  # (N, S, 784)
    apy = pix[None, None, :, 1] - a[:, :, None, 1]
    t = ((apx * ab[:, :, None, 0] + apy * ab[:, :, None, 1]) / denom[:, :, None]).clamp_(0, 1)
    dx = apx.sub_(t * ab[:, :, None, 0])
    dy = apy.sub_(t * ab[:, :, None, 1])
    dist = (dx * dx + dy * dy).amin(dim=1).sqrt_()  # (N, 784)
    ink = (radius[:, None] + 0.5 - dist).clamp_(0, 1)
    return (ink * 255).round_().to(torch.uint8).reshape(-1, _SIDE, _SIDE)


def draw_compositions(
    compositions: list[tuple[int, ...]] | tuple[tuple[int, ...], ...],
    seed: int,
    *,
    sources: dict[str, torch.Tensor] | None = None,
    chunk: int = 256,
) -> torch.Tensor:
    """Draw one image per composition (deterministic given ``seed``): ``uint8 (N, 28, 28)``.

    Without ``sources`` the parts are rendered as anti-aliased strokes. With ``sources``
    (``{"loop": uint8 (K, 28, 28), "line": uint8 (K', 28, 28)}``, handwritten images of a closed loop
    and of a straight line) each part is cut from a randomly chosen source image instead: a loop is
    a whole loop image warped into the slot, an open curve the half of one on the curve's side, and
    a straight part a line image stretched or turned into place.
    """
    rng = np.random.RandomState(seed)
    if sources is not None:
        if not compositions:
            return torch.zeros(0, _SIDE, _SIDE, dtype=torch.uint8)
        return _draw_crops(compositions, rng, sources)
    n = len(compositions)
    out = torch.zeros(n, _SIDE, _SIDE, dtype=torch.uint8)
    by_parts: dict[int, list] = {}
    for i, parts in enumerate(compositions):
        pix, r = _glyph_polylines(tuple(parts), rng)
        seg = np.stack([pix[:, :-1], pix[:, 1:]], axis=2).reshape(-1, 2, 2)
        by_parts.setdefault(len(parts), []).append((i, seg, r))
    for items in by_parts.values():
        index = torch.tensor([i for i, _, _ in items], dtype=torch.int64)
        seg = torch.from_numpy(np.stack([s for _, s, _ in items]).astype(np.float32))
        rad = torch.tensor([r for _, _, r in items], dtype=torch.float32)
        for s in range(0, len(items), chunk):
            out[index[s : s + chunk]] = _rasterise(seg[s : s + chunk], rad[s : s + chunk])
    return out


def make_synthetic_set(config: SyntheticConfig, sources: dict[str, torch.Tensor] | None = None) -> SyntheticSet:
    """Draw the synthetic set: compositions uniformly from :func:`enumerate_compositions`, one image each.

    ``config.n_images`` are drawn as strokes, ``config.n_crop_images`` from stroke crops of
    ``sources`` (see :func:`draw_compositions`; required when ``n_crop_images > 0``), and
    ``config.n_garment_images`` as garment silhouettes (attribute combinations drawn uniformly).
    Deterministic given ``config`` and ``sources``: the geometry comes from seeded numpy generators
    and the rasterisation is plain float32 torch arithmetic on the CPU.
    """
    compositions = enumerate_compositions(config.n_triples, config.seed)
    rng = np.random.RandomState(config.seed + 1)
    ids = rng.randint(len(compositions), size=config.n_images + config.n_crop_images)
    images = draw_compositions([compositions[i] for i in ids[: config.n_images]], config.seed + 2)
    if config.n_crop_images:
        if sources is None:
            raise ValueError("n_crop_images > 0 needs stroke sources ({'loop': ..., 'line': ...})")
        crops = draw_compositions([compositions[i] for i in ids[config.n_images :]], config.seed + 3, sources=sources)
        images = torch.cat([images, crops])
    garments: tuple[tuple[str, ...], ...] = ()
    if config.n_garment_images:
        garments = enumerate_garments()
        g_ids = np.random.RandomState(config.seed + 4).randint(len(garments), size=config.n_garment_images)
        images = torch.cat([images, draw_garments([garments[i] for i in g_ids], config.seed + 5)])
        ids = np.concatenate([ids, len(compositions) + g_ids])
    return SyntheticSet(
        images=images,
        composition_ids=torch.from_numpy(ids.astype(np.int64)),
        compositions=compositions,
        garments=garments,
    )
