"""The synthetic compositional set: deterministic drawings whose captions follow the fixed grammar."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from ncprobe.testbed import silhouettes as si
from ncprobe.testbed import synthetic as sy
from ncprobe.testbed.benchmark import CLASSES
from ncprobe.testbed.silhouettes import garment_phrase

SMALL = sy.SyntheticConfig(n_images=300, n_triples=40, seed=3)


@pytest.fixture(scope="module")
def small_set():
    return sy.make_synthetic_set(SMALL)


def _parse(caption: str) -> list[tuple[str, str]]:
    """Inverse of the grammar: caption → its parts, or an AssertionError."""
    for prefix in sorted(sy.PREFIXES, key=len, reverse=True):
        head, _, tail = prefix.partition("{}")
        if caption.startswith(head) and caption.endswith(tail):
            body = caption[len(head) : len(caption) - len(tail)]
            break
    else:
        raise AssertionError(f"no prefix fits {caption!r}")
    first, _, last = body.rpartition(" and ")
    phrases = (first.split(", ") if first else []) + [last]
    by_phrase = {v: k for k, v in sy.PART_PHRASES.items()}
    assert all(p in by_phrase for p in phrases), f"not the grammar's parts: {caption!r}"
    return [by_phrase[p] for p in phrases]


def test_grammar_tables():
    assert len(sy.PARTS) == 28 == len(set(sy.PART_PHRASES.values()))
    assert {slot for _, slot in sy.PARTS} == set(sy.SLOT_RANK)
    for phrase in sy.PART_PHRASES.values():  # the joins stay unambiguous
        assert " and " not in phrase and ", " not in phrase
    parts = (sy.PARTS.index(("hbar", "middle")), sy.PARTS.index(("loop", "full")), sy.PARTS.index(("hbar", "top")))
    assert (
        sy.caption(parts, 0)
        == "a drawing of a horizontal bar at the top, one large closed loop and a horizontal bar in the middle"
    )
    assert sy.caption(parts[:1], 2) == "a horizontal bar in the middle"
    with pytest.raises(ValueError):
        sy.composition_phrase(())


def test_compositions_enumerate_singles_pairs_and_sampled_triples():
    comps = sy.enumerate_compositions(40, seed=3)
    by_size = {k: [c for c in comps if len(c) == k] for k in (1, 2, 3)}
    assert len(by_size[1]) == 28 and len(by_size[3]) == 40 and len(set(comps)) == len(comps)
    # every pair of parts with different slots, and nothing else
    assert len(by_size[2]) == sum(1 for i in range(28) for j in range(i + 1, 28) if sy.PARTS[i][1] != sy.PARTS[j][1])
    assert comps == sy.enumerate_compositions(40, seed=3)
    assert set(by_size[3]) != set(c for c in sy.enumerate_compositions(40, seed=4) if len(c) == 3)


def test_every_caption_follows_the_grammar(small_set):
    captions = small_set.all_captions()
    assert len(captions) == len(sy.PREFIXES) * len(small_set.compositions)
    for comp, cap in zip(small_set.compositions * len(sy.PREFIXES), captions):
        parts = _parse(cap)
        assert parts == [sy.PARTS[k] for k in comp]
        slots = [slot for _, slot in parts]
        assert len(set(slots)) == len(slots)  # one part per slot
        ranks = [sy.SLOT_RANK[s] for s in slots]
        assert ranks == sorted(ranks)  # top to bottom


def test_no_class_name_in_any_caption():
    every = sy.enumerate_compositions(10**6, seed=0)  # all valid compositions
    text = " | ".join(sy.caption(c, p) for c in every for p in range(len(sy.PREFIXES)))
    for c in CLASSES:
        assert not re.search(rf"\b{re.escape(c.name)}\b", text), c.name
    assert "digit" not in text


def test_drawing_is_deterministic_and_mnist_like(small_set):
    again = sy.make_synthetic_set(SMALL)
    assert torch.equal(small_set.images, again.images)
    assert torch.equal(small_set.composition_ids, again.composition_ids)
    other = sy.make_synthetic_set(sy.SyntheticConfig(n_images=300, n_triples=40, seed=4))
    assert not torch.equal(small_set.images, other.images)
    images = small_set.images
    assert images.shape == (300, 28, 28) and images.dtype == torch.uint8
    assert int(images.max()) == 255 and (images.flatten(1).amax(1) > 0).all()
    # MNIST's frame: the glyph sits in the central 20×20 box (±1 px of jitter, plus antialiasing)
    assert int(images[:, :2].max()) == 0 and int(images[:, 26:].max()) == 0
    assert int(images[:, :, :2].max()) == 0 and int(images[:, :, 26:].max()) == 0
    ids = small_set.composition_ids
    assert ids.min() >= 0 and ids.max() < len(small_set.compositions)


def test_parts_are_drawn_in_their_slots():
    def centroid(part: tuple[str, str]) -> torch.Tensor:
        ims = sy.draw_compositions([(sy.PARTS.index(part),)] * 20, seed=0).float()
        grid = torch.arange(28.0)
        mass = ims.sum(dim=(1, 2))
        y = (ims.sum(2) * grid).sum(1) / mass
        x = (ims.sum(1) * grid).sum(1) / mass
        return torch.stack([x, y], 1).mean(0)

    assert centroid(("loop", "top"))[1] < 12 < 16 < centroid(("loop", "bottom"))[1]
    assert centroid(("hbar", "top"))[1] < centroid(("hbar", "middle"))[1] < centroid(("hbar", "bottom"))[1]
    assert centroid(("vline", "left"))[0] < 12 < 16 < centroid(("vline", "right"))[0]


def _fake_sources() -> dict[str, torch.Tensor]:
    """A drawn loop and a drawn line stand in for the handwritten base images."""
    loop = sy.draw_compositions([(sy.PARTS.index(("loop", "full")),)] * 4, seed=0)
    line = sy.draw_compositions([(sy.PARTS.index(("vline", "full")),)] * 4, seed=1)
    return {"loop": loop, "line": line}


def test_crop_style_is_deterministic_and_needs_sources():
    cfg = sy.SyntheticConfig(n_images=20, n_crop_images=30, n_triples=10, seed=1)
    a = sy.make_synthetic_set(cfg, _fake_sources())
    b = sy.make_synthetic_set(cfg, _fake_sources())
    assert a.images.shape == (50, 28, 28) and len(a.composition_ids) == 50
    assert torch.equal(a.images, b.images) and (a.images.flatten(1).amax(1) > 0).all()
    # the first n_images are the stroke style: identical to a set without crops
    strokes = sy.make_synthetic_set(dataclasses.replace(cfg, n_crop_images=0))
    assert torch.equal(strokes.images, a.images[:20])
    with pytest.raises(ValueError, match="stroke sources"):
        sy.make_synthetic_set(cfg)


def test_crop_style_keeps_only_the_curves_half():
    """An open curve is half a loop: "open to the left" keeps the loop's right half."""
    sources = _fake_sources()
    right = sy.draw_compositions([(sy.PARTS.index(("curve_l", "full")),)] * 8, 0, sources=sources).float()
    left = sy.draw_compositions([(sy.PARTS.index(("curve_r", "full")),)] * 8, 0, sources=sources).float()
    grid = torch.arange(28.0)
    cx_right = ((right.sum(1) * grid).sum(1) / right.sum((1, 2))).mean()
    cx_left = ((left.sum(1) * grid).sum(1) / left.sum((1, 2))).mean()
    assert right.sum() > 0 and left.sum() > 0
    # both fill their slot, so compare the ink's shape instead: a ")" has its middle rows' ink on the right
    mid_right = right[:, 10:18].sum(1)  # (8, 28) column profile of the middle rows
    mid_left = left[:, 10:18].sum(1)
    assert ((mid_right * grid).sum(1) / mid_right.sum(1)).mean() > cx_right
    assert ((mid_left * grid).sum(1) / mid_left.sum(1)).mean() < cx_left


