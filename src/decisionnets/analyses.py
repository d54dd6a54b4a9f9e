"""Analyses of an activation dataset: small functions, each returning an :class:`xarray.Dataset`.

Data flow: netCDF (activations) -> decoding (:mod:`decisionnets.decoding`) -> **analyses** (here)
-> figures (:mod:`decisionnets.plots`); :func:`decisionnets.report.analyze_run` runs them on a run
directory and writes ``information.nc``.

Every task gets the information analyses:

* :func:`information` (variable, epoch[, time]): usable information (bits) about each label on
  every recorded epoch and time step, its fold spread and held-out accuracy, and its mean over
  each task period (``period_information``);
* :func:`cross_temporal` (variable, train_time, test_time): temporal generalization at one epoch.

A task declares the task-specific ones in its own file (its ``analyses``: names or
:class:`Analysis` objects, written as names into the dataset attr ``analyses``, see
:mod:`decisionnets.task`); that file registers them when it is imported (e.g. the checkerboard's
``choice_vs_direction`` and ``psychometric``, in :mod:`decisionnets.envs.color_direction_analyses`).
This module holds the generic pieces they are built from, such as :func:`choice_vs_stimulus`
(error_variable, epoch[, error_time]): the network's choice vs the stimulus it should report (by
default the task's declared ``target``), decoded on error trials and as many matched correct
trials, so the two are independent (:func:`choice_vs_stimulus_analysis` makes it a declarable
:class:`Analysis`).

Every analysis of ``information.nc`` is an entry of the registry :data:`ANALYSES` (an
:class:`Analysis`: its function, the number of decoding problems it fits — the progress bar's
total — the variables it needs, whether it runs per layer and whether a task must declare it);
:func:`decisionnets.report.analyze_run` runs the registry's entries and knows none by name.
:func:`analyses_for` imports the env files the env registry lists
(:func:`decisionnets.registration.load_env_modules`) when a dataset names an analysis not yet
registered, so the analyses an existing run declares are found in a fresh interpreter.

Adding an analysis: a function returning a Dataset and one :func:`register_analysis` call — here
for one every task gets; in the task's own file for a task-specific one (``declared=True``, the
:class:`Analysis` in that task's ``analyses``) — and a figure in :mod:`decisionnets.plots`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import xarray as xr

from decisionnets.analysis_config import AnalysisConfig
from decisionnets.decoding import cross_temporal_information, decoding_scores
from decisionnets.errors import UserError

__all__ = [
    "ANALYSES", "Analysis", "AnalysisJob", "register_analysis", "analyses_for", "count_problems",
    "TASK_ANALYSES", "activity_layers", "label_variables", "task_analyses", "trial_labels", "period_ends",
    "unit_dim", "declared_bins", "bin_label", "information", "cross_temporal", "choice_vs_stimulus",
    "choice_vs_stimulus_analysis", "balanced_error_labels", "analysis_names", "declared_analyses",
]


# ------------------------------------------------------------------------------------ the dataset
def activity_layers(ds: xr.Dataset) -> list[str]:
    """Data variables holding activations: those with a ``unit`` or ``<layer>_unit`` dim."""
    return [
        str(k) for k, v in ds.data_vars.items()
        if "trial" in v.dims and any(d == "unit" or str(d).endswith("_unit") for d in v.dims)
    ]


def unit_dim(act: xr.DataArray) -> str:
    """The unit dim of an activation variable (``unit`` or ``<layer>_unit``)."""
    return next(str(d) for d in act.dims if d == "unit" or str(d).endswith("_unit"))


def _declared(ds: xr.Dataset, attr: str) -> list[str] | None:
    """A JSON list the task declared in the dataset's attrs, or None for an undeclared dataset."""
    if attr not in ds.attrs:
        return None
    try:
        value = json.loads(ds.attrs[attr])
    except (TypeError, ValueError):
        return None
    return [str(v) for v in value] if isinstance(value, list) else None


