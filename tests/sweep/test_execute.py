"""decisionnets.sweep.execute on Dask: one run's life cycle, LocalCluster and external-scheduler sweeps,
one writer per run and per sweep folder."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from decisionnets import sweep
from decisionnets.errors import ConfigError


# --- one run: diverged and crashed runs are recorded, not raised -------------------------------------
def test_run_point_records_divergence_and_crashes(tmp_path, sweep_spec, tiny_set):
    sp = sweep_spec(seeds=[0], set={**tiny_set, "train.epochs": 1},
               axes={"case": [{"value": "diverge", "set": {"train.lr": 1e30}},
                              {"value": "crash", "init_from": str(tmp_path / "missing.pt")}]})
    div, crash = sweep.plan(sp, tmp_path)
    r = sweep.run_point(div, None)
    assert r["status"] == "diverged"
    assert json.loads((Path(div.run_dir) / "status.json").read_text())["status"] == "diverged"
    r = sweep.run_point(crash, None)
    assert r["status"] == "failed" and "init_from" in r["error"]
    assert json.loads((Path(crash.run_dir) / "status.json").read_text())["status"] == "failed"
    assert sweep.run_point(div, None)["action"] == "skipped"  # a diverged run is not retried


# --- the quick sweep on a LocalCluster ------------------------------------------------------------
def test_quick_sweep_on_local_cluster_and_rerun_skips(tmp_path):
    text = sweep.run_sweep("sgd-regimes-quick", out=tmp_path, n_workers=2, progress=False)
    sweep_dir = Path(text.splitlines()[-1])
    assert sweep_dir == (tmp_path / "sgd-regimes-quick").resolve()
    import xarray as xr

    with xr.open_dataset(sweep_dir / "summary.nc") as ds:
        ds = ds.load()
    assert dict(ds["information"].sizes) == {"lr": 2, "batch_size": 2, "seed": 2, "variable": 2, "epoch": 4}
    assert (ds["status"].values == "completed").all()
    assert np.isfinite(ds["information"].values).all()
    assert float(ds["ceiling"].max()) == pytest.approx(0.676, abs=0.01)
    assert (sweep_dir / "figures" / "information_vs_epoch.png").is_file()
    assert (sweep_dir / "figures" / "color_vs_lr.png").is_file()
    assert (sweep_dir / "figures" / "color_vs_batch_size.png").is_file()
    assert (sweep_dir / "figures" / "information_vs_step.png").is_file()
    # SGD steps per epoch: 360 training samples at batch 16 -> 23 steps, at batch 128 -> 3
    steps = ds["step"].sel(seed=0, lr=ds["lr"].values[0])
    assert steps.sel(batch_size=16).values.tolist() == [0, 23, 46, 69]
    assert steps.sel(batch_size=128).values.tolist() == [0, 3, 6, 9]
    stamps = {p: p.stat().st_mtime_ns for p in sweep_dir.glob("runs/*/information.nc")}
    assert len(stamps) == 8
    again = sweep.run_sweep("sgd-regimes-quick", out=tmp_path, n_workers=2, progress=False)
    assert "8 were already finished" in again
    assert stamps == {p: p.stat().st_mtime_ns for p in sweep_dir.glob("runs/*/information.nc")}
    # determinism: the same spec and seeds in a fresh folder give the same summary, on other workers
    other = Path(sweep.run_sweep("sgd-regimes-quick", out=tmp_path / "b", n_workers=2,
                                 progress=False).splitlines()[-1])
    with xr.open_dataset(other / "summary.nc") as ds2:
        xr.testing.assert_identical(ds["information"], ds2["information"].load())


# --- an external scheduler and workers as separate processes; a worker killed mid-run ----------------
def _start(args, log):
    return subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_external_scheduler_survives_a_killed_worker_and_resumes(tmp_path):
    spec = tmp_path / "ext.toml"
    spec.write_text(
        'description = "external-scheduler test"\n[sweep]\nbase = "color-direction-static"\nseeds = [0, 1]\n'
        '[sweep.set]\n"train.epochs" = 20\n"train.n_trials" = 1000\n"train.batch_size" = 8\n'
        '"model.hidden_sizes" = [8]\n"record.n_per_condition" = 2\n"record.schedule" = [1, 20]\n'
        '[sweep.grid]\n"train.lr" = [0.01, 0.05]\n[sweep.analysis]\nfolds = 3\n'
    )
    sched_file = tmp_path / "scheduler.json"
    log = open(tmp_path / "dask.log", "w")
    procs = [_start(["distributed.cli.dask_scheduler", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(sched_file)], log)]
    try:
        for _ in range(300):
            if sched_file.is_file() and sched_file.stat().st_size:
                break
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        for _ in range(2):
            procs.append(_start(["distributed.cli.dask_worker", "--scheduler-file", str(sched_file),
                                 "--nthreads", "1", "--nworkers", "1", "--no-dashboard"], log))
        out = tmp_path / "sweeps"
        cli = subprocess.Popen([sys.executable, "-m", "decisionnets.cli", "sweep", str(spec), "--scheduler",
                                address, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
        procs.append(cli)
        runs = out / "ext" / "runs"
        killed = None
        deadline = time.time() + 120
        while killed is None and time.time() < deadline and cli.poll() is None:
            for st in runs.glob("*/status.json"):
                try:
                    s = json.loads(st.read_text())
                    w = json.loads((st.parent / "worker.json").read_text())
                except (OSError, ValueError):
                    continue
                if s.get("status") == "running" and 2 <= s.get("epoch", 0) <= 14:
                    os.kill(w["pid"], signal.SIGKILL)  # the worker process running this run, mid-training
                    killed = st.parent
                    break
            time.sleep(0.02)
        stdout, stderr = cli.communicate(timeout=180)
        assert cli.returncode == 0, stderr[-2000:]
        assert killed is not None, "no run was caught mid-training"
        assert "4 completed" in stdout
        # the killed run was taken over by another worker and resumed from its checkpoint
        assert json.loads((killed / "worker.json").read_text())["attempts"] >= 2
        epochs = [int(line.split(",")[0]) for line in (killed / "log.csv").read_text().splitlines()[1:]]
        assert epochs == list(range(1, 21))
        sweep_dir = Path(stdout.strip().splitlines()[-1])
        assert (sweep_dir / "summary.nc").is_file()
        # rerunning the same spec against the same scheduler redoes nothing
        stamps = {p: p.stat().st_mtime_ns for p in runs.glob("*/information.nc")}
        again = subprocess.run([sys.executable, "-m", "decisionnets.cli", "sweep", str(spec), "--scheduler", address,
                                "--out", str(out)], capture_output=True, text=True, timeout=120)
        assert again.returncode == 0 and "4 were already finished" in again.stdout
        assert stamps == {p: p.stat().st_mtime_ns for p in runs.glob("*/information.nc")}
    finally:
        for p in reversed(procs):
            _stop(p)
        log.close()


def test_unreachable_scheduler_is_a_user_error():
    from decisionnets.errors import UserError
    from decisionnets.sweep.execute import _client

    with pytest.raises(UserError, match="cannot connect"):
        _client("tcp://127.0.0.1:9", None, timeout="1s")


def test_edited_spec_is_refused_before_running(tmp_path, sweep_spec, tiny_set):
    sp = sweep_spec(seeds=[0], set=tiny_set)
    (p,) = sweep.plan(sp, tmp_path / "s")
    Path(p.run_dir).mkdir(parents=True)
    (Path(p.run_dir) / "config.json").write_text(json.dumps({**json.loads(p.config_json), "seed": 7}))
    spec = tmp_path / "s.toml"
    spec.write_text('[sweep]\nbase = "color-direction-static"\nseeds = [0]\n[sweep.set]\n"train.epochs" = 2\n'
                    '"train.n_trials" = 200\n"model.hidden_sizes" = [8]\n"record.n_per_condition" = 2\n'
                    '"record.schedule" = "all"\n')
    with pytest.raises(ConfigError, match="another config"):
        sweep.run_sweep(spec, out=tmp_path, progress=False)

# --- one writer: a live sweep's folder and a run a worker is writing are not touched -----------------
HOLD = ("import sys, time\nfrom decisionnets.locks import run_lock\nwith run_lock(sys.argv[1]):\n"
        "    print('held', flush=True)\n    time.sleep(120)\n")


def _hold(folder):
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def _snapshot(folder):
    return {p: (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else b"") for p in folder.rglob("*")}


def test_sweep_rerun_while_another_is_live_is_refused(tmp_path, capsys):
    from decisionnets.cli import main

    spec = tmp_path / "s.toml"
    spec.write_text('[sweep]\nbase = "color-direction-static"\nseeds = [0]\n')
    sweep_dir = tmp_path / "out" / "s"
    holder = _hold(sweep_dir)
    try:
        before = _snapshot(sweep_dir)
        assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and f"sweep directory {sweep_dir.resolve()} is in use by pid {holder.pid}" in lines[0]
        assert _snapshot(sweep_dir) == before
    finally:
        holder.kill()
        holder.wait()


def test_worker_leaves_a_run_another_process_writes_alone(tmp_path, sweep_spec, tiny_set):
    sp = sweep_spec(seeds=[0], set=tiny_set)
    (p,) = sweep.plan(sp, tmp_path)
    holder = _hold(p.run_dir)
    try:
        before = _snapshot(Path(p.run_dir))
        r = sweep.run_point(p, None)
        assert r["status"] == "failed" and r["error"].startswith("RunLocked: ") and f"pid {holder.pid}" in r["error"]
        assert _snapshot(Path(p.run_dir)) == before  # no worker.json, no status.json
    finally:
        holder.kill()
        holder.wait()
    assert sweep.run_point(p, None)["status"] == "completed"  # the lock of the killed holder is taken over
