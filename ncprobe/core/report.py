"""The labelled result of :func:`ncprobe.measure`: an ``xarray.Dataset`` with a friendly face.

Layout of :attr:`NCReport.dataset`:

* scalar variables, one per metric, under the catalog's names (``nc1``, ``nc2_etf_error``, …);
* per-class variables on the ``class`` coordinate (the original class labels), named
  ``class_<metric>`` (``class_count``, ``class_variance``, ``class_ncc_accuracy``, …), with the
  ``class_name`` and ``class_group`` of each class as coordinates when known;
* per-pair variables on (``class``, ``class_other``): ``cdnv_pairs`` and the cosine matrices the figures
  draw (``mean_cosines``, ``text_cosines``, ``cross_cosines``);
* per-group variables on ``group`` when groups were given (``group_ncc_accuracy``, ``group_mean_cosine``, …);
* figure coordinates (``mean_coords``, ``text_coords`` on (``class``, ``component``); ``sample_coords``,
  ``sample_class`` on ``sample``; see :mod:`ncprobe.core.projection`);
* ``attrs`` with the settings (``center``, ``precision``, ``pinv_rtol``, excluded classes, …).

Files. :meth:`NCReport.to_netcdf` and :func:`save_dataset` write atomically (a temporary file renamed
into place), so an interrupted write never leaves a partial report. Attributes that netCDF cannot store
(booleans, lists, ``None``) are JSON-encoded on the way out and decoded on the way in
(:func:`encode_attrs` / :func:`decode_attrs`); the variable list is stored too, so a file missing
variables is refused when loaded. Several reports (e.g. one per epoch) stack into one dataset with
:func:`stack_reports`, whose attributes are already netCDF-safe (so ``stack.to_netcdf(path)`` works
directly; :func:`load_dataset` restores their types).
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ncprobe._io import atomic_path

from . import catalog
from .groups import group_order

__all__ = [
    "NCReport",
    "build_dataset",
    "stack_reports",
    "encode_attrs",
    "decode_attrs",
    "save_dataset",
    "load_dataset",
    "FORMAT",
]

#: Written into every file as ``attrs["ncprobe_format"]``.
FORMAT = "ncprobe-dataset/1"
_JSON_KEYS = "ncprobe_json_attrs"
_VARIABLES = "ncprobe_variables"


def _description(name: str) -> str:
    try:
        return catalog.get(name).description
    except KeyError:
        return ""


# ------------------------------------------------------------------------------------ assembly
def build_dataset(
    scalars: dict[str, float],
    per_class: dict[str, np.ndarray],
    pairs: dict[str, np.ndarray],
    *,
    class_ids: np.ndarray,
    class_names: Any = None,
    group_labels: np.ndarray | None = None,
    group_values: dict[str, list[float]] | None = None,
    attrs: dict | None = None,
    figure_data: dict[str, tuple] | None = None,
) -> xr.Dataset:
    """Assemble a report's dataset from computed values (scalars in catalog order)."""
    coords: dict[str, Any] = {"class": class_ids, "class_other": class_ids}
    if class_names is not None:
        names = np.asarray(class_names).astype(str)
        if names.shape != (len(class_ids),):
            raise ValueError(f"class_names must have one entry per class ({len(class_ids)}), got {names.shape}")
        coords["class_name"] = ("class", names)
    if group_labels is not None:
        coords["class_group"] = ("class", group_labels)
    order = {n: i for i, n in enumerate(catalog.names(kind=None))}
    data_vars: dict[str, Any] = {k: ((), float(scalars[k])) for k in sorted(scalars, key=order.get)}
    data_vars.update({k: (("class",), np.asarray(v, dtype=np.float64)) for k, v in per_class.items()})
    data_vars.update({k: (("class", "class_other"), np.asarray(v, dtype=np.float64)) for k, v in pairs.items()})
    data_vars.update(figure_data or {})
    ds = xr.Dataset(data_vars, coords=coords)
    if group_labels is not None:
        ds = _add_group_variables(ds, group_labels, group_values or {})
    for name in ds.data_vars:
        desc = _description(name)
        if desc:
            ds[name].attrs["description"] = desc
    ds.attrs.update(attrs or {})
    return ds


