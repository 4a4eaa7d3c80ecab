"""Procedurally drawn garment silhouettes captioned by a fixed attribute grammar.

The clothing half of the synthetic compositional set (:mod:`.synthetic`). Fashion-MNIST's items are
grey, filled product silhouettes; these are drawn the same way (28×28, filled convex pieces with a
smooth texture, light on black) from a random choice of attributes, and captioned with the same
generic attribute words the class descriptions' rule allows (sleeves, collar, buttons, legs, sole,
heel, ankle, straps, laces, handle). No benchmark image and no class name (nor a synonym of one:
"top", "shoe", "garment" and "container" stand for the kinds) is used::

    a top with long sleeves, a collar and buttons down the front
    a garment with two short legs
    a low shoe with a heel and thin straps with gaps
    a rectangular container with a handle on top

Every attribute combination is one composition (:func:`enumerate_garments`); each drawing varies
size, proportions, position, brightness, texture and (shoes) facing direction.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

__all__ = ["GARMENT_PREFIXES", "garment_phrase", "garment_parts", "enumerate_garments", "draw_garments"]

#: Caption prefixes of the garment grammar (as many as :data:`ncprobe.testbed.synthetic.PREFIXES`).
GARMENT_PREFIXES: tuple[str, ...] = ("a drawing of {}", "a grey picture of {}", "{}")

_SIDE = 28
_SLEEVES = {"none": "no sleeves", "short": "short sleeves", "long": "long sleeves"}
_FRONT = {"plain": None, "buttons": "buttons down the front", "zipper": "a zipper down the front"}
_LOWER = {"long": "two long legs", "short": "two short legs", "widening": None}
_HEIGHT = {"low": "a low shoe", "high": "a shoe that covers the ankle"}
_SOLE = {"flat": "a flat sole", "heel": "a heel"}
_UPPER = {"closed": None, "laces": "laces", "straps": "thin straps with gaps"}
_CARRY = {"handle": "a handle on top", "strap": "a long strap"}


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def enumerate_garments() -> tuple[tuple[str, ...], ...]:
    """Every attribute combination: ``("top", sleeves, collar, front)``, ``("lower", legs)``,
    ``("shoe", height, sole, upper)``, ``("container", carry)`` (35 in all)."""
    tops = [("top", s, c, f) for s, c, f in itertools.product(_SLEEVES, ("no", "collar"), _FRONT)]
    lower = [("lower", k) for k in _LOWER]
    shoes = [("shoe", h, s, u) for h, s, u in itertools.product(_HEIGHT, _SOLE, _UPPER)]
    carried = [("container", k) for k in _CARRY]
    return tuple(tops + lower + shoes + carried)


def garment_phrase(spec: tuple[str, ...]) -> str:
    """The grammar's phrase for one attribute combination (see :func:`enumerate_garments`)."""
    kind = spec[0]
    if kind == "top":
        _, sleeves, collar, front = spec
        items = [_SLEEVES[sleeves]] + (["a collar"] if collar == "collar" else [])
        items += [_FRONT[front]] if _FRONT[front] else []
        return "a top with " + _join(items)
    if kind == "lower":
        return (
            "a garment that widens towards the bottom" if spec[1] == "widening" else "a garment with " + _LOWER[spec[1]]
        )
    if kind == "shoe":
        _, height, sole, upper = spec
        items = [_SOLE[sole]] + ([_UPPER[upper]] if _UPPER[upper] else [])
        return f"{_HEIGHT[height]} with " + _join(items)
    if kind == "container":
        return "a rectangular container with " + _CARRY[spec[1]]
    raise ValueError(f"unknown garment kind {kind!r}")


