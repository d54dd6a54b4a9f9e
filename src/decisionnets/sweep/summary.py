"""The summary of a sweep, built from its runs' ``information.nc`` files.

:func:`gather` reads every run's information (the layout of ``decisionnets analyze``; files of
the former lean sweep analysis, without a ``layer`` dim, are read too), reduces time-resolved
runs to the mean over the one period of ``[sweep.analysis] periods`` and stacks the runs along the grid's dims.
:func:`peak_final` and :func:`describe` turn it into numbers and a text table; figures are in
:mod:`decisionnets.sweep.figures`.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from decisionnets.errors import UserError
from decisionnets.sweep.analysis import summary_reduction

_KEEP = ("layer", "decoder", "variable", "epoch")


def run_information(run_dir, period: str = "decision", layer: str = ""):
    """One run's information and its fold s.d., reduced to ([layer,] [decoder,] variable, epoch).

    Parameters
    ----------
    run_dir : path
        A run directory with ``information.nc``.
    period : str
        Time-resolved runs: the mean over the time steps of this period ("" or absent: every step).
    layer : str
        The layer kept ("": every layer; a layer dim of size one is dropped).

    Returns
    -------
    xr.Dataset
        ``information``, ``information_sd`` and, where present, ``decoding_accuracy`` (bits /
        fraction) with dims ([layer,] [decoder,] variable, epoch); ``ceiling`` (variable), the
        ideal observer's bits the task declares (``analyze`` writes it), where known; attr
        ``decode_labels``, the task's declared labels (JSON), where the run has it.
    """
    from decisionnets.io import open_dataset

    with open_dataset(Path(run_dir) / "information.nc", "information file") as ds:
        ds = ds.load()
    declared = dict(ds.attrs)
    if "accuracy" in ds and "decoding_accuracy" not in ds:  # the former lean sweep analysis
        ds = ds.rename(accuracy="decoding_accuracy")
    ds = ds[[v for v in ("information", "information_sd", "decoding_accuracy", "ceiling") if v in ds]]
    if "layer" in ds.dims:
        if layer:
            ds = ds.sel(layer=layer)
        elif ds.sizes["layer"] == 1:
            ds = ds.isel(layer=0)
    if "time" in ds.dims:
        per = next((c for c in ("time_period", "period") if c in ds.coords and ds[c].dims == ("time",)), None)
        if period and per is not None and (ds[per] == period).any():
            ds = ds.isel(time=np.flatnonzero(ds[per].values.astype(str) == period))
        ds = ds.mean("time")
    for d in list(ds.dims):
        if d not in _KEEP:
            ds = ds.isel({d: 0})
    ds = ds.drop_vars([c for c in ds.coords if c not in _KEEP], errors="ignore")
    ds.attrs = {k: v for k, v in declared.items() if k == "decode_labels"}  # the task's declared labels
    return ds


def _steps_and_accuracy(run_dir: Path) -> tuple[dict, float]:
    """{epoch: SGD steps so far} and the last validation accuracy, from the run's log.csv."""
    import pandas as pd

    step_of, val_acc = {0: 0}, float("nan")
    log = run_dir / "log.csv"
    if log.is_file():
        rows = pd.read_csv(log)
        if len(rows) and "val_accuracy" in rows:
            val_acc = float(rows["val_accuracy"].iloc[-1])
        if len(rows) and "step" in rows:
            step_of.update(zip(rows["epoch"].astype(int), rows["step"].astype(float)))
    return step_of, val_acc