def _add_group_variables(ds: xr.Dataset, group_labels: np.ndarray, extra: dict[str, list[float]]) -> xr.Dataset:
    """Per-group aggregates: sample-weighted accuracies and agreements, class-averaged variances and norms."""
    names = group_order(group_labels)
    counts = ds["class_count"].values
    out: dict[str, list[float]] = {"group_num_classes": [], "group_count": []}
    for g in names:
        m = group_labels == g
        out["group_num_classes"].append(float(m.sum()))
        out["group_count"].append(float(counts[m].sum()))
        for var in ds.data_vars:
            if ds[var].dims != ("class",) or var == "class_count":
                continue
            vals = ds[var].values[m]
            ok = ~np.isnan(vals)
            key = "group_" + var.removeprefix("class_")
            if var.endswith("accuracy") or var.endswith("agreement"):
                weight = counts[m][ok]
                value = float((vals[ok] * weight).sum() / weight.sum()) if ok.any() and weight.sum() > 0 else np.nan
            else:
                value = float(vals[ok].mean()) if ok.any() else np.nan
            out.setdefault(key, []).append(value)
    out.update(extra)
    return ds.assign_coords(group=names).assign(
        {k: (("group",), np.asarray(v, dtype=np.float64)) for k, v in out.items()}
    )


# ------------------------------------------------------------------------------------ files
def encode_attrs(attrs: dict) -> dict:
    """netCDF-safe attributes: str/int/float values stay, everything else (bool, list, dict, None) becomes
    JSON text, its key listed under ``ncprobe_json_attrs``."""
    out, encoded = {}, []
    for key, value in attrs.items():
        if key == _JSON_KEYS:
            continue
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (str, int, float, np.integer, np.floating)):
            out[key] = json.dumps(value.item() if isinstance(value, np.generic) else value, default=str)
            encoded.append(key)
        elif isinstance(value, str):
            out[key] = str(value)  # plain str: h5py rejects subclasses (numpy str_, torch's TorchVersion)
        else:
            out[key] = value.item() if isinstance(value, np.generic) else value
    if encoded:
        out[_JSON_KEYS] = json.dumps(sorted(encoded))
    return out


def decode_attrs(attrs: dict) -> dict:
    """Inverse of :func:`encode_attrs`."""
    out = dict(attrs)
    keys = json.loads(out.pop(_JSON_KEYS, "[]"))
    for key in keys:
        if key in out:
            out[key] = json.loads(out[key])
    return out


def save_dataset(ds: xr.Dataset, path: str | os.PathLike) -> None:
    """Write a report, stack or history dataset to netCDF atomically, with netCDF-safe attributes and the
    list of its variables (checked by :func:`load_dataset`)."""
    out = ds.copy()
    attrs = decode_attrs(dict(ds.attrs))
    attrs["ncprobe_format"] = FORMAT
    attrs[_VARIABLES] = sorted(map(str, ds.data_vars))
    out.attrs = encode_attrs(attrs)
    with atomic_path(path) as tmp:
        out.to_netcdf(tmp, engine="h5netcdf")


