"""Executing a sweep on Dask distributed: the client, one run's life cycle, ensembles, progress.

:func:`run_sweep` is the driver: spec -> plan -> runs on Dask -> summary. Each unit of work runs
on a worker: :func:`run_point` (train or resume, then analyse one run) or :func:`run_ensemble`
(compatible fresh runs trained as one batched program, then each analysed). Both hold the run
directories' writer locks (:mod:`decisionnets.locks`) and never raise for a failing run: a run
that diverges or crashes is recorded (``status.json``) and the sweep goes on.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

from decisionnets.errors import ConfigError, UserError
from decisionnets.sweep.analysis import analyze, is_analyzed
from decisionnets.sweep.plan import RunPoint, ensemble_units, plan, point_config
from decisionnets.sweep.spec import load_spec, parse_analysis


# --------------------------------------------------------------------------------------------------
# one run (on a Dask worker)
# --------------------------------------------------------------------------------------------------
def _status(run_dir) -> str | None:
    from decisionnets.io import read_status

    try:
        return read_status(run_dir).get("status")
    except UserError:
        return None


def is_done(point: RunPoint, analysis: dict | None) -> str | None:
    """'completed' / 'diverged' when nothing is left to do for ``point``, else None.

    A finished run is not done while ``analysis`` (not None) asks for something its
    information.nc lacks (:func:`~decisionnets.sweep.analysis.is_analyzed`); it is then analysed
    again, not retrained.
    """
    st = _status(point.run_dir)
    if st not in ("completed", "diverged"):
        return None
    if analysis is None or is_analyzed(point.run_dir, analysis):
        return st
    if st == "diverged" and not (Path(point.run_dir) / "activations").is_dir():
        return st  # diverged before recording anything: nothing to analyse
    return None


def check_same_config(point: RunPoint) -> None:
    """Refuse a run directory holding another config; options added since it was written take their defaults."""
    p = Path(point.run_dir) / "config.json"
    if not p.is_file():
        return
    from decisionnets.config import config_from_json

    try:  # resolved again: a config.json written before e.g. train.optimizer existed still matches
        stored = json.loads(config_from_json(p.read_text()).to_json())
    except (UserError, ValueError):
        stored = None
    if stored != json.loads(point.config_json):
        raise ConfigError(f"{point.run_dir} holds a run with another config (was the spec edited?); "
                          "use another --out or delete that run directory")


def _note_worker(run_dir: Path, **extra) -> None:
    """RUN_DIR/worker.json: this worker's PID and host, and how many workers have started the run."""
    from decisionnets.io import write_json

    wpath = Path(run_dir) / "worker.json"
    try:
        attempts = json.loads(wpath.read_text()).get("attempts", 0) if wpath.is_file() else 0
    except (OSError, ValueError):
        attempts = 0
    write_json(wpath, {"pid": os.getpid(), "host": socket.gethostname(), "attempts": attempts + 1,
                       "started": time.time(), **extra})


def _failed(point: RunPoint, error: str) -> dict:
    return {"run_id": point.run_id, "status": "failed", "action": "", "seconds": 0.0, "error": error}


def _mark_failed(run_dir: Path, error: str) -> None:
    from decisionnets.io import read_status, write_json

    try:
        old = read_status(run_dir)
    except UserError:
        old = {}
    try:
        write_json(run_dir / "status.json", {**old, "status": "failed", "error": error})
    except RuntimeError:  # WriteFailed: the disk is full; the result still says why
        pass


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
        return _failed(point, f"{type(e).__name__}: {e}")
    try:
        with dask.config.set(scheduler="synchronous"):  # lazy arrays load here, not as tasks of the cluster
            return _run_point(point, analysis, pretrain_result)
    finally:
        release(point.run_dir)


