"""Common tests over the metric catalog: one parametrised test per property, run for every catalog entry.

* reference agreement — ``measure`` against the plain float64 numpy reference (``tests/_helpers/reference``),
  for C < D (projected scatter) and C > D + 1 (no simplex ETF), numba and torch backends;
* invariances — each transformation the entry declares (rotation, scale, offset) leaves it unchanged;
* streaming — ``ClassStatistics``/``DecisionStatistics`` fed in chunks give the one-pass value;
* merge — two shards merged give the one-pass value;
* state round-trip — statistics and decisions saved with ``state_dict`` and restored give the same value.
"""

from __future__ import annotations

import functools
import io

import numpy as np
import pytest
import torch

import ncprobe
from ncprobe import ClassStatistics, DecisionStatistics
from ncprobe.core import catalog
from ncprobe.core.groups import assign_groups, group_order
from tests._helpers import reference as ref

ALL = catalog.names(kind=None)
SHAPES = {"C<D": (6, 12), "C>D+1": (9, 6)}


@functools.cache
def _data(shape: str, seed: int = 0):
    c, d = SHAPES[shape]
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(c, d)) * 2 + 3.0
    sizes = rng.integers(8, 40, size=c)
    y = np.repeat(np.arange(c), sizes)
    rng.shuffle(y)
    x = means[y] + rng.normal(size=(len(y), d)) * rng.uniform(0.5, 1.5, size=d)
    w = means - means.mean(0) + 0.5 * rng.normal(size=(c, d))
    text = means + 1.5 * rng.normal(size=(c, d))
    ood = rng.normal(size=(50, d)) * 2 + 1.0
    return x, y, w, text, ood


def _measure(x, y, w, text, ood, **kw):
    return ncprobe.measure(
        x, y, classifier=w, text_features=text, ood_features=ood, groups="counts", scatter="full", **kw
    )


def _value(report, name):
    return report.dataset[name].values


def _assert_same(a, b, name, rtol=1e-9, atol=1e-11):
    np.testing.assert_allclose(
        np.asarray(a, float), np.asarray(b, float), rtol=rtol, atol=atol, err_msg=name, equal_nan=True
    )


@functools.cache
def _report(shape: str, backend: str = "auto", transform: str | None = None):
    x, y, w, text, ood = _data(shape)
    if transform is not None:
        x, w, text, ood = _transform(transform, x, w, text, ood)
    return _measure(x, y, w, text, ood, backend=backend)


def _transform(kind, x, w, text, ood):
    rng = np.random.default_rng(7)
    d = x.shape[1]
    if kind == "rotation":
        q, _ = np.linalg.qr(rng.normal(size=(d, d)))
        return x @ q, w @ q, text @ q, ood @ q
    if kind == "scale":
        return 2.5 * x, w, text, 2.5 * ood
    if kind == "offset":
        o = 4.0 * rng.normal(size=d)
        return x + o, w, text, ood + o
    raise ValueError(kind)


def test_every_catalog_metric_is_reported_when_its_inputs_are_given():
    report = _report("C<D")
    assert set(ALL) <= set(report.dataset.data_vars), set(ALL) - set(report.dataset.data_vars)
    assert report.keys() == [n for n in catalog.names() if n in report.keys()]  # catalog order


@pytest.mark.parametrize("backend", ["torch", "numba"])
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("name", ALL)
def test_reference_agreement(name, shape, backend):
    x, y, w, text, ood = _data(shape)
    c = len(np.unique(y))
    groups = assign_groups(np.bincount(y))
    expected = ref.all_metrics(x, y, c, w=w, text=text, ood=ood, groups=groups, group_names=group_order(groups))
    got = _value(_report(shape, backend), name)
    rtol = 1e-6 if name in ("nc1", "vci") else 1e-9  # pseudo-inverses of float32-rounded data
    _assert_same(got, expected[name], name, rtol=rtol)


@pytest.mark.parametrize("name,transform", [(s.name, t) for s in catalog.METRICS for t in sorted(s.invariances)])
def test_invariance(name, transform):
    before = _value(_report("C<D"), name)
    after = _value(_report("C<D", transform=transform), name)
    _assert_same(after, before, f"{name} under {transform}", rtol=1e-6, atol=1e-8)


def _streamed(parts, w, text, ood, c, *, merge=False, restore=False):
    """Statistics and decisions over ``parts`` (lists of (x, y) chunks), optionally via merge or a state round-trip."""
    if merge:
        halves = [ClassStatistics(c) for _ in range(2)]
        for i, (xb, yb) in enumerate(parts):
            halves[i % 2].update(xb, yb)
        stats = halves[0].merge(halves[1])
    else:
        stats = ClassStatistics(c)
        for xb, yb in parts:
            stats.update(xb, yb)
    if restore:
        buf = io.BytesIO()
        torch.save(stats.state_dict(), buf)
        buf.seek(0)
        stats = ClassStatistics.from_state_dict(torch.load(buf, weights_only=False))
    make = lambda: DecisionStatistics(stats, classifiers={"linear": w}, text_features=text)  # noqa: E731
    if merge:
        decs = [make(), make()]
        for i, (xb, yb) in enumerate(parts):
            decs[i % 2].update(xb, yb)
        dec = decs[0].merge(decs[1])
    else:
        dec = make()
        for xb, yb in parts:
            dec.update(xb, yb)
    if restore:
        dec = make().load_state_dict(dec.state_dict())
    return ncprobe.measure(stats, decisions=dec, classifier=w, text_features=text, ood_features=ood, groups="counts")


@functools.cache
def _stream_report(mode: str):
    x, y, w, text, ood = _data("C<D")
    c = len(np.unique(y))
    parts = [(x[i : i + 23], y[i : i + 23]) for i in range(0, len(y), 23)]
    return _streamed(parts, w, text, ood, c, merge=mode == "merge", restore=mode == "state")


@pytest.mark.parametrize("mode", ["stream", "merge", "state"])
@pytest.mark.parametrize("name", ALL)
def test_streaming_merge_and_state_equal_one_pass(name, mode):
    _assert_same(_value(_stream_report(mode), name), _value(_report("C<D"), name), f"{name} ({mode})")


def test_catalog_entries_are_consistent():
    for spec in catalog.METRICS:
        lo, hi = spec.range
        assert lo < hi, spec.name
        assert spec.invariances <= {"rotation", "scale", "offset"}, spec.name
        if spec.function:
            assert callable(getattr(ncprobe, spec.function)), spec.name
        if spec.kind == "scalar":
            value = _report("C<D")[spec.name]
            assert lo - 1e-9 <= value <= hi + 1e-9, (spec.name, value, spec.range)
    with pytest.raises(KeyError, match="known metrics: nc1"):
        catalog.get("nc9")


def test_readme_metric_table_is_the_catalog():
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert catalog.markdown_table("scalar") in readme