def load_dataset(path: str | os.PathLike) -> xr.Dataset:
    """Read a dataset written by ncprobe (a report, a stack of reports or a training history).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the path for a file that is
    not readable netCDF (truncated, foreign) or lacks variables it recorded.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with xr.open_dataset(path, engine="h5netcdf") as raw:
            ds = raw.load()
    except Exception as err:  # h5py/h5netcdf raise OSError, ValueError, KeyError, ... for damaged files
        raise ValueError(f"{path} is not a readable netCDF file (truncated, damaged or another format): {err}") from err
    attrs = decode_attrs(dict(ds.attrs))
    expected = attrs.pop(_VARIABLES, None)
    if expected is None and attrs.get("ncprobe_format") is None:
        raise ValueError(f"{path} is a netCDF file but not one written by ncprobe")
    missing = sorted(set(expected or []) - set(map(str, ds.data_vars)))
    if missing:
        raise ValueError(f"{path} is incomplete: variables {missing} are missing")
    ds.attrs = attrs
    return ds


# ------------------------------------------------------------------------------------ report
class NCReport:
    """Neural-collapse metrics of one set of features, backed by an :class:`xarray.Dataset`.

    ``report["nc1"]`` gives a scalar metric as a float (a ``DataArray`` for per-class or per-pair
    variables); iterating gives the scalar names, like a mapping; ``report.dataset`` the whole dataset;
    :meth:`to_dataframe` the scalar metrics and :meth:`per_class` the per-class table as pandas frames.
    """

    def __init__(self, dataset: xr.Dataset):
        self.dataset = dataset

    # -- access --------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Any:
        if name not in self.dataset.data_vars:
            raise KeyError(f"no metric {name!r} in this report; available: {', '.join(self.keys())}")
        var = self.dataset[name]
        return float(var.values) if var.ndim == 0 else var

    def __contains__(self, name: object) -> bool:
        return name in self.dataset.data_vars

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def keys(self) -> list[str]:
        """Names of the scalar metrics, in catalog order."""
        return [k for k in self.dataset.data_vars if self.dataset[k].ndim == 0]

    def items(self) -> Iterable[tuple[str, float]]:
        return self.scalars().items()

    def scalars(self) -> dict[str, float]:
        """All scalar metrics as a ``{name: float}`` dict."""
        return {k: float(self.dataset[k].values) for k in self.keys()}

    @property
    def attrs(self) -> dict:
        """The settings the report was computed with."""
        return dict(self.dataset.attrs)

    def to_dataframe(self) -> pd.DataFrame:
        """Scalar metrics as a frame indexed by metric name, with columns ``value`` and ``description``."""
        rows = [(k, v, _description(k)) for k, v in self.scalars().items()]
        return pd.DataFrame(rows, columns=["metric", "value", "description"]).set_index("metric")

    def per_class(self) -> pd.DataFrame:
        """Per-class variables as a frame indexed by class label (``class_`` prefixes dropped)."""
        names = [k for k in self.dataset.data_vars if self.dataset[k].dims == ("class",)]
        frame = self.dataset[names].to_dataframe()
        frame = frame[[c for c in frame.columns if c in names or c in ("class_name", "class_group")]]
        return frame.rename(columns=lambda c: c.removeprefix("class_"))

    def per_group(self) -> pd.DataFrame | None:
        """Per-group variables as a frame indexed by group, or ``None`` without groups."""
        names = [k for k in self.dataset.data_vars if self.dataset[k].dims == ("group",)]
        if not names:
            return None
        return self.dataset[names].to_dataframe().rename(columns=lambda c: c.removeprefix("group_"))

    # -- persistence ---------------------------------------------------------------------------
    def to_netcdf(self, path: str | os.PathLike) -> None:
        """Write the report to a netCDF file, atomically; read it back with :meth:`from_netcdf`."""
        save_dataset(self.dataset, path)

    @classmethod
    def from_netcdf(cls, path: str | os.PathLike) -> NCReport:
        """Read a report written by :meth:`to_netcdf` (attribute types restored; damaged files refused)."""
        return cls(load_dataset(path))

    # -- display -------------------------------------------------------------------------------
    def _header(self) -> str:
        a = self.dataset.attrs
        return (
            f"NCReport: {a.get('n_samples', '?')} samples, {a.get('num_classes', '?')} classes, "
            f"dim {a.get('dim', '?')} (center={a.get('center')}, normalize_images={a.get('normalize_images')}, "
            f"precision={a.get('precision')})"
        )

    def __repr__(self) -> str:
        lines = [self._header()]
        width = max((len(k) for k in self.keys()), default=0)
        for k, v in self.scalars().items():
            lines.append(f"  {k:<{width}}  {v:>12.6g}   {_description(k)}")
        a = self.dataset.attrs
        if a.get("singleton_classes"):
            lines.append(f"  (classes with one sample excluded from NC1/CDNV: {a['singleton_classes']})")
        if a.get("simplex_etf_exists") is False:
            lines.append(
                f"  (C > D + 1: no simplex ETF exists in dim {a.get('dim')}; "
                "compare nc2_etf_error with nc2_etf_error_floor)"
            )
        per_class = [k for k in self.dataset.data_vars if self.dataset[k].dims == ("class",)]
        lines.append(f"  per-class: {', '.join(per_class)}  → report.per_class()")
        if "group" in self.dataset.coords:
            lines.append(f"  groups: {', '.join(map(str, self.dataset['group'].values))}  → report.per_group()")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        table = self.to_dataframe().to_html(float_format=lambda v: f"{v:.6g}", border=0)
        groups = self.per_group()
        extra = (
            "" if groups is None else "<h5>per group</h5>" + groups.to_html(float_format=lambda v: f"{v:.4g}", border=0)
        )
        return f"<div><b>{self._header()}</b>{table}{extra}</div>"


def stack_reports(
    reports: Sequence[NCReport] | Iterable[NCReport], *, dim: str = "epoch", coords: Sequence[Any] | None = None
) -> xr.Dataset:
    """Concatenate reports along a new dimension (e.g. ``epoch``) into one ``xarray.Dataset``.

    Attributes shared by all reports are kept (netCDF-safe, see the module docstring), so the stack can be
    written with ``stack.to_netcdf(path)`` or, atomically, :func:`save_dataset`.

    >>> # ds = stack_reports([measure(f, y) for f in per_epoch_features], coords=range(10))
    >>> # ds["nc1"].plot()
    """
    reports = list(reports)
    if not reports:
        raise ValueError("no reports to stack")
    index = pd.Index(list(coords) if coords is not None else range(len(reports)), name=dim)
    if len(index) != len(reports):
        raise ValueError(f"{len(index)} coordinates for {len(reports)} reports")
    decoded = [decode_attrs(dict(r.dataset.attrs)) for r in reports]
    common = {k: v for k, v in decoded[0].items() if all(k in d and d[k] == v for d in decoded[1:])}
    stacked = xr.concat([r.dataset.drop_attrs(deep=False) for r in reports], dim=index, join="outer")
    stacked.attrs = encode_attrs(common)
    return stacked