def garment_parts(spec: tuple[str, ...]) -> list[str]:
    """The combination's attributes, each as a phrase of its own (the part targets of the synthetic loss).

    ``("top", "long", "collar", "buttons")`` → ``["a top with long sleeves", "a top with a collar",
    "a top with buttons down the front"]``; a garment for the legs or a container is one part.
    """
    kind = spec[0]
    if kind == "top":
        _, sleeves, collar, front = spec
        parts = ["a top with " + _SLEEVES[sleeves]] + (["a top with a collar"] if collar == "collar" else [])
        return parts + (["a top with " + _FRONT[front]] if _FRONT[front] else [])
    if kind == "shoe":
        _, height, sole, upper = spec
        return [_HEIGHT[height], "a shoe with " + _SOLE[sole]] + (
            ["a shoe with " + _UPPER[upper]] if _UPPER[upper] else []
        )
    return [garment_phrase(spec)]


# ----------------------------------------------------------------------------- drawing
# A drawing is a list of convex quads (4 vertices, pixel coordinates) with a brightness each, plus
# dark quads (buttons, zips, laces) that darken what lies under them.


def _bar(p0, p1, width: float) -> np.ndarray:
    """The quad of a thick straight segment."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    n = np.array([-d[1], d[0]]) / max(float(np.hypot(*d)), 1e-6) * width / 2
    return np.stack([p0 + n, p1 + n, p1 - n, p0 - n])


def _arc_bars(cx, cy, rx, ry, t0, t1, width, pieces=6) -> list[np.ndarray]:
    t = np.linspace(t0, t1, pieces + 1)
    pts = np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)
    return [_bar(pts[i], pts[i + 1], width) for i in range(pieces)]


def _top(spec, rng) -> tuple[list, list]:
    _, sleeves, collar, front = spec
    cx, y0, y1 = 14 + rng.uniform(-1, 1), rng.uniform(1.5, 3.5), rng.uniform(24.5, 27)
    hw = rng.uniform(5.0, 7.0) if sleeves != "none" else rng.uniform(6.0, 8.5)
    flare = rng.uniform(0, 1.2)
    light, dark = [], []
    light.append(([[cx - hw, y0 + 1], [cx + hw, y0 + 1], [cx + hw + flare, y1], [cx - hw - flare, y1]], 1.0))
    ys = y0 + 1
    for side in (-1, 1):
        shoulder = (cx + side * (hw - 0.5), ys + 2.5)
        if sleeves == "long":
            cuff = (cx + side * (hw + rng.uniform(3.5, 5.5)), y1 - rng.uniform(0, 3))
            light.append((_bar(shoulder, cuff, rng.uniform(4.0, 5.0)), rng.uniform(0.9, 1.0)))
        elif sleeves == "short":
            cuff = (cx + side * (hw + rng.uniform(3.0, 5.0)), ys + rng.uniform(4.5, 7.0))
            light.append((_bar(shoulder, cuff, rng.uniform(4.5, 6.0)), rng.uniform(0.9, 1.0)))
    if collar == "collar":
        for side in (-1, 1):
            light.append((_bar((cx + side * 3.2, y0 + 0.6), (cx + side * 0.4, y0 + 3.8), 1.8), 1.25))
    if front == "buttons":
        for y in np.arange(y0 + 4, y1 - 1.5, rng.uniform(3.0, 4.0)):
            dark.append((_bar((cx, y - 0.6), (cx, y + 0.6), 1.3), 0.75))
    elif front == "zipper":
        dark.append((_bar((cx, y0 + 2), (cx, y1), 0.9), 0.7))
    return light, dark


def _lower(spec, rng) -> tuple[list, list]:
    cx, y0 = 14 + rng.uniform(-1, 1), rng.uniform(1, 3)
    if spec[1] == "widening":
        top, bottom, y1 = rng.uniform(3, 5), rng.uniform(8, 11), rng.uniform(25, 27)
        return [([[cx - top, y0], [cx + top, y0], [cx + bottom, y1], [cx - bottom, y1]], 1.0)], []
    hw = rng.uniform(4.5, 6.5)
    y1 = rng.uniform(24.5, 27) if spec[1] == "long" else rng.uniform(12, 15)
    light = [([[cx - hw, y0], [cx + hw, y0], [cx + hw, y0 + 4], [cx - hw, y0 + 4]], 1.0)]
    leg = hw - rng.uniform(0.3, 0.9)
    spread = rng.uniform(0, 1.5)
    for side in (-1, 1):
        light.append((_bar((cx + side * hw / 2, y0 + 2), (cx + side * (hw / 2 + spread), y1), leg), 1.0))
    return light, []


def _shoe(spec, rng) -> tuple[list, list]:
    _, height, sole, upper = spec
    lift = rng.uniform(2.5, 4.0) if sole == "heel" else 0.0
    st = rng.uniform(19, 22) - lift  # top of the sole
    x0, x1 = rng.uniform(1.5, 3.5), rng.uniform(24.5, 26.5)
    light, dark = [], []
    light.append(([[x0, st], [x1, st], [x1, st + 2.5], [x0 + 1, st + 2.5]], rng.uniform(0.7, 1.1)))
    if sole == "heel":
        light.append(
            ([[x1 - rng.uniform(4, 6), st + 2], [x1, st + 2], [x1, st + 2 + lift], [x1 - 3.5, st + 2 + lift]], 1.0)
        )
    back = st - rng.uniform(6, 9)
    toe = st - rng.uniform(3, 5)
    shaft_top = rng.uniform(2, 5)
    xm = x0 + rng.uniform(7, 10)
    if upper == "straps":
        for k in range(int(rng.randint(3, 5))):
            f = (k + 0.5) / 4
            a = (x0 + 1 + f * (xm - x0), st)
            b = (xm + f * (x1 - xm), back + rng.uniform(-0.5, 0.5))
            light.append((_bar(a, b, rng.uniform(1.2, 1.8)), 1.0))
        light.append((_bar((x1 - 1, st), (x1 - 1, back), 1.6), 1.0))
        if height == "high":
            for y in np.linspace(shaft_top + 1, back, 3):
                light.append((_bar((x1 - rng.uniform(8, 10), y), (x1, y), 1.5), 1.0))
            light.append((_bar((x1 - 1, back), (x1 - 1, shaft_top), 1.6), 1.0))
    else:
        light.append(([[x0 + 0.5, st], [x1, st], [x1, back], [xm, toe]], 1.0))
        if height == "high":
            light.append(
                ([[x1 - rng.uniform(9, 11), st], [x1, st], [x1, shaft_top], [x1 - rng.uniform(8, 10), shaft_top]], 1.0)
            )
        if upper == "laces":
            for k in range(3):
                x = xm + 1.5 + 2.2 * k
                y = toe + (back - toe) * (x - xm) / max(x1 - xm, 1.0)
                dark.append((_bar((x - 1.0, y + 0.5), (x + 1.0, y + 2.5), 0.9), 0.7))
    return light, dark


def _container(spec, rng) -> tuple[list, list]:
    yt, yb = rng.uniform(9, 13), rng.uniform(24, 26.5)
    xl, xr = rng.uniform(3, 6), rng.uniform(22, 25)
    light = [([[xl, yt], [xr, yt], [xr + rng.uniform(0, 1.5), yb], [xl - rng.uniform(0, 1.5), yb]], 1.0)]
    cx = (xl + xr) / 2
    if spec[1] == "handle":
        light += [(q, 1.0) for q in _arc_bars(cx, yt, rng.uniform(4, 6), rng.uniform(5, 7), math.pi, 2 * math.pi, 1.5)]
    else:
        light += [
            (q, 1.0) for q in _arc_bars(cx, yt, (xr - xl) / 2 - 1, yt - rng.uniform(1, 2), math.pi, 2 * math.pi, 1.2)
        ]
    return light, []


_DRAW = {"top": _top, "lower": _lower, "shoe": _shoe, "container": _container}


def _coverage(quads: torch.Tensor) -> torch.Tensor:
    """Anti-aliased coverage of convex quads ``(M, 4, 2)`` on the 28×28 grid: ``(M, 28, 28)``.

    A pixel's coverage is its signed distance to the quad's nearest edge (positive inside) + 0.5,
    clipped to ``[0, 1]``; each edge's distance is an affine function of the pixel centre.
    """
    c = torch.arange(_SIDE, dtype=torch.float32) + 0.5
    gy, gx = torch.meshgrid(c, c, indexing="ij")
    pix = torch.stack([gx.flatten(), gy.flatten(), torch.ones(_SIDE * _SIDE)])  # (3, 784)
    a, b = quads, quads.roll(-1, dims=1)  # edges a -> b
    e = b - a  # (M, 4, 2)
    area = (a[..., 0] * b[..., 1] - b[..., 0] * a[..., 1]).sum(1)  # twice the signed area
    scale = torch.where(area >= 0, 1.0, -1.0)[:, None] / e.norm(dim=-1).clamp_min(1e-6)  # (M, 4)
    coef = torch.stack([-e[..., 1], e[..., 0], e[..., 1] * a[..., 0] - e[..., 0] * a[..., 1]], -1) * scale[..., None]
    dist = (coef.reshape(-1, 3) @ pix).reshape(len(quads), 4, -1)
    return (dist.amin(dim=1) + 0.5).clamp_(0, 1).reshape(-1, _SIDE, _SIDE)


def _texture(coarse: np.ndarray) -> torch.Tensor:
    """Smooth noise: ``(N, 6, 6)`` uniform values upsampled to ``(N, 28, 28)``."""
    t = torch.from_numpy(coarse.astype(np.float32))[:, None]
    return torch.nn.functional.interpolate(t, size=(_SIDE, _SIDE), mode="bilinear", align_corners=False)[:, 0]


def draw_garments(specs, seed: int, *, chunk: int = 256) -> torch.Tensor:
    """One drawing per attribute combination (deterministic given ``seed``): ``uint8 (N, 28, 28)``."""
    rng = np.random.RandomState(seed)
    n = len(specs)
    drawings = []
    for spec in specs:
        light, dark = _DRAW[spec[0]](spec, rng)
        flip = spec[0] == "shoe" and rng.uniform() < 0.5  # shoes face either way
        drawings.append(
            (light, dark, flip, rng.uniform(0.45, 0.95), rng.uniform(0.05, 0.25), rng.uniform(-1, 1, size=(6, 6)))
        )
    out = torch.zeros(n, _SIDE, _SIDE, dtype=torch.uint8)
    empty = np.zeros((4, 2))
    for start in range(0, n, chunk):
        part = drawings[start : start + chunk]
        n_light = max(len(d[0]) for d in part)
        n_dark = max(max(len(d[1]) for d in part), 1)
        quads = np.zeros((len(part), n_light + n_dark, 4, 2))
        values = np.zeros((len(part), n_light + n_dark))
        for i, (light, dark, flip, *_) in enumerate(part):
            for k, (q, v) in enumerate(light):
                quads[i, k], values[i, k] = q, v
            for k, (q, v) in enumerate(dark):
                quads[i, n_light + k], values[i, n_light + k] = q, v
            for k in range(len(dark), n_dark):
                quads[i, n_light + k] = empty
            if flip:
                quads[i, ..., 0] = _SIDE - quads[i, ..., 0]
        q = torch.from_numpy(quads.astype(np.float32)).reshape(-1, 4, 2)
        cover = _coverage(q).reshape(len(part), n_light + n_dark, _SIDE, _SIDE)
        v = torch.from_numpy(values.astype(np.float32))[:, :, None, None]
        img = (cover[:, :n_light] * v[:, :n_light]).amax(1)
        base = torch.tensor([d[3] for d in part], dtype=torch.float32)[:, None, None]
        amp = torch.tensor([d[4] for d in part], dtype=torch.float32)[:, None, None]
        texture = _texture(np.stack([d[5] for d in part]))
        img = img * base * (1 + amp * texture)
        img = img * (1 - (cover[:, n_light:] * v[:, n_light:]).amax(1))
        out[start : start + len(part)] = (img.clamp(0, 1) * 255).round().to(torch.uint8)
    return out