def gather(sweep_dir, points=None, spec=None):
    """The sweep's summary :class:`xarray.Dataset` from its runs' information.nc files.

    Parameters
    ----------
    sweep_dir : path
    points, spec : optional
        The plan and the spec (default: read from ``SWEEP_DIR/sweep.json``).

    Returns
    -------
    xr.Dataset
        ``information``, ``information_sd`` (bits) and ``decoding_accuracy`` with dims
        (*grid dims, seed, [layer,] [decoder,] variable, epoch) (a ``layer`` dim only when
        ``[sweep.analysis] layers`` does not name exactly one and runs recorded several layers; a ``decoder`` dim
        when several decoder families were used); ``step`` (*grid dims, seed, epoch): SGD steps
        by the end of each epoch; ``status`` (str) and ``final_val_accuracy`` with dims
        (*grid dims, seed); ``ceiling`` (bits, the ideal observer's information about each
        variable, as the task declares it and ``analyze`` wrote it into the runs' information.nc)
        with dims (*grid dims, variable). NaN where a run has no such epoch or failed, and where
        the task knows no ceiling.
    """
    import pandas as pd
    import xarray as xr

    from decisionnets.io import read_status

    sweep_dir = Path(sweep_dir)
    if points is None or spec is None:
        meta = json.loads((sweep_dir / "sweep.json").read_text())
        dims = meta["dims"] + ["seed"]
        entries = [(r["run_id"], r["coords"]) for r in meta["runs"]]
        analysis = meta.get("analysis", {})
    else:
        dims = spec.dims + ["seed"]
        entries = [(p.run_id, p.coords) for p in points]
        analysis = spec.analysis.to_table()
    period, layer = summary_reduction(analysis)
    infos, scalars, index, steps = [], [], [], []
    for run_id, coords in entries:
        run_dir = sweep_dir / "runs" / run_id
        try:
            st = read_status(run_dir).get("status", "missing")
        except UserError:
            st = "missing"
        infos.append(run_information(run_dir, period, layer) if (run_dir / "information.nc").is_file() else None)
        step_of, val_acc = _steps_and_accuracy(run_dir)
        steps.append(step_of)
        scalars.append({"status": st, "final_val_accuracy": val_acc})
        index.append(tuple(coords[d] for d in dims))
    present = [i for i in infos if i is not None]
    mi = pd.MultiIndex.from_tuples(index, names=dims)
    data, coords = {}, {}
    if present:
        epochs = sorted({int(e) for i in present for e in i["epoch"].values})
        variables = list(dict.fromkeys(str(v) for i in present for v in i["variable"].values))
        inner_coords = {"epoch": epochs, "variable": variables}
        for d in ("layer", "decoder"):  # runs analysed with fewer layers / decoders get NaN there
            if any(d in i.dims for i in present):
                inner_coords[d] = list(dict.fromkeys(str(x) for i in present if d in i.dims for x in i[d].values))
        inner = tuple(d for d in ("layer", "decoder", "variable", "epoch") if d in inner_coords)
        shape = (len(index),) + tuple(len(inner_coords[d]) for d in inner)
        arrays = {v: np.full(shape, np.nan) for v in ("information", "information_sd", "decoding_accuracy")}
        ceiling = np.full((len(index), len(variables)), np.nan)
        for k, i in enumerate(infos):
            if i is None or any(d not in i.dims for d in inner):
                continue
            if "ceiling" in i:
                ceiling[k] = i["ceiling"].reindex(variable=variables).values
            i = i.reindex({d: inner_coords[d] for d in inner})
            for v, arr in arrays.items():
                if v in i:
                    arr[k] = i[v].transpose(*inner).values
        step_arr = np.array([[st.get(e, np.nan) for e in epochs] for st in steps], dtype=float)
        data["step"] = (("run", "epoch"), step_arr, {"long_name": "SGD steps taken by the end of the epoch"})
        data["information"] = (("run",) + inner, arrays["information"], {"units": "bits"})
        data["information_sd"] = (("run",) + inner, arrays["information_sd"],
                                  {"units": "bits", "long_name": "s.d. over decoder folds"})
        if np.isfinite(arrays["decoding_accuracy"]).any():
            data["decoding_accuracy"] = (("run",) + inner, arrays["decoding_accuracy"],
                                         {"long_name": "held-out decoding accuracy"})
        data["ceiling"] = (("run", "variable"), ceiling,
                           {"units": "bits", "long_name": "ideal-observer information (the ceiling)"})
        coords = inner_coords
    data["status"] = (("run",), np.array([s["status"] for s in scalars], dtype=object))
    data["final_val_accuracy"] = (("run",), np.array([s["final_val_accuracy"] for s in scalars]))
    ds = xr.Dataset(data, coords=coords)
    ds = ds.assign_coords(xr.Coordinates.from_pandas_multiindex(mi, "run")).unstack("run")
    ds["status"] = ds["status"].fillna("missing").astype(str)
    if "ceiling" in ds:
        ds["ceiling"] = ds["ceiling"].max("seed").transpose(..., "variable")
    declared = next((i.attrs["decode_labels"] for i in present if "decode_labels" in i.attrs), None)
    if declared is not None:  # the task's declared labels (first_variable)
        ds.attrs["decode_labels"] = str(declared)
    ds.attrs.update(sweep=sweep_dir.name, analysis=json.dumps(analysis, sort_keys=True),
                    reduction=f"information averaged over the '{period}' period for time-resolved runs")
    return ds


def information(summary, variable, decoder=None, layer=None):
    """``summary["information"]`` of one variable (one decoder family and layer: by default the first)."""
    info = summary["information"].sel(variable=variable)
    for dim, value in (("decoder", decoder), ("layer", layer)):
        if dim in info.dims:
            info = info.sel({dim: value}) if value is not None else info.isel({dim: 0})
    return info


