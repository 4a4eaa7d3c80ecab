"""Saving figures: HTML always (plotly.js inlined, so the page works offline), PNG / SVG / PDF through
kaleido and a system Chrome or Chromium.

Kaleido ≥ 1 does not ship a browser; it drives one that is installed. :func:`browser_path` finds it:
``$BROWSER_PATH`` when set (kaleido's own variable), else the first of ``chromium``, ``chromium-browser``,
``google-chrome``, ``google-chrome-stable``, ``chrome`` on ``PATH`` (Debian: ``apt-get install chromium``
gives ``/usr/bin/chromium``). :func:`save_figure` sets ``BROWSER_PATH`` to it for kaleido when unset.
Every file is written through :func:`ncprobe._io.atomic_path`, so an interrupted export leaves no partial
file behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Mapping

import plotly.graph_objects as go
import plotly.io as pio

from ncprobe._io import atomic_path

__all__ = ["ExportError", "IMAGE_FORMATS", "browser_path", "save_figure", "save_figures"]

IMAGE_FORMATS = ("png", "svg", "pdf", "jpeg", "jpg", "webp")
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class ExportError(RuntimeError):
    """A static image cannot be written here (kaleido or a Chrome/Chromium browser is missing)."""


def browser_path() -> str | None:
    """The Chrome/Chromium executable kaleido will drive, or ``None`` when there is none.

    >>> browser_path() is None or os.path.isfile(browser_path())
    True
    """
    env = os.environ.get("BROWSER_PATH")
    if env:
        return env if os.path.isfile(env) else None
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _format(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("html", "htm"):
        return "html"
    if suffix in IMAGE_FORMATS:
        return "jpeg" if suffix == "jpg" else suffix
    raise ValueError(f"cannot save a figure as {path.name!r}: use .html, or .png / .svg / .pdf (kaleido)")


def _prepare_kaleido() -> None:
    try:
        import kaleido  # noqa: F401
    except ImportError:
        raise ExportError(
            "static images need kaleido >= 1 (`pip install kaleido`) and Chrome/Chromium "
            "(Debian: `apt-get install chromium`); .html works without them"
        ) from None
    found = browser_path()
    if found is None:
        raise ExportError(
            "kaleido needs Chrome or Chromium and none was found (set BROWSER_PATH, or on Debian "
            "`apt-get install chromium`); .html works without it"
        )
    os.environ.setdefault("BROWSER_PATH", found)


def _readable(path: Path) -> None:
    """Give a finished temporary file the permissions of a normal new file (mkstemp makes it 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def save_figure(
    fig: go.Figure,
    path: str | os.PathLike,
    *,
    width: int | None = None,
    height: int | None = None,
    scale: float | None = None,
    include_plotlyjs: bool | str = True,
) -> Path:
    """Write ``fig`` to ``path``, the format chosen by the suffix, atomically.

    Parameters
    ----------
    fig:
        A Plotly figure.
    path:
        ``*.html`` (interactive; plotly.js inlined by default, so it opens offline), or ``*.png``,
        ``*.svg``, ``*.pdf``, ``*.jpeg``, ``*.webp`` (static, through kaleido and Chrome/Chromium).
    width, height, scale:
        Static image size in pixels (default the figure's layout size) and a resolution factor.
    include_plotlyjs:
        HTML only: ``True`` inlines plotly.js (≈ 4.7 MB, works offline), ``"cdn"`` links it (small file,
        needs the network), or a path / ``"directory"`` as in :meth:`plotly.graph_objects.Figure.write_html`.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ValueError
        For an unknown suffix.
    ExportError
        When a static format is asked and kaleido or the browser is missing.

    Example
    -------
    >>> import tempfile
    >>> path = save_figure(go.Figure(go.Bar(y=[1, 2])), Path(tempfile.mkdtemp()) / "fig.html")
    >>> path.read_text().count("<script") >= 2
    True
    """
    path = Path(path)
    fmt = _format(path)
    if fmt == "html":
        with atomic_path(path) as tmp:
            fig.write_html(tmp, include_plotlyjs=include_plotlyjs, full_html=True)
            _readable(tmp)
        return path
    _prepare_kaleido()
    with atomic_path(path) as tmp:
        pio.write_image(
            fig, tmp, format=fmt, width=width or fig.layout.width, height=height or fig.layout.height, scale=scale
        )
        _readable(tmp)
    return path


def save_figures(figures: Mapping[str | os.PathLike, go.Figure], *, scale: float | None = None) -> list[Path]:
    """Save several figures at once (``{path: figure}``); static images share one browser session, which
    saves the browser's start-up (seconds) per image.

    Returns
    -------
    list of pathlib.Path
        The paths written, in the mapping's order.
    """
    paths = [Path(p) for p in figures]
    figs = list(figures.values())
    static = [(p, f) for p, f in zip(paths, figs) if _format(p) != "html"]
    for p, f in zip(paths, figs):
        if _format(p) == "html":
            save_figure(f, p)
    if static:
        _prepare_kaleido()
        with contextlib.ExitStack() as stack:  # every temporary file renamed into place, or all removed
            tmps = [stack.enter_context(atomic_path(p)) for p, _ in static]
            pio.write_images(
                [f for _, f in static],
                tmps,
                format=[_format(p) for p, _ in static],
                width=[f.layout.width for _, f in static],
                height=[f.layout.height for _, f in static],
                scale=scale,
            )
            for tmp in tmps:
                _readable(tmp)
    return paths
