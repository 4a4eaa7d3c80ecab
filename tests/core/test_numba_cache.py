"""numba kernels: compiled once per machine (and said so), never a failure when no cache folder is writable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ncprobe.core import _numba_kernels as kernels

pytestmark = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba is not installed")

ROOT = Path(__file__).parents[2]
CODE = (
    "import numpy as np, ncprobe\n"
    "x = np.random.default_rng(0).normal(size=(5000, 16)).astype('float32'); y = np.arange(5000) % 4\n"
    "ncprobe.measure(x, y, backend='numba')\n"
)


def test_first_use_compiles_with_a_message_then_loads_from_the_cache(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "PYTHONPATH": str(ROOT)}
    # a zero notice threshold makes the (timing-dependent) notice deterministic for the test
    first = subprocess.run(
        [sys.executable, "-c", CODE],
        env={**env, "NCPROBE_COMPILE_NOTICE_SECONDS": "0"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert first.stderr.count("compiling the numba CPU kernels") == 1
    assert any((tmp_path / "numba").rglob("*.nbi")), "nothing was cached"
    stats = (
        "\nfrom ncprobe.core import _numba_kernels as k\n"
        "print(sum(sum(f.stats.cache_hits.values()) for f in (k._class_sums, k._residuals, k._decide_count)),"
        " sum(sum(f.stats.cache_misses.values()) for f in (k._class_sums, k._residuals, k._decide_count)))"
    )
    second = subprocess.run([sys.executable, "-c", CODE + stats], env=env, capture_output=True, text=True, check=True)
    hits, misses = map(int, second.stdout.split()[-2:])
    assert misses == 0 and hits > 0, second.stdout


def test_an_unwritable_cache_falls_back_to_compiling_in_memory(monkeypatch):
    calls = []

    def fake_njit(**options):
        calls.append(options)
        if options.get("cache"):
            raise RuntimeError("cannot cache function 'f': no locator available for file '/x.py'")
        return lambda func: func

    monkeypatch.setattr(kernels, "njit", fake_njit)
    with pytest.warns(UserWarning, match="NUMBA_CACHE_DIR"):
        f = kernels._jit(nogil=True)(lambda v: v + 1)
    assert f(1) == 2 and calls == [{"cache": True, "nogil": True}, {"cache": False, "nogil": True}]


class _FakeKernel:
    """A stand-in dispatcher: numba's disk cache (FunctionCache) and its miss counter."""

    class FunctionCache:
        pass

    def __init__(self):
        self._cache = self.FunctionCache()
        self.misses = 0

    @property
    def stats(self):
        from collections import Counter

        return type("Stats", (), {"cache_misses": Counter({"sig": self.misses})})()


def _first_call_output(monkeypatch, capsys, compiles: bool) -> str:
    import time

    from ncprobe.core import _numba_kernels as k

    monkeypatch.setattr(k, "_ANNOUNCED", False)
    monkeypatch.setattr(k, "_COMPILED", set())
    monkeypatch.setenv("NCPROBE_COMPILE_NOTICE_SECONDS", "0.02")
    kernel = _FakeKernel()

    def call():
        if compiles:
            kernel.misses += 1  # numba counts the miss, then compiles
        time.sleep(0.3)

    k._first_call(kernel, call)
    time.sleep(0.1)
    return capsys.readouterr().err


def test_a_slow_first_call_that_loads_the_cache_says_nothing(monkeypatch, capsys):
    assert _first_call_output(monkeypatch, capsys, compiles=False) == ""


def test_a_first_call_that_compiles_says_so_once(monkeypatch, capsys):
    assert _first_call_output(monkeypatch, capsys, compiles=True).count("compiling the numba CPU kernels") == 1
