"""Analyse one run directory: usable information over training, written to disk with figures.

:func:`analyze_run` reads ``RUN_DIR/activations`` (the activation dataset, DESIGN.md section 3),
computes

* ``information`` (layer, variable, epoch[, time]): usable information (bits) about each label
  variable (color, direction, target_config, the network's choice; fine/coarse labels for images)
  on every recorded epoch and time step, by :func:`decisionnets.decoding.decoding_scores` (all
  epochs x time steps x variables of a layer fitted in one batched call), with its fold spread
  ``information_sd`` and held-out ``decoding_accuracy``;
* ``period_information`` (layer, variable, epoch, period): the mean over each period's time steps
  (the period of each time step is the coord ``time_period`` (time));
* ``error_information`` (layer, error_variable, epoch[, error_time]): choice vs direction, at the
  last time step of each task period (coord ``error_period``; the last one is the response), separated on
  error trials. Choice and direction differ only on error trials, so per epoch we decode both on a
  balanced subset: for each direction, all error trials plus as many correct trials of that
  direction drawn at random (seeded). In that subset choice and direction are independent, so
  information about ``choice`` is about the decision, not the stimulus, and vice versa. Where a
  direction has fewer error trials than folds (typical late in training) the epoch is NaN;
* ``cross_temporal`` (layer, variable, train_time, test_time): temporal generalization at one
  epoch (default: the last);
* ``p_right`` (epoch, evidence): psychometric data, fraction of "right" choices vs the signed
  coherence toward the right target (ColorDirection runs);
* ``probe_loss``, ``probe_accuracy`` (epoch) copied from the activations,

writes them to ``RUN_DIR/information.nc`` and PNG figures to ``RUN_DIR/figures/``. Catch trials
(coord ``catch`` == 1) are excluded from every decoding problem.
"""

from __future__ import annotations

import json
from glob import glob
from pathlib import Path
from typing import Sequence

import numpy as np
import xarray as xr

from decisionnets.decoding import cross_temporal_information, decoding_scores
from decisionnets.errors import DataFileError, UserError

__all__ = ["analyze_run", "psychometric", "balanced_error_labels", "label_variables", "activity_layers"]

TRIAL_VARIABLES = ("color", "direction", "target_config")
IMAGE_VARIABLES = ("fine_label", "coarse_label")


# ------------------------------------------------------------------------------------------ input
def _open_activations(run_dir: Path) -> xr.Dataset:
    """The run's activation dataset: :func:`decisionnets.io.open_activations`, or a plain open."""
    try:
        from decisionnets.io import open_activations
    except ImportError:  # io.py not available: open the files directly
        files = sorted(glob(str(Path(run_dir) / "activations" / "*.nc")))
        if not files:
            raise DataFileError(f"no activation files in {Path(run_dir) / 'activations'}") from None
        return xr.open_mfdataset(files, combine="nested", concat_dim="epoch")
    return open_activations(run_dir)


def activity_layers(ds: xr.Dataset) -> list[str]:
    """Data variables holding activations: those with a ``unit`` or ``<layer>_unit`` dim."""
    return [
        str(k) for k, v in ds.data_vars.items()
        if "trial" in v.dims and any(d == "unit" or str(d).endswith("_unit") for d in v.dims)
    ]


def label_variables(ds: xr.Dataset) -> list[str]:
    """Default label variables of a run: those of color/direction/target_config/choice and
    fine_label/coarse_label present (with ``ground_truth`` as a fallback for neurogym envs)."""
    names = [v for v in TRIAL_VARIABLES + IMAGE_VARIABLES if v in ds.variables]
    if not names and "ground_truth" in ds.variables:
        names.append("ground_truth")
    if "choice" in ds.variables:
        names.append("choice")
    return names


