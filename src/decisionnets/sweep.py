"""Grids of runs on Dask distributed: SGD regimes, early-phase perturbations, pretraining.

A *sweep spec* is a TOML file (or a preset in ``tasks/`` with a top-level ``[sweep]`` table)::

    description = "one line"

    [sweep]
    base = "color-direction-static"     # the preset every run starts from (or a config .toml path)
    seeds = [0, 1, 2, 3, 4]             # every point of the grid is run once per seed
    set = { "train.epochs" = 60 }       # overrides applied to every run (``--set`` syntax, typed values)

    [sweep.grid]                        # product of plain config values; the dim is the key's last part
    "train.lr" = [0.01, 0.05]
    "train.batch_size" = [32, 512]

    [[sweep.axes.k]]                    # an axis whose points are tables (product with the grid)
    value = 0                           # the coordinate of this point along dim "k"
    [[sweep.axes.k]]
    value = 5
    phases = [{ epochs = 5, lr = 0.005, batch_size = 512 }]   # first 5 epochs in another regime
    # base = "...", set = {...}, init_from = "run dir or .pt",
    # pretrain = { set = {...}, epochs = 10 }   -> a pretraining run (same seed) whose final
    #                                              weights initialize this run (train.init_from)

    [sweep.analysis]
    variables = ["color", "direction"]  # labels decoded from the recorded layer at every epoch
    layer = "hidden"
    decoder = "linear"                  # a family or a list (a `decoder` dim): linear, linear-raw, mlp,
                                        # sgd-mlp, sgd-linear (decisionnets.decoders)
    epochs = []                         # decode only these recorded epochs ([]: all), e.g. for sgd-*
    folds = 5
    period = "decision"                 # time-resolved runs: average the information over this period
    method = "sweep"                    # "sweep": lean decoding (information.nc only); "report": analyze_run
    epoch_stride = 1                    # decode every k-th recorded epoch (and the last): k x less decoding

The sweep directory ``OUT/NAME/`` holds ``runs/<run id>/`` (ordinary run directories: train,
record and analyse there), ``pretrain/`` (pretraining runs), ``summary.nc`` (one
:class:`xarray.Dataset` with the grid's parameters as dimensions), ``summary.txt`` and
``figures/``. Rerunning the same spec into the same ``OUT`` skips finished runs (nothing is
submitted for them), resumes interrupted ones from their last checkpoint
(``training.train(..., resume=True)``) and leaves diverged ones as they are. A run that diverges
or crashes is recorded (``status.json``: ``diverged`` / ``failed``) and the sweep goes on.

Execution is Dask distributed: a :class:`distributed.LocalCluster` sized to the machine (one
single-threaded worker process per core) by default, or an existing scheduler
(``--scheduler tcp://HOST:PORT``), e.g. one started on a SLURM cluster with dask-jobqueue::

    from dask_jobqueue import SLURMCluster
    cluster = SLURMCluster(cores=1, processes=1, memory="4GB", walltime="02:00:00")
    cluster.scale(jobs=20)
    print(cluster.scheduler_address)      # -> decisionnets sweep SPEC --scheduler tcp://...

Compatible fresh runs (FC nets that differ only in seed, lr, momentum or weight decay) are trained
together as ensembles (:mod:`decisionnets.ensemble`, one batched program per ensemble, each run in
its own run directory as before), split so that every worker gets one; ``run_sweep(...,
ensemble=False)`` (``--no-ensemble``) runs one run per task.

Workers must see the same file system as the client (the sweep directory) and have decisionnets
installed. A worker killed mid-run is replaced by Dask rescheduling the run on another worker,
which resumes it from the checkpoint.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import time
from pathlib import Path

import numpy as np

from decisionnets.errors import ConfigError, UserError

SPEC_KEYS = ("base", "seeds", "set", "grid", "axes", "analysis", "name")
POINT_KEYS = ("value", "base", "set", "phases", "init_from", "pretrain")
ANALYSIS_DEFAULTS = {"variables": ["color", "direction"], "layer": "hidden", "decoder": "linear", "folds": 5,
                     "period": "decision", "method": "sweep", "epoch_stride": 1, "epochs": []}


# --------------------------------------------------------------------------------------------------
# the spec
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep spec (see the module docstring for the TOML layout)."""

    name: str
    description: str
    base: str
    seeds: tuple
    common: dict  #: dotted key -> value, applied to every run
    grid: dict  #: dotted key -> tuple of values
    axes: dict  #: dim name -> tuple of point dicts
    analysis: dict
    root: Path | None  #: folder of the spec file (relative paths in it are relative to this)

    @property
    def dims(self) -> list[str]:
        """Parameter dims of the grid (without seed), in order."""
        return [_dim_name(k, self.grid) for k in self.grid] + list(self.axes)


def _dim_name(key: str, grid: dict) -> str:
    short = key.rpartition(".")[2]
    clash = sum(k.rpartition(".")[2] == short for k in grid) > 1
    return key.replace(".", "_") if clash or short == "seed" else short


