"""What every representation analysis reads from an activation dataset: epochs, layers, labels, periods.

Private helpers shared by the analyses of :mod:`decisionnets.representation`:

* :func:`with_epoch` gives a dataset without an ``epoch`` dim (recorded neurons) one epoch, 0;
* :func:`layer_names` checks the asked layers against the recorded ones;
* :func:`default_labels` / :func:`label_matrix`: the task's declared labels as numbers, NaN where a
  trial is left out (catch trials, negative or missing labels);
* :func:`period_groups` / :func:`layer_array`: activity as a numpy array (epoch, trial, time, unit)
  and the time steps of each task period.
"""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np
import xarray as xr

from decisionnets.analyses import activity_layers, unit_dim
from decisionnets.errors import DataFileError, UserError

#: Period name used when a dataset has no time dim, or time steps without a ``period`` coord.
ALL_PERIOD = "all"


def with_epoch(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with an ``epoch`` dim: a dataset recorded without one (e.g. neurons) becomes epoch 0."""
    if "epoch" in ds.dims:
        return ds
    out = ds.copy()
    for name in activity_layers(ds):
        out[name] = ds[name].expand_dims(epoch=[0])
    if "epoch" not in out.coords:
        out = out.assign_coords(epoch=[0])
    return out


def layer_names(ds: xr.Dataset, layers: Sequence[str] | str | None) -> list[str]:
    """The recorded activity layers to analyse: ``layers`` (checked) or every recorded one."""
    recorded = activity_layers(ds)
    if not recorded:
        raise DataFileError(f"no activation variable (dims with 'unit') in the dataset; data vars: {list(ds.data_vars)}")
    if layers is None or len(layers) == 0:
        return recorded
    layers = [layers] if isinstance(layers, str) else list(layers)
    bad = [x for x in layers if x not in recorded]
    if bad:
        raise UserError(f"layer {bad[0]!r} was not recorded; recorded: {', '.join(recorded)}")
    return layers


def default_labels(ds: xr.Dataset) -> list[str]:
    """The task's declared trial-level labels (attr ``decode_labels``), without ``choice``.

    Datasets without the declaration use :func:`decisionnets.analyses.label_variables` minus the
    labels that change with the epoch (``choice``).
    """
    names = None
    if "decode_labels" in ds.attrs:
        try:
            declared = json.loads(ds.attrs["decode_labels"])
            names = [str(v) for v in declared if str(v) in ds.variables] if isinstance(declared, list) else None
        except (TypeError, ValueError):
            names = None
    if names is None:
        from decisionnets.analyses import label_variables

        names = label_variables(ds)
    names = [n for n in names if n in ds.variables and ds[n].dims == ("trial",)]
    if not names:
        raise UserError("the dataset declares no trial label (attr decode_labels) to analyse; pass variables=[...]")
    return names


def label_matrix(ds: xr.Dataset, names: Sequence[str], *, exclude_catch: bool = True) -> np.ndarray:
    """The labels ``names`` as float array (epoch, trial, variable); NaN where a trial is left out.

    A label with dims (trial) is repeated over epochs; one with (epoch, trial) (``choice``) is
    taken per epoch. Negative values (a catch trial's -1, "no choice") and catch trials (coord
    ``catch`` == 1, when ``exclude_catch``) are NaN.
    """
    E, N = ds.sizes["epoch"], ds.sizes["trial"]
    out = np.empty((E, N, len(names)))
    for j, name in enumerate(names):
        if name not in ds.variables:
            raise UserError(f"variable {name!r} is not in the activation dataset; available: "
                            f"{sorted(map(str, ds.variables))}")
        da = ds[name]
        if "trial" not in da.dims or set(da.dims) - {"epoch", "trial"}:
            raise UserError(f"variable {name!r} must have dims (trial) or (epoch, trial); got {da.dims}")
        try:
            values = np.asarray(da.transpose(*[d for d in ("epoch", "trial") if d in da.dims]).values, dtype=float)
        except (TypeError, ValueError) as e:
            raise UserError(f"variable {name!r} is not numeric ({da.dtype}); labels must be numbers") from e
        out[..., j] = np.broadcast_to(values, (E, N))
    out[out < 0] = np.nan
    if exclude_catch and "catch" in ds.variables:
        out[:, ds["catch"].values.astype(bool), :] = np.nan
    return out


def period_groups(ds: xr.Dataset) -> list[tuple[str, np.ndarray | None]]:
    """``(period name, time step indices)`` of each task period in order of first appearance.

    A dataset without a time dim gives ``[("all", None)]``; time steps without a ``period``
    coord give one period ``"all"`` with every step.
    """
    if "time" not in ds.dims:
        return [(ALL_PERIOD, None)]
    T = ds.sizes["time"]
    if "period" not in ds.coords or ds["period"].dims != ("time",):
        return [(ALL_PERIOD, np.arange(T))]
    p = np.asarray(ds["period"].values).astype(str)
    names = list(dict.fromkeys(p.tolist()))
    return [(n, np.flatnonzero(p == n)) for n in names]


def layer_array(ds: xr.Dataset, layer: str, dtype=np.float64) -> np.ndarray:
    """One layer's activity as (epoch, trial, time, unit); a layer without time gets a time axis of 1."""
    act = ds[layer]
    udim = unit_dim(act)
    order = ["epoch", "trial"] + (["time"] if "time" in act.dims else []) + [udim]
    extra = set(act.dims) - set(order)
    if extra:
        raise UserError(f"layer {layer!r} has dims {act.dims}; expected (epoch, trial[, time], unit)")
    a = np.asarray(act.transpose(*order).values, dtype=dtype)
    if "time" not in act.dims:
        a = a[:, :, None, :]
    if not np.isfinite(a).all():
        raise UserError(f"layer {layer!r} holds non-finite activity (NaN or inf); the analysis needs finite values")
    return a
