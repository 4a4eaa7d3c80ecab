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


def test_notebook_renderer_adds_a_png_only_where_kaleido_can_draw(report, tmp_path, monkeypatch):
    import plotly.io as pio

    from ncprobe.plotting import notebook_renderer

    before = pio.renderers.default
    try:
        monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chrome"))
        assert notebook_renderer() == "plotly_mimetype" == pio.renderers.default
        assert notebook_renderer(static=False) == "plotly_mimetype"
        if CHROMIUM is not None and HAVE_KALEIDO:
            monkeypatch.setenv("BROWSER_PATH", CHROMIUM)
            assert notebook_renderer() == "plotly_mimetype+ncprobe_png"
            bundle = pio.renderers["ncprobe_png"].to_mimebundle(gram_figure(report).to_dict())
            assert bundle["image/png"]  # a real picture, drawn by kaleido
    finally:
        pio.renderers.default = before


def test_a_failing_static_image_leaves_the_interactive_figure(monkeypatch):
    import plotly.io as pio

    from ncprobe.plotting import export

    calls = []

    def broken(self, fig_dict):
        calls.append(1)
        raise RuntimeError("kaleido_scopes is not defined")

    monkeypatch.setattr(export.PngRenderer, "to_mimebundle", broken)
    assert export._FallbackPngRenderer().to_mimebundle({"data": [], "layout": {}}) == {}
    assert len(calls) == 2  # retried once
    assert "plotly_mimetype" in pio.renderers  # what the notebook still shows


@pytest.fixture(scope="module")
def option_inputs(tmp_path_factory, report, history):
    """A report, a three-seed history and three single-seed CoOp runs whose files are all ``history.nc``."""
    from ncprobe.core.report import save_dataset
    from tests.plotting.histories import make_history

    root = tmp_path_factory.mktemp("browser-options")
    report.to_netcdf(root / "report.nc")
    save_dataset(history, root / "history.nc")
    runs = []
    for s in (0, 1, 2):
        (root / f"run{s}").mkdir()
        save_dataset(make_history(method="coop", seed=s, epochs=2), root / f"run{s}" / "history.nc")
        runs.append(str(root / f"run{s}" / "history.nc"))
    return {"report": str(root / "report.nc"), "history": str(root / "history.nc"), "runs": runs}


#: ``ncprobe plot`` with the options of issue 17, and what each drawn page must contain.
OPTION_PAGES = {
    "gram-cross": (
        ["{history}", "--kind", "gram", "--cross", "--eval-set", "novel", "--epoch", "2", "--seed", "1"],
        ['class="hm"', "epoch 2 of 0–4"],
    ),
    "geometry-3d": (["{history}", "--kind", "geometry", "--dims", "3", "--seed", "0"], ['class="gl-container"']),
    "groups-seeds": (
        ["{history}", "--kind", "groups", "--metrics", "class_variance", "accuracy"],
        ["over 3 seeds", "no head/medium/tail groups"],
    ),
    "trajectory-labels": (
        [
            "{runs}",
            "--kind",
            "trajectory",
            "--metrics",
            "nc1",
            "hm",
            "--label",
            "first",
            "--label",
            "second",
            "--label",
            "third",
            "--eval-set",
            "base",
        ],
        ['class="js-line"', "first · base", "third · base", 'class="ytick"'],
    ),
    "trajectory-seed": (["{history}", "--kind", "trajectory", "--seed", "2", "--metrics", "hm"], ["seed 2"]),
    "correlation": (
        ["{runs}", "--kind", "correlation", "--metrics", "nc1", "--epoch", "1", "--eval-set", "novel"],
        ["NC on eval set novel", "CoOp · 3 runs"],  # drawn text (a run label sits only in the figure's JSON,
        # which plotly writes with or without \u escapes depending on whether orjson is installed)
    ),
}


@needs_chromium
@pytest.mark.parametrize("page", sorted(OPTION_PAGES))
def test_plot_options_draw_in_headless_chromium_within_1400px(page, option_inputs, tmp_path):
    from ncprobe.cli import main

    args, markers = OPTION_PAGES[page]
    argv = []
    for a in args:
        argv += option_inputs["runs"] if a == "{runs}" else [a.format(**option_inputs)]
    out = tmp_path / f"{page}.html"
    assert main(["plot", *argv, "-o", str(out)]) == 0
    drawn = _chromium(tmp_path, "--window-size=1400,1000", "--dump-dom", out.as_uri())
    assert drawn.returncode == 0, drawn.stderr[-2000:]
    dom = drawn.stdout
    assert 'class="plot-container plotly"' in dom and dom.count('class="main-svg"') >= 2, f"{page}: nothing drawn"
    for marker in markers:
        assert marker in dom, f"{page}: no {marker!r} in the drawn page"
    widths = [int(w) for w in re.findall(r'<svg class="main-svg"[^>]*? width="(\d+)"', dom)]
    assert widths and max(widths) <= 1400, f"{page}: drawn {max(widths)} px wide"


@needs_chromium
def test_log_ticks_over_decades_read_as_values_in_headless_chromium(option_inputs, history, tmp_path):
    """NC1 over five decades on a log axis: every drawn tick label is a value, in increasing order (Plotly's
    default labels minor ticks with a bare digit: 5, 0.01, 2, 5, 0.1, …)."""
    from ncprobe.cli import main
    from ncprobe.core.report import save_dataset

    stretched = history.assign(nc1=history["nc1"] ** 8)  # ~1e-4 … 1e2
    save_dataset(stretched, tmp_path / "stretched.nc")
    out = tmp_path / "log.html"
    assert (
        main(["plot", str(tmp_path / "stretched.nc"), "--kind", "trajectory", "--metrics", "nc1", "-o", str(out)]) == 0
    )
    drawn = _chromium(tmp_path, "--window-size=1400,1000", "--dump-dom", out.as_uri())
    assert drawn.returncode == 0, drawn.stderr[-2000:]
    ticks = re.findall(r'class="ytick"><text[^>]*>(.*?)</text>', drawn.stdout)
    values = [float(t.replace("\u2212", "-")) for t in ticks]
    assert len(values) >= 4 and values == sorted(values) and len(set(values)) == len(values), ticks