def _flatten_set(d: dict, where: str) -> dict:
    """``{"train": {"lr": 1}}`` or ``{"train.lr": 1}`` -> ``{"train.lr": 1}`` (one level only)."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where} must be a table of overrides; got {d!r}")
    out = {}
    for k, v in d.items():
        if k in ("env", "model", "train", "record") and isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


def load_spec(spec) -> SweepSpec:
    """Read a sweep spec from a TOML path or a sweep preset name.

    Raises
    ------
    ConfigError
        For a missing file, an unknown preset or a spec that breaks a rule.
    """
    from decisionnets.config import _read_toml, preset_names, read_preset

    path = Path(str(spec))
    if path.suffix == ".toml" or path.is_file():
        if not path.is_file():
            raise ConfigError(f"sweep spec not found: {path}")
        raw = _read_toml(path.read_text(), f"sweep spec {path}")
        name, root = path.stem, path.resolve().parent
    else:
        names = preset_names("sweep")
        if str(spec) not in names:
            raise ConfigError(f"unknown sweep {spec!r}; give a .toml file or one of: {', '.join(names) or '(none)'}")
        raw, name, root = read_preset(str(spec)), str(spec), None
    if "sweep" not in raw or not isinstance(raw["sweep"], dict):
        raise ConfigError(f"sweep spec {spec} needs a [sweep] table")
    return parse_spec(raw, name=name, root=root)


def parse_spec(raw: dict, name: str = "sweep", root: Path | None = None) -> SweepSpec:
    """Validate the raw TOML dict of a sweep spec into a :class:`SweepSpec`."""
    sw = raw["sweep"]
    bad = sorted(set(sw) - set(SPEC_KEYS))
    if bad:
        raise ConfigError(f"unknown key sweep.{bad[0]}; valid: {', '.join(SPEC_KEYS)}")
    base = sw.get("base")
    if not isinstance(base, str) or not base:
        raise ConfigError(f"sweep.base must name a preset or a config .toml file; got {base!r}")
    seeds = sw.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                      for s in seeds)) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"sweep.seeds must be a non-empty list of distinct integers >= 0; got {seeds!r}")
    common = _flatten_set(sw.get("set", {}), "sweep.set")
    grid = {}
    for k, v in _flatten_set(sw.get("grid", {}), "sweep.grid").items():
        if not isinstance(v, list) or not v:
            raise ConfigError(f"sweep.grid.{k} must be a non-empty list of values; got {v!r}")
        grid[k] = tuple(v)
    axes = {}
    raw_axes = sw.get("axes", {})
    if not isinstance(raw_axes, dict):
        raise ConfigError(f"sweep.axes must be a table of arrays of tables ([[sweep.axes.NAME]]); got {raw_axes!r}")
    for dim, points in raw_axes.items():
        if not isinstance(points, list) or not points or not all(isinstance(p, dict) for p in points):
            raise ConfigError(f"sweep.axes.{dim} must be an array of tables ([[sweep.axes.{dim}]]); got {points!r}")
        for i, p in enumerate(points):
            badp = sorted(set(p) - set(POINT_KEYS))
            if badp:
                raise ConfigError(f"unknown key sweep.axes.{dim}[{i}].{badp[0]}; valid: {', '.join(POINT_KEYS)}")
            if "value" not in p or isinstance(p["value"], (dict, list)):
                raise ConfigError(f"sweep.axes.{dim}[{i}] needs a scalar value (its coordinate); got {p.get('value')!r}")
            if "pretrain" in p and not isinstance(p["pretrain"], dict):
                raise ConfigError(f"sweep.axes.{dim}[{i}].pretrain must be a table {{set = ..., epochs = ...}}")
        values = [p["value"] for p in points]
        if len(set(values)) != len(values):
            raise ConfigError(f"sweep.axes.{dim} has repeated values {values!r}")
        axes[dim] = tuple(points)
    analysis = {**ANALYSIS_DEFAULTS, **sw.get("analysis", {})}
    bad = sorted(set(analysis) - set(ANALYSIS_DEFAULTS))
    if bad:
        raise ConfigError(f"unknown key sweep.analysis.{bad[0]}; valid: {', '.join(ANALYSIS_DEFAULTS)}")
    if analysis["method"] not in ("sweep", "report"):
        raise ConfigError(f"sweep.analysis.method must be 'sweep' or 'report'; got {analysis['method']!r}")
    if not (isinstance(analysis["epoch_stride"], int) and not isinstance(analysis["epoch_stride"], bool)
            and analysis["epoch_stride"] >= 1):
        raise ConfigError(f"sweep.analysis.epoch_stride must be an integer >= 1; got {analysis['epoch_stride']!r}")
    if not (isinstance(analysis["folds"], int) and analysis["folds"] >= 3):
        raise ConfigError(f"sweep.analysis.folds must be an integer >= 3; got {analysis['folds']!r}")
    from decisionnets.decoders import decoder_names

    decs = analysis["decoder"] if isinstance(analysis["decoder"], list) else [analysis["decoder"]]
    bad_dec = [d for d in decs if d not in decoder_names()]
    if bad_dec or not decs:
        raise ConfigError(f"sweep.analysis.decoder must be a decoder family or a list of them ({', '.join(decoder_names())}); "
                          f"got {analysis['decoder']!r}")
    if not (isinstance(analysis["epochs"], list) and all(isinstance(e, int) for e in analysis["epochs"])):
        raise ConfigError(f"sweep.analysis.epochs must be a list of integers ([] = all); got {analysis['epochs']!r}")
    name = str(sw.get("name", name))
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise ConfigError(f"sweep.name may use letters, digits, '.', '_' and '-' only; got {name!r}")
    spec = SweepSpec(name=name, description=str(raw.get("description", "")), base=base, seeds=tuple(seeds),
                     common=common, grid=grid, axes=axes, analysis=analysis, root=root)
    dims = spec.dims
    if len(set(dims)) != len(dims) or "seed" in dims:
        raise ConfigError(f"sweep dims must be distinct and not 'seed'; got {dims}")
    return spec


# --------------------------------------------------------------------------------------------------
# the plan: one RunPoint per (grid point, seed)
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RunPoint:
    """One run of a sweep: where it lives, its coordinates and its resolved config (JSON)."""

    run_id: str
    run_dir: str
    coords: dict  #: dim -> value, including "seed"
    config_json: str
    pretrain: RunPoint | None = None


def _toml_value(v) -> str:
    """A value as TOML text (for :func:`decisionnets.config.apply_override`)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float, str)):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise ConfigError(f"cannot use {v!r} as a config value")


def _coord_value(v):
    """A netCDF/xarray-friendly coordinate for a grid value (lists become '100x100')."""
    if isinstance(v, (list, tuple)):
        return "x".join(str(x) for x in v)
    return v


def _slug(v) -> str:
    s = str(_coord_value(v))
    return re.sub(r"[^A-Za-z0-9.+-]", "-", s)


def _base_raw(base: str, root: Path | None) -> tuple[dict, str]:
    from decisionnets.config import _merge, _read_toml, read_preset

    p = Path(base)
    if base.endswith(".toml"):
        p = p if p.is_absolute() or root is None else root / p
        if not p.is_file():
            raise ConfigError(f"sweep base config not found: {p}")
        raw = _read_toml(p.read_text(), f"config file {p}")
        parent = raw.pop("base", None)
        if parent:
            raw = _merge(read_preset(parent), raw)
        return raw, p.stem
    return read_preset(base), base


def _resolve(base: str, root, overrides: dict, phases, init_from: str, seed: int):
    from decisionnets.config import apply_override, from_dict

    raw, task = _base_raw(base, root)
    raw.pop("base", None)
    raw.pop("sweep", None)
    for k, v in overrides.items():
        if k == "train.phases" or k == "phases":
            phases = v
            continue
        raw = apply_override(raw, f"{k}={_toml_value(v)}")
    if phases is not None:
        raw.setdefault("train", {})["phases"] = [dict(p) for p in phases]
    if init_from:
        raw.setdefault("train", {})["init_from"] = init_from
    raw["seed"] = seed
    cfg = from_dict(raw, task=task)
    return dataclasses.replace(cfg, task=task)


