"""``groups="counts"`` on equal class counts forms no head/medium/tail groups and says so (issue 17).

Ranking equal counts would split the classes by index: a base-to-novel testbed's last classes (the novel
ones) would become the "tail" and the groups figure would show a long-tail effect that does not exist.
"""

from __future__ import annotations

import numpy as np
import pytest

import ncprobe
from ncprobe.core.groups import EqualCountsWarning, equal_counts_note, resolve_groups
from ncprobe.core.synthetic import make_collapse


def _balanced():
    return make_collapse(num_classes=6, dim=8, samples_per_class=20, seed=0)


@pytest.mark.parametrize("rule", ["counts", "rank", "log_count"])
def test_equal_counts_form_no_groups_and_say_why(rule):
    d = _balanced()
    with pytest.warns(EqualCountsWarning, match="every class has 20 samples"):
        r = ncprobe.measure(d.features, d.labels, groups=rule)
    assert "class_group" not in r.dataset.coords and "group" not in r.dataset.dims
    assert r.per_group() is None
    assert r.attrs["groups_note"] == "no head/medium/tail groups: every class has 20 samples (equal counts)"


def test_unequal_counts_still_form_groups_without_a_note(recwarn):
    d = make_collapse(num_classes=6, dim=8, samples_per_class=20, imbalance=5, seed=0)
    r = ncprobe.measure(d.features, d.labels, groups="counts")
    assert list(r.dataset["group"].values) == ["head", "medium", "tail"]
    assert "groups_note" not in r.attrs
    assert not [w for w in recwarn if issubclass(w.category, EqualCountsWarning)]


def test_absent_classes_do_not_make_equal_counts_unequal():
    counts = np.array([30.0, 30.0, 0.0, 30.0])
    with pytest.warns(EqualCountsWarning):
        assert resolve_groups("counts", class_ids=np.arange(4), counts=counts) is None
    assert equal_counts_note([30, 29, 30]) is None


def test_explicit_groups_are_kept_on_equal_counts(recwarn):
    d = _balanced()
    mapping = {k: ("base" if k < 3 else "novel") for k in range(6)}
    r = ncprobe.measure(d.features, d.labels, groups=mapping)
    assert sorted(r.dataset["group"].values.tolist()) == ["base", "novel"]
    assert "groups_note" not in r.attrs
    assert not [w for w in recwarn if issubclass(w.category, EqualCountsWarning)]


def test_the_note_survives_netcdf(tmp_path):
    d = _balanced()
    with pytest.warns(EqualCountsWarning):
        r = ncprobe.measure(d.features, d.labels, groups="counts")
    r.to_netcdf(tmp_path / "r.nc")
    assert ncprobe.NCReport.from_netcdf(tmp_path / "r.nc").attrs["groups_note"] == r.attrs["groups_note"]