def label_variables(ds: xr.Dataset) -> list[str]:
    """Default label variables of a run: the task's declared ``decode_labels``, then ``choice``.

    Datasets recorded before the tasks declared their labels get the labels they held then, as the
    env registry lists them (:data:`decisionnets.registration.UNDECLARED_LABELS`: the first group
    of which the dataset holds any).
    """
    declared = _declared(ds, "decode_labels")
    if declared is not None:
        names = [v for v in declared if v in ds.variables]
    else:
        from decisionnets.registration import UNDECLARED_LABELS

        names = []
        for group in UNDECLARED_LABELS:
            names = [v for v in group if v in ds.variables]
            if names:
                break
    if "choice" in ds.variables:
        names.append("choice")
    return names


def task_analyses(ds: xr.Dataset) -> list[str]:
    """The task-specific analyses to run on ``ds`` (names of :data:`TASK_ANALYSES`) whose inputs it holds.

    The task's declared ``analyses``; for an undeclared dataset, each one whose variables it holds.
    When the dataset names an analysis not yet registered (or declares none), imports the env files
    of the env registry first (:func:`decisionnets.registration.load_env_modules`), which register
    the analyses they declare.
    """
    declared = _declared(ds, "analyses")
    if declared is None or any(n not in ANALYSES for n in declared):
        from decisionnets.registration import load_env_modules

        load_env_modules()  # only when needed: importing the env files costs seconds (neurogym)
    names = list(TASK_ANALYSES) if declared is None else declared
    unknown = [n for n in names if n not in TASK_ANALYSES]
    if unknown:
        raise UserError(f"the task declares unknown analyses {unknown}; known: {sorted(TASK_ANALYSES)} (an "
                        f"analysis declared outside the package's env files is registered when its module is "
                        f"imported: import it before analyzing)")
    return [n for n in names if all(v in ds.variables for v in TASK_ANALYSES[n][1])]


def declared_bins(ds: xr.Dataset) -> dict[str, int]:
    """The bins the task declared for its continuous labels (dataset attr ``label_bins``, a JSON
    object ``{label: K}``); {} when it declared none."""
    try:
        value = json.loads(ds.attrs.get("label_bins", "{}"))
    except (TypeError, ValueError):
        return {}
    return {str(k): int(v) for k, v in value.items()} if isinstance(value, dict) else {}


def bin_label(values, k: int, name: str = "label") -> np.ndarray:
    """A continuous label as ``k`` equal-count classes (0..k'-1, k' <= k), float, NaN kept.

    The bin edges are the label's quantiles over its finite values; a value on an edge goes to the
    upper bin; bins left empty (repeated values) are dropped, so the classes are 0..k'-1.

    Parameters
    ----------
    values : array (trial,) or (epoch, trial) of float
    k : int, >= 2
    name : str, for messages
    """
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 2:
        raise UserError(f"bins for {name!r} must be an integer >= 2; got {k!r}")
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    if not ok.any():
        return v.copy()
    edges = np.quantile(v[ok], np.linspace(0, 1, k + 1)[1:-1])
    codes = np.searchsorted(edges, np.where(ok, v, 0.0), side="right")
    _, dense = np.unique(codes[ok], return_inverse=True)
    out = np.full(v.shape, np.nan)
    out[ok] = dense
    return out


