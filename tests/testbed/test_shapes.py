"""The shape × colour × texture task: classes, base/novel rule, captions and the drawings.

``python tests/testbed/test_shapes.py`` writes a grid of drawings (one row per class) to
/tmp/shapes_grid.png for a look by eye.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from ncprobe.testbed import shapes as S

N_CLASSES = len(S.SHAPES) * len(S.COLOURS) * len(S.TEXTURES)


def _per_class(n: int) -> torch.Tensor:
    return torch.arange(N_CLASSES).repeat(n)


@pytest.fixture(scope="module")
def drawn():
    """10 drawings of every class (labels interleaved), with the labels."""
    y = _per_class(10)
    return y, S.render_shapes(y, seed=7)


def test_attribute_values_and_class_names():
    assert S.SHAPES == ("circle", "square", "triangle", "cross")
    assert S.COLOURS == ("red", "green", "blue")
    assert S.TEXTURES == ("solid", "striped", "dotted")
    classes = S.shape_classes()
    assert len(classes) == N_CLASSES == 36
    assert len({k.name for k in classes}) == 36 and len(set(classes)) == 36
    assert S.ShapeClass("circle", "red", "striped").name == "striped red circle"
    assert S.ShapeClass("square", "blue", "solid").name == "solid blue square"
    assert all(k.name == f"{k.texture} {k.colour} {k.shape}" for k in classes)
    assert classes is not S.shape_classes()  # a fresh list each call: callers may not corrupt the order
    with pytest.raises(ValueError):
        S.ShapeClass("hexagon", "red", "solid")


def test_base_novel_rule_order_and_coverage():
    classes = S.shape_classes()
    base, novel = S.base_novel_split()
    assert base == list(range(18)) and novel == list(range(18, 36))

    def idx(k):
        return S.SHAPES.index(k.shape), S.COLOURS.index(k.colour), S.TEXTURES.index(k.texture)

    assert all(sum(idx(classes[i])) % 2 == 0 for i in base)
    assert all(sum(idx(classes[i])) % 2 == 1 for i in novel)
    for half in (base, novel):
        keys = [idx(classes[i]) for i in half]
        assert keys == sorted(keys)  # (shape, colour, texture) order within a half
        for values, attr in ((S.SHAPES, "shape"), (S.COLOURS, "colour"), (S.TEXTURES, "texture")):
            assert {getattr(classes[i], attr) for i in half} == set(values)
    every = {idx(k) for k in classes}
    assert every == set(itertools.product(range(4), range(3), range(3)))


def test_captions_are_fixed_varied_and_never_the_template():
    seen: set[str] = set()
    for k in S.shape_classes():
        caps = S.shape_captions(k)
        assert isinstance(caps, tuple) and 5 <= len(caps) <= 8 and len(set(caps)) == len(caps)
        assert caps == S.shape_captions(k)  # a rule, no randomness
        for c in caps:
            assert not c.lower().startswith("a photo of")
            assert c != f"a photo of a {k.name}." and "photo" not in c
            assert k.colour in c.split()
        assert not seen & set(caps)  # no caption is shared by two classes
        seen |= set(caps)
    assert "a red circle filled with stripes" in S.shape_captions(S.ShapeClass("circle", "red", "striped"))
    assert "a solid green square" in S.shape_captions(S.ShapeClass("square", "green", "solid"))
    assert "a green square with polka dots" in S.shape_captions(S.ShapeClass("square", "green", "dotted"))


def test_render_shape_dtype_and_black_background(drawn):
    y, x = drawn
    assert x.shape == (len(y), 3, 28, 28) and x.dtype == torch.uint8
    assert S.render_shapes(torch.tensor([], dtype=torch.int64), seed=0).shape == (0, 3, 28, 28)
    corners = x[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert int(corners.max()) == 0  # the shape never reaches the corners
    area = (x.amax(1) > 0).flatten(1).sum(1)
    assert int(area.min()) > 60 and int(area.max()) < 28 * 28 // 2  # one clearly visible, unclipped-ish shape


def test_render_is_deterministic_and_independent_of_global_rng():
    y = _per_class(3)
    torch.manual_seed(0)
    a = S.render_shapes(y, seed=3)
    state = torch.get_rng_state()
    b = S.render_shapes(y.numpy(), seed=3)  # arrays and lists work too
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is not advanced
    torch.manual_seed(123)
    c = S.render_shapes(y.tolist(), seed=3)
    assert a.numpy().tobytes() == b.numpy().tobytes() == c.numpy().tobytes()
    assert not torch.equal(a, S.render_shapes(y, seed=4))
    with pytest.raises(ValueError):
        S.render_shapes([0, 36], seed=0)
    with pytest.raises(ValueError):
        S.render_shapes([[0, 1]], seed=0)
    with pytest.raises(TypeError):
        S.render_shapes(torch.tensor([0.0, 1.0]), seed=0)


def test_render_does_not_depend_on_the_chunk_size(monkeypatch):
    y = _per_class(3)
    whole = S.render_shapes(y, seed=5)
    monkeypatch.setattr(S, "_CHUNK", 7)
    assert torch.equal(whole, S.render_shapes(y, seed=5))


def test_dominant_channel_inside_the_shape_is_its_colour(drawn):
    y, x = drawn
    classes = S.shape_classes()
    mask = x.amax(1) > 0  # black background: every shape pixel is non-zero (its dark texture pixels too)
    means = (x.float() * mask.unsqueeze(1)).sum((2, 3)) / mask.sum((1, 2)).unsqueeze(1)
    expected = torch.tensor([S.COLOURS.index(classes[i].colour) for i in y])
    assert torch.equal(means.argmax(1), expected)
    # the other two channels stay well below the colour's
    top = means.gather(1, expected.unsqueeze(1)).squeeze(1)
    others = means.sum(1) - top
    assert bool((others / 2 < 0.4 * top).all())


def test_textures_vary_inside_the_shape_and_solid_does_not(drawn):
    y, x = drawn
    classes = S.shape_classes()
    intensity = x.float().amax(1)
    mask = intensity > 0
    std = torch.stack([intensity[i][mask[i]].std() for i in range(len(y))])
    texture = [classes[i].texture for i in y]
    solid = std[[t == "solid" for t in texture]]
    textured = std[[t != "solid" for t in texture]]
    assert float(solid.max()) < 1.0  # uniform
    assert float(textured.min()) > 10 * max(float(solid.max()), 1.0)


def test_a_linear_probe_on_raw_pixels_learns_the_classes():
    """Learnability check: measured 0.67–0.69 accuracy over seed pairs (chance 1/36); colour alone is
    perfect, shape and texture each ~0.8–0.85 for a linear model on pixels."""
    from sklearn.linear_model import LogisticRegression

    y_train, y_test = _per_class(50), _per_class(20)
    x_train = S.render_shapes(y_train, seed=0).flatten(1).numpy() / 255.0
    x_test = S.render_shapes(y_test, seed=1).flatten(1).numpy() / 255.0
    clf = LogisticRegression(max_iter=300).fit(x_train, y_train.numpy())
    pred = clf.predict(x_test)
    accuracy = float(np.mean(pred == y_test.numpy()))
    assert accuracy > 0.55, accuracy
    colours = np.array([S.COLOURS.index(k.colour) for k in S.shape_classes()])
    assert np.mean(colours[pred] == colours[y_test.numpy()]) > 0.95


def save_grid(path: str = "/tmp/shapes_grid.png", per_class: int = 8, seed: int = 0) -> str:
    """Draw ``per_class`` images of every class, one row per class in label order, and save them (3× size)."""
    from PIL import Image

    y = torch.arange(N_CLASSES).repeat_interleave(per_class)
    grid = S._grid(S.render_shapes(y, seed=seed), columns=per_class)
    h, w = grid.shape[1:]
    Image.fromarray(grid.permute(1, 2, 0).numpy()).resize((3 * w, 3 * h), Image.NEAREST).save(path)
    return path


def test_image_grid(tmp_path):
    pytest.importorskip("PIL")
    path = save_grid(str(tmp_path / "grid.png"), per_class=2)
    from PIL import Image

    with Image.open(path) as im:
        assert im.size == (3 * (2 * 30 + 2), 3 * (N_CLASSES * 30 + 2))


if __name__ == "__main__":
    print(save_grid())
