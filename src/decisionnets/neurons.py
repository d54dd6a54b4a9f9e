"""Recorded neurons: activation datasets from arrays and NWB files, and network activity out to NWB.

A lab's recording (trials x time bins x units) and a network's recorded layer meet in the same
activation dataset (DESIGN.md section 3), so the same estimators, figures and sweeps apply to both:

* :func:`from_arrays` builds the dataset from arrays: ``hidden`` (trial, time, unit) or (trial,
  unit), per-trial labels as coordinates on ``trial``, no ``epoch`` dim;
* :func:`from_nwb` bins the spike times of an NWB file's units (or averages one of its
  TimeSeries) around a trial event; the trials table's columns become the labels;
* :func:`to_nwb` writes one recorded epoch of a run (or any activation dataset) to an NWB file: a
  trials table with the labels (and the network's choices) and one TimeSeries per recorded layer in
  the processing module ``network``;
* :func:`save_recording` writes a dataset without ``epoch`` into a run directory
  (``activations/epoch_00000.nc``), so that ``decisionnets analyze`` and :func:`decisionnets.open_activations`
  read it like a trained network's run.

Labels that are not numbers (strings, booleans) are stored as integer class codes, 0..C-1 in
sorted order of the values, with the values in the label's attribute ``classes`` (a JSON list), so
that :func:`decisionnets.usable_information` decodes them directly. NWB support needs the optional
extra ``decisionnets[nwb]`` (pynwb); it is imported only when an NWB function is called.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from decisionnets.errors import DataFileError, UserError

__all__ = ["from_arrays", "from_nwb", "to_nwb", "save_recording"]

#: Names a label cannot take (they are the dataset's dims and activity variable).
_RESERVED = ("trial", "time", "unit", "hidden", "period", "epoch")

#: Trial-table columns that are not labels (the trial's own times).
_TIME_COLUMNS = ("start_time", "stop_time", "timeseries", "tags")


# ------------------------------------------------------------------------------------------ arrays
def _label_dict(labels) -> dict[str, np.ndarray]:
    """Labels as {name: 1-D array}: a mapping, a pandas DataFrame, or one 1-D array (named ``label``)."""
    if labels is None:
        return {}
    if isinstance(labels, Mapping) or hasattr(labels, "items") and hasattr(labels, "columns"):
        return {str(k): np.asarray(v) for k, v in labels.items()}
    arr = np.asarray(labels)
    if arr.ndim == 1:
        return {"label": arr}
    raise UserError(f"labels must be a mapping of name -> one value per trial (or one 1-D array); "
                    f"got {type(labels).__name__} of shape {arr.shape}")


def _encode(name: str, values: np.ndarray) -> tuple[np.ndarray, dict]:
    """Numbers stay as they are; strings, booleans and objects become class codes 0..C-1 (sorted values)."""
    if values.dtype.kind in "iuf":
        return values, {}
    if values.dtype.kind == "S":
        values = values.astype(str)
    if values.dtype.kind == "O":
        values = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values])
    classes, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64), {"classes": json.dumps([c.item() if hasattr(c, "item") else c for c in classes])}


def _whole(values) -> bool:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return bool(v.size) and bool(np.all(v == np.round(v)))


def from_arrays(activity, labels, *, time=None, unit=None, period=None, attrs=None) -> xr.Dataset:
    """An activation dataset from arrays: recorded neurons (or any units) and per-trial labels.

    Parameters
    ----------
    activity : array (n_trials, n_times, n_units) or (n_trials, n_units)
        Activity of each unit on each trial (e.g. binned firing rates); NaN where a trial has no
        value (that trial is left out of the problems it is NaN in).
    labels : mapping of str to array (n_trials,), a pandas DataFrame, or one array (n_trials,)
        Per-trial labels (e.g. ``{"color": ..., "choice": ...}``); one array is named ``label``.
        Numbers are kept; strings and booleans become class codes (attribute ``classes``).
    time : array (n_times,), optional
        Time of each bin (default 0..n_times-1), in ms to match a network's run (the figures of
        ``analyze`` label it ms); only with 3-D activity.
    unit : array (n_units,), optional
        Unit ids (default 0..n_units-1).
    period : array of str (n_times,), optional
        Task period of each time bin (coord ``period`` on ``time``, as in a network's run).
    attrs : dict, optional
        Dataset attributes (strings and numbers, e.g. ``{"dt": 50, "source": "monkey N, session 3"}``).

    Returns
    -------
    xr.Dataset
        ``hidden`` (trial, time, unit) or (trial, unit); each label a coordinate on ``trial``;
        attrs ``decode_labels`` (JSON list of the class labels, those with whole-number values:
        what ``analyze`` decodes by default), ``analyses`` (``"[]"``) and ``attrs``.

    Raises
    ------
    UserError
        Activity not 2-D/3-D; a label, ``time``, ``unit`` or ``period`` whose length differs from
        the activity's trials, bins or units; a label named like a dim.

    Examples
    --------
    >>> ds = from_arrays(np.zeros((40, 5, 3)), {"color": np.arange(40) % 2})
    >>> ds.hidden.dims
    ('trial', 'time', 'unit')
    """
    act = np.asarray(activity)
    if act.ndim not in (2, 3):
        raise UserError(f"activity must have shape (trials, time, units) or (trials, units); got shape {act.shape}")
    if act.dtype.kind not in "iufb":
        raise UserError(f"activity must be numeric; got dtype {act.dtype}")
    n_trials = act.shape[0]
    dims = ("trial", "time", "unit") if act.ndim == 3 else ("trial", "unit")
    coords: dict = {"trial": np.arange(n_trials)}
    if act.ndim == 3:
        tv = np.arange(act.shape[1]) if time is None else np.asarray(time)
        if tv.shape != (act.shape[1],):
            raise UserError(f"time must have one value per time bin: {tv.size} values, activity has {act.shape[1]} bins")
        coords["time"] = tv
        if period is not None:
            pv = np.asarray(period).astype(str)
            if pv.shape != (act.shape[1],):
                raise UserError(f"period must have one value per time bin: {pv.size} values, activity has "
                                f"{act.shape[1]} bins")
            coords["period"] = ("time", pv)
    elif time is not None or period is not None:
        raise UserError(f"time/period need activity with a time axis (trials, time, units); got shape {act.shape}")
    uv = np.arange(act.shape[-1]) if unit is None else np.asarray(unit)
    if uv.shape != (act.shape[-1],):
        raise UserError(f"unit must have one id per unit: {uv.size} ids, activity has {act.shape[-1]} units")
    coords["unit"] = uv
    lab = _label_dict(labels)
    if not lab:
        raise UserError("labels are empty; give at least one per-trial label (e.g. {'color': ...})")
    label_attrs = {}
    for name, values in lab.items():
        if name in _RESERVED:
            raise UserError(f"a label cannot be named {name!r} (a dim or variable of the dataset); rename it")
        if values.ndim != 1 or values.shape[0] != n_trials:
            raise UserError(f"labels must have one value per trial: {name!r} has {values.size} values "
                            f"(shape {values.shape}), activity has {n_trials} trials")
        values, la = _encode(name, values)
        coords[name] = ("trial", values)
        label_attrs[name] = la
    a = dict(attrs or {})
    for k, v in a.items():
        if not isinstance(v, (str, int, float, np.integer, np.floating)):
            raise UserError(f"attrs must hold strings and numbers (netCDF); attr {k!r} is {type(v).__name__}")
    # decoded by default: the class labels (integer or whole-number values), not continuous ones
    classes = [n for n in lab if np.asarray(coords[n][1]).dtype.kind in "iub" or _whole(coords[n][1])]
    a.setdefault("decode_labels", json.dumps(classes))
    a.setdefault("analyses", "[]")
    hidden = act if act.dtype.kind == "f" else act.astype(np.float32)
    ds = xr.Dataset({"hidden": (dims, hidden)}, coords=coords, attrs=a)
    for name, la in label_attrs.items():
        ds[name].attrs.update(la)
    return ds


def save_recording(ds: xr.Dataset, run_dir) -> Path:
    """Write an activation dataset without ``epoch`` (e.g. :func:`from_arrays`) into a run directory.

    It becomes the run's only recorded "epoch" 0 (``run_dir/activations/epoch_00000.nc``), so that
    :func:`decisionnets.open_activations`, :func:`decisionnets.analyze_run` and ``decisionnets
    analyze RUN_DIR`` read it like a trained network's run (its labels are the dataset's
    ``decode_labels``). The file is written atomically.

    Parameters
    ----------
    ds : xr.Dataset
        ``hidden`` (trial, time, unit) or (trial, unit) (and other activity variables), labels as
        coordinates on ``trial``; no ``epoch`` dim.
    run_dir : path

    Returns
    -------
    Path of the written file.
    """
    from decisionnets.io import FORMAT_VERSION, IDENTITY_ATTR, write_epoch

    if not isinstance(ds, xr.Dataset):
        raise UserError(f"save_recording needs an xarray.Dataset (from_arrays / from_nwb); got {type(ds).__name__}")
    if "epoch" in ds.dims:
        raise UserError(f"the dataset already has an epoch dim ({ds.sizes['epoch']} epochs): it is a run's, not a "
                        "recording; save it with decisionnets.io.write_epoch per epoch")
    if "trial" not in ds.dims:
        raise UserError(f"the dataset must have a 'trial' dim; its dims are {tuple(ds.dims)}")
    out = ds.copy()
    for name in list(out.data_vars):
        if "trial" in out[name].dims:
            out[name] = out[name].expand_dims(epoch=1)
    out = out.assign_coords(epoch=[0])
    out.attrs["format_version"] = FORMAT_VERSION
    # a recording has no config: its identity is a hash of what it holds (shape, labels, attrs)
    blob = json.dumps({"attrs": {k: str(v) for k, v in ds.attrs.items()}, "sizes": dict(ds.sizes),
                       "coords": sorted(map(str, ds.coords))}, sort_keys=True)
    out.attrs.setdefault(IDENTITY_ATTR, "recording-" + hashlib.sha256(blob.encode()).hexdigest()[:16])
    for name in list(out.coords) + list(out.data_vars):
        if out[name].dtype.kind == "O":
            out[name] = out[name].astype(str)
    return write_epoch(out, run_dir, 0)


# ------------------------------------------------------------------------------------------ NWB in
def _pynwb():
    try:
        import pynwb
    except ImportError:
        raise UserError("NWB files need pynwb: pip install 'decisionnets[nwb]'") from None
    return pynwb


def _column(table, name: str) -> np.ndarray:
    data = table[name].data
    return np.asarray(data[:])


def _find_timeseries(nwb, name: str):
    """A TimeSeries by name: in ``acquisition``, or ``module/name`` / a unique ``name`` in a processing module."""
    if "/" in name:
        mod, _, ts = name.partition("/")
        if mod in nwb.processing and ts in nwb.processing[mod].data_interfaces:
            return nwb.processing[mod][ts]
    elif name in nwb.acquisition:
        return nwb.acquisition[name]
    else:
        found = [m[name] for m in nwb.processing.values() if name in m.data_interfaces]
        if len(found) == 1:
            return found[0]
    have = list(nwb.acquisition) + [f"{m}/{t}" for m in nwb.processing for t in nwb.processing[m].data_interfaces]
    raise UserError(f"timeseries {name!r} is not in the NWB file; it holds: {have or 'no TimeSeries'}")


def from_nwb(path, *, event: str = "start_time", window=(-0.5, 1.0), bin_size: float = 0.05, labels=None,
             units=None, timeseries: str | None = None) -> xr.Dataset:
    """An activation dataset from an NWB file: spike counts of its units around a trial event.

    For each trial, the spike times of each unit (the ``units`` table) are counted in bins of
    ``bin_size`` seconds from ``event + window[0]`` to ``event + window[1]`` and divided by
    ``bin_size`` (firing rate, spikes/s). With ``timeseries``, the samples of that TimeSeries
    (e.g. imaging traces, or network activity written by :func:`to_nwb`) are averaged in the same
    bins instead (NaN where a bin holds no sample). The trials table's columns become per-trial
    labels (coordinates on ``trial``).

    Parameters
    ----------
    path : path of an ``.nwb`` file
    event : str
        Trial-table column holding each trial's alignment time (seconds), e.g. ``"start_time"``,
        ``"stimulus_on"``; NaN: that trial's activity is NaN (left out).
    window : (float, float)
        Seconds around the event, ``window[0] < window[1]``; a whole number of bins.
    bin_size : float
        Seconds per bin.
    labels : list of str, optional
        Trial-table columns to keep as labels (default: every one-value-per-trial column but the
        start and stop times and the event; the event times are the coord ``event_time``).
    units : list, optional
        Ids of the units to keep (default: all), in this order.
    timeseries : str, optional
        Name of a TimeSeries to bin instead of the units: in ``acquisition``, or
        ``"module/name"`` in a processing module (``"network/hidden"`` for :func:`to_nwb`'s files).

    Returns
    -------
    xr.Dataset
        As :func:`from_arrays`: ``hidden`` (trial, time, unit) where ``time`` is the bin centre in
        **ms** from the event (as in a network's run: ``dt`` is in ms); labels on ``trial``, the event
        times (s, file clock) as coord ``event_time``; attrs ``source``, ``event``, ``window_s``,
        ``bin_size`` (s), ``dt`` (ms), ``session_description``, ``identifier``.

    Raises
    ------
    UserError
        pynwb missing; a file without a trials table or without units (or without the
        ``timeseries``); an unknown event or label column; unknown unit ids; a bad window.
    DataFileError
        A file that is missing or not NWB.
    """
    pynwb = _pynwb()
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"NWB file not found: {path}")
    w0, w1 = (float(v) for v in window)
    bin_size = float(bin_size)
    if not (np.isfinite(w0) and np.isfinite(w1) and w1 > w0):
        raise UserError(f"window must be (start, stop) seconds with start < stop; got {tuple(window)}")
    if not (np.isfinite(bin_size) and bin_size > 0):
        raise UserError(f"bin_size must be a positive number of seconds; got {bin_size!r}")
    nb = (w1 - w0) / bin_size
    if abs(nb - round(nb)) > 1e-6 * max(nb, 1):
        raise UserError(f"window {tuple(window)} must hold a whole number of bins of {bin_size} s; it holds {nb:g}")
    nb = int(round(nb))
    try:
        io = pynwb.NWBHDF5IO(str(path), "r", load_namespaces=True)
        nwb = io.read()
    except Exception as e:  # h5py/hdmf raise many kinds on a foreign file
        raise DataFileError(f"cannot read NWB file {path}: {type(e).__name__}: {e}") from None
    with io:
        trials = nwb.trials
        if trials is None or len(trials) == 0:
            raise UserError(f"{path} has no trials table (nwbfile.trials is {'empty' if trials is not None else 'None'}); "
                            "from_nwb aligns activity to a trial event")
        cols = ["start_time", "stop_time", *[c for c in trials.colnames if c not in ("start_time", "stop_time")]]
        if event not in cols:
            raise UserError(f"event {event!r} is not a column of the trials table; columns: {cols}")
        ev = _column(trials, event).astype(float)
        n_trials = ev.shape[0]
        edges = ev[:, None] + w0 + bin_size * np.arange(nb + 1)[None, :]  # (trial, nb+1)
        centres = w0 + bin_size * (np.arange(nb) + 0.5)
        if timeseries is None:
            table = nwb.units
            if table is None or len(table) == 0:
                raise UserError(f"{path} has no units (nwbfile.units is {'empty' if table is not None else 'None'}); "
                                "from_nwb bins units' spike times (pass timeseries=NAME for a TimeSeries)")
            ids = np.asarray(table.id[:])
            rows = list(range(len(ids)))
            if units is not None:
                where = {int(u) if isinstance(u, (int, np.integer)) else u: i for i, u in enumerate(ids.tolist())}
                missing = [u for u in units if u not in where]
                if missing:
                    raise UserError(f"units {missing} are not in the units table; ids: {ids.tolist()}")
                rows = [where[u] for u in units]
                ids = ids[rows]
            act = np.empty((n_trials, nb, len(rows)), dtype=np.float32)
            flat = edges.ravel()
            for j, r in enumerate(rows):
                st = np.sort(np.asarray(table["spike_times"][r], dtype=float))
                cum = np.searchsorted(st, flat, side="left").reshape(edges.shape)
                act[:, :, j] = np.diff(cum, axis=1) / bin_size
            act[~np.isfinite(ev)] = np.nan
            source = "units"
            unit_name = "spikes/s"
        else:
            if units is not None:
                raise UserError("units= selects rows of the units table; with timeseries= select columns afterwards "
                                "(ds.isel(unit=...))")
            ts = _find_timeseries(nwb, timeseries)
            t = np.asarray(ts.get_timestamps(), dtype=float)
            data = np.asarray(ts.data[:], dtype=float)
            data = data.reshape(data.shape[0], -1)
            ids = np.arange(data.shape[1])
            act = np.full((n_trials, nb, data.shape[1]), np.nan, dtype=np.float64)
            for i in range(n_trials):
                if not np.isfinite(ev[i]):
                    continue
                lo, hi = np.searchsorted(t, [edges[i, 0] - 1e-9 * bin_size, edges[i, -1] - 1e-9 * bin_size])
                if hi <= lo:
                    continue
                # bin of each sample; a sample on an edge (up to float rounding) opens the next bin
                b = np.floor((t[lo:hi] - edges[i, 0]) / bin_size + 1e-6).astype(int)
                ok = (b >= 0) & (b < nb)
                sums = np.zeros((nb, data.shape[1]))
                cnt = np.zeros(nb)
                np.add.at(sums, b[ok], data[lo:hi][ok])
                np.add.at(cnt, b[ok], 1)
                with np.errstate(invalid="ignore"):
                    act[i] = sums / cnt[:, None]
            act = act.astype(np.float32)
            source = f"timeseries {timeseries}"
            unit_name = str(ts.unit)
        # labels: the trials table's one-value-per-trial columns
        if labels is None:
            names = [c for c in trials.colnames if c not in _TIME_COLUMNS and c != event]
        else:
            names = list(labels)
            unknown = [c for c in names if c not in cols]
            if unknown:
                raise UserError(f"labels {unknown} are not columns of the trials table; columns: {cols}")
        lab = {}
        for c in names:
            try:
                v = _column(trials, c)
            except Exception:
                v = None
            if v is None or v.ndim != 1 or v.shape[0] != n_trials:
                if labels is not None:
                    raise UserError(f"trial column {c!r} does not hold one value per trial; it cannot be a label")
                continue
            lab[c] = v
        if not lab:
            raise UserError(f"the trials table of {path} has no column to use as a label; columns: {cols}")
        trial_ids = np.asarray(trials.id[:])
        attrs = {"source": f"NWB {path.name}: {source}", "event": event, "window_s": json.dumps([w0, w1]),
                 "bin_size": bin_size, "session_description": str(nwb.session_description),
                 "identifier": str(nwb.identifier), "activity_units": unit_name}
    if any(k in _RESERVED for k in lab):
        lab = {(f"trial_{k}" if k in _RESERVED else k): v for k, v in lab.items()}
    attrs.update(dt=bin_size * 1000.0, time_units="ms")
    ds = from_arrays(act, lab, time=centres * 1000.0, unit=ids, attrs=attrs)
    ds = ds.assign_coords(trial=trial_ids, event_time=("trial", ev))
    ds["time"].attrs.update(units="ms", long_name=f"bin centre, time from {event}")
    ds["event_time"].attrs["units"] = "s"
    ds["hidden"].attrs["units"] = unit_name
    return ds


# ----------------------------------------------------------------------------------------- NWB out
def _epoch_dataset(run_dir_or_dataset, epoch):
    """One recorded epoch (or a recording without epochs) as a Dataset without the ``epoch`` dim.

    From a run directory only the epoch's own file is read (loaded, then closed), not the whole run.
    """
    if isinstance(run_dir_or_dataset, xr.Dataset):
        ds = run_dir_or_dataset
        where = "the dataset"
        if "epoch" not in ds.dims:
            if epoch is not None:
                raise UserError(f"epoch={epoch!r}: {where} has no epoch dim (a recording); leave epoch out")
            return ds.load(), None
        have = [int(e) for e in ds["epoch"].values]
    else:
        from decisionnets.io import ACTIVATIONS, FORMAT_VERSION, check_netcdf

        run = Path(run_dir_or_dataset)
        where = str(run)
        if run.suffix == ".nc":
            files = {None: run}
        else:
            folder = run if run.name == ACTIVATIONS else run / ACTIVATIONS
            files = {int(f.stem.split("_")[-1]): f for f in sorted(folder.glob("epoch_*.nc"))}
            if not files:
                raise DataFileError(f"no recorded epochs in {folder} (expected activations/epoch_*.nc; is this a "
                                    "run directory?)")
        have = sorted(k for k in files if k is not None)
        e = (have[-1] if have else None) if epoch is None else epoch
        if e not in files:
            raise UserError(f"epoch {e!r} was not recorded in {where}; recorded epochs: {have}")
        check_netcdf(files[e])
        try:
            ds = xr.load_dataset(files[e], engine="netcdf4")
        except (OSError, ValueError, RuntimeError) as err:
            raise DataFileError(f"cannot read activation file {files[e]}: {err} (truncated or corrupt?)") from None
        v = ds.attrs.get("format_version")
        if v != FORMAT_VERSION:
            raise DataFileError(f"{files[e]} has activation format version {v!r}; this decisionnets reads version "
                                f"{FORMAT_VERSION}")
        if "epoch" not in ds.dims:
            return ds, None
        have = [int(x) for x in ds["epoch"].values]
    e = have[-1] if epoch is None else epoch
    if not isinstance(e, (int, np.integer)) or int(e) not in have:
        raise UserError(f"epoch {e!r} was not recorded in {where}; recorded epochs: {have}")
    return ds.sel(epoch=int(e)).load(), int(e)


def to_nwb(run_dir_or_dataset, path, *, epoch: int | None = None, session_start_time=None) -> Path:
    """Write one recorded epoch of a run's activity to an NWB file that a lab's NWB tools read.

    Time steps are read from the ``time`` coordinate in the units of its ``units`` attribute (``ms``,
    as a run's, or ``s``; without one: ms when the dataset has a ``dt`` attr, else s).

    Layout: a **trials table** (one row per probe trial, laid end to end in time: trial i runs from
    ``i * L`` to ``(i + 1) * L`` seconds, L = the trial's recorded duration) whose columns are the
    trial labels and the network's ``choice`` and ``correct`` at that epoch; one **TimeSeries** per
    recorded layer (data (samples, units), the trials' time steps in order, timestamps in seconds)
    in the processing module ``network``. ``from_nwb(path, timeseries="network/hidden",
    event="start_time", window=(0, L), bin_size=dt)`` reads the activity back (trial, time, unit).

    Parameters
    ----------
    run_dir_or_dataset : path or xr.Dataset
        A run directory (or one epoch's file), or an activation dataset (with or without ``epoch``).
    path : path of the ``.nwb`` file to write (written atomically).
    epoch : int, optional
        The recorded training epoch to export (default: the last recorded).
    session_start_time : datetime, optional
        Time zone-aware start of the "session" (default: now, UTC).

    Returns
    -------
    Path of the written file.

    Raises
    ------
    UserError
        An epoch that was not recorded; a dataset without activity (a ``unit`` dim).
    """
    _pynwb()  # a one-line error when the extra is missing
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.file import Subject

    from decisionnets.analyses import activity_layers, unit_dim
    from decisionnets.io import atomic_path

    ds, e = _epoch_dataset(run_dir_or_dataset, epoch)
    layers = activity_layers(ds)
    if not layers:
        raise UserError(f"no activity to export (a variable with dims trial and unit); data vars: {list(ds.data_vars)}")
    n_trials = ds.sizes["trial"]
    has_time = "time" in ds.dims
    attrs = ds.attrs
    if has_time:
        tv = np.asarray(ds["time"].values, dtype=float)
        t_units = str(ds["time"].attrs.get("units", "ms" if "dt" in attrs else "s"))
        scale = {"ms": 1e-3, "s": 1.0}.get(t_units, 1.0)
        ts = tv * scale
        if ts.size > 1:
            step = float(np.median(np.diff(ts)))
        else:  # one time step: the run's dt (ms)
            step = float(attrs.get("dt", 1.0)) * 1e-3
        t0 = min(ts[0], 0.0)
        L = ts[-1] - t0 + step  # a trial's duration
        offs = ts - t0
    else:
        step = L = 1.0
        offs = np.zeros(1)
    starts = np.arange(n_trials) * L
    start_time = session_start_time or datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    task = str(attrs.get("task", attrs.get("source", "activation dataset")))
    what = f"epoch {e}" if e is not None else "recording"
    ident = str(attrs.get("run_identity", "")) or hashlib.sha256(json.dumps(
        {k: str(v) for k, v in attrs.items()}, sort_keys=True).encode()).hexdigest()[:16]
    nwb = NWBFile(
        session_description=f"decisionnets: activity of a network ({task}), {what}, on its {n_trials} probe trials",
        identifier=f"decisionnets-{ident}-{what.replace(' ', '')}",
        session_start_time=start_time,
        experiment_description="artificial network trained on a decision task; probe trials laid end to end",
        source_script="decisionnets.to_nwb", source_script_file_name="decisionnets/neurons.py",
        notes=json.dumps({k: (v if isinstance(v, (int, float, str)) else str(v)) for k, v in attrs.items()
                          if k != "config"})[:10000],
    )
    # NWB requires a subject with a sex and an age: a network has neither, so sex "O" (other) and a
    # date of birth equal to the session start, both said in the description
    nwb.subject = Subject(subject_id=f"network-{ident}", sex="O", date_of_birth=start_time,
                          description=f"an artificial network ({attrs.get('model', 'model')}) trained by decisionnets "
                                      f"on {task}; sex 'O' and date_of_birth (= session start) are placeholders")
    # trials table: labels (trial coords) and the epoch's behaviour
    cols = {}
    for name, c in ds.coords.items():
        if c.dims == ("trial",) and name != "trial" and c.dtype.kind in "iufbUSO":
            cols[str(name)] = np.asarray(c.values)
    for name in ("choice", "correct"):
        if name in ds.data_vars and ds[name].dims == ("trial",):
            cols[name] = np.asarray(ds[name].values)
    for name, v in cols.items():
        desc = str(ds[name].attrs.get("description", "")) or (
            f"network's {name} at {what}" if name in ("choice", "correct") else f"trial label {name!r}")
        nwb.add_trial_column(name=name, description=desc)
    for i in range(n_trials):
        row = {}
        for name, v in cols.items():
            x = v[i]
            row[name] = x.item() if hasattr(x, "item") else x
        nwb.add_trial(start_time=float(starts[i]), stop_time=float(starts[i] + L), **row)
    mod = nwb.create_processing_module(name="network", description=f"network unit activity at {what}, "
                                       "one TimeSeries per recorded layer (samples = trials x time steps)")
    stamps = (starts[:, None] + offs[None, :]).ravel()
    regular = stamps.size > 1 and np.allclose(np.diff(stamps), step, rtol=1e-9, atol=1e-12)
    timing = dict(starting_time=float(stamps[0]), rate=1.0 / step) if regular else dict(timestamps=stamps)
    for layer in layers:
        da = ds[layer]
        u = unit_dim(da)
        order = ("trial", "time", u) if has_time else ("trial", u)
        data = np.asarray(da.transpose(*order).values, dtype=np.float32).reshape(-1, da.sizes[u])
        mod.add(TimeSeries(
            name=layer, data=data, unit=str(da.attrs.get("units", "a.u.")), **timing,
            description=f"activity of layer {layer!r} ({da.sizes[u]} units), trial by trial; each trial spans "
                        f"{L:g} s from its trials-table start_time",
            comments=f"columns: {u} 0..{da.sizes[u] - 1}",
        ))
    path = Path(path)
    with atomic_path(path) as tmp:
        named = Path(f"{tmp}.nwb")  # pynwb wants the .nwb suffix
        try:
            with NWBHDF5IO(str(named), "w") as io:
                io.write(nwb)
            os.replace(named, tmp)
        finally:
            named.unlink(missing_ok=True)
    return path