def trial_labels(ds: xr.Dataset, names: Sequence[str], exclude_catch: bool,
                 bins: dict[str, int] | None = None) -> dict[str, xr.DataArray]:
    """The labels ``names`` as float DataArrays ((trial) or (epoch, trial)); catch trials set to -1
    (left out of every decoding problem) when ``exclude_catch``.

    ``bins`` ({label: K}) decodes a continuous label through K equal-count bins (:func:`bin_label`);
    a continuous label without bins is a :class:`UserError` that names it and suggests ``--bins``.
    """
    bins = dict(bins or {})
    unknown = sorted(set(bins) - set(names))
    if unknown:
        raise UserError(f"--bins names {unknown}, which is not among the decoded variables {list(names)}")
    out = {}
    catch = ds["catch"].values.astype(bool) if (exclude_catch and "catch" in ds.variables) else None
    for name in names:
        if name not in ds.variables:
            raise UserError(f"variable {name!r} is not in the activation dataset; available: {sorted(map(str, ds.variables))}")
        da = ds[name]
        if "trial" not in da.dims:
            raise UserError(f"variable {name!r} has no 'trial' dim (dims {da.dims}); it cannot be decoded")
        da = da.load()
        if da.dtype.kind not in "iufb":
            raise UserError(f"variable {name!r} holds {da.dtype} values, not class indices; it cannot be decoded")
        da = da.astype(float)
        da = da.drop_vars([c for c in da.coords if c not in da.dims])
        if name in bins:
            da = da.copy(data=bin_label(da.values, bins[name], name))
        else:
            v = da.values[np.isfinite(da.values)]
            if v.size and np.any(np.mod(v, 1) != 0):
                raise UserError(f"variable {name!r} is continuous ({np.unique(v).size} distinct values, e.g. "
                                f"{v[np.mod(v, 1) != 0][0]:.4g}); decode it through bins: --bins {name}=K "
                                f"(analyze_run(..., bins={{{name!r}: K}}))")
        if catch is not None:
            da = da.where(~xr.DataArray(catch, dims="trial"), -1.0)
        out[name] = da
    return out


def valid_trials(ds: xr.Dataset, exclude_catch: bool) -> np.ndarray | None:
    """Bool (trial) of the non-catch trials, or None when every trial counts."""
    return ~ds["catch"].values.astype(bool) if (exclude_catch and "catch" in ds.variables) else None


def period_ends(ds: xr.Dataset) -> list[int]:
    """Indices of the last time step of each task period (just the last step without periods)."""
    T = ds.sizes["time"]
    if "period" not in ds.coords or ds["period"].dims != ("time",):
        return [T - 1]
    p = np.asarray(ds["period"].values).astype(str)
    return [i for i in range(T) if i == T - 1 or p[i + 1] != p[i]]


# ----------------------------------------------------------------------------- information
def information(act: xr.DataArray, labels: dict, *, decoder="linear", folds: int = 5, seed: int = 0,
                device: str = "cpu", dtype: str = "float32", progress=None,
                cross_temporal_epoch: int | None = None) -> xr.Dataset:
    """Usable information of one layer about each label, at every epoch (and time step).

    Parameters
    ----------
    act : DataArray (epoch, trial[, time], unit)
        One recorded layer (its unit dim may be ``<layer>_unit``); a ``period`` coord on ``time``
        gives ``period_information``.
    labels : dict of str to DataArray (trial) or (epoch, trial)
        Class labels, -1 where a trial is left out (:func:`trial_labels`).
    decoder : str, Decoder or a list of them (several: a ``decoder`` dim)
    folds, seed, device, dtype, progress
        As :func:`decisionnets.decoding.decoding_scores`.
    cross_temporal_epoch : int, optional
        With a time dim and the ``linear`` decoder: also the temporal generalization at this epoch
        (:func:`cross_temporal`), from the decoders fitted here (nothing is refitted; its diagonal
        is ``information`` at that epoch). Other decoders: ignored (call :func:`cross_temporal`).

    Returns
    -------
    xr.Dataset
        ``information``, ``information_sd`` (bits), ``decoding_accuracy``, ``converged`` with dims
        ([decoder,] variable, epoch[, time]); ``period_information`` ([decoder,] variable, epoch,
        period) when ``act`` has periods; ``cross_temporal`` (variable, train_time, test_time) when
        asked for and available.
    """
    reuse = cross_temporal_epoch is not None and "time" in act.dims and _is_linear(decoder)
    scores = decoding_scores(act, labels, feature_dim=unit_dim(act), decoder=decoder, folds=folds, seed=seed,
                             device=device, dtype=dtype, progress=progress, return_decoders=reuse)
    out = xr.Dataset({
        "information": scores["information"],
        "information_sd": scores["information_sd"],
        "decoding_accuracy": scores["decoding_accuracy"],
        "converged": scores["converged"],
        "unreliable": scores["unreliable"],
    })
    if "time" in act.dims and "period" in act.coords:
        per = out["information"].assign_coords(period=act["period"])
        out["period_information"] = per.groupby("period").mean("time")
    if reuse:
        fitted = scores[["coef", "intercept", "fold_assignment"]].sel(epoch=cross_temporal_epoch)
        out["cross_temporal"] = cross_temporal(act, labels, epoch=cross_temporal_epoch, folds=folds, seed=seed,
                                               device=device, decoders=fitted)["cross_temporal"]
    return out