def _labels(ds: xr.Dataset, names: Sequence[str], exclude_catch: bool) -> dict[str, xr.DataArray]:
    out = {}
    catch = ds["catch"].values.astype(bool) if (exclude_catch and "catch" in ds.variables) else None
    for name in names:
        if name not in ds.variables:
            raise UserError(f"variable {name!r} is not in the activation dataset; available: {sorted(map(str, ds.variables))}")
        da = ds[name]
        if "trial" not in da.dims:
            raise UserError(f"variable {name!r} has no 'trial' dim (dims {da.dims}); it cannot be decoded")
        da = da.load().astype(float)
        da = da.drop_vars([c for c in da.coords if c not in da.dims])
        if catch is not None:
            da = da.where(~xr.DataArray(catch, dims="trial"), -1.0)
        out[name] = da
    return out


def balanced_error_labels(choice: xr.DataArray, direction: xr.DataArray, *, folds: int = 5, seed: int = 0,
                          valid: np.ndarray | None = None) -> dict[str, xr.DataArray]:
    """Choice and direction labels restricted, per epoch, to error trials + matched correct trials.

    Parameters
    ----------
    choice : DataArray (epoch, trial) int
    direction : DataArray (trial) int
    folds : int — epochs with fewer than ``folds`` error trials for some direction get all -1 (NaN).
    valid : bool ndarray (trial), optional — trials allowed (e.g. not catch).

    Returns
    -------
    {"choice": DataArray (epoch, trial), "direction": DataArray (epoch, trial)}, -1 outside the subset.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xE770]))
    ch = np.asarray(choice.transpose("epoch", "trial").values)
    dr = np.asarray(direction.values).astype(int)
    ok = np.ones(dr.shape, bool) if valid is None else np.asarray(valid, bool)
    ok &= dr >= 0
    sub = np.zeros(ch.shape, bool)
    dirs = np.unique(dr[ok])
    for e in range(ch.shape[0]):
        keep = np.zeros(dr.shape, bool)
        enough = len(dirs) >= 2
        for dv in dirs:
            err = np.flatnonzero(ok & (dr == dv) & (ch[e] != dv) & (ch[e] >= 0))
            cor = np.flatnonzero(ok & (dr == dv) & (ch[e] == dv))
            if len(err) < folds or len(cor) < len(err):
                enough = False
                break
            keep[err] = True
            keep[rng.choice(cor, size=len(err), replace=False)] = True
        if enough:
            sub[e] = keep
    dims = ("epoch", "trial")
    return {
        "choice": xr.DataArray(np.where(sub, ch, -1), dims=dims),
        "direction": xr.DataArray(np.where(sub, dr[None, :], -1), dims=dims),
    }


def psychometric(choice: xr.DataArray, coherence: xr.DataArray, target_config: xr.DataArray | None = None,
                 valid: np.ndarray | None = None) -> xr.DataArray:
    """Fraction of "right" choices (choice == 1) per epoch and signed evidence toward the right.

    Evidence toward the right target = coherence (> 0: red dominant) if the red target is on the
    right (``target_config`` == 1), minus coherence otherwise; ``coherence`` itself when
    ``target_config`` is None.

    Returns
    -------
    DataArray (epoch, evidence), fraction in [0, 1].
    """
    coh = np.asarray(coherence.values, dtype=float)
    ev = coh * (2 * np.asarray(target_config.values) - 1) if target_config is not None else coh
    ev = np.round(ev, 6)
    ok = np.isfinite(ev) if valid is None else (np.isfinite(ev) & np.asarray(valid, bool))
    levels = np.unique(ev[ok])
    ch = np.asarray(choice.transpose("epoch", "trial").values)
    out = np.full((ch.shape[0], len(levels)), np.nan)
    for i, lv in enumerate(levels):
        m = ok & (ev == lv)
        out[:, i] = (ch[:, m] == 1).mean(-1)
    return xr.DataArray(out, dims=("epoch", "evidence"), coords={"epoch": choice["epoch"].values, "evidence": levels},
                        name="p_right", attrs={"units": "fraction of right choices"})


# ------------------------------------------------------------------------------------------ main
def _period_ends(ds: xr.Dataset) -> list[int]:
    """Indices of the last time step of each task period (just the last step without periods)."""
    T = ds.sizes["time"]
    if "period" not in ds.coords or ds["period"].dims != ("time",):
        return [T - 1]
    p = np.asarray(ds["period"].values).astype(str)
    return [i for i in range(T) if i == T - 1 or p[i + 1] != p[i]]


def analyze_run(
    run_dir,
    *,
    variables: Sequence[str] | None = None,
    decoder="linear",
    folds: int = 5,
    device: str = "cpu",
    progress: bool = True,
    cross_temporal_epoch: int | None = None,
    seed: int = 0,
    exclude_catch: bool = True,
    time_stride: int = 1,
    dtype: str = "float32",
    standardize: bool = True,
    epochs: Sequence[int] | None = None,
    layers: Sequence[str] | None = None,
    periods: Sequence[str] | None = None,
    figures: bool = True,
) -> list[Path]:
    """Usable information of every recorded layer about the run's label variables, with figures.

    Parameters
    ----------
    run_dir : path
        A run directory with ``activations/*.nc``.
    variables : list of str, optional
        Label variables (trial coords or (epoch, trial) data vars such as ``choice``); default:
        :func:`label_variables`.
    decoder : str, Decoder, or a list of them
        Decoder family (:func:`decisionnets.decoders.decoder_names`: ``linear``, ``linear-raw``,
        ``mlp``, ``sgd-mlp``, ``sgd-linear``); several give ``information`` (and the error
        analysis) a ``decoder`` dim and the information figure one row per decoder. The
        cross-temporal matrix always uses ``linear``.
    folds : int
    device : str — torch device of the decoders.
    progress : bool — show a tqdm progress bar.
    cross_temporal_epoch : int, optional — epoch of the cross-temporal matrix (default: last).
    seed : int — fold and subset seed.
    exclude_catch : bool — drop catch trials (coord ``catch`` == 1).
    time_stride : int — decode every ``time_stride``-th recorded time step, counted back from the
        last (which is always kept); fewer problems, proportionally faster.
    dtype : {"float32", "float64"} — precision of the decoders' matmuls.
    standardize : bool — kept for compatibility: ``decoder="linear", standardize=False`` is
        ``decoder="linear-raw"``.
    epochs : list of int, optional — decode only these recorded epochs (default: all); e.g. to
        afford the SGD decoders. The cross-temporal epoch must be among them.
    layers : list of str, optional — decode only these recorded layers (default: every one).
    periods : list of str, optional — time-resolved runs: decode only the time steps of these task
        periods (default: every step); e.g. ``["decision"]`` for a sweep.
    figures : bool — draw the figures (False: only ``information.nc``).

    Returns
    -------
    list of Path: ``RUN_DIR/information.nc`` then the figures.
    """
    from tqdm.auto import tqdm

    run_dir = Path(run_dir)
    # a single dataset file (e.g. a closed-loop rollout, RUN_DIR/rollout.nc): results next to it,
    # in a folder of the same name (rollout.nc -> rollout/information.nc, rollout/figures/)
    out_dir = run_dir.with_suffix("") if run_dir.suffix == ".nc" else run_dir
    if not (isinstance(time_stride, int) and time_stride >= 1):
        raise UserError(f"time_stride must be an integer >= 1; got {time_stride!r}")
    if not (isinstance(folds, int) and folds >= 2):
        raise UserError(f"folds must be an integer >= 2; got {folds!r}")
    ds = _open_activations(run_dir)
    if epochs is not None:
        want = [int(e) for e in epochs]
        have = set(int(e) for e in ds["epoch"].values)
        missing = [e for e in want if e not in have]
        if missing or not want:
            raise UserError(f"epochs {missing or want} were not recorded; recorded epochs: {sorted(have)}")
        ds = ds.sel(epoch=want)
    decoders = list(decoder) if isinstance(decoder, (list, tuple)) else [decoder]
    if not standardize:
        decoders = ["linear-raw" if dd == "linear" else dd for dd in decoders]
    dec_arg = decoders if len(decoders) > 1 else decoders[0]
    if time_stride > 1 and "time" in ds.dims:
        ds = ds.isel(time=np.arange(ds.sizes["time"] - 1, -1, -time_stride)[::-1])
    if periods and "time" in ds.dims and "period" in ds.coords:
        keep = np.isin(np.asarray(ds["period"].values).astype(str), list(periods))
        if not keep.any():
            raise UserError(f"periods {list(periods)} match no recorded time step; periods: "
                            f"{sorted(set(np.asarray(ds['period'].values).astype(str)))}")
        ds = ds.isel(time=np.flatnonzero(keep))
    recorded = activity_layers(ds)
    if not recorded:
        raise DataFileError(f"no activation variable (dims with 'unit') in {run_dir}; data vars: {list(ds.data_vars)}")
    layers = recorded if not layers else list(layers)
    if set(layers) - set(recorded):
        raise UserError(f"layer {sorted(set(layers) - set(recorded))[0]!r} was not recorded in {run_dir}; "
                        f"recorded: {', '.join(recorded)}")
    names = list(variables) if variables is not None else label_variables(ds)
    if not names:
        raise UserError(f"no label variable to decode in {run_dir}; pass variables=[...]")
    labels = _labels(ds, names, exclude_catch)
    for name, lab in labels.items():  # a trial label's smallest class must fill every fold
        if lab.dims == ("trial",):
            values, counts = np.unique(lab.values[lab.values >= 0], return_counts=True)
            if counts.size and counts.min() < folds:
                raise UserError(f"folds={folds} is larger than the smallest class of {name!r} "
                                f"({int(counts.min())} trials of class {values[counts.argmin()]:g}); "
                                f"use --folds <= {int(counts.min())}")
    valid = ~ds["catch"].values.astype(bool) if (exclude_catch and "catch" in ds.variables) else None
    has_errors = "choice" in ds.variables and "direction" in ds.variables
    epochs = ds["epoch"].values
    ct_epoch = int(epochs[-1]) if cross_temporal_epoch is None else int(cross_temporal_epoch)
    if ct_epoch not in set(int(e) for e in epochs):
        raise UserError(f"cross_temporal_epoch {ct_epoch} was not recorded; recorded epochs: {list(map(int, epochs))}")

    def n_problems(layer):
        a = ds[layer]
        return int(np.prod([a.sizes[d] for d in a.dims if d not in ("trial",) and not (d == "unit" or d.endswith("_unit"))]))

    total = 0
    for layer in layers:
        total += n_problems(layer)
        if has_errors:
            total += n_problems(layer) // ds.sizes["time"] * len(_period_ends(ds)) if "time" in ds[layer].dims \
                else n_problems(layer)
        if "time" in ds[layer].dims:
            total += ds.sizes["time"] * len([n for n in names if n != "choice" or "epoch" in labels[n].dims])
    total *= len(decoders)
    bar = tqdm(total=total, desc=f"analyze {run_dir.name}", unit="problem", disable=not progress)

    per_layer = []
    for layer in layers:
        act = ds[layer].load()
        unit = next(d for d in act.dims if d == "unit" or str(d).endswith("_unit"))
        kw = dict(feature_dim=unit, decoder=dec_arg, folds=folds, seed=seed, device=device, dtype=dtype)
        scores = decoding_scores(act, labels, progress=bar.update, **kw)
        out = xr.Dataset({
            "information": scores["information"],
            "information_sd": scores["information_sd"],
            "decoding_accuracy": scores["accuracy"],
            "converged": scores["converged"],
        })
        if has_errors:
            err_lab = balanced_error_labels(ds["choice"].load(), ds["direction"].load(), folds=folds, seed=seed, valid=valid)
            err_act = act
            if "time" in act.dims:  # only at the last step of each period (the response step last)
                err_act = act.isel(time=_period_ends(ds)).rename(time="error_time")
                if "period" in err_act.coords:
                    err_act = err_act.rename(period="error_period")
            err = decoding_scores(err_act, err_lab, progress=bar.update, **kw)
            out["error_information"] = err["information"].rename(variable="error_variable")
            out["error_information_sd"] = err["information_sd"].rename(variable="error_variable")
        if "time" in act.dims:
            mats = []
            a_e = act.sel(epoch=ct_epoch)
            ct_names = []
            for name in names:
                lab = labels[name]
                lab = lab.sel(epoch=ct_epoch) if "epoch" in lab.dims else lab
                mats.append(cross_temporal_information(a_e, lab, feature_dim=unit, folds=folds, seed=seed, device=device))
                ct_names.append(name)
                bar.update(act.sizes["time"] * len(decoders))
            out["cross_temporal"] = xr.concat(mats, dim="variable").assign_coords(variable=ct_names)
            if "period" in act.coords:
                per = out["information"].assign_coords(period=act["period"])
                out["period_information"] = per.groupby("period").mean("time")
        per_layer.append(out.expand_dims(layer=[layer]))
    bar.close()

    result = xr.merge(per_layer, compat="no_conflicts", join="outer") if len(per_layer) > 1 else per_layer[0]
    if "period" in ds.coords and "time" in result.dims:
        # the period of each time step; named apart from the `period` dim of period_information
        result = result.assign_coords(time_period=ds["period"].load().drop_vars("period", errors="ignore"))
    for v in ("information", "information_sd", "error_information", "error_information_sd", "cross_temporal",
              "period_information"):
        if v in result:
            result[v].attrs["units"] = "bits"
    if "cross_temporal" in result:
        result["cross_temporal"].attrs["epoch"] = ct_epoch
    if "loss" in ds:
        result["probe_loss"] = ds["loss"].load()
    if "accuracy" in ds:
        result["probe_accuracy"] = ds["accuracy"].load()
    if "choice" in ds.variables and "coherence" in ds.variables:
        tc = ds["target_config"] if "target_config" in ds.variables else None
        result["p_right"] = psychometric(ds["choice"].load(), ds["coherence"].load(), tc, valid=valid)
    attrs = {k: v for k, v in ds.attrs.items() if isinstance(v, (str, int, float, np.integer, np.floating))}
    attrs.update(analysis_decoder=",".join(str(getattr(dd, "name", dd)) for dd in decoders), analysis_folds=int(folds), analysis_seed=int(seed),
                 analysis_dtype=dtype,
                 analysis_exclude_catch=int(exclude_catch),
                 analysis_estimator="usable information, stratified K-fold, nested CV for L2 (decisionnets.decoding)")
    result.attrs = attrs

    info_path = out_dir / "information.nc"
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_netcdf(result, info_path)
    figs = make_figures(result, out_dir / "figures") if figures else []
    return [info_path, *figs]


def _write_netcdf(ds: xr.Dataset, path: Path) -> None:
    ds = ds.copy()
    for name in list(ds.coords) + list(ds.data_vars):
        if ds[name].dtype.kind in "OU":
            ds[name] = ds[name].astype(str)
    try:
        from decisionnets.io import atomic_path
    except ImportError:
        atomic_path = None
    if atomic_path is None:
        tmp = path.with_name(f".{path.name}.tmp")
        ds.to_netcdf(tmp)
        tmp.replace(path)
        return
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp)


# ------------------------------------------------------------------------------------------ figures
def _periods(info: xr.Dataset) -> list[str | None]:
    if "period_information" in info:
        order = []
        for p in info["time_period"].values.astype(str) if "time_period" in info.coords else []:
            if p not in order:
                order.append(p)
        pv = [str(p) for p in info["period_information"]["period"].values]
        return [p for p in order if p in pv] or pv
    return [None]


def make_figures(info: xr.Dataset, fig_dir: Path) -> list[Path]:
    """Draw the standard figures of an ``information.nc`` dataset into ``fig_dir``; return the paths."""
    from matplotlib.figure import Figure

    from decisionnets import plots

    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    title = plots.run_title(info.attrs)
    paths: list[Path] = []

    def save(fig, name):
        p = fig_dir / name
        fig.savefig(p, dpi=110, bbox_inches="tight")
        paths.append(p)

    layers = [str(x) for x in info["layer"].values]
    for layer in layers:
        sfx = "" if len(layers) == 1 else f"_{layer}"
        li_all = info.sel(layer=layer)
        periods = _periods(li_all)
        # several decoder families: one row each in the main figure; the other figures show the first
        decs = [str(x) for x in li_all["decoder"].values] if "decoder" in li_all["information"].dims else [None]
        fig = Figure(figsize=(4.2 * len(periods), 3.4 * len(decs)), layout="constrained")
        grid = fig.subplots(len(decs), len(periods), squeeze=False)
        for row, dec in zip(grid, decs):
            li = li_all.sel(decoder=dec) if dec is not None else li_all
            for ax, per in zip(row, periods):
                src = li["period_information"] if per is not None else li["information"]
                # tasks without time: the band is the s.d. of the information across folds
                spread = li["information_sd"] if (per is None and "time" not in li["information"].dims) else None
                what = f"{per} period" if per else "usable information vs epoch"
                plots.plot_information_vs_epoch(ax, src, period=per, spread=spread,
                                                title=f"{dec}: {what}" if dec is not None else what)
        fig.suptitle(f"{title} — {layer}")
        save(fig, f"information_vs_epoch{sfx}.png")
        li = li_all.isel(decoder=0) if decs[0] is not None else li_all

        if "time" in li["information"].dims:
            names = [str(v) for v in li["variable"].values]
            fig = Figure(figsize=(4.2 * len(names), 3.4), layout="constrained")
            axes = fig.subplots(1, len(names), squeeze=False)[0]
            for ax, name in zip(axes, names):
                plots.plot_information_vs_time(ax, li["information"], variable=name, title=name)
            fig.suptitle(f"{title} — {layer}: information vs time in trial")
            save(fig, f"information_vs_time{sfx}.png")

        if "cross_temporal" in li:
            names = [str(v) for v in li["cross_temporal"]["variable"].values]
            fig = Figure(figsize=(4.0 * len(names), 3.6), layout="constrained")
            axes = fig.subplots(1, len(names), squeeze=False)[0]
            # one scale for all panels, set by the positive values; confidently wrong cells (many
            # bits below 0 far from the training time) are clipped, as plot_cross_temporal explains
            ct = li["cross_temporal"].values
            vmax = float(np.nanmax(ct)) if np.isfinite(ct).any() else 1.0
            for ax, name in zip(axes, names):
                plots.plot_cross_temporal(ax, li["cross_temporal"].sel(variable=name), title=name, vmax=max(vmax, 0.1),
                                          colorbar=ax is axes[-1])
            fig.suptitle(f"{title} — {layer}: cross-temporal generalization, epoch {li['cross_temporal'].attrs.get('epoch', '')}")
            save(fig, f"cross_temporal{sfx}.png")

        if "error_information" in li:
            ei = li["error_information"].rename(error_variable="variable")
            where = "whole trial"
            if "error_time" in ei.dims:  # the response: last recorded step
                ei = ei.isel(error_time=-1)
                where = "response step"
            ei = ei.drop_vars([c for c in ei.coords if c not in ("variable", "epoch")])
            fig = Figure(figsize=(4.8, 3.4), layout="constrained")
            ax = fig.subplots()
            plots.plot_information_vs_epoch(ax, ei, title=f"error + matched correct trials ({where})")
            fig.suptitle(f"{title} — {layer}: choice vs direction")
            save(fig, f"choice_vs_direction{sfx}.png")

    if len(layers) > 1 and "time" not in info["information"].dims:  # per-layer comparison (e.g. CNNs)
        names = [str(v) for v in info["variable"].values]
        fig = Figure(figsize=(4.2 * len(names), 3.4), layout="constrained")
        axes = fig.subplots(1, len(names), squeeze=False)[0]
        first = info.isel(decoder=0) if "decoder" in info["information"].dims else info
        for ax, name in zip(axes, names):
            for i, layer in enumerate(layers):
                li = first.sel(layer=layer, variable=[name])
                plots.plot_information_vs_epoch(ax, li["information"], spread=li["information_sd"], color=f"C{i}",
                                                label_prefix=f"{layer}: ", title=name)
            ax.legend(frameon=False, fontsize="small")
        fig.suptitle(f"{title} — information by layer (band: s.d. across folds)")
        save(fig, "information_by_layer.png")

    if len(layers) > 1 and "period_information" in info:  # per-area comparison (multi-area RNNs)
        per = _periods(info)[-1]  # the last period (the response)
        names = [str(v) for v in info["variable"].values]
        fig = Figure(figsize=(4.2 * len(names), 3.4), layout="constrained")
        axes = fig.subplots(1, len(names), squeeze=False)[0]
        for ax, name in zip(axes, names):
            plots.plot_area_information(ax, info["period_information"].sel(variable=name, period=per), dim="layer",
                                        title=f"{name}, {per} period")
        fig.suptitle(f"{title} — information by layer")
        save(fig, "information_by_layer.png")

    if "probe_loss" in info:
        fig = Figure(figsize=(4.8, 3.4), layout="constrained")
        plots.plot_learning_curve(fig.subplots(), info["probe_loss"], info.get("probe_accuracy"))
        fig.suptitle(title)
        save(fig, "learning_curve.png")
    if "p_right" in info:
        fig = Figure(figsize=(4.8, 3.4), layout="constrained")
        plots.plot_psychometric(fig.subplots(), info["p_right"])
        fig.suptitle(title)
        save(fig, "psychometric.png")
    return paths


def demo_figure(run_dirs: Sequence, path, *, variables=("color", "direction", "target_config"),
                layer: str = "hidden", period: str = "decision") -> Path:
    """One panel per analysed run: usable information vs training epoch, side by side.

    What ``decisionnets demo`` ends with: the static FC net with weight decay (color and the
    target configuration discarded, direction kept) next to the time-resolved RNN.

    Parameters
    ----------
    run_dirs : sequence of paths
        Run directories holding ``information.nc``.
    path : path
        The PNG to write.
    variables : sequence of str
        Variables drawn (those the run decoded).
    layer : str
        Recorded layer drawn.
    period : str
        Trial period averaged for time-resolved runs (static runs have no time).

    Returns
    -------
    Path
    """
    from matplotlib.figure import Figure

    from decisionnets import plots

    infos = [load_information(r) for r in run_dirs]
    fig = Figure(figsize=(4.6 * len(infos), 3.6), layout="constrained")
    axes = fig.subplots(1, len(infos), squeeze=False)[0]
    for ax, info in zip(axes, infos):
        li = info.sel(layer=layer) if "layer" in info.dims else info
        timed = "time" in li["information"].dims
        src = li["period_information"] if timed and "period_information" in li else li["information"]
        spread = None if timed else li.get("information_sd")
        plots.plot_information_vs_epoch(ax, src, period=period if timed else None, variables=list(variables),
                                        spread=spread, title=plots.run_title(info.attrs)
                                        + (f"\n{layer}, {period} period" if timed else f"\n{layer}"))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def load_information(path) -> xr.Dataset:
    """Open a saved ``information.nc`` (a run directory or the file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / "information.nc"
    if not path.is_file():
        raise DataFileError(f"no information.nc at {path} (run `decisionnets analyze RUN_DIR` first)")
    return xr.load_dataset(path)


def _config(attrs) -> dict:
    try:
        return json.loads(attrs.get("config", "{}"))
    except (TypeError, ValueError):
        return {}