def plan(spec: SweepSpec, sweep_dir) -> list[RunPoint]:
    """Every run of ``spec`` (grid x axes x seeds), configs resolved and validated."""
    sweep_dir = Path(sweep_dir).resolve()
    grid_items = [[(k, v) for v in vals] for k, vals in spec.grid.items()]
    axis_items = [[(dim, p) for p in pts] for dim, pts in spec.axes.items()]
    points, pretrains = [], {}
    for combo in itertools.product(*grid_items, *axis_items, [("seed", s) for s in spec.seeds]):
        coords, overrides, base, phases, init_from, pre = {}, dict(spec.common), spec.base, None, "", None
        seed = combo[-1][1]
        for key, v in combo[:-1]:
            if key in spec.axes:
                coords[key] = v["value"]
                base = v.get("base", base)
                overrides.update(_flatten_set(v.get("set", {}), f"sweep.axes.{key}.set"))
                phases = v.get("phases", phases)
                init_from = v.get("init_from", init_from)
                pre = v.get("pretrain", pre)
            else:
                coords[_dim_name(key, spec.grid)] = _coord_value(v)
                overrides[key] = v
        coords["seed"] = seed
        if init_from and spec.root is not None and not Path(init_from).is_absolute():
            init_from = str(spec.root / init_from)
        pre_point = None
        if pre:
            pover = {**overrides, **_flatten_set(pre.get("set", {}), "pretrain.set")}
            if "epochs" in pre:
                pover["train.epochs"] = pre["epochs"]
            pcfg = _resolve(pre.get("base", base), spec.root, pover, pre.get("phases"), "", seed)
            key = pcfg.to_json()
            if key not in pretrains:
                import hashlib

                h = hashlib.sha1(key.encode()).hexdigest()[:8]
                pid = f"pretrain-{h}_seed-{seed}"
                pretrains[key] = RunPoint(pid, str(sweep_dir / "pretrain" / pid), {"seed": seed}, key)
            pre_point = pretrains[key]
            init_from = pre_point.run_dir
        cfg = _resolve(base, spec.root, overrides, phases, init_from, seed)
        run_id = "_".join(f"{d}-{_slug(v)}" for d, v in coords.items())
        points.append(RunPoint(run_id, str(sweep_dir / "runs" / run_id), coords, cfg.to_json(), pre_point))
    return points


# --------------------------------------------------------------------------------------------------
# one run (executed on a Dask worker)
# --------------------------------------------------------------------------------------------------
def _is_done(point: RunPoint, analyze: bool) -> str | None:
    """'completed' / 'diverged' when nothing is left to do for ``point``, else None."""
    from decisionnets.io import read_status

    try:
        st = read_status(point.run_dir).get("status")
    except UserError:
        return None
    has_info = (Path(point.run_dir) / "information.nc").is_file()
    if st == "completed" and (not analyze or has_info):
        return "completed"
    if st == "diverged" and (not analyze or has_info or not (Path(point.run_dir) / "activations").is_dir()):
        return "diverged"
    return None


def _check_same_config(point: RunPoint) -> None:
    """Refuse a run directory holding another config; options added since it was written take their defaults."""
    p = Path(point.run_dir) / "config.json"
    if not p.is_file():
        return
    try:  # resolved again: a config.json written before e.g. train.optimizer existed still matches
        stored = json.loads(_config(p.read_text()).to_json())
    except (UserError, ValueError):
        stored = None
    if stored != json.loads(point.config_json):
        raise ConfigError(f"{point.run_dir} holds a run with another config (was the spec edited?); "
                          "use another --out or delete that run directory")


def analyze_information(run_dir, *, variables=("color", "direction"), layer="hidden", decoder="linear", folds=5,
                        period="decision", seed=0, epochs=None, epoch_stride=1) -> Path:
    """Usable information of every recorded epoch's ``layer`` about ``variables``; writes RUN_DIR/information.nc.

    A lean analysis for sweeps (no per-run figures): :func:`decisionnets.decoding.decoding_scores`
    in float64 on the recorded layer; for time-resolved runs only the time steps of ``period``
    are decoded (each separately).

    ``decoder``: a family name or a list of them (a ``decoder`` dim); ``epochs``: decode only these
    recorded epochs (None or []: all).

    Returns
    -------
    Path
        RUN_DIR/information.nc: ``information``, ``information_sd``, ``accuracy``, ``converged``
        with dims ([decoder,] variable, epoch[, time]).
    """
    from decisionnets.decoding import decoding_scores
    from decisionnets.io import atomic_path, open_activations

    ds = open_activations(run_dir)
    if layer not in ds.data_vars:
        raise ConfigError(f"sweep.analysis.layer: run {run_dir} recorded no {layer!r}; has {', '.join(ds.data_vars)}")
    act = ds[layer]
    if epochs:
        have = set(int(e) for e in ds["epoch"].values)
        missing = [e for e in epochs if int(e) not in have]
        if missing:
            raise ConfigError(f"sweep.analysis.epochs: run {run_dir} did not record epochs {missing}")
        act = act.sel(epoch=[int(e) for e in epochs])
    if epoch_stride > 1:  # every k-th recorded epoch, always the first and the last
        n = act.sizes["epoch"]
        act = act.isel(epoch=sorted({*range(0, n, epoch_stride), n - 1}))
    if "time" in act.dims and period and "period" in ds.coords:
        keep = np.asarray(ds["period"].values == period)
        if keep.any():
            act = act.isel(time=np.flatnonzero(keep))
    feature = next(d for d in act.dims if d not in ("epoch", "trial", "time"))
    missing = [v for v in variables if v not in ds.coords and v not in ds.data_vars]
    if missing:
        raise ConfigError(f"sweep.analysis.variables: run {run_dir} has no label {missing[0]!r}")
    labels = {v: ds[v].load() for v in variables}
    out = decoding_scores(act.load(), labels, feature_dim=feature, decoder=decoder, folds=folds, seed=seed,
                          dtype="float64")
    out = out.drop_vars([c for c in out.coords if c not in out.dims and c != "period"], errors="ignore")
    out.attrs.update(layer=layer, period=str(period or ""), analysis="decisionnets.sweep.analyze_information",
                     target=str(ds.attrs.get("target", "")))
    path = Path(run_dir) / "information.nc"
    with atomic_path(path) as tmp:
        out.to_netcdf(tmp, engine="netcdf4")
    ds.close()
    return path