def regimes(summary):
    """The summary's parameter combinations (without seed) as a list of coordinate dicts."""
    dims = [d for d in summary["status"].dims if d != "seed"]
    return [dict(zip(dims, c)) for c in itertools.product(*(summary[d].values.tolist() for d in dims))]


def label(reg: dict) -> str:
    """A regime's coordinates as ``k=v, ...`` ("all" for a sweep without parameter dims)."""
    return ", ".join(f"{k}={v}" for k, v in reg.items()) or "all"


def first_variable(summary) -> str:
    """The variable figures and tables show by default: the first label the task declares
    (attr ``decode_labels``, written by the recorder; for the checkerboard, ``color``) among the
    summary's variables, else the summary's first variable."""
    variables = [str(v) for v in summary["variable"].values]
    try:
        declared = [str(v) for v in json.loads(str(summary.attrs.get("decode_labels", "[]")))]
    except ValueError:
        declared = []
    return next((v for v in declared if v in variables), variables[0])


def ceiling(summary, reg: dict, variable: str) -> float:
    """The ideal observer's bits about ``variable`` in regime ``reg`` (NaN where unknown)."""
    if "ceiling" not in summary or variable not in summary["ceiling"]["variable"].values:
        return float("nan")
    return float(summary["ceiling"].sel(reg).sel(variable=variable))


def peak_final(summary, variable=None, decoder=None):
    """Per regime: peak and final information about ``variable`` (mean and s.d. over seeds;
    default: :func:`first_variable`).

    Returns
    -------
    list of dict
        ``regime`` (dict), ``peak_mean``, ``peak_sd``, ``peak_epoch`` (median over seeds),
        ``final_mean``, ``final_sd``, ``init_mean``, ``n`` (seeds with data).
    """
    import xarray as xr

    out = []
    info = information(summary, variable or first_variable(summary), decoder)
    for reg in regimes(summary):
        x = info.sel(reg)  # (seed, epoch)
        ok = x.notnull().any("epoch")
        x = x.where(ok, drop=True)
        if x.sizes.get("seed", 0) == 0:
            out.append({"regime": reg, "n": 0})
            continue
        vals = x.transpose("seed", "epoch").values
        last_idx = vals.shape[1] - 1 - np.argmax(np.isfinite(vals[:, ::-1]), axis=1)
        last = xr.DataArray(vals[np.arange(vals.shape[0]), last_idx], dims=("seed",))
        peak = x.max("epoch")
        pe = x.fillna(-np.inf).argmax("epoch")
        out.append({"regime": reg, "n": int(x.sizes["seed"]),
                    "init_mean": float(x.isel(epoch=0).mean()), "peak_mean": float(peak.mean()),
                    "peak_sd": float(peak.std()), "peak_epoch": float(np.median(x["epoch"].values[pe.values])),
                    "final_mean": float(last.mean()), "final_sd": float(last.std())})
    return out


def describe(summary) -> str:
    """Plain-text table: per regime and variable, information at epoch 0, peak (epoch) and final,
    mean +- s.d. over seeds (first decoder family and layer), the ceiling of each variable (where the
    task declares one), validation accuracy, status."""
    if "information" not in summary:
        return "no information recorded (every run failed or was not analysed)"
    variables = [str(v) for v in summary["variable"].values]
    stats = {v: peak_final(summary, v) for v in variables}
    head = ["regime", "n"] + [f"{v}: init, peak (epoch), final" for v in variables] + ["ceiling", "val acc", "status"]
    lines = [" | ".join(head)]
    for k, reg in enumerate(regimes(summary)):
        st = summary["status"].sel(reg).values.ravel().tolist()
        parts = [label(reg), str(max(stats[v][k]["n"] for v in variables))]
        for v in variables:
            c = stats[v][k]
            parts.append(f"{c['init_mean']:.3f}, {c['peak_mean']:.3f} +- {c['peak_sd']:.3f} ({c['peak_epoch']:.0f}), "
                         f"{c['final_mean']:.3f} +- {c['final_sd']:.3f}" if c["n"] else "-")
        ceil = [f"{ceiling(summary, reg, v):.3f}" for v in variables if np.isfinite(ceiling(summary, reg, v))]
        parts.append(", ".join(ceil) or "-")
        parts.append(f"{float(summary['final_val_accuracy'].sel(reg).mean()):.3f}")
        parts.append(", ".join(f"{st.count(s)} {s}" for s in sorted(set(st))))
        lines.append(" | ".join(parts))
    return "\n".join(lines)
