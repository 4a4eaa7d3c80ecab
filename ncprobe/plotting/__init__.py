"""Interactive Plotly figures of neural-collapse reports and training histories.

The only part of ncprobe that imports plotly. Every figure takes an :class:`~ncprobe.NCReport`, a report's
``xarray.Dataset`` or a training history (``docs/history.md``), draws what is stored there (it never
recomputes geometry), and returns a :class:`plotly.graph_objects.Figure`; axis ranges and the direction of
collapse come from the metric catalog (:mod:`ncprobe.core.catalog`). Every figure's subtitle names what it
shows (runs, evaluation set, epoch, how seeds enter: one chosen seed, or the mean with a band that says
which), and its default width fits a 1,400 px window.

* :func:`gram_figure` — cosine Gram matrices of class means / text features next to the simplex ETF;
* :func:`geometry_figure` — class means, text features and a sample cloud in 2-D or 3-D;
* :func:`trajectory_figure` — metrics against epochs, runs overlaid, seed bands;
* :func:`group_bars_figure` — per class and per head/medium/tail group;
* :func:`layers_figure` (with :func:`stack_layers`) — collapse across layers, base vs novel;
* :func:`correlation_figure` (with :func:`runs_table`, :func:`correlation_table`) — an NC metric against
  accuracy across runs, Pearson/Spearman with bootstrap intervals (:mod:`ncprobe.plotting.stats`);
* :func:`history_runs` / :func:`run_labels` — one unique, readable label per run (method, regularizers and
  what differs: ratio, seed, …; no run is ever dropped);
* :func:`save_figure` / :func:`save_figures` — HTML (offline), PNG/SVG/PDF through kaleido + Chromium;
  :func:`notebook_renderer` — interactive in Jupyter plus a PNG that code hosts display.

See ``docs/gallery.md`` for one picture of each.
"""

from ._common import report_dataset
from .correlation import correlation_figure, correlation_table, runs_table
from .export import ExportError, browser_path, notebook_renderer, save_figure, save_figures
from .geometry import geometry_figure
from .gram import gram_figure
from .groups import group_bars_figure
from .layers import layers_figure, stack_layers
from .runs import history_runs, run_labels
from .stats import correlate
from .trajectory import trajectory_figure

__all__ = [
    "ExportError",
    "browser_path",
    "correlate",
    "correlation_figure",
    "correlation_table",
    "geometry_figure",
    "gram_figure",
    "group_bars_figure",
    "history_runs",
    "layers_figure",
    "notebook_renderer",
    "report_dataset",
    "run_labels",
    "runs_table",
    "save_figure",
    "save_figures",
    "stack_layers",
    "trajectory_figure",
]