def _is_linear(decoder) -> bool:
    """Whether ``decoder`` is the (standardized) ``linear`` family, the one of the cross-temporal matrix."""
    from decisionnets.decoding import LogisticDecoder

    if isinstance(decoder, str):
        return decoder == "linear"
    return isinstance(decoder, LogisticDecoder) and decoder.name == "linear" and decoder.standardize


def cross_temporal(act: xr.DataArray, labels: dict, *, epoch: int, folds: int = 5, seed: int = 0,
                   device: str = "cpu", progress: Callable[[int], object] | None = None,
                   decoders: xr.Dataset | None = None) -> xr.Dataset:
    """Temporal generalization of each label at one epoch (linear decoder).

    One decoder per training time, label and fold (all labels fitted in one batch), evaluated at
    every test time.

    Parameters
    ----------
    act : DataArray (epoch, trial, time, unit)
    labels : dict of str to DataArray (trial) or (epoch, trial)
    epoch : int
        The recorded epoch.
    progress : callable, optional
        Called with the number of time steps done for each label.
    decoders : Dataset, optional
        The ``linear`` decoders already fitted at this epoch (``coef``, ``intercept``,
        ``fold_assignment`` (variable, time, ...) from
        :func:`decisionnets.decoding.decoding_scores` with ``return_decoders=True``): reused.

    Returns
    -------
    xr.Dataset
        ``cross_temporal`` (variable, train_time, test_time), bits.
    """
    a_e = act.sel(epoch=epoch)
    labs = {name: (lab.sel(epoch=epoch) if "epoch" in lab.dims else lab) for name, lab in labels.items()}
    mat = cross_temporal_information(a_e, labs, feature_dim=unit_dim(act), folds=folds, seed=seed, device=device,
                                     decoders=decoders)
    if progress is not None:
        progress(act.sizes["time"] * len(labels))
    return xr.Dataset({"cross_temporal": mat.drop_vars("epoch", errors="ignore")})