def _analyze(run_dir, analysis: dict):
    if analysis["method"] == "report":
        from decisionnets.report import analyze_run

        analyze_run(run_dir, variables=list(analysis["variables"]), decoder=analysis["decoder"],
                    folds=analysis["folds"], progress=False, epochs=analysis.get("epochs") or None)
    else:
        analyze_information(run_dir, variables=list(analysis["variables"]), layer=analysis["layer"],
                            decoder=analysis["decoder"], folds=analysis["folds"], period=analysis["period"],
                            epochs=analysis.get("epochs") or None, epoch_stride=analysis.get("epoch_stride", 1))


def run_point(point: RunPoint, analysis: dict | None = None, pretrain_result: dict | None = None,
              force: bool = False) -> dict:
    """Train (or resume), then analyse, one run of a sweep; never raises for a failing run.

    The run directory's writer lock (:mod:`decisionnets.locks`) is held throughout; a run whose
    directory another live process writes to is reported "failed" and left untouched.

    Returns
    -------
    dict
        ``run_id``, ``status`` ("completed", "diverged" or "failed"), ``action`` (what was done:
        "skipped", "trained", "resumed", "analyzed"), ``seconds``, ``error`` (failed runs).
    """
    import dask

    from decisionnets.errors import RunLocked, WriteFailed
    from decisionnets.locks import acquire, release
    from decisionnets.threads import set_threads

    set_threads(1, "sweep: 1 thread per Dask worker")
    try:
        acquire(point.run_dir, force=force)
    except (RunLocked, WriteFailed) as e:
        return {"run_id": point.run_id, "status": "failed", "action": "", "seconds": 0.0,
                "error": f"{type(e).__name__}: {e}"}
    try:
        with dask.config.set(scheduler="synchronous"):  # lazy arrays load here, not as tasks of the cluster
            return _run_point(point, analysis, pretrain_result)
    finally:
        release(point.run_dir)


def _run_point(point, analysis, pretrain_result):
    import socket

    from decisionnets.errors import TrainingDiverged
    from decisionnets.io import read_status, write_json
    from decisionnets.training import train

    t0 = time.perf_counter()
    run_dir = Path(point.run_dir)
    res = {"run_id": point.run_id, "status": "failed", "action": "", "seconds": 0.0, "error": ""}
    wpath = run_dir / "worker.json"
    try:
        attempts = json.loads(wpath.read_text()).get("attempts", 0) if wpath.is_file() else 0
    except (OSError, ValueError):
        attempts = 0
    write_json(wpath, {"pid": os.getpid(), "host": socket.gethostname(), "attempts": attempts + 1,
                       "started": time.time()})
    try:
        if pretrain_result is not None and pretrain_result.get("status") != "completed":
            raise RuntimeError(f"pretraining run {pretrain_result.get('run_id')} is {pretrain_result.get('status')}")
        done = _is_done(point, analysis is not None)
        if done:
            res.update(status=done, action="skipped")
            return res
        _check_same_config(point)
        st = read_status(run_dir).get("status")
        if st not in ("completed", "diverged"):
            resume = (run_dir / "checkpoints" / "last.pt").is_file()
            cfg = _config(point.config_json)
            try:
                train(cfg, run_dir, progress=False, resume=resume)
                res["action"] = "resumed" if resume else "trained"
                st = "completed"
            except TrainingDiverged as e:
                res.update(action="trained", error=str(e))
                st = "diverged"
        if analysis is not None and (run_dir / "activations").is_dir():
            _analyze(run_dir, analysis)
            res["action"] = (res["action"] + "+analyzed").lstrip("+")
        res["status"] = st
    except Exception as e:  # noqa: BLE001 - a crashing run is recorded, the sweep goes on
        res.update(status="failed", error=f"{type(e).__name__}: {e}")
        try:
            old = read_status(run_dir)
        except UserError:
            old = {}
        try:
            write_json(run_dir / "status.json", {**old, "status": "failed", "error": res["error"]})
        except RuntimeError:  # WriteFailed: the disk is full; the result still says why
            pass
    finally:
        res["seconds"] = round(time.perf_counter() - t0, 2)
    return res


def _config(config_json: str):
    """Config from its JSON (Config.to_json round-trips, phases included)."""
    from decisionnets.config import config_from_json

    return config_from_json(config_json)


def _pretrain_point(point: RunPoint, force: bool = False) -> dict:
    return run_point(point, analysis=None, force=force)


# --------------------------------------------------------------------------------------------------
# the driver
# --------------------------------------------------------------------------------------------------
def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _client(scheduler, n_workers, timeout="20s"):
    import logging

    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout=timeout), None
        except (OSError, TimeoutError) as e:
            raise UserError(f"cannot connect to the Dask scheduler at {scheduler}: {e}") from None
    n = n_workers or _default_workers()
    if n < 1:
        raise UserError(f"--workers must be >= 1; got {n}")
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR)
    return Client(cluster), cluster


def _short(point: RunPoint) -> str:
    return " ".join(f"{k}={v}" for k, v in point.coords.items())


def run_sweep(spec, out="sweeps", scheduler=None, n_workers=None, analyze=True, progress=True,
              ensemble=True, force=False) -> str:
    """Run every run of a sweep on Dask, then gather the summary dataset and figures.

    Parameters
    ----------
    spec : str or path
        A sweep TOML file or a sweep preset name.
    out : path
        Parent folder; the sweep lives in ``OUT/<spec name>/`` (rerun to resume).
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:port``); default: a LocalCluster.
    n_workers : int, optional
        LocalCluster workers (default: one single-threaded worker per core).
    analyze : bool
        Decode the information of every run (needed for the summary).
    progress : bool
        A line per finished run and a bar over runs (stderr).
    ensemble : bool
        Train compatible fresh runs (FC nets differing in seed, lr, momentum, weight decay) as
        ensembles (:mod:`decisionnets.ensemble`), spread over the workers; False: one run per task.
    force : bool
        Take over sweep and run locks whose holders run on another host.

    Returns
    -------
    str
        A short multi-line summary; its last line is the sweep directory.

    Raises
    ------
    RunLocked
        When another live sweep works on the same folder (nothing is written).
    """
    from decisionnets.locks import run_lock

    sp = load_spec(spec)
    sweep_dir = (Path(out) / sp.name).resolve()
    points = plan(sp, sweep_dir)
    with run_lock(sweep_dir, force=force, what="sweep directory"):
        return _run_sweep(sp, sweep_dir, points, scheduler, n_workers, analyze, progress, force, ensemble)