def test_garment_grammar_and_drawings():
    specs = si.enumerate_garments()
    assert len(specs) == len(set(specs)) == 35
    phrases = [si.garment_phrase(g) for g in specs]
    assert len(set(phrases)) == 35  # every attribute combination has its own caption
    assert si.garment_phrase(("top", "long", "collar", "buttons")) == (
        "a top with long sleeves, a collar and buttons down the front"
    )
    assert (
        si.garment_phrase(("shoe", "high", "heel", "straps"))
        == "a shoe that covers the ankle with a heel and thin straps with gaps"
    )
    text = " | ".join(p.format(x) for p in si.GARMENT_PREFIXES for x in phrases)
    for word in [c.name for c in CLASSES] + ["trousers", "pants", "boot", "sweater", "jacket", "skirt"]:
        assert not re.search(rf"\b{re.escape(word)}\b", text), word
    images = si.draw_garments(specs, seed=0)
    assert images.shape == (35, 28, 28) and images.dtype == torch.uint8
    assert torch.equal(images, si.draw_garments(specs, seed=0))
    assert (images.flatten(1).amax(1) > 60).all()  # every drawing has a visible silhouette
    # long legs reach further down than short ones; long sleeves make a top wider low down
    legs = si.draw_garments([("lower", "long"), ("lower", "short")] * 10, seed=1).float()
    rows = (legs > 30).any(dim=2).float() * torch.arange(28.0)
    assert rows[0::2].amax(1).mean() > rows[1::2].amax(1).mean() + 6
    tops = si.draw_garments([("top", "long", "no", "plain"), ("top", "short", "no", "plain")] * 10, seed=2).float()
    width_low = (tops[:, 20:24] > 30).any(dim=1).float().sum(1)
    assert width_low[0::2].mean() > width_low[1::2].mean() + 4


