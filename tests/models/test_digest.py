"""weights_digest: equal weights give equal digests, any change of value, dtype, shape or name changes it."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from ncprobe.models import weights_digest
from ncprobe.models.digest import tensor_digest


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3), nn.BatchNorm1d(3))


def test_equal_weights_equal_digest_and_any_change_is_seen():
    a = _model()
    b = copy.deepcopy(a)
    assert weights_digest(a) == weights_digest(b) and len(weights_digest(a)) == 64
    with torch.no_grad():
        b[0].weight[1, 2] += 1e-7  # one element, in place
    assert weights_digest(a) != weights_digest(b)
    c = copy.deepcopy(a)
    c[0].weight.data[0, 0] = 5.0  # through .data: torch's version counter does not see this
    assert weights_digest(a) != weights_digest(c)
    d = copy.deepcopy(a)
    d[0].weight.detach().numpy()[2, 1] = -1.0  # through a numpy view
    assert weights_digest(a) != weights_digest(d)
    e = copy.deepcopy(a)
    e[2].running_mean += 1  # buffers count (BatchNorm statistics)
    assert weights_digest(a) != weights_digest(e) and weights_digest(a, buffers=False) == weights_digest(
        e, buffers=False
    )


def test_dtype_shape_and_name_count():
    t = torch.arange(6, dtype=torch.float32)
    assert tensor_digest(t) != tensor_digest(t.double())
    assert tensor_digest(t) != tensor_digest(t.reshape(2, 3))
    assert weights_digest({"a": t}) != weights_digest({"b": t})
    assert tensor_digest(t.to(torch.bfloat16)) != tensor_digest(t.half())
    assert tensor_digest(torch.tensor(3.0)) == tensor_digest(torch.tensor(3.0))  # 0-dim tensors work


def test_layout_and_device_independent():
    x = torch.randn(5, 7)
    strided = x.t().contiguous().t()  # same values, column-major storage
    assert not strided.is_contiguous() and tensor_digest(strided) == tensor_digest(x)
    if torch.cuda.is_available():  # pragma: no cover - GPU machines
        assert tensor_digest(x.cuda()) == tensor_digest(x)


def test_large_tensors_are_hashed_in_parallel_pieces_without_changing_the_digest():
    big = torch.zeros(9 * 2**20)  # 36 MiB: two 32 MiB pieces
    one = weights_digest({"w": big}, max_workers=1)
    assert weights_digest({"w": big}, max_workers=4) == one
    big[-1] = 1.0  # a change in the second piece
    assert weights_digest({"w": big}) != one


def test_bad_inputs_are_named():
    with pytest.raises(TypeError, match="entry 'x' is a ndarray"):
        weights_digest({"x": np.zeros(3)})
    with pytest.raises(ValueError, match="tensor 'w'.*meta tensor"):
        weights_digest({"w": torch.empty(3, device="meta")})