def _run_point(point, analysis, pretrain_result):
    from decisionnets.errors import TrainingDiverged
    from decisionnets.training import train

    t0 = time.perf_counter()
    run_dir = Path(point.run_dir)
    res = {"run_id": point.run_id, "status": "failed", "action": "", "seconds": 0.0, "error": ""}
    _note_worker(run_dir)
    try:
        if pretrain_result is not None and pretrain_result.get("status") != "completed":
            raise RuntimeError(f"pretraining run {pretrain_result.get('run_id')} is {pretrain_result.get('status')}")
        done = is_done(point, analysis)
        if done:
            res.update(status=done, action="skipped")
            return res
        check_same_config(point)
        st = _status(run_dir)
        if st not in ("completed", "diverged"):
            resume = (run_dir / "checkpoints" / "last.pt").is_file()
            try:
                train(point_config(point), run_dir, progress=False, resume=resume)
                res["action"] = "resumed" if resume else "trained"
                st = "completed"
            except TrainingDiverged as e:
                res.update(action="trained", error=str(e))
                st = "diverged"
        if analysis is not None and (run_dir / "activations").is_dir():
            analyze(run_dir, analysis)
            res["action"] = (res["action"] + "+analyzed").lstrip("+")
        res["status"] = st
    except Exception as e:  # noqa: BLE001 - a crashing run is recorded, the sweep goes on
        res.update(status="failed", error=f"{type(e).__name__}: {e}")
        _mark_failed(run_dir, res["error"])
    finally:
        res["seconds"] = round(time.perf_counter() - t0, 2)
    return res


def _pretrain_point(point: RunPoint, force: bool = False) -> dict:
    return run_point(point, analysis=None, force=force)


# --------------------------------------------------------------------------------------------------
# ensembles: compatible runs trained as one batched program (decisionnets.ensemble)
# --------------------------------------------------------------------------------------------------
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
                refused[p.run_id] = _failed(p, f"{type(e).__name__}: {e}")
        with dask.config.set(scheduler="synchronous"):
            done = {r["run_id"]: r for r in _run_ensemble(locked, analysis, force)} if locked else {}
        return [refused.get(p.run_id) or done[p.run_id] for p in points]
    finally:
        for p in locked:
            release(p.run_dir)


