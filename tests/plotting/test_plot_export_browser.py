"""Saved figures: atomic HTML that works offline and draws in a real (headless) Chromium; PNG/SVG through
kaleido. The browser tests skip, saying why, where Chromium (or kaleido) is absent; scripts/install.sh
installs both, so they run in CI."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ncprobe.plotting import browser_path, gram_figure, save_figure, save_figures, trajectory_figure
from ncprobe.plotting.export import ExportError

CHROMIUM = browser_path()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium not installed (Debian: apt-get install chromium; scripts/install.sh does it)"
)
try:
    import kaleido  # noqa: F401

    HAVE_KALEIDO = True
except ImportError:  # pragma: no cover - the dev install has it
    HAVE_KALEIDO = False
needs_kaleido = pytest.mark.skipif(not HAVE_KALEIDO, reason="kaleido not installed (pip install kaleido)")

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--virtual-time-budget=15000",
]


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(tmp_path)},
    )


def test_html_is_atomic_self_contained_and_offline(report, tmp_path):
    path = save_figure(gram_figure(report), tmp_path / "gram.html")
    html = path.read_text()
    assert len(html) > 1_000_000  # plotly.js inlined
    assert not re.search(r"<script[^>]+src=[\"']https?:", html)  # nothing fetched from the network
    assert "Plotly.newPlot" in html
    assert [p.name for p in tmp_path.iterdir()] == ["gram.html"]  # no temporary file left behind
    assert oct(path.stat().st_mode & 0o077) != "0o0"  # readable by others (umask), not mkstemp's 0600


def test_unknown_suffix_is_refused(report, tmp_path):
    with pytest.raises(ValueError, match=r"\.html"):
        save_figure(gram_figure(report), tmp_path / "gram.txt")
    assert not list(tmp_path.iterdir())


def test_missing_browser_is_a_clear_error(report, tmp_path, monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chrome"))
    with pytest.raises(ExportError, match="Chrome or Chromium"):
        save_figure(gram_figure(report), tmp_path / "gram.png")
    assert not list(tmp_path.iterdir())


@needs_chromium
def test_saved_html_draws_in_headless_chromium(report, history, tmp_path):
    pages = {
        "gram": (gram_figure(report), 'class="hm"'),
        "trajectory": (trajectory_figure(history, metrics=["nc1", "hm"]), 'class="js-line"'),
    }
    for name, (fig, marker) in pages.items():
        page = save_figure(fig, tmp_path / f"{name}.html")
        out = _chromium(tmp_path, "--dump-dom", page.as_uri())
        assert out.returncode == 0, out.stderr[-2000:]
        dom = out.stdout
        assert dom.count('class="main-svg"') >= 2, f"{name}: plotly drew no SVG"
        assert marker in dom, f"{name}: no {marker} in the drawn page"
        assert 'class="plot-container plotly"' in dom


@needs_chromium
def test_screenshot_of_the_saved_page_is_not_blank(report, tmp_path):
    from PIL import Image

    page = save_figure(gram_figure(report), tmp_path / "gram.html")
    shot = tmp_path / "shot.png"
    out = _chromium(tmp_path, "--window-size=1300,520", "--hide-scrollbars", f"--screenshot={shot}", page.as_uri())
    assert out.returncode == 0 and shot.is_file(), out.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    coloured = (pixels.max(axis=2) - pixels.min(axis=2)) > 40  # saturated: the heatmap cells, not text/grid
    assert coloured.mean() > 0.03, f"only {coloured.mean():.1%} of the screenshot is coloured"
    red = (pixels[..., 0] > 90) & (pixels[..., 1] < 40) & (pixels[..., 2] < 60)  # the Gram's diagonal (cos = 1)
    assert red.sum() > 500


@needs_chromium
@needs_kaleido
def test_png_and_svg_through_kaleido(report, tmp_path):
    from PIL import Image

    fig = gram_figure(report)
    png, svg = save_figures({tmp_path / "gram.png": fig, tmp_path / "gram.svg": fig})
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(png).size == (fig.layout.width, fig.layout.height)
    text = svg.read_text()
    assert text.startswith("<svg") and 'class="main-svg"' in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gram.png", "gram.svg"]
