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
* ``error_information`` (layer, error_variable, epoch[, error_time]): choice vs the stimulus it
  should report on error trials (e.g. the checkerboard's task analysis ``choice_vs_direction``,
  coord ``error_period``);
* ``cross_temporal`` (layer, variable, train_time, test_time): temporal generalization at one
  epoch (default: the last);
* ``p_right`` (epoch, evidence): psychometric data (e.g. the checkerboard's task analysis ``psychometric``);
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

from decisionnets.analyses import (AnalysisJob, activity_layers, analyses_for, balanced_error_labels, count_problems,
                                   declared_bins, label_variables, trial_labels, valid_trials)
from decisionnets.analysis_config import AnalysisConfig
from decisionnets.errors import DataFileError, UserError
from decisionnets.io import atomic_path, open_activations, write_netcdf

__all__ = ["analyze_run", "run_analysis_config", "AnalysisConfig", "balanced_error_labels", "label_variables", "activity_layers",
           "make_figures", "demo_figure", "load_information"]

#: Order of the data variables of information.nc (those present).
_ORDER = ("information", "information_sd", "decoding_accuracy", "converged", "unreliable", "error_information",
          "error_information_sd", "cross_temporal", "period_information")


def analyze_run(run_dir, config: AnalysisConfig | None = None, *, progress: bool = True, out=None,
                **options) -> list[Path]:
    """Usable information of every recorded layer about the run's label variables, with figures.

    Parameters
    ----------
    run_dir : path
        A run directory with ``activations/*.nc`` (or one dataset file, e.g. ``RUN_DIR/rollout.nc``:
        the results then go to a folder of its name, ``rollout/information.nc``).
    config : AnalysisConfig, optional
        The analysis options (:class:`decisionnets.AnalysisConfig`), all of them. Default: the
        run's own, :func:`run_analysis_config` (its preset's ``[analysis]`` table over the defaults).
    progress : bool
        Show a tqdm progress bar over every decoding problem (and print how many there are).
    out : path, optional
        Write ``information.nc`` and ``figures/`` here instead of the run directory (e.g. for a
        read-only run directory, or to keep two analyses apart).
    **options
        Any option of :class:`~decisionnets.AnalysisConfig` (over ``config``, or over the run's
        ``[analysis]`` table when ``config`` is not given):
        ``variables``, ``decoder``, ``folds``, ``seed``, ``device``, ``dtype``, ``epochs``,
        ``epoch_stride``, ``time_stride``, ``layers``, ``periods``, ``cross_temporal_epoch``,
        ``exclude_catch``, ``bins``, ``analyses``, ``figures``; their meaning and defaults are in
        the user guide's table of analysis options. In short: ``decoder`` a family or a list of
        them (several give ``information`` a ``decoder`` dim; the cross-temporal matrix always
        uses ``linear``); ``analyses`` None runs the decoding alone, a list exactly the named
        analyses, ``"information"`` being the decoding and any other name a representation
        analysis of ``decisionnets.representation.REPRESENTATION_ANALYSES``, run on the
        selected epochs, layers and time steps (not ``periods``), each writing
        ``RUN_DIR/analyses/NAME.nc`` and ``RUN_DIR/figures/NAME.png``.

    The analyses of ``information.nc`` are those of the registry
    :data:`decisionnets.analyses.ANALYSES` that apply to the run (the task-specific ones when the
    task declared them). Problems whose estimate is not to be trusted (fewer than 2 classes: NaN;
    classes left out; a fit that did not converge; a large fold-to-fold spread) are flagged in
    the ``unreliable`` bit mask of ``information.nc`` (:data:`decisionnets.decoding.UNRELIABLE_FLAGS`),
    drawn hollow on the figures, and every warning of the analysis is kept in its attr
    ``warnings`` (a JSON list).

    Returns
    -------
    list of Path: ``RUN_DIR/information.nc`` and its figures (when the decoding ran), then each
    representation analysis' file and figure.

    Raises
    ------
    UserError
        Before any decoding: an option breaks its rule (:class:`~decisionnets.errors.ConfigError`);
        the output folder is not writable; another ``analyze`` (or ``rollout``) writes there now
        (its analysis lock, :data:`decisionnets.locks.ANALYSIS_LOCK`); a recorded epoch's file is
        missing from the middle of the run and ``epochs`` does not say which epochs to use.
    WriteFailed
        Writing ``information.nc`` or a figure failed (e.g. disk full); nothing half-written.

    Notes
    -----
    ``information.nc`` records what it covers (attrs): ``analysis_epochs`` (the decoded epochs),
    ``run_epochs_recorded``, ``run_epochs_planned`` (the record schedule), ``run_status``
    (status.json's, e.g. ``running``) and ``run_complete`` (1 when the run completed and every
    planned epoch was recorded), and the options it was computed with (``analysis_config``, JSON).
    An incomplete run is analysed with a warning line on stderr.
    """
    from decisionnets.locks import ANALYSIS_LOCK, run_lock

    config = config if config is not None else run_analysis_config(run_dir)
    if not isinstance(config, AnalysisConfig):
        raise UserError(f"config must be an AnalysisConfig; got {type(config).__name__}")
    config = config.replace(**options) if options else config
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
        full = open_activations(run_dir)
        cov = run_coverage(run_dir, full)
        _check_coverage(run_dir, cov, config)
        recorded = np.atleast_1d(full["epoch"].values) if "epoch" in full.coords else []
        ds = _select(full, config.select_epochs(recorded), config.time_stride)
        decode, representation = _split_analyses(config.analyses)
        paths = _decode(run_dir, out_dir, ds, cov, config, progress) if decode else []
        return paths + _representation(representation, ds, run_dir, out_dir, config, progress)


def run_analysis_config(run_dir) -> AnalysisConfig:
    """The analysis options a run asks for: its preset's ``[analysis]`` table over the defaults.

    Precedence, lowest first: the defaults of :class:`~decisionnets.AnalysisConfig`, the run's
    table (stored in ``RUN_DIR/config.json``, else in the ``config`` attr of the run's first
    activation file or of a single dataset file such as ``RUN_DIR/rollout.nc``), then what the caller gives explicitly (the flags of
    ``decisionnets analyze``, the keyword arguments of :func:`analyze_run`). A run without a table
    (or without a config: recorded neurons) gets the defaults.

    Parameters
    ----------
    run_dir : path
        A run directory, or one dataset file.

    Returns
    -------
    AnalysisConfig

    Raises
    ------
    ConfigError
        The stored table breaks a rule of :class:`~decisionnets.AnalysisConfig` (names ``analysis.KEY``).
    """
    run_dir = Path(run_dir)
    text = None
    if (run_dir / "config.json").is_file():
        text = (run_dir / "config.json").read_text()
    else:  # a dataset file, or a run directory written by a recorder of one's own: the config attr
        files = [run_dir] if run_dir.suffix == ".nc" else sorted((run_dir / "activations").glob("epoch_*.nc"))
        if files and files[0].is_file():
            try:
                with xr.open_dataset(files[0], engine="netcdf4") as ds:
                    text = ds.attrs.get("config")
            except (OSError, ValueError):
                text = None  # an unreadable file: open_activations says why
    try:
        table = json.loads(text).get("analysis") if text else None
    except (TypeError, ValueError, AttributeError):
        table = None
    return AnalysisConfig.from_table(table or {}, where="analysis")


def _check_coverage(run_dir: Path, cov: dict, config: AnalysisConfig) -> None:
    """Refuse a run with missing epoch files unless ``epochs`` names the ones to use; warn on an incomplete run."""
    import sys

    if cov["missing"] and config.epochs is None:
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


def _decode(run_dir: Path, out_dir: Path, ds: xr.Dataset, cov: dict, config: AnalysisConfig,
            progress: bool) -> list[Path]:
    """Run the registry's analyses (:data:`decisionnets.analyses.ANALYSES`) on every selected layer;
    write ``information.nc`` and its figures."""
    ds = _select_periods(ds, config.periods)
    layers = _layers(run_dir, ds, config.layers)
    names = list(config.variables) if config.variables is not None else label_variables(ds)
    if not names:
        raise UserError(f"no label variable to decode in {run_dir}; pass variables=[...]")
    # the task's declared bins for the decoded labels, then the caller's (every one must be decoded)
    label_bins = {**{k: v for k, v in declared_bins(ds).items() if k in names}, **config.label_bins}
    labels = trial_labels(ds, names, config.exclude_catch, bins=label_bins)
    _check_folds(labels, config.folds)
    job = AnalysisJob(ds, labels, valid_trials(ds, config.exclude_catch), config,
                      _cross_temporal_epoch(ds, config.cross_temporal_epoch))
    todo = analyses_for(ds)
    counts = count_problems(job, layers, todo)
    if progress:
        _announce(run_dir, ds, layers, labels, config, counts)
    from tqdm.auto import tqdm

    bar = tqdm(total=sum(counts.values()), desc=f"analyze {run_dir.name}", unit="problem", disable=not progress)
    job.progress = bar.update
    per_layer, whole = [], []
    with warnings.catch_warnings(record=True) as caught:  # kept in information.nc, and shown
        warnings.simplefilter("always")
        for layer in layers:
            act = ds[layer].load()
            parts = [p for a in todo if a.per_layer for p in [a.run(job, act)] if p is not None]
            out = xr.merge(parts, compat="no_conflicts", join="outer")
            per_layer.append(out.expand_dims(layer=[layer]))
        whole = [a.run(job) for a in todo if not a.per_layer]
    bar.close()
    messages = []
    for w in caught:
        text = (f"layer {layers[0]!r}: " if len(layers) == 1 else "") + str(w.message)
        if text not in messages:
            messages.append(text)
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    result = _combine(per_layer, ds, job.cross_temporal_epoch)
    for part in whole:
        result.update(part)
    result.attrs = _analysis_attrs(ds.attrs, config)
    result.attrs.update(_coverage_attrs(cov, [int(e) for e in np.atleast_1d(ds["epoch"].values)]))
    _add_ceiling(result, ds.attrs)
    result.attrs["warnings"] = json.dumps(messages)
    result.attrs["n_warnings"] = len(messages)
    # the threads the decoding ran on (estimates at other counts differ by rounding only)
    from decisionnets.threads import thread_info

    th = thread_info()
    result.attrs["analysis_threads"] = th["threads"]
    result.attrs["analysis_threads_source"] = th["threads_source"]
    if any(k in names for k in label_bins):
        result.attrs["analysis_label_bins"] = json.dumps({k: int(v) for k, v in label_bins.items() if k in names})

    info_path = out_dir / "information.nc"
    out_dir.mkdir(parents=True, exist_ok=True)
    write_netcdf(result, info_path)
    figs = make_figures(result, out_dir / "figures") if config.figures else []
    return [info_path, *figs]


def _select_periods(ds: xr.Dataset, periods) -> xr.Dataset:
    """Time-resolved runs: only the time steps of ``periods`` (all when None)."""
    if not periods or "time" not in ds.dims or "period" not in ds.coords:
        return ds
    keep = np.isin(np.asarray(ds["period"].values).astype(str), list(periods))
    if not keep.any():
        raise UserError(f"periods {list(periods)} match no recorded time step; periods: "
                        f"{sorted(set(np.asarray(ds['period'].values).astype(str)))}")
    return ds.isel(time=np.flatnonzero(keep))


def _layers(run_dir: Path, ds: xr.Dataset, wanted) -> list[str]:
    """The recorded layers to decode: ``wanted`` (each must be recorded), or every one."""
    recorded = activity_layers(ds)
    if not recorded:
        raise DataFileError(f"no activation variable (dims with 'unit') in {run_dir}; data vars: {list(ds.data_vars)}")
    if wanted and set(wanted) - set(recorded):
        raise UserError(f"layer {sorted(set(wanted) - set(recorded))[0]!r} was not recorded in {run_dir}; "
                        f"recorded: {', '.join(recorded)}")
    return list(wanted) if wanted else recorded


def _representation(names: Sequence[str], ds: xr.Dataset, run_dir: Path, out_dir: Path, config: AnalysisConfig,
                    progress: bool) -> list[Path]:
    """Run the representation analyses ``names`` on ``ds`` (only ``config.layers`` when given); their paths."""
    if not names:
        return []
    from decisionnets.representation import run_representation

    layers, variables = config.layers, config.variables
    rep_ds = ds if not layers else ds.drop_vars([v for v in activity_layers(ds) if v not in set(layers)])
    paths: list[Path] = []
    for name in names:
        paths += run_representation(name, rep_ds, run_dir=run_dir if run_dir.is_dir() else None, out_dir=out_dir,
                                    seed=config.seed, progress=progress, figure=config.figures,
                                    layers=list(layers) if layers else None,
                                    variables=list(variables) if variables else None)
    return paths


def _split_analyses(analyses: Sequence[str] | None) -> tuple[bool, list[str]]:
    """(run the decoding?, representation analyses to run) for ``analyses`` (checked by AnalysisConfig).

    None: the decoding alone. A list: exactly those named, ``"information"`` being the decoding.
    """
    from decisionnets.representation import DECODING_NAME

    if analyses is None:
        return True, []
    return DECODING_NAME in analyses, [n for n in dict.fromkeys(analyses) if n != DECODING_NAME]


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
    unknown), from the activation attrs (:func:`decisionnets.build.ceilings_from_attrs`)."""
    from decisionnets.build import ceilings_from_attrs

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


def _announce(run_dir: Path, ds: xr.Dataset, layers, labels, config: AnalysisConfig, counts: dict) -> int:
    """Print (stderr) how many decoding problems each analysis is about to fit; for a large run, how to fit fewer."""
    import sys

    total = sum(counts.values())
    shape = f"{len(layers)} layer(s) x {len(labels)} variable(s) x {ds.sizes['epoch']} epoch(s)"
    if "time" in ds.dims:
        shape += f" x {ds.sizes['time']} time step(s)"
    n_dec = len(config.decoder)
    shape += f" x {n_dec} decoders" if n_dec > 1 else ""
    each = ", ".join(f"{name} {n}" for name, n in counts.items() if n)
    print(f"analyze {run_dir.name}: {total} decoding problems to fit ({shape}; {each})", file=sys.stderr, flush=True)
    from decisionnets.threads import thread_info

    th = thread_info()  # so that a slow analysis can be explained before it ends
    print(f"analyze: decoding on {th['threads']} thread(s) ({th['threads_source']})", file=sys.stderr, flush=True)
    if total > LARGE_RUN:
        tips = []
        if "time" in ds.dims and ds.sizes["time"] > 4:
            k = 2 * config.time_stride
            tips.append(f"--time-stride {k} (one recorded step in {k}; the last is kept)")
        if ds.sizes["epoch"] > 4:
            ep = [int(e) for e in ds["epoch"].values]
            tips.append(f"--epochs {' '.join(map(str, sorted({ep[0], ep[len(ep) // 2], ep[-1]})))} (some of {len(ep)})")
        if tips:
            print(f"analyze: a large run ({total} > {LARGE_RUN} problems); to fit fewer: " + " or ".join(tips),
                  file=sys.stderr, flush=True)
    return total


def _analysis_attrs(attrs: dict, config: AnalysisConfig) -> dict:
    """The run's attrs (strings and numbers) and the analysis settings."""
    out = {k: v for k, v in attrs.items() if isinstance(v, (str, int, float, np.integer, np.floating))}
    out.update(analysis_decoder=",".join(config.decoder_names), analysis_folds=int(config.folds),
               analysis_seed=int(config.seed), analysis_dtype=config.dtype,
               analysis_exclude_catch=int(config.exclude_catch),
               analysis_config=json.dumps(config.to_table(), sort_keys=True),
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


def demo_figure(run_dirs: Sequence, path, *, variables: Sequence[str] | None = None,
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
    variables : sequence of str, optional
        Variables drawn (among those each run decoded); default: each run's task-declared
        ``decode_labels`` (:func:`decisionnets.plots.demo_figure`).
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
