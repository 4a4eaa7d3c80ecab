import numpy as np
import pytest

import ncprobe
from ncprobe import crossmodal
from ncprobe.core.geometry import simplex_etf
from tests._helpers import reference as ref


def _vl(seed=0, c=6, d=16, cone=5.0):
    rng = np.random.default_rng(seed)
    axis = rng.normal(size=d)
    axis = cone * axis / np.linalg.norm(axis)
    means = simplex_etf(c, d, seed=seed).numpy() * 2 + axis
    y = np.repeat(np.arange(c), 30)
    x = means[y] + 0.3 * rng.normal(size=(len(y), d))
    text = means + 0.2 * rng.normal(size=(c, d)) + axis
    return x, y, text


def test_text_etf_error_matches_reference_in_both_modes():
    _, _, text = _vl()
    t = text / np.linalg.norm(text, axis=1, keepdims=True)
    tc = t - t.mean(0)
    assert crossmodal.text_etf_error(text) == pytest.approx(ref.structure_error(tc @ tc.T), rel=1e-12)
    assert crossmodal.text_etf_error(text, center=False) == pytest.approx(ref.structure_error(t @ t.T), rel=1e-12)
    # The cone makes raw text cosines large: centring is what reveals the ETF.
    assert crossmodal.text_etf_error(text) < 0.3 < crossmodal.text_etf_error(text, center=False)


def test_measure_t2i_metrics_and_zero_shot_rule():
    x, y, text = _vl(2)
    r = ncprobe.measure(x, y, text_features=text)
    t = text / np.linalg.norm(text, axis=1, keepdims=True)
    zs = (x @ t.T).argmax(1)
    ncc = ref.decisions(None, x, y, 6)
    assert r["t2i_zero_shot_accuracy"] == pytest.approx(np.mean(zs == y))
    assert r["ncc_accuracy"] == pytest.approx(ncc["ncc_accuracy"])
    for name in [
        "t2i_text_etf_error",
        "t2i_self_duality",
        "t2i_cross_etf_error",
        "t2i_ncc_agreement",
        "t2i_modality_gap",
    ]:
        assert name in r
    # without a classifier, the classifier metrics are not reported: they would repeat the t2i_ ones
    for name in ["nc3_self_duality", "nc4_ncc_agreement", "classifier_accuracy", "unc3_uniform_duality"]:
        assert name not in r
    raw = ncprobe.measure(x, y, text_features=text, center=False)
    assert raw["t2i_modality_gap"] == pytest.approx(r["t2i_modality_gap"])
    assert raw["t2i_text_etf_error"] != pytest.approx(r["t2i_text_etf_error"])


def test_text_shape_errors():
    x, y, text = _vl(3)
    with pytest.raises(ValueError, match="5 rows but there are 6 classes"):
        ncprobe.measure(x, y, text_features=text[:5])
    with pytest.raises(ValueError, match="dimension 15"):
        ncprobe.measure(x, y, text_features=text[:, :15])
    bad = text.copy()
    bad[2] = 0
    with pytest.raises(ValueError, match="all-zero row"):
        ncprobe.measure(x, y, text_features=bad)
