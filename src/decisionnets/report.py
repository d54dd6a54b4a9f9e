"""Report: analyse one run directory: usable information over training, written to disk with figures.

Data flow: netCDF (``RUN_DIR/activations``) -> decoding -> analyses (:mod:`decisionnets.analyses`)
-> **report** (here: runs them on a run directory, writes ``information.nc``) -> figures
(:mod:`decisionnets.plots`, saved here).

:func:`analyze_run` reads ``RUN_DIR/activations`` (the activation dataset, DESIGN.md section 3),
runs on every recorded layer the information analyses of :mod:`decisionnets.analyses` and the
task-specific ones the task declared (dataset attr ``analyses``), and writes

* ``information`` (layer, variable, epoch[, time]): usable information (bits) about each label
  variable (by default the task's declared ``decode_labels`` and the network's ``choice``) on
  every recorded epoch and time step, with its fold spread ``information_sd``, held-out
  ``decoding_accuracy``, ``converged`` and ``unreliable`` (a bit mask of why a problem's number is
  not to be trusted, :data:`decisionnets.decoding.UNRELIABLE_FLAGS`; the analysis' warnings are
  in the attr ``warnings``);
* ``period_information`` (layer, variable, epoch, period): the mean over each period's time steps
  (the period of each time step is the coord ``time_period`` (time));
* ``error_information`` (layer, error_variable, epoch[, error_time]): choice vs direction on error
  trials (task analysis ``choice_vs_direction``, coord ``error_period``);
* ``cross_temporal`` (layer, variable, train_time, test_time): temporal generalization at one
  epoch (default: the last);
* ``p_right`` (epoch, evidence): psychometric data (task analysis ``psychometric``);
* ``probe_loss``, ``probe_accuracy`` (epoch) copied from the activations,

to ``RUN_DIR/information.nc`` and PNG figures to ``RUN_DIR/figures/``. Catch trials (coord
``catch`` == 1) are excluded from every decoding problem.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import xarray as xr

from decisionnets import analyses
from decisionnets.analyses import (activity_layers, balanced_error_labels, declared_bins, label_variables,
                                   period_ends, psychometric, trial_labels, valid_trials)
from decisionnets.errors import DataFileError, UserError
from decisionnets.io import atomic_path, open_activations, write_netcdf

__all__ = ["analyze_run", "psychometric", "balanced_error_labels", "label_variables", "activity_layers",
           "make_figures", "demo_figure", "load_information"]

#: Order of the data variables of information.nc (those present).
_ORDER = ("information", "information_sd", "decoding_accuracy", "converged", "unreliable", "error_information",
          "error_information_sd", "cross_temporal", "period_information")


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
    analyses: Sequence[str] | None = None,
    out=None,
    bins: dict | None = None,
) -> list[Path]:
    """Usable information of every recorded layer about the run's label variables, with figures.

    Parameters
    ----------
    run_dir : path
        A run directory with ``activations/*.nc``.
    variables : list of str, optional
        Label variables (trial coords or (epoch, trial) data vars such as ``choice``); default:
        :func:`label_variables` (the task's declared ``decode_labels``, then ``choice``).
    decoder : str, Decoder, or a list of them
        Decoder family (:func:`decisionnets.decoding.decoder_names`: ``linear``, ``linear-raw``,
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
    analyses : list of str, optional — what to run. None (default): the decoding alone. Otherwise
        exactly the named analyses: ``"information"`` is the decoding, any other name a
        representation analysis of ``decisionnets.representation.REPRESENTATION_ANALYSES``
        (``selectivity``, ``geometry``, ``similarity``, ``fixed-points``), run on the selected
        epochs, layers and time steps (not ``periods``), with ``seed`` and, when given,
        ``variables``; each writes ``RUN_DIR/analyses/NAME.nc`` and ``RUN_DIR/figures/NAME.png``.
    out : path, optional — write ``information.nc`` and ``figures/`` here instead of the run
        directory (e.g. for a read-only run directory, or to keep two analyses apart).
    bins : dict of str to int, optional — continuous labels decoded through K equal-count bins
        (:func:`decisionnets.analyses.bin_label`), on top of (and overriding) the bins the task
        declared (dataset attr ``label_bins``); e.g. ``{"sample_theta": 4}``.

    Problems whose estimate is not to be trusted (fewer than 2 classes: NaN; classes left out; a
    fit that did not converge; a large fold-to-fold spread) are flagged in the ``unreliable`` bit
    mask of ``information.nc`` (:data:`decisionnets.decoding.UNRELIABLE_FLAGS`), drawn hollow on
    the figures, and every warning of the analysis is kept in its attr ``warnings`` (a JSON list).

    Returns
    -------
    list of Path: ``RUN_DIR/information.nc`` and its figures (when the decoding ran), then each
    representation analysis' file and figure.

    Raises
    ------
    UserError
        Before any decoding: the output folder is not writable; another ``analyze`` (or
        ``rollout``) writes there now (its analysis lock, :data:`decisionnets.locks.ANALYSIS_LOCK`);
        a recorded epoch's file is missing from the middle of the run and ``epochs`` does not
        say which epochs to use.
    WriteFailed
        Writing ``information.nc`` or a figure failed (e.g. disk full); nothing half-written.

    Notes
    -----
    ``information.nc`` records what it covers (attrs): ``analysis_epochs`` (the decoded epochs),
    ``run_epochs_recorded``, ``run_epochs_planned`` (the record schedule), ``run_status``
    (status.json's, e.g. ``running``) and ``run_complete`` (1 when the run completed and every
    planned epoch was recorded). An incomplete run is analysed with a warning line on stderr.
    """
    from decisionnets.locks import ANALYSIS_LOCK, run_lock

    run_dir = Path(run_dir)
    # a single dataset file (e.g. a closed-loop rollout, RUN_DIR/rollout.nc): results next to it,
    # in a folder of the same name (rollout.nc -> rollout/information.nc, rollout/figures/)
    out_dir = run_dir.with_suffix("") if run_dir.suffix == ".nc" else run_dir
    if not run_dir.exists():
        raise DataFileError(f"run directory not found: {run_dir}")
    if out is not None:
        out_dir = Path(out)
    check_writable(out_dir)
    with run_lock(out_dir, what="analysis output folder", name=ANALYSIS_LOCK):
        return _analyze_run(run_dir, out_dir, variables=variables, decoder=decoder, folds=folds, device=device,
                            progress=progress, cross_temporal_epoch=cross_temporal_epoch, seed=seed,
                            exclude_catch=exclude_catch, time_stride=time_stride, dtype=dtype,
                            standardize=standardize, epochs=epochs, layers=layers, periods=periods, figures=figures,
                            analyses=analyses, bins=bins)


def check_writable(folder) -> None:
    """Raise :class:`UserError` (one line) unless files can be created in ``folder`` (or, when it does
    not exist yet, in the nearest folder above it that does); creates nothing.

    Called before an analysis starts, so a read-only run directory is refused at once, not after
    the decoding.
    """
    import os
    import tempfile

    folder = Path(folder)
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise UserError(f"cannot write the analysis into {folder}: {existing} is a file; pass --out DIR")
    try:  # in the folder, or the nearest one that exists (nothing is created here)
        fd, tmp = tempfile.mkstemp(prefix=".write-check.", dir=existing)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise UserError(f"cannot write the analysis into {folder}: {e.strerror or e}; "
                        "pass --out DIR to write it elsewhere") from None


def run_coverage(run_dir: Path, ds: xr.Dataset) -> dict:
    """What a run's recorded epochs cover: ``recorded``, ``planned`` (the record schedule),
    ``missing`` (planned epochs up to the last recorded one without a file), ``status``
    (status.json's, "unknown" without one) and ``complete``."""
    import json

    from decisionnets.io import read_status
    from decisionnets.recording import record_epochs

    recorded = sorted(int(e) for e in np.atleast_1d(ds["epoch"].values)) if "epoch" in ds.coords else []
    status = read_status(run_dir) if run_dir.is_dir() else {}
    try:
        cfg = json.loads(str(ds.attrs["config"]))
        planned = record_epochs(cfg["record"]["schedule"], int(cfg["train"]["epochs"]))
    except (KeyError, ValueError, TypeError):
        planned = []
    last = max(recorded) if recorded else -1
    missing = [e for e in planned if e < last and e not in recorded] if run_dir.is_dir() else []
    state = str(status.get("status", "unknown"))
    complete = state == "completed" and not missing and set(planned) <= set(recorded)
    return {"recorded": recorded, "planned": sorted(planned), "missing": missing, "status": state,
            "complete": complete}


def _coverage_attrs(cov: dict, decoded) -> dict:
    ints = lambda v: np.asarray(v, dtype=np.int64)  # noqa: E731
    out = {"analysis_epochs": ints(decoded), "run_epochs_recorded": ints(cov["recorded"]),
           "run_epochs_planned": ints(cov["planned"]), "run_status": cov["status"],
           "run_complete": np.int8(cov["complete"])}
    if cov["missing"]:
        out["run_epochs_missing"] = ints(cov["missing"])
    return out


def _analyze_run(run_dir, out_dir, *, variables, decoder, folds, device, progress, cross_temporal_epoch, seed,
                 exclude_catch, time_stride, dtype, standardize, epochs, layers, periods, figures,
                 analyses, bins) -> list[Path]:
    """The body of :func:`analyze_run`, run while holding the output folder's analysis lock."""
    import sys
    if not (isinstance(time_stride, int) and time_stride >= 1):
        raise UserError(f"time_stride must be an integer >= 1; got {time_stride!r}")
    if not (isinstance(folds, int) and folds >= 2):
        raise UserError(f"folds must be an integer >= 2; got {folds!r}")
    decoders = list(decoder) if isinstance(decoder, (list, tuple)) else [decoder]
    if not standardize:
        decoders = ["linear-raw" if dd == "linear" else dd for dd in decoders]
    full = open_activations(run_dir)
    cov = run_coverage(run_dir, full)
    if cov["missing"] and epochs is None:
        from decisionnets.io import epoch_path

        have = " ".join(str(e) for e in cov["recorded"])
        many = len(cov["missing"]) > 1
        raise UserError(f"{run_dir} lacks the activation file of recorded epoch{'s' if many else ''} "
                        f"{', '.join(map(str, cov['missing']))} ({epoch_path(run_dir, cov['missing'][0]).name}"
                        f"{' and others' if many else ''}): name the epochs to use, e.g. --epochs {have}")
    if run_dir.is_dir() and not cov["complete"] and cov["status"] != "unknown":
        left = sorted(set(cov["planned"]) - set(cov["recorded"]) - set(cov["missing"]))
        print(f"decisionnets: warning: run {run_dir} is not complete (status {cov['status']}; "
              f"recorded epochs {_span(cov['recorded'])}"
              + (f", missing {_span(cov['missing'])}" if cov["missing"] else "")
              + (f", not yet {_span(left)}" if left else "") + "): information.nc says so (attr run_complete = 0)",
              file=sys.stderr, flush=True)
    decode, representation = _split_analyses(analyses)
    from decisionnets import analyses  # the module again: the argument of that name was read just above
    ds = _select(full, epochs, time_stride)
    rep_ds = ds  # the representation analyses see every period
    if not decode:
        return _representation(representation, ds, run_dir, out_dir, seed=seed, progress=progress,
                               figures=figures, layers=layers, variables=variables)
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
    # the task's declared bins for the decoded labels, then the caller's (every one must be decoded)
    label_bins = {**{k: v for k, v in declared_bins(ds).items() if k in names}, **dict(bins or {})}
    labels = trial_labels(ds, names, exclude_catch, bins=label_bins)
    _check_folds(labels, folds)
    valid = valid_trials(ds, exclude_catch)
    ct_epoch = _cross_temporal_epoch(ds, cross_temporal_epoch)
    todo = analyses.task_analyses(ds)

    kw = dict(decoder=decoders if len(decoders) > 1 else decoders[0], folds=folds, seed=seed, device=device,
              dtype=dtype)
    if progress:
        _announce(ds, layers, labels, todo, decoders, run_dir, time_stride)
    bar = _progress_bar(ds, layers, labels, todo, len(decoders), f"analyze {run_dir.name}", progress)
    per_layer = []
    with warnings.catch_warnings(record=True) as caught:  # kept in information.nc, and shown
        warnings.simplefilter("always")
        for layer in layers:
            act = ds[layer].load()
            # the cross-temporal matrix reuses the linear decoders the time-resolved information fits
            # at that epoch (fitted once per training time and fold, evaluated at every test time)
            info = analyses.information(act, labels, progress=bar.update, cross_temporal_epoch=ct_epoch, **kw)
            parts = [info]
            if "choice_vs_direction" in todo:
                parts.append(analyses.choice_vs_direction(act, ds, valid=valid, progress=bar.update, **kw))
            if "time" in act.dims and "cross_temporal" in info:
                bar.update(act.sizes["time"] * len(labels) * len(decoders))
            elif "time" in act.dims:
                parts.append(analyses.cross_temporal(act, labels, epoch=ct_epoch, folds=folds, seed=seed, device=device,
                                                     progress=lambda k: bar.update(k * len(decoders))))
            out = xr.merge(parts, compat="no_conflicts", join="outer")
            per_layer.append(out.expand_dims(layer=[layer]))
    bar.close()
    messages = []
    for w in caught:
        text = (f"layer {layers[0]!r}: " if len(layers) == 1 else "") + str(w.message)
        if text not in messages:
            messages.append(text)
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    result = _combine(per_layer, ds, ct_epoch)
    if "psychometric" in todo:
        result["p_right"] = analyses.psychometric_curve(ds, valid=valid)["p_right"]
    result.attrs = _analysis_attrs(ds.attrs, decoders, folds, seed, dtype, exclude_catch)
    result.attrs.update(_coverage_attrs(cov, [int(e) for e in np.atleast_1d(ds["epoch"].values)]))
    _add_ceiling(result, ds.attrs)
    result.attrs["warnings"] = json.dumps(messages)
    result.attrs["n_warnings"] = len(messages)
    if any(k in names for k in label_bins):
        result.attrs["analysis_label_bins"] = json.dumps({k: int(v) for k, v in label_bins.items() if k in names})

    info_path = out_dir / "information.nc"
    out_dir.mkdir(parents=True, exist_ok=True)
    write_netcdf(result, info_path)
    figs = make_figures(result, out_dir / "figures") if figures else []
    rep_paths = _representation(representation, rep_ds, run_dir, out_dir, seed=seed, progress=progress,
                                figures=figures, layers=layers, variables=variables)
    return [info_path, *figs, *rep_paths]


def _representation(names: Sequence[str], ds: xr.Dataset, run_dir: Path, out_dir: Path, *, seed: int,
                    progress: bool, figures: bool, layers, variables) -> list[Path]:
    """Run the representation analyses ``names`` on ``ds`` (only ``layers`` when given); their paths."""
    if not names:
        return []
    from decisionnets.representation import run_representation

    rep_ds = ds if not layers else ds.drop_vars([v for v in activity_layers(ds) if v not in set(layers)])
    paths: list[Path] = []
    for name in names:
        paths += run_representation(name, rep_ds, run_dir=run_dir if run_dir.is_dir() else None, out_dir=out_dir,
                                    seed=seed, progress=progress, figure=figures,
                                    layers=list(layers) if layers else None,
                                    variables=list(variables) if variables else None)
    return paths


def _split_analyses(analyses: Sequence[str] | None) -> tuple[bool, list[str]]:
    """(run the decoding?, representation analyses to run) for ``analyze_run(analyses=...)``.

    None: the decoding alone. A list: exactly those named, ``"information"`` being the decoding.
    """
    from decisionnets.representation import DECODING_NAME, REPRESENTATION_ANALYSES

    if analyses is None:
        return True, []
    names = [analyses] if isinstance(analyses, str) else list(analyses)
    known = [DECODING_NAME, *REPRESENTATION_ANALYSES]
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise UserError(f"unknown analysis {bad[0]!r}; known: {', '.join(known)}" if bad
                        else f"analyses must name at least one of: {', '.join(known)}")
    return DECODING_NAME in names, [n for n in dict.fromkeys(names) if n != DECODING_NAME]


def _combine(per_layer: list, ds: xr.Dataset, ct_epoch: int) -> xr.Dataset:
    """The layers' analyses as one Dataset (in information.nc's layout), with units, the period of
    each time step (coord ``time_period``) and the probe-set loss and accuracy."""
    result = xr.merge(per_layer, compat="no_conflicts", join="outer") if len(per_layer) > 1 else per_layer[0]
    result = result[[v for v in _ORDER if v in result] + [v for v in result.data_vars if v not in _ORDER]]
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
    return result


def _span(epochs) -> str:
    """"0-4" for consecutive epochs, else the list (shortened)."""
    e = list(epochs)
    if not e:
        return "none"
    if e == list(range(e[0], e[-1] + 1)) and len(e) > 2:
        return f"{e[0]}-{e[-1]}"
    return ", ".join(map(str, e[:8])) + (", ..." if len(e) > 8 else "")


def _add_ceiling(result: xr.Dataset, attrs) -> None:
    """``ceiling`` (variable): the ideal observer's bits about each decoded variable (NaN where
    unknown), from the activation attrs (:func:`decisionnets.task.ceilings_from_attrs`)."""
    from decisionnets.task import ceilings_from_attrs

    ceil = ceilings_from_attrs(attrs)
    if not ceil or "variable" not in result.dims:
        return
    values = [ceil.get(str(v), np.nan) for v in result["variable"].values]
    result["ceiling"] = xr.DataArray(np.asarray(values, dtype=float), dims="variable",
                                     attrs={"units": "bits", "long_name": "ideal-observer information (the ceiling)"})


def _select(ds: xr.Dataset, epochs, time_stride: int) -> xr.Dataset:
    """The recorded ``epochs`` (all by default) and every ``time_stride``-th time step counted back from the last."""
    if epochs is not None:
        want = [int(e) for e in epochs]
        have = set(int(e) for e in ds["epoch"].values)
        missing = [e for e in want if e not in have]
        if missing or not want:
            raise UserError(f"epochs {missing or want} were not recorded; recorded epochs: {sorted(have)}")
        ds = ds.sel(epoch=want)
    if time_stride > 1 and "time" in ds.dims:
        ds = ds.isel(time=np.arange(ds.sizes["time"] - 1, -1, -time_stride)[::-1])
    return ds


def _check_folds(labels: dict, folds: int) -> None:
    """Refuse, before any fit, ``folds`` that leave a trial label fewer than two classes to decode.

    A class with fewer trials than folds is left out of the label's problems (with a warning, and
    flagged in ``unreliable``); a label with one class only is NaN with a warning; but a label that
    has two classes, of which ``folds`` would leave fewer than two, is a setting to change.
    """
    for name, lab in labels.items():
        if lab.dims == ("trial",):
            values, counts = np.unique(lab.values[lab.values >= 0], return_counts=True)
            if counts.size >= 2 and np.sort(counts)[-2] < folds:
                second = int(np.sort(counts)[-2])
                advice = (f"use --folds {second}" if second >= 3 else
                          f"record more probe trials per class (--set n_per_condition=N), or, for a continuous "
                          f"label, decode it through fewer bins (--bins {name}=K)")
                raise UserError(f"folds={folds} leaves {name!r} fewer than two classes to decode ({counts.size} classes, "
                                f"the two largest with {int(np.sort(counts)[-1])} and {second} trials); {advice}")


def _cross_temporal_epoch(ds: xr.Dataset, epoch: int | None) -> int:
    """The epoch of the cross-temporal matrix (default: the last recorded); it must be recorded."""
    epochs = [int(e) for e in ds["epoch"].values]
    ct_epoch = epochs[-1] if epoch is None else int(epoch)
    if ct_epoch not in epochs:
        raise UserError(f"cross_temporal_epoch {ct_epoch} was not recorded; recorded epochs: {epochs}")
    return ct_epoch


#: Above this many decoding problems ``analyze`` suggests ``--time-stride`` / ``--epochs``.
LARGE_RUN = 500


def _announce(ds, layers, labels, todo, decoders, run_dir, time_stride: int) -> int:
    """Print (stderr) how many decoding problems are about to be fitted; for a large run, how to fit fewer."""
    import sys

    n_info = n_err = n_ct = 0
    reused = len(decoders) == 1 and analyses._is_linear(decoders[0])
    for layer in layers:
        a = ds[layer]
        timed = "time" in a.dims
        n = int(np.prod([a.sizes[d] for d in a.dims if d in ("epoch", "time")])) * len(labels)
        n_info += n * len(decoders)
        if "choice_vs_direction" in todo:
            n_err += (a.sizes["epoch"] * (len(period_ends(ds)) if timed else 1) * 2) * len(decoders)
        if timed and not reused:
            n_ct += a.sizes["time"] * len(labels)
    total = n_info + n_err + n_ct
    shape = f"{len(layers)} layer(s) x {len(labels)} variable(s) x {ds.sizes['epoch']} epoch(s)"
    if "time" in ds.dims:
        shape += f" x {ds.sizes['time']} time step(s)"
    msg = f"analyze {run_dir.name}: {total} decoding problems to fit ({shape}"
    msg += f" x {len(decoders)} decoders" if len(decoders) > 1 else ""
    msg += f"; {n_err} on error trials" if n_err else ""
    msg += f"; {n_ct} for the cross-temporal matrix" if n_ct else "; the cross-temporal matrix reuses the time-resolved fits" \
        if "time" in ds.dims else ""
    print(msg + ")", file=sys.stderr, flush=True)
    if total > LARGE_RUN:
        tips = []
        if "time" in ds.dims and ds.sizes["time"] > 4:
            tips.append(f"--time-stride {2 * time_stride} (one recorded step in {2 * time_stride}; the last is kept)")
        if ds.sizes["epoch"] > 4:
            ep = [int(e) for e in ds["epoch"].values]
            tips.append(f"--epochs {' '.join(map(str, sorted({ep[0], ep[len(ep) // 2], ep[-1]})))} (some of {len(ep)})")
        if tips:
            print(f"analyze: a large run ({total} > {LARGE_RUN} problems); to fit fewer: " + " or ".join(tips),
                  file=sys.stderr, flush=True)
    return total


def _progress_bar(ds, layers, labels, todo, n_decoders: int, desc: str, progress: bool):
    """A tqdm bar over every decoding problem of the analysis."""
    from tqdm.auto import tqdm

    def n_problems(layer):
        a = ds[layer]
        return int(np.prod([a.sizes[d] for d in a.dims if d not in ("trial",) and not (d == "unit" or d.endswith("_unit"))]))

    total = 0
    for layer in layers:
        total += n_problems(layer)
        if "choice_vs_direction" in todo:
            total += n_problems(layer) // ds.sizes["time"] * len(period_ends(ds)) if "time" in ds[layer].dims \
                else n_problems(layer)
        if "time" in ds[layer].dims:
            total += ds.sizes["time"] * len(labels)
    return tqdm(total=total * n_decoders, desc=desc, unit="problem", disable=not progress)


def _analysis_attrs(attrs: dict, decoders, folds, seed, dtype, exclude_catch) -> dict:
    """The run's attrs (strings and numbers) and the analysis settings."""
    out = {k: v for k, v in attrs.items() if isinstance(v, (str, int, float, np.integer, np.floating))}
    out.update(analysis_decoder=",".join(str(getattr(dd, "name", dd)) for dd in decoders), analysis_folds=int(folds),
               analysis_seed=int(seed), analysis_dtype=dtype, analysis_exclude_catch=int(exclude_catch),
               analysis_estimator="usable information, stratified K-fold, nested CV for L2 (decisionnets.decoding)")
    return out


# ------------------------------------------------------------------------------------------ figures
def make_figures(info: xr.Dataset, fig_dir: Path) -> list[Path]:
    """Save the standard figures of an ``information.nc`` dataset (:func:`decisionnets.plots.run_figures`)
    into ``fig_dir``; return the paths."""
    from decisionnets import plots

    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for name, fig in plots.run_figures(info):
        p = fig_dir / name
        save_figure(fig, p, bbox_inches="tight")
        paths.append(p)
    return paths


def save_figure(fig, path, dpi: int = 110, **kw) -> Path:
    """``fig.savefig`` to ``path`` atomically: a full disk or an I/O error raises
    :class:`~decisionnets.errors.WriteFailed` (CLI exit 4) and leaves no half-written image."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png", **kw)
    return path


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
    from decisionnets import plots

    fig = plots.demo_figure([load_information(r) for r in run_dirs], variables=variables, layer=layer, period=period)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path, bbox_inches="tight")


def load_information(path) -> xr.Dataset:
    """Open a saved ``information.nc`` (a run directory or the file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / "information.nc"
    if not path.is_file():
        raise DataFileError(f"no information.nc at {path} (run `decisionnets analyze RUN_DIR` first)")
    return xr.load_dataset(path)