def _run_sweep(sp, sweep_dir, points, scheduler, n_workers, analyze, progress, force, ensemble=True) -> str:
    """The body of :func:`run_sweep`, run while holding the sweep directory's lock."""
    import sys

    from decisionnets.io import write_json

    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_json(sweep_dir / "sweep.json", {"name": sp.name, "description": sp.description, "dims": sp.dims,
                                          "seeds": list(sp.seeds), "analysis": sp.analysis,
                                          "runs": [{"run_id": p.run_id, "coords": p.coords} for p in points]})
    analysis = dict(sp.analysis) if analyze else None
    results = {}
    todo = []
    for p in points:
        _check_same_config(p)  # a run dir of an edited spec: stop before anything runs
        done = _is_done(p, analyze)
        if done:
            results[p.run_id] = {"run_id": p.run_id, "status": done, "action": "skipped", "seconds": 0.0, "error": ""}
        else:
            todo.append(p)

    def say(msg):
        if progress:
            from tqdm.auto import tqdm

            tqdm.write(msg, file=sys.stderr)

    say(f"sweep {sp.name}: {len(points)} runs, {len(points) - len(todo)} already finished, {len(todo)} to run")
    if todo:
        results.update(_execute(todo, analysis, scheduler, n_workers, progress, say, ensemble, force))
    counts = {}
    for r in results.values():
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    lines = [f"sweep {sp.name}: {len(points)} runs: "
             + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
             + f" ({sum(r['action'] == 'skipped' for r in results.values())} were already finished)"]
    write_json(sweep_dir / "results.json", results)
    if analyze:
        summary = gather(sweep_dir, points=points, spec=sp)
        path = sweep_dir / "summary.nc"
        from decisionnets.io import atomic_path

        with atomic_path(path) as tmp:
            summary.to_netcdf(tmp, engine="netcdf4")
        figs = plot_summary(summary, sweep_dir / "figures")
        text = describe(summary)
        (sweep_dir / "summary.txt").write_text(text + "\n")
        lines += [f"summary: {path}"] + [f"figure: {f}" for f in figs] + text.splitlines()
    lines.append(str(sweep_dir))
    return "\n".join(lines)


