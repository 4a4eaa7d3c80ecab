"""The labelled result of :func:`ncprobe.measure`: an ``xarray.Dataset`` with a friendly face.

Layout of :attr:`NCReport.dataset`:

* scalar variables, one per metric (``nc1``, ``nc2_etf_error``, ``t2i_modality_gap``, …);
* per-class variables on the ``class`` coordinate (the original class labels), named
  ``class_<metric>`` (``class_count``, ``class_variance``, ``class_ncc_accuracy``, …), with the
  ``class_name`` and ``group`` of each class as coordinates when known;
* per-pair variables on (``class``, ``class_other``) (``cdnv_pairs``);
* per-group variables on ``group`` when groups were given (``group_ncc_accuracy``, …);
* ``attrs`` with settings (``center``, ``precision``, ``pinv_rtol``, excluded classes, …).

Several reports (e.g. one per epoch) stack into one dataset with :func:`stack_reports`.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["NCReport", "stack_reports"]

_DESCRIPTIONS = {
    "nc1": "NC1 tr(Σ_W Σ_B^†)/C",
    "nc1_quotient": "NC1 quotient tr Σ_W / tr Σ_B",
    "cdnv": "mean class-distance normalised variance",
    "nc2_equinorm": "NC2 CV of centred class-mean norms",
    "nc2_equiangularity": "NC2 std of pairwise cosines",
    "nc2_max_angle": "NC2 mean |cos + 1/(C-1)|",
    "nc2_max_cosine": "largest pairwise cosine of centred means",
    "nc2_etf_error": "NC2 distance of mean Gram to ETF Gram",
    "nc3_self_duality": "NC3 ‖W/‖W‖ − M/‖M‖‖²",
    "nc3_duality_gram": "NC3 distance of W Mᵀ to ETF Gram",
    "nc4_ncc_agreement": "NC4 classifier/NCC agreement",
    "ncc_accuracy": "nearest-class-centre accuracy",
    "classifier_accuracy": "classifier accuracy",
    "t2i_text_etf_error": "text embeddings' distance to ETF",
    "t2i_self_duality": "text/image-mean self-duality",
    "t2i_cross_etf_error": "cross Gram M̂T̂ᵀ distance to ETF",
    "t2i_ncc_agreement": "text-classifier/NCC agreement",
    "t2i_zero_shot_accuracy": "text-classifier (zero-shot) accuracy",
    "t2i_modality_gap": "distance between modality centroids",
}


def _netcdf_safe(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value] if value else ""
    return value


class NCReport:
    """Neural-collapse metrics of one set of features, backed by an :class:`xarray.Dataset`.

    ``report["nc1"]`` gives a scalar metric as a float (a ``DataArray`` for per-class or per-pair
    variables); ``report.dataset`` the whole dataset; :meth:`to_dataframe` the scalar metrics and
    :meth:`per_class` the per-class table as pandas frames.
    """

    def __init__(self, dataset: xr.Dataset):
        self.dataset = dataset

    # -- access --------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Any:
        if name not in self.dataset:
            raise KeyError(f"no metric {name!r} in this report; available: {', '.join(self.keys())}")
        var = self.dataset[name]
        return float(var.values) if var.ndim == 0 else var

    def __contains__(self, name: str) -> bool:
        return name in self.dataset

    def keys(self) -> list[str]:
        """Names of the scalar metrics, in a stable order."""
        return [k for k in self.dataset.data_vars if self.dataset[k].ndim == 0]

    def scalars(self) -> dict[str, float]:
        """All scalar metrics as a ``{name: float}`` dict."""
        return {k: float(self.dataset[k].values) for k in self.keys()}

    def to_dataframe(self) -> pd.DataFrame:
        """Scalar metrics as a frame indexed by metric name, with columns ``value`` and ``description``."""
        rows = [(k, v, _DESCRIPTIONS.get(k, "")) for k, v in self.scalars().items()]
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
    def to_netcdf(self, path: str | os.PathLike, **kw: Any) -> None:
        """Write the dataset to a netCDF file (``xarray.Dataset.to_netcdf``); read back with
        :meth:`from_netcdf`."""
        ds = self.dataset.copy()
        ds.attrs = {k: _netcdf_safe(v) for k, v in ds.attrs.items()}
        ds.to_netcdf(path, **kw)

    @classmethod
    def from_netcdf(cls, path: str | os.PathLike) -> "NCReport":
        with xr.open_dataset(path) as ds:
            return cls(ds.load())

    # -- display -------------------------------------------------------------------------------
    def _header(self) -> str:
        a = self.dataset.attrs
        return (f"NCReport: {a.get('n_samples', '?')} samples, {a.get('num_classes', '?')} classes, "
                f"dim {a.get('dim', '?')} (center={a.get('center')}, precision={a.get('precision')})")

    def __repr__(self) -> str:
        lines = [self._header()]
        width = max((len(k) for k in self.keys()), default=0)
        for k, v in self.scalars().items():
            desc = _DESCRIPTIONS.get(k, "")
            lines.append(f"  {k:<{width}}  {v:>12.6g}   {desc}")
        excluded = self.dataset.attrs.get("singleton_classes")
        if excluded:
            lines.append(f"  (classes with one sample excluded from NC1/CDNV: {excluded})")
        per_class = [k for k in self.dataset.data_vars if self.dataset[k].dims == ("class",)]
        lines.append(f"  per-class: {', '.join(per_class)}  → report.per_class()")
        if self.per_group() is not None:
            lines.append(f"  groups: {', '.join(map(str, self.dataset['group'].values))}  → report.per_group()")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        table = self.to_dataframe().to_html(float_format=lambda v: f"{v:.6g}", border=0)
        groups = self.per_group()
        extra = "" if groups is None else "<h5>per group</h5>" + groups.to_html(
            float_format=lambda v: f"{v:.4g}", border=0)
        return f"<div><b>{self._header()}</b>{table}{extra}</div>"


def stack_reports(reports: Sequence[NCReport] | Iterable[NCReport], *, dim: str = "epoch",
                  coords: Sequence[Any] | None = None) -> xr.Dataset:
    """Concatenate reports along a new dimension (e.g. ``epoch``) into one ``xarray.Dataset``.

    >>> # ds = stack_reports([measure(f, y) for f in per_epoch_features], coords=range(10))
    >>> # ds["nc1"].plot()
    """
    reports = list(reports)
    if not reports:
        raise ValueError("no reports to stack")
    index = pd.Index(list(coords) if coords is not None else range(len(reports)), name=dim)
    if len(index) != len(reports):
        raise ValueError(f"{len(index)} coordinates for {len(reports)} reports")
    return xr.concat([r.dataset for r in reports], dim=index, join="outer", combine_attrs="drop_conflicts")