def test_synthetic_set_with_garments_indexes_one_caption_table():
    cfg = sy.SyntheticConfig(n_images=30, n_garment_images=20, n_triples=5, seed=2)
    s = sy.make_synthetic_set(cfg)
    assert s.images.shape == (50, 28, 28) and s.num_compositions == len(s.compositions) + 35
    ids = s.composition_ids
    assert (ids[:30] < len(s.compositions)).all() and (ids[30:] >= len(s.compositions)).all()
    table = s.all_captions()
    assert len(table) == len(sy.PREFIXES) * s.num_compositions
    garment = int(ids[35])
    assert table[garment] == "a drawing of " + garment_phrase(s.garments[garment - len(s.compositions)])
    assert torch.equal(s.images, sy.make_synthetic_set(cfg).images)


def test_part_table_marks_each_compositions_parts():
    s = sy.make_synthetic_set(sy.SyntheticConfig(n_images=10, n_garment_images=10, n_triples=5, seed=2))
    phrases, member = s.part_table()
    assert phrases[:28] == list(sy.PART_PHRASES.values()) and len(set(phrases)) == len(phrases)
    assert member.shape == (s.num_compositions, len(phrases))
    for c, parts in enumerate(s.compositions):
        assert member[c].nonzero().flatten().tolist() == sorted(parts)
    top = s.garments.index(("top", "long", "collar", "buttons")) + len(s.compositions)
    assert {phrases[k] for k in member[top].nonzero().flatten().tolist()} == {
        "a top with long sleeves",
        "a top with a collar",
        "a top with buttons down the front",
    }
    assert (member.sum(1) >= 1).all()
    # every part phrase of a garment is a phrase of its caption's words, never a class name
    assert si.garment_parts(("shoe", "high", "heel", "laces")) == [
        "a shoe that covers the ankle",
        "a shoe with a heel",
        "a shoe with laces",
    ]