# ----------------------------------------------------------------- choice vs direction on errors
def balanced_error_labels(choice: xr.DataArray, stimulus: xr.DataArray, *, folds: int = 5, seed: int = 0,
                          valid: np.ndarray | None = None) -> dict[str, xr.DataArray]:
    """Choice and stimulus labels restricted, per epoch, to error trials + matched correct trials.

    Parameters
    ----------
    choice : DataArray (epoch, trial) int
    stimulus : DataArray (trial) int
        The label the choice should report (e.g. the checkerboard's ``direction``).
    folds : int — epochs with fewer than ``folds`` error trials for some stimulus class get all -1 (NaN).
    valid : bool ndarray (trial), optional — trials allowed (e.g. not catch).

    Returns
    -------
    {"choice": DataArray (epoch, trial), "stimulus": DataArray (epoch, trial)}, -1 outside the subset.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xE770]))
    ch = np.asarray(choice.transpose("epoch", "trial").values)
    dr = np.asarray(stimulus.values).astype(int)
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
        "stimulus": xr.DataArray(np.where(sub, dr[None, :], -1), dims=dims),
    }


def choice_vs_stimulus(act: xr.DataArray, ds: xr.Dataset, *, stimulus: str | None = None, decoder="linear",
                       folds: int = 5, seed: int = 0, device: str = "cpu", dtype: str = "float32",
                       valid: np.ndarray | None = None, progress=None) -> xr.Dataset:
    """The network's choice vs the stimulus it should report, decoded where they differ: on error trials.

    Per epoch, both are decoded on a balanced subset (:func:`balanced_error_labels`): for each
    stimulus class, all error trials plus as many correct trials of that class drawn at random
    (seeded). There choice and stimulus are independent, so information about ``choice`` is about
    the decision, not the stimulus, and vice versa. Decoded at the last time step of each task
    period (the last one is the response). An epoch where a class has fewer error trials than
    folds (typical late in training) is NaN.

    Parameters
    ----------
    act : DataArray (epoch, trial[, time], unit)
    ds : xr.Dataset
        The activation dataset (``choice`` (epoch, trial), the stimulus label (trial),
        ``period``).
    stimulus : str, optional
        The label the choice should report (default: the task's declared target, dataset attr
        ``target``, e.g. ``direction`` for the checkerboard task).
    valid : bool ndarray (trial), optional
        Trials allowed (e.g. not catch).

    Returns
    -------
    xr.Dataset
        ``error_information``, ``error_information_sd`` (bits) with dims ([decoder,]
        error_variable, epoch[, error_time]) (``error_variable``: ``choice`` and the stimulus
        label) and coord ``error_period`` on ``error_time``.

    Raises
    ------
    UserError
        When the dataset has no ``choice`` or no stimulus label.
    """
    if stimulus is None:
        if not ds.attrs.get("target"):
            raise UserError("choice_vs_stimulus needs the stimulus the choice should report: the dataset declares "
                            "no target (attr 'target'); pass stimulus=NAME")
        stimulus = str(ds.attrs["target"])
    for name in ("choice", stimulus):
        if name not in ds.variables:
            raise UserError(f"choice_vs_stimulus needs {name!r} in the activation dataset; available: "
                            f"{sorted(map(str, ds.variables))}")
    lab = balanced_error_labels(ds["choice"].load(), ds[stimulus].load(), folds=folds, seed=seed, valid=valid)
    lab = {"choice": lab["choice"], stimulus: lab["stimulus"]}
    if "time" in act.dims:  # only at the last step of each period (the response step last)
        act = act.isel(time=period_ends(ds)).rename(time="error_time")
        if "period" in act.coords:
            act = act.rename(period="error_period")
    err = decoding_scores(act, lab, feature_dim=unit_dim(act), decoder=decoder, folds=folds, seed=seed,
                          device=device, dtype=dtype, progress=progress)
    return xr.Dataset({
        "error_information": err["information"].rename(variable="error_variable"),
        "error_information_sd": err["information_sd"].rename(variable="error_variable"),
    })


# --------------------------------------------------------------------------------- the registry
@dataclass
class AnalysisJob:
    """What the analyses of one run share (built by :func:`decisionnets.report.analyze_run`).

    Attributes
    ----------
    ds : xr.Dataset
        The activation dataset, restricted to the decoded epochs, time steps and periods.
    labels : dict of str to DataArray (trial) or (epoch, trial)
        The decoded labels (:func:`trial_labels`).
    valid : bool ndarray (trial) or None
        Trials allowed (not catch).
    config : AnalysisConfig
        The analysis options (:class:`decisionnets.AnalysisConfig`).
    cross_temporal_epoch : int
        The epoch of the cross-temporal matrix.
    progress : callable
        Called with the number of decoding problems finished (a tqdm's ``update``).
    """

    ds: xr.Dataset
    labels: dict
    valid: np.ndarray | None
    config: AnalysisConfig
    cross_temporal_epoch: int
    progress: Callable[[int], object] = lambda k: None

    @property
    def decoder(self):
        """The decoder argument of :func:`information`: one family, or a list of them."""
        d = self.config.decoder
        return list(d) if len(d) > 1 else d[0]

    def decoding(self) -> dict:
        """The keyword arguments every decoding analysis passes to :func:`decisionnets.decoding.decoding_scores`."""
        c = self.config
        return dict(decoder=self.decoder, folds=c.folds, seed=c.seed, device=c.device, dtype=c.dtype)

    def reuses_fits(self, act: xr.DataArray) -> bool:
        """Whether :func:`information` also gives the cross-temporal matrix of ``act`` (from its own linear fits)."""
        return "time" in act.dims and _is_linear(self.decoder)


@dataclass(frozen=True)
class Analysis:
    """One entry of :data:`ANALYSES`.

    Parameters
    ----------
    name : str
    run : callable
        ``run(job, act) -> xr.Dataset or None`` for a per-layer analysis (``act``: one recorded
        layer, DataArray (epoch, trial[, time], unit)); ``run(job) -> xr.Dataset`` for a per-run
        one. Its data variables go into ``information.nc``; it reports its finished decoding
        problems through ``job.progress``.
    problems : callable
        ``problems(job, act) -> int`` (per layer) or ``problems(job) -> int``: the decoding
        problems ``run`` fits (the progress bar's total; 0 for an analysis that fits none).
    needs : tuple of str
        Variables the dataset must hold.
    per_layer : bool
    declared : bool
        True: run only when the task declares it (dataset attr ``analyses``, :func:`task_analyses`);
        False: run on every run that holds ``needs``.
    """

    name: str
    run: Callable[..., xr.Dataset | None]
    problems: Callable[..., int]
    needs: tuple[str, ...] = ()
    per_layer: bool = True
    declared: bool = False


#: The analyses of ``information.nc``, by name, in the order they run.
ANALYSES: dict[str, Analysis] = {}


def register_analysis(analysis: Analysis, *, overwrite: bool = False) -> None:
    """Add an analysis to :data:`ANALYSES` (``overwrite=True`` replaces one of that name)."""
    if not isinstance(analysis, Analysis):
        raise UserError(f"register_analysis takes an Analysis; got {type(analysis).__name__}")
    if analysis.name in ANALYSES and not overwrite:
        raise UserError(f"analysis {analysis.name!r} is already registered; pass overwrite=True to replace it")
    ANALYSES[analysis.name] = analysis


def analysis_names(declared: Sequence) -> list[str]:
    """The names of a task's declared analyses, registering those declared as :class:`Analysis` objects.

    Parameters
    ----------
    declared : sequence of str or Analysis
        A task's ``analyses``: names of registered analyses, or the analyses themselves (an
        :class:`Analysis` not yet registered is registered here, so a task defined in a script runs
        its own analyses in the same interpreter).

    Raises
    ------
    UserError
        For an entry that is neither, or an :class:`Analysis` whose name another registered analysis holds.
    """
    names = []
    for a in declared:
        if isinstance(a, Analysis):
            if ANALYSES.get(a.name, a) is not a:
                raise UserError(f"the task declares analysis {a.name!r}, but another analysis of that name is "
                                f"registered ({ANALYSES[a.name].run!r}); give it another name")
            ANALYSES[a.name] = a
            names.append(a.name)
        elif isinstance(a, str):
            names.append(a)
        else:
            raise UserError(f"a task's analyses are names or Analysis objects; got {a!r}")
    return names


def declared_analyses(task) -> dict[str, Analysis]:
    """A task's declared analyses (its ``analyses``, names or objects) as name -> :class:`Analysis`.

    Raises :class:`UserError` for a name that is not registered.
    """
    names = analysis_names(getattr(task, "analyses", ()))
    if any(n not in ANALYSES for n in names):
        from decisionnets.registration import load_env_modules

        load_env_modules()
    unknown = [n for n in names if n not in ANALYSES]
    if unknown:
        raise UserError(f"task {getattr(task, 'name', task)!r} declares unknown analyses {unknown}; "
                        f"known: {sorted(ANALYSES)}")
    return {n: ANALYSES[n] for n in names}


def analyses_for(ds: xr.Dataset) -> list[Analysis]:
    """The analyses to run on ``ds``: every undeclared one whose inputs it holds, then those the task declared."""
    always = [a for a in ANALYSES.values() if not a.declared and all(v in ds.variables for v in a.needs)]
    return always + [ANALYSES[n] for n in task_analyses(ds)]


def count_problems(job: AnalysisJob, layers: Sequence[str], todo: Sequence[Analysis]) -> dict[str, int]:
    """The decoding problems each analysis of ``todo`` fits on ``layers`` of ``job.ds``, by name."""
    out = {}
    for a in todo:
        out[a.name] = sum(a.problems(job, job.ds[layer]) for layer in layers) if a.per_layer else a.problems(job)
    return out


def _time_points(act: xr.DataArray) -> int:
    return int(np.prod([act.sizes[d] for d in act.dims if d in ("epoch", "time")]))


def _run_information(job: AnalysisJob, act: xr.DataArray) -> xr.Dataset:
    n = len(job.labels)
    return information(act, job.labels, progress=lambda k: job.progress(k * n),
                       cross_temporal_epoch=job.cross_temporal_epoch, **job.decoding())


def _run_cross_temporal(job: AnalysisJob, act: xr.DataArray) -> xr.Dataset | None:
    if "time" not in act.dims or job.reuses_fits(act):  # static, or information already holds it
        return None
    c = job.config
    return cross_temporal(act, job.labels, epoch=job.cross_temporal_epoch, folds=c.folds, seed=c.seed,
                          device=c.device, progress=job.progress)


def _cross_temporal_problems(job: AnalysisJob, act: xr.DataArray) -> int:
    return 0 if "time" not in act.dims or job.reuses_fits(act) else act.sizes["time"] * len(job.labels)


def _choice_vs_stimulus_problems(job: AnalysisJob, act: xr.DataArray) -> int:
    steps = len(period_ends(job.ds)) if "time" in act.dims else 1
    return act.sizes["epoch"] * steps * 2 * len(job.config.decoder)


def choice_vs_stimulus_analysis(name: str, stimulus: str | None = None, *, declared: bool = True) -> Analysis:
    """An :class:`Analysis` that runs :func:`choice_vs_stimulus` per layer, to register under ``name``.

    What a task's file declares to compare the network's choice with the label it should report,
    on error trials (e.g. the checkerboard's ``choice_vs_direction``).

    Parameters
    ----------
    name : str
        The analysis' name (what a task declares and the dataset attr ``analyses`` holds).
    stimulus : str, optional
        The label the choice should report; None: the task's declared target (dataset attr ``target``).
    declared : bool
        Run only when the task declares it (the default).

    Returns
    -------
    Analysis
        Per layer; fits 2 labels x epochs x period ends (1 without time) x decoders problems.
    """
    def run(job: AnalysisJob, act: xr.DataArray) -> xr.Dataset:
        return choice_vs_stimulus(act, job.ds, stimulus=stimulus, valid=job.valid,
                                  progress=lambda k: job.progress(2 * k), **job.decoding())

    needs = ("choice",) if stimulus is None else ("choice", stimulus)
    return Analysis(name, run, _choice_vs_stimulus_problems, needs=needs, declared=declared)


register_analysis(Analysis(
    "information", _run_information,
    lambda job, act: _time_points(act) * len(job.labels) * len(job.config.decoder)))
register_analysis(Analysis("cross_temporal", _run_cross_temporal, _cross_temporal_problems))


class _TaskAnalyses(Mapping):
    """The analyses a task may declare (those of :data:`ANALYSES` with ``declared=True``), as
    name -> (function, variables the dataset must hold); a live view of the registry."""

    def _entries(self) -> dict:
        return {n: (a.run, a.needs) for n, a in ANALYSES.items() if a.declared}

    def __getitem__(self, name):
        return self._entries()[name]

    def __iter__(self):
        return iter(self._entries())

    def __len__(self):
        return len(self._entries())


#: Task-specific analyses a task may declare: name -> (function, variables the dataset must hold); those
#: registered so far (:func:`decisionnets.registration.load_env_modules` registers the env files' own).
TASK_ANALYSES: Mapping[str, tuple] = _TaskAnalyses()
