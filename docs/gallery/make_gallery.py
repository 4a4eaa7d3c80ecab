"""Draw the figure gallery (docs/gallery.md) from synthetic data: no model, no dataset, no training.

    python docs/gallery/make_gallery.py            # writes docs/gallery/*.png (kaleido + Chromium)
    python docs/gallery/make_gallery.py --html     # also the interactive .html pages (not committed)

Reports come from ``ncprobe.measure`` on ``ncprobe.core.synthetic.make_collapse`` data; histories from the
test helper ``tests/plotting/histories.py`` (the layout of docs/history.md); the layer figure from reports
whose noise shrinks with depth (a stand-in for features of successive blocks).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ncprobe.plotting import (  # noqa: E402
    correlation_figure,
    geometry_figure,
    gram_figure,
    group_bars_figure,
    layers_figure,
    runs_table,
    save_figures,
    trajectory_figure,
)
from tests.plotting.histories import make_history, make_report  # noqa: E402

HERE = Path(__file__).resolve().parent
NAMES = ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]


def figures() -> dict[str, object]:
    """``{file stem: figure}`` of every gallery figure."""
    report = make_report(
        num_classes=10,
        dim=32,
        samples_per_class=120,
        noise=1.6,
        text_noise=0.6,
        imbalance=20,
        cloud=600,
        names=NAMES,
    )
    coop = make_history(method="CoOp", seeds=[0, 1, 2], strength=0.2, epochs=10)
    npt = make_history(method="CoOp+NPT", seeds=[0, 1, 2], strength=0.8, epochs=10)
    runs = [
        make_history(method=m, seed=s, imbalance_ratio=r, strength=k, epochs=4)
        for m, k in (("CoOp", 0.2), ("CoOp+NPT", 0.8))
        for r in (1, 4, 16)
        for s in (0, 1, 2)
    ]
    layers = {
        f"block {i}": {
            "base": make_report(noise=4.0 / i, text_noise=0.5, seed=3),
            "novel": make_report(noise=5.0 / i**0.6, text_noise=0.5, seed=4, groups=False),
        }
        for i in range(1, 7)
    }
    return {
        "gram": gram_figure(report),
        "geometry": geometry_figure(report),
        "geometry_3d": geometry_figure(report, dims=3, height=560),
        "groups": group_bars_figure(report),
        "trajectory": trajectory_figure(
            {"CoOp": coop, "CoOp+NPT": npt},
            metrics=["accuracy", "hm", "nc1", "nc2_etf_error", "t2i_text_etf_error", "t2i_cross_etf_error"],
        ),
        "layers": layers_figure(layers),
        "correlation": correlation_figure(runs_table(runs), metric="t2i_text_etf_error"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", action="store_true", help="also write the interactive .html pages")
    parser.add_argument("--out", default=str(HERE), help="output folder (default docs/gallery)")
    args = parser.parse_args()
    out = Path(args.out)
    figs = figures()
    targets = {out / f"{name}.png": fig for name, fig in figs.items()}
    if args.html:
        targets.update({out / f"{name}.html": fig for name, fig in figs.items()})
    for path in save_figures(targets):
        if path.suffix == ".png":
            _shrink(path)
        print(path)


def _shrink(path: Path) -> None:
    """Re-save a PNG with a 256-colour adaptive palette (a third of the size, no visible change)."""
    from PIL import Image

    with Image.open(path) as img:
        small = img.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


if __name__ == "__main__":
    main()
