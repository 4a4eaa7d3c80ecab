"""Interactive Plotly figures of neural-collapse reports and training histories.

The only part of ncprobe that imports plotly. Every figure takes an :class:`~ncprobe.NCReport`, a report's
``xarray.Dataset`` or a training history (``docs/history.md``), draws what is stored there (it never
recomputes geometry), and returns a :class:`plotly.graph_objects.Figure`; axis ranges and the direction of
collapse come from the metric catalog (:mod:`ncprobe.core.catalog`).

* :func:`gram_figure` — cosine Gram matrices of class means / text features next to the simplex ETF;
* :func:`geometry_figure` — class means, text features and a sample cloud in 2-D or 3-D;
* :func:`trajectory_figure` — metrics against epochs, runs overlaid, seed bands;
* :func:`group_bars_figure` — per class and per head/medium/tail group;
* :func:`layers_figure` (with :func:`stack_layers`) — collapse across layers, base vs novel;
* :func:`correlation_figure` (with :func:`runs_table`, :func:`correlation_table`) — an NC metric against
  accuracy across runs, Pearson/Spearman with bootstrap intervals (:mod:`ncprobe.plotting.stats`);
* :func:`save_figure` / :func:`save_figures` — HTML (offline), PNG/SVG/PDF through kaleido + Chromium.

See ``docs/gallery.md`` for one picture of each.
"""

from ._common import report_dataset
from .correlation import correlation_figure, correlation_table, runs_table
from .export import ExportError, browser_path, save_figure, save_figures
from .geometry import geometry_figure
from .gram import gram_figure
from .groups import group_bars_figure
from .layers import layers_figure, stack_layers
from .stats import correlate
from .trajectory import history_runs, trajectory_figure

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
    "report_dataset",
    "runs_table",
    "save_figure",
    "save_figures",
    "stack_layers",
    "trajectory_figure",
]