def _execute(todo, analysis, scheduler, n_workers, progress, say, ensemble=True, force=False) -> dict:
    from distributed import wait
    from tqdm.auto import tqdm

    client, cluster = _client(scheduler, n_workers)
    results = {}
    try:
        futures, pre_futures = {}, {}  # future -> the points it runs
        units = _ensemble_units(todo, _n_workers(client)) if ensemble else [[p] for p in todo]
        for unit in units:
            if len(unit) > 1:
                key = f"ensemble-{unit[0].run_id}-{len(unit)}-{time.time_ns()}"
                futures[client.submit(run_ensemble, unit, analysis, force, pure=False, key=key)] = unit
                continue
            p = unit[0]
            pre = None
            if p.pretrain is not None:
                if p.pretrain.run_id not in pre_futures:
                    pre_futures[p.pretrain.run_id] = client.submit(_pretrain_point, p.pretrain, force, pure=False,
                                                                   key=f"pretrain-{p.pretrain.run_id}-{time.time_ns()}")
                pre = pre_futures[p.pretrain.run_id]
            futures[client.submit(run_point, p, analysis, pre, force, pure=False,
                                  key=f"run-{p.run_id}-{time.time_ns()}")] = [p]
        pending = set(futures)
        bar = tqdm(total=len(todo), desc="sweep", unit="run", disable=not progress, dynamic_ncols=True)
        while pending:
            try:
                done, pending = wait(pending, timeout=2.0, return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = set()
            for f in done:
                try:
                    rs = f.result()
                    rs = rs if isinstance(rs, list) else [rs]
                except Exception as e:  # noqa: BLE001 - e.g. KilledWorker after repeated worker deaths
                    rs = [{"run_id": p.run_id, "status": "failed", "action": "", "seconds": 0.0,
                           "error": f"{type(e).__name__}: {e}"} for p in futures[f]]
                for p, r in zip(futures[f], rs):
                    results[p.run_id] = r
                    bar.update(1)
                    extra = f" ({r['error']})" if r.get("error") else ""
                    say(f"[{len(results)}/{len(todo)}] {_short(p)}: {r['status']}, {r['action'] or '-'} "
                        f"in {r['seconds']:.0f} s{extra}")
            if pending and progress:
                bar.set_postfix_str(_running_postfix([p for f in pending for p in futures[f]]))
        bar.close()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return results


# --------------------------------------------------------------------------------------------------
# ensembles: compatible runs trained as one batched program (decisionnets.ensemble)
# --------------------------------------------------------------------------------------------------
MAX_ENSEMBLE = 32  #: most members in one ensemble


def _n_workers(client, wait_s: float = 30.0) -> int:
    """Workers of the cluster now (waiting up to ``wait_s`` for a first one, and a moment for its peers)."""
    try:
        if not client.scheduler_info().get("workers"):
            client.wait_for_workers(1, timeout=wait_s)
            time.sleep(2.0)  # workers started together join within moments of each other
        return max(1, len(client.scheduler_info().get("workers", {})))
    except Exception:  # noqa: BLE001 - no worker yet or an unusual scheduler: assume one worker
        return 1


def _ensemble_units(points, n_workers: int = 1) -> list[list[RunPoint]]:
    """``points`` as units of work: ensembles of compatible fresh runs, and single runs.

    Runs with a pretraining dependency or an existing checkpoint (resumed) stay single. A group
    of compatible runs (:func:`decisionnets.ensemble.ensemble_key`) is split into ensembles of at
    most ``ceil(n / n_workers)`` members (and :data:`MAX_ENSEMBLE`), so that the ensembles still
    spread over the Dask workers.
    """
    from decisionnets.ensemble import ensemble_key

    keyed, singles = {}, []
    for p in points:
        key = None
        if p.pretrain is None and not (Path(p.run_dir) / "checkpoints" / "last.pt").is_file():
            key = ensemble_key(_config(p.config_json))
        if key is None:
            singles.append([p])
        else:
            keyed.setdefault(key, []).append(p)
    n_grouped = sum(len(g) for g in keyed.values())
    size = max(2, min(MAX_ENSEMBLE, -(-n_grouped // max(1, n_workers)))) if n_grouped else MAX_ENSEMBLE
    units = []
    for g in keyed.values():
        n_chunks = -(-len(g) // size)
        units += [g[i::n_chunks] for i in range(n_chunks)]  # balanced chunks
    return units + singles


def run_ensemble(points: list, analysis: dict | None = None, force: bool = False) -> list[dict]:
    """Train compatible runs of a sweep as one ensemble, then analyse each; never raises for failing runs.

    Falls back to :func:`run_point` per run when the ensemble cannot run as one (fewer than two runs
    left to train, members resumed at different epochs, or an error in the batched program: each run
    then resumes alone from its solo-format checkpoint).

    Returns
    -------
    list of dict
        One :func:`run_point` result per point, in order; ``action`` says "trained in ensemble of K".
    """
    import dask

    from decisionnets.errors import RunLocked, WriteFailed
    from decisionnets.locks import acquire, release
    from decisionnets.threads import set_threads

    set_threads(1, "sweep: 1 thread per Dask worker")
    locked, refused = [], {}
    try:
        for p in points:  # one writer per run directory: every member's lock, held by this worker
            try:
                acquire(p.run_dir, force=force)
                locked.append(p)
            except (RunLocked, WriteFailed) as e:
                refused[p.run_id] = {"run_id": p.run_id, "status": "failed", "action": "", "seconds": 0.0,
                                     "error": f"{type(e).__name__}: {e}"}
        with dask.config.set(scheduler="synchronous"):
            done = {r["run_id"]: r for r in _run_ensemble(locked, analysis, force)} if locked else {}
        return [refused.get(p.run_id) or done[p.run_id] for p in points]
    finally:
        for p in locked:
            release(p.run_dir)


def _status_or_none(run_dir):
    from decisionnets.io import read_status

    try:
        return read_status(run_dir).get("status")
    except UserError:
        return None


def _run_ensemble(points, analysis, force=False):
    import socket

    from decisionnets.ensemble import train_ensemble
    from decisionnets.io import write_json

    t0 = time.perf_counter()
    todo = [p for p in points if not _is_done(p, analysis is not None)]
    try:
        for p in todo:
            _check_same_config(p)
    except UserError:
        todo = []
    trainable = [p for p in todo if _status_or_none(p.run_dir) not in ("completed", "diverged")]
    if len(trainable) < 2:
        return [run_point(p, analysis, None, force) for p in points]
    results = {}
    try:
        for p in trainable:
            wpath = Path(p.run_dir) / "worker.json"
            try:
                attempts = json.loads(wpath.read_text()).get("attempts", 0) if wpath.is_file() else 0
            except (OSError, ValueError):
                attempts = 0
            write_json(wpath, {"pid": os.getpid(), "host": socket.gethostname(), "attempts": attempts + 1,
                               "started": time.time(), "ensemble": [q.run_id for q in trainable]})
        resume = any((Path(p.run_dir) / "checkpoints" / "last.pt").is_file() for p in trainable)
        statuses = train_ensemble([_config(p.config_json) for p in trainable], [p.run_dir for p in trainable],
                                  progress=False, resume=resume)
    except Exception:  # noqa: BLE001 - each run goes on alone, from its checkpoint
        return [run_point(p, analysis, None, force) for p in points]
    seconds = (time.perf_counter() - t0) / len(trainable)
    for p, st in zip(trainable, statuses):
        results[p.run_id] = {"run_id": p.run_id, "status": st["status"], "seconds": seconds,
                             "action": f"trained in ensemble of {len(trainable)}",
                             "error": f"training diverged: loss={st['loss']} at epoch {st['epoch']}, "
                                      f"step {st['step']}" if st["status"] == "diverged" else ""}
    out = []
    for p in points:
        if p.run_id not in results:  # finished before, or not trainable here: the solo path says what it is
            out.append(run_point(p, analysis, None, force))
            continue
        r = results[p.run_id]
        if analysis is not None and (Path(p.run_dir) / "activations").is_dir():
            t1 = time.perf_counter()
            try:
                _analyze(p.run_dir, analysis)
                r["action"] += "+analyzed"
            except Exception as e:  # noqa: BLE001 - a failing analysis is recorded, the sweep goes on
                r.update(status="failed", error=f"{type(e).__name__}: {e}")
            r["seconds"] = round(r["seconds"] + time.perf_counter() - t1, 2)
        r["seconds"] = round(r["seconds"], 2)
        out.append(r)
    return out


def _running_postfix(points) -> str:
    from decisionnets.io import read_status

    parts = []
    for p in points:
        try:
            st = read_status(p.run_dir)
        except UserError:
            continue
        if st.get("status") == "running":
            total = json.loads(p.config_json)["train"]["epochs"]
            parts.append(f"{p.run_id}: epoch {st.get('epoch', 0)}/{total}")
    return "; ".join(parts[:3])


# --------------------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------------------
def _run_information(run_dir: Path, period: str):
    """(variable, epoch) information and its fold s.d. from a run's information.nc (time averaged)."""

    from decisionnets.io import open_dataset

    with open_dataset(run_dir / "information.nc", "information file") as ds:
        ds = ds.load()
    keep = [v for v in ("information", "information_sd", "accuracy") if v in ds]
    ds = ds[keep]
    if "time" in ds.dims:
        if period and "period" in ds.coords and (ds["period"] == period).any():
            ds = ds.where(ds["period"] == period, drop=True)
        ds = ds.mean("time")
    for d in list(ds.dims):
        if d not in ("variable", "epoch", "decoder"):
            ds = ds.isel({d: 0})
    return ds.drop_vars([c for c in ds.coords if c not in ("variable", "epoch", "decoder")], errors="ignore")


def _ceiling(config_json: str) -> float:
    from decisionnets.ideal_observer import ceiling_for_env
    from decisionnets.trials import make_env

    env = dict(json.loads(config_json)["env"])
    if env.get("name") not in ("ColorDirection", "ColorDirectionStatic"):
        return float("nan")
    name = env.pop("name")
    return float(ceiling_for_env(make_env(name, env))["information"])


def gather(sweep_dir, points=None, spec=None):
    """The sweep's summary :class:`xarray.Dataset` from its runs' information.nc files.

    Returns
    -------
    xr.Dataset
        ``information``, ``information_sd`` (bits) with dims (*grid dims, seed, variable, epoch);
        ``status`` (str), ``final_val_accuracy``, ``final_probe_accuracy`` with dims
        (*grid dims, seed); ``ceiling`` (bits, the ideal observer's information about direction
        and color) with dims (*grid dims); NaN where a run has no such epoch or failed.
    """
    import pandas as pd
    import xarray as xr

    from decisionnets.io import read_status

    sweep_dir = Path(sweep_dir)
    if points is None or spec is None:
        meta = json.loads((sweep_dir / "sweep.json").read_text())
        dims = meta["dims"] + ["seed"]
        entries = [(r["run_id"], r["coords"], None) for r in meta["runs"]]
        period = meta["analysis"].get("period", "decision")
    else:
        dims = spec.dims + ["seed"]
        entries = [(p.run_id, p.coords, p.config_json) for p in points]
        period = spec.analysis.get("period", "decision")
    infos, scalars, index, steps = [], [], [], []
    for run_id, coords, cfg_json in entries:
        run_dir = sweep_dir / "runs" / run_id
        if cfg_json is None and (run_dir / "config.json").is_file():
            cfg_json = (run_dir / "config.json").read_text()
        try:
            st = read_status(run_dir).get("status", "missing")
        except UserError:
            st = "missing"
        info = _run_information(run_dir, period) if (run_dir / "information.nc").is_file() else None
        val_acc = probe_acc = float("nan")
        log = run_dir / "log.csv"
        step_of = {0: 0}  # epoch -> SGD steps so far
        if log.is_file():
            rows = pd.read_csv(log)
            if len(rows) and "val_accuracy" in rows:
                val_acc = float(rows["val_accuracy"].iloc[-1])
            if len(rows) and "step" in rows:
                step_of.update(zip(rows["epoch"].astype(int), rows["step"].astype(float)))
        steps.append(step_of)
        if info is not None and "accuracy" in info:
            pass
        infos.append(info)
        scalars.append({"status": st, "final_val_accuracy": val_acc,
                        "ceiling": _ceiling(cfg_json) if cfg_json else float("nan")})
        index.append(tuple(coords[d] for d in dims))
    template = next((i for i in infos if i is not None), None)
    mi = pd.MultiIndex.from_tuples(index, names=dims)
    data = {}
    if template is not None:
        epochs = sorted({int(e) for i in infos if i is not None for e in i["epoch"].values})
        variables = list(template["variable"].values)
        # several decoder families: a `decoder` dim (runs analysed with fewer get NaN there)
        decoders = list(dict.fromkeys(str(x) for i in infos if i is not None and "decoder" in i.dims
                                      for x in i["decoder"].values))
        ddims = ("decoder",) if decoders else ()
        inner = ddims + ("variable", "epoch")
        arr = np.full((len(index),) + ((len(decoders),) if decoders else ()) + (len(variables), len(epochs)), np.nan)
        arr_sd = np.full_like(arr, np.nan)
        for k, i in enumerate(infos):
            if i is None:
                continue
            i = i.reindex(epoch=epochs, variable=variables)
            if decoders:
                i = i.reindex(decoder=decoders) if "decoder" in i.dims else None
                if i is None:
                    continue
            arr[k] = i["information"].transpose(*inner).values
            if "information_sd" in i:
                arr_sd[k] = i["information_sd"].transpose(*inner).values
        step_arr = np.array([[st.get(e, np.nan) for e in epochs] for st in steps], dtype=float)
        data["step"] = (("run", "epoch"), step_arr, {"long_name": "SGD steps taken by the end of the epoch"})
        data["information"] = (("run",) + inner, arr, {"units": "bits"})
        data["information_sd"] = (("run",) + inner, arr_sd,
                                  {"units": "bits", "long_name": "s.d. over decoder folds"})
        coords = {"variable": variables, "epoch": epochs, **({"decoder": decoders} if decoders else {})}
    else:
        coords = {}
    data["status"] = (("run",), np.array([s["status"] for s in scalars], dtype=object))
    data["final_val_accuracy"] = (("run",), np.array([s["final_val_accuracy"] for s in scalars]))
    data["ceiling"] = (("run",), np.array([s["ceiling"] for s in scalars]), {"units": "bits"})
    ds = xr.Dataset(data, coords=coords)
    ds = ds.assign_coords(xr.Coordinates.from_pandas_multiindex(mi, "run")).unstack("run")
    ds["status"] = ds["status"].fillna("missing").astype(str)
    ds["ceiling"] = ds["ceiling"].max("seed")
    ds.attrs.update(sweep=sweep_dir.name, reduction=f"information averaged over the '{period}' period "
                    "for time-resolved runs")
    return ds


def _information(summary, variable, decoder=None):
    """summary["information"] of one variable (and one decoder family: by default the first)."""
    info = summary["information"].sel(variable=variable)
    if "decoder" in info.dims:
        info = info.sel(decoder=decoder) if decoder is not None else info.isel(decoder=0)
    return info


def regimes(summary):
    """The summary's parameter combinations (without seed) as a list of coordinate dicts."""
    dims = [d for d in summary["status"].dims if d != "seed"]
    return [dict(zip(dims, c)) for c in itertools.product(*(summary[d].values.tolist() for d in dims))]


def _label(reg: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in reg.items()) or "all"


def peak_final(summary, variable="color"):
    """Per regime: peak and final information about ``variable`` (mean and s.d. over seeds).

    Returns
    -------
    list of dict
        ``regime`` (dict), ``peak_mean``, ``peak_sd``, ``peak_epoch`` (median over seeds),
        ``final_mean``, ``final_sd``, ``init_mean``, ``n`` (seeds with data).
    """
    import xarray as xr

    out = []
    info = _information(summary, variable)
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
    """Plain-text table: per regime, peak and final color and direction information (mean +- s.d. over seeds)."""
    if "information" not in summary:
        return "no information recorded (every run failed or was not analysed)"
    lines = ["regime | n | color: init, peak (epoch), final | direction: final | ceiling | val acc | status"]
    vars_ = list(summary["variable"].values)
    col = peak_final(summary, "color") if "color" in vars_ else None
    dirn = peak_final(summary, "direction") if "direction" in vars_ else None
    for k, reg in enumerate(regimes(summary)):
        st = summary["status"].sel(reg).values.ravel().tolist()
        counts = ", ".join(f"{st.count(s)} {s}" for s in sorted(set(st)))
        acc = summary["final_val_accuracy"].sel(reg)
        parts = [_label(reg)]
        c = col[k] if col else {"n": 0}
        parts.append(str(c["n"]))
        if c["n"]:
            parts.append(f"{c['init_mean']:.3f}, {c['peak_mean']:.3f} +- {c['peak_sd']:.3f} ({c['peak_epoch']:.0f}), "
                         f"{c['final_mean']:.3f} +- {c['final_sd']:.3f}")
        else:
            parts.append("-")
        d = dirn[k] if dirn else {"n": 0}
        parts.append(f"{d['final_mean']:.3f} +- {d['final_sd']:.3f}" if d["n"] else "-")
        parts.append(f"{float(summary['ceiling'].sel(reg)):.3f}")
        parts.append(f"{float(acc.mean()):.3f}")
        parts.append(counts)
        lines.append(" | ".join(parts))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# figures (ax in, ax out; the driver saves)
# --------------------------------------------------------------------------------------------------
def plot_information_vs_epoch(ax, summary, variable="color", regs=None, ceiling=True, x="epoch"):
    """Mean information over seeds vs epoch (or SGD step), one line per regime, band = +- s.d. over seeds.

    Parameters
    ----------
    ax : matplotlib Axes
    summary : xr.Dataset
        From :func:`gather`: ``information`` (*grid dims, seed, variable, epoch), ``step``.
    variable : str
    regs : list of dict, optional
        Regimes to draw (default: every one).
    ceiling : bool
        Draw the ideal observer's information as a dashed line.
    x : {"epoch", "step"}
        Horizontal axis: training epoch or SGD steps taken (mean over seeds), both on a log scale.
    """
    if x not in ("epoch", "step"):
        raise ValueError(f"x must be 'epoch' or 'step'; got {x!r}")
    if x == "step" and "step" not in summary:
        raise ValueError("this summary has no 'step' variable (gathered before steps were recorded)")
    info = _information(summary, variable)
    regs = regimes(summary) if regs is None else regs
    epochs = summary["epoch"].values
    for reg in regs:
        y = info.sel(reg)
        m, s = y.mean("seed").values, y.std("seed").values
        xs = np.maximum(epochs, 0.5) if x == "epoch" else np.maximum(summary["step"].sel(reg).mean("seed").values, 1)
        ok = np.isfinite(m) & np.isfinite(xs)  # epochs recorded by these runs (others may record other epochs)
        line, = ax.plot(xs[ok], m[ok], marker=".", label=_label(reg))
        ax.fill_between(xs[ok], (m - s)[ok], (m + s)[ok], color=line.get_color(), alpha=0.2, lw=0)
    if ceiling and regs:
        c = float(summary["ceiling"].sel(regs[0]))
        if np.isfinite(c):
            ax.axhline(c, color="k", ls="--", lw=0.8, label="Bayes ceiling")
    ax.set_xscale("log")
    ax.set_xlabel("epoch (0 plotted at 0.5)" if x == "epoch" else "SGD steps (0 plotted at 1)")
    ax.set_ylabel(f"{variable} information (bits)")
    return ax


def plot_final_vs(ax, summary, x_dim, line_dim=None, variable="color", which="final", fixed=None):
    """Final (or peak) information about ``variable`` vs ``x_dim``, one line per ``line_dim`` value."""
    stats = peak_final(summary, variable)
    fixed = fixed or {}
    lines = summary[line_dim].values.tolist() if line_dim else [None]
    for lv in lines:
        xs, ms, ss = [], [], []
        for st in stats:
            reg = st["regime"]
            if st["n"] == 0 or (line_dim and reg[line_dim] != lv) or any(reg.get(k) != v for k, v in fixed.items()):
                continue
            xs.append(reg[x_dim])
            ms.append(st[f"{which}_mean"])
            ss.append(st[f"{which}_sd"])
        if xs:
            o = np.argsort(xs)
            ax.errorbar(np.asarray(xs)[o], np.asarray(ms)[o], yerr=np.asarray(ss)[o], marker="o", capsize=3,
                        label=f"{line_dim}={lv}" if line_dim else None)
    ax.set_xlabel(x_dim)
    ax.set_ylabel(f"{which} {variable} information (bits)")
    return ax


def plot_summary(summary, fig_dir) -> list[Path]:
    """The sweep's figures into ``fig_dir``: information vs epoch, final color vs lr/batch, vs k."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if "information" not in summary:
        return []
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    dims = [d for d in summary["status"].dims if d != "seed"]
    variables = [v for v in ("color", "direction") if v in summary["variable"].values] or \
        list(summary["variable"].values[:2])
    # panels: one row per value of the first "categorical" dim (e.g. net), when there is one
    row_dim = next((d for d in dims if summary[d].dtype.kind in "OUS" and d not in ("lr", "batch_size", "k")), None)
    rows = summary[row_dim].values.tolist() if row_dim else [None]
    fig, axes = plt.subplots(len(rows), len(variables), figsize=(5 * len(variables), 3.6 * len(rows)),
                             squeeze=False)
    for i, rv in enumerate(rows):
        sub = summary.sel({row_dim: rv}) if row_dim else summary
        for j, v in enumerate(variables):
            plot_information_vs_epoch(axes[i, j], sub, v, ceiling=True)
            axes[i, j].set_title(f"{v}" + (f" ({row_dim}={rv})" if row_dim else ""))
    axes[0, -1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    paths.append(_save(fig, fig_dir / "information_vs_epoch.png"))
    plt.close(fig)
    if "step" in summary:  # regimes with other batch sizes take other numbers of steps per epoch
        fig, axes = plt.subplots(len(rows), len(variables), figsize=(5 * len(variables), 3.6 * len(rows)),
                                 squeeze=False)
        for i, rv in enumerate(rows):
            sub = summary.sel({row_dim: rv}) if row_dim else summary
            for j, v in enumerate(variables):
                plot_information_vs_epoch(axes[i, j], sub, v, ceiling=True, x="step")
                axes[i, j].set_title(f"{v}" + (f" ({row_dim}={rv})" if row_dim else ""))
        axes[0, -1].legend(fontsize=7, loc="best")
        fig.tight_layout()
        paths.append(_save(fig, fig_dir / "information_vs_step.png"))
        plt.close(fig)
    if "lr" in dims and "color" in variables:
        line_dim = "batch_size" if "batch_size" in dims else None
        fig, axes = plt.subplots(len(rows), 2, figsize=(10, 3.4 * len(rows)), squeeze=False)
        for i, rv in enumerate(rows):
            for j, which in enumerate(("peak", "final")):
                ax = plot_final_vs(axes[i, j], summary, "lr", line_dim, "color", which,
                                   fixed={row_dim: rv} if row_dim else None)
                ax.set_xscale("log")
                ax.set_title(f"{which} color information" + (f" ({row_dim}={rv})" if row_dim else ""))
        axes[0, 0].legend(fontsize=8)
        fig.tight_layout()
        paths.append(_save(fig, fig_dir / "color_vs_lr_batch.png"))
        plt.close(fig)
    if "k" in dims and "color" in variables:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), squeeze=False)
        for j, which in enumerate(("peak", "final")):
            ax = plot_final_vs(axes[0, j], summary, "k", row_dim, "color", which)
            ax.set_xlabel("k (epochs of the perturbed early phase)")
            ax.set_title(f"{which} color information vs perturbation length")
        if row_dim:
            axes[0, 0].legend(fontsize=8)
        fig.tight_layout()
        paths.append(_save(fig, fig_dir / "color_vs_perturbation.png"))
        plt.close(fig)
    return paths


def _save(fig, path: Path) -> Path:
    from decisionnets.io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    return path