def _run_ensemble(points, analysis, force=False):
    from decisionnets.ensemble import train_ensemble

    t0 = time.perf_counter()
    todo = [p for p in points if not is_done(p, analysis)]
    try:
        for p in todo:
            check_same_config(p)
    except UserError:
        todo = []
    trainable = [p for p in todo if _status(p.run_dir) not in ("completed", "diverged")]
    if len(trainable) < 2:
        return [run_point(p, analysis, None, force) for p in points]
    results = {}
    try:
        for p in trainable:
            _note_worker(Path(p.run_dir), ensemble=[q.run_id for q in trainable])
        resume = any((Path(p.run_dir) / "checkpoints" / "last.pt").is_file() for p in trainable)
        statuses = train_ensemble([point_config(p) for p in trainable], [p.run_dir for p in trainable],
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
                analyze(p.run_dir, analysis)
                r["action"] += "+analyzed"
            except Exception as e:  # noqa: BLE001 - a failing analysis is recorded, the sweep goes on
                r.update(status="failed", error=f"{type(e).__name__}: {e}")
            r["seconds"] = round(r["seconds"] + time.perf_counter() - t1, 2)
        r["seconds"] = round(r["seconds"], 2)
        out.append(r)
    return out


# --------------------------------------------------------------------------------------------------
# the Dask client and the loop over futures
# --------------------------------------------------------------------------------------------------
def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _client(scheduler, n_workers, timeout="20s"):
    """A Dask client of ``scheduler`` (an address), or of a new LocalCluster of single-threaded workers."""
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


def _n_workers(client, wait_s: float = 30.0) -> int:
    """Workers of the cluster now (waiting up to ``wait_s`` for a first one, and a moment for its peers)."""
    try:
        if not client.scheduler_info().get("workers"):
            client.wait_for_workers(1, timeout=wait_s)
            time.sleep(2.0)  # workers started together join within moments of each other
        return max(1, len(client.scheduler_info().get("workers", {})))
    except Exception:  # noqa: BLE001 - no worker yet or an unusual scheduler: assume one worker
        return 1


def _short(point: RunPoint) -> str:
    return " ".join(f"{k}={v}" for k, v in point.coords.items())


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


def execute(todo, analysis, scheduler, n_workers, progress, say, ensemble=True, force=False) -> dict:
    """Run the points ``todo`` on Dask; returns {run_id: result of run_point}."""
    from distributed import wait
    from tqdm.auto import tqdm

    client, cluster = _client(scheduler, n_workers)
    results = {}
    try:
        futures, pre_futures = {}, {}  # future -> the points it runs
        units = ensemble_units(todo, _n_workers(client)) if ensemble else [[p] for p in todo]
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
                    rs = [_failed(p, f"{type(e).__name__}: {e}") for p in futures[f]]
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
# the driver
# --------------------------------------------------------------------------------------------------
def run_sweep(spec, out="sweeps", scheduler=None, n_workers=None, analyze=True, progress=True,
              ensemble=True, force=False, analysis=None, summary_only=False, summary_dir=None) -> str:
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
        Analyse every run (``decisionnets analyze``'s analysis; needed for the summary).
    progress : bool
        A line per finished run and a bar over runs (stderr).
    ensemble : bool
        Train compatible fresh runs (FC nets differing in seed, lr, momentum, weight decay) as
        ensembles (:mod:`decisionnets.ensemble`), spread over the workers; False: one run per task.
    force : bool
        Take over sweep and run locks whose holders run on another host.
    analysis : dict, optional
        ``[sweep.analysis]`` options overriding the spec's (e.g. ``{"decoder": ["linear", "mlp"]}``).
        Finished runs whose information.nc lacks what they ask for are analysed again (not retrained).
    summary_only : bool
        Train and analyse nothing (no Dask): build the summary from the runs' information.nc as they are.
    summary_dir : path, optional
        Where summary.nc, summary.txt and figures/ go (default: the sweep directory).

    Returns
    -------
    str
        A short multi-line summary; its last line is the sweep directory.

    Raises
    ------
    RunLocked
        When another live sweep works on the same folder (nothing is written).
    """
    import contextlib

    from decisionnets.locks import run_lock

    sp = load_spec(spec)
    if analysis:
        from dataclasses import replace

        sp = replace(sp, analysis=parse_analysis(analysis, base=sp.analysis))
    sweep_dir = (Path(out) / sp.name).resolve()
    points = plan(sp, sweep_dir)
    if summary_only:
        if not (sweep_dir / "runs").is_dir():
            raise UserError(f"--summary-only: {sweep_dir} holds no runs (no runs/ folder); run the sweep first")
        target = Path(summary_dir).resolve() if summary_dir else sweep_dir
        lock = run_lock(sweep_dir, force=force, what="sweep directory") if target == sweep_dir \
            else contextlib.nullcontext()
        with lock:
            lines = [f"sweep {sp.name}: summary of the runs as they are (nothing trained or analysed)"]
            return "\n".join(lines + _write_summary(sp, sweep_dir, points, target) + [str(sweep_dir)])
    with run_lock(sweep_dir, force=force, what="sweep directory"):
        return _run_sweep(sp, sweep_dir, points, scheduler, n_workers, analyze, progress, force, ensemble,
                          summary_dir)


def _write_summary(sp, sweep_dir, points, target) -> list[str]:
    from decisionnets.io import atomic_path
    from decisionnets.sweep.figures import plot_summary
    from decisionnets.sweep.summary import describe, gather

    summary = gather(sweep_dir, points=points, spec=sp)
    target.mkdir(parents=True, exist_ok=True)
    path = target / "summary.nc"
    with atomic_path(path) as tmp:
        summary.to_netcdf(tmp, engine="netcdf4")
    figs = plot_summary(summary, target / "figures")
    text = describe(summary)
    with atomic_path(target / "summary.txt") as tmp:
        Path(tmp).write_text(text + "\n")
    return [f"summary: {path}"] + [f"figure: {f}" for f in figs] + text.splitlines()


def _run_sweep(sp, sweep_dir, points, scheduler, n_workers, analyze, progress, force, ensemble=True,
               summary_dir=None) -> str:
    """The body of :func:`run_sweep`, run while holding the sweep directory's lock."""
    from decisionnets.io import write_json

    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_json(sweep_dir / "sweep.json", {"name": sp.name, "description": sp.description, "dims": sp.dims,
                                          "seeds": list(sp.seeds), "analysis": sp.analysis.to_table(),
                                          "runs": [{"run_id": p.run_id, "coords": p.coords} for p in points]})
    analysis = sp.analysis if analyze else None
    results = {}
    todo = []
    for p in points:
        check_same_config(p)  # a run dir of an edited spec: stop before anything runs
        done = is_done(p, analysis)
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
        results.update(execute(todo, analysis, scheduler, n_workers, progress, say, ensemble, force))
    counts = {}
    for r in results.values():
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    lines = [f"sweep {sp.name}: {len(points)} runs: "
             + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
             + f" ({sum(r['action'] == 'skipped' for r in results.values())} were already finished)"]
    write_json(sweep_dir / "results.json", results)
    if analyze:
        target = Path(summary_dir).resolve() if summary_dir else sweep_dir
        lines += _write_summary(sp, sweep_dir, points, target)
    lines.append(str(sweep_dir))
    return "\n".join(lines)
