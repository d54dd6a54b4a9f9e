"""Sweeps on Dask: spec parsing, one run's life cycle, LocalCluster and external-scheduler sweeps."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from decisionnets import sweep
from decisionnets.config import preset_names
from decisionnets.errors import ConfigError

TINY = {"train.epochs": 2, "train.n_trials": 200, "model.hidden_sizes": [8], "record.n_per_condition": 2,
        "record.schedule": "all"}


def _spec(**sweep_table):
    return sweep.parse_spec({"description": "t", "sweep": {"base": "color-direction-static", **sweep_table}})


# --- spec and plan ---------------------------------------------------------------------------------
def test_sweep_presets_are_listed():
    names = preset_names("sweep")
    for n in ("sgd-regimes", "early-perturbation", "sgd-regimes-quick", "early-perturbation-quick",
              "paper-signatures", "explore-architecture", "explore-fc", "explore-arc", "signature-arc"):
        assert n in names
        sp = sweep.load_spec(n)
        assert len(sweep.plan(sp, "/nonexistent/sweeps")) >= 4


def test_paper_signatures_controls_are_matched():
    """The matched controls take the steps (and lr x steps) of the paper's regime; one probe set for all seeds."""
    pts = sweep.plan(sweep.load_spec("paper-signatures"), "/nonexistent/sweeps")
    cfg = {(p.coords["regime"], p.coords["weight_decay"], p.coords["seed"]): json.loads(p.config_json) for p in pts}
    n_train = 10000 - round(10000 * 0.1)

    def steps(c):
        return c["train"]["epochs"] * -(-n_train // c["train"]["batch_size"])

    base = cfg["lr0.05-b32", 0.01, 0]
    matched = cfg["lr0.05-b512-steps", 0.01, 0]
    assert steps(matched) == steps(base) == 16920 and matched["train"]["lr"] == base["train"]["lr"]
    lr_steps = cfg["lr0.8-b512", 0.01, 0]
    assert abs(lr_steps["train"]["lr"] * steps(lr_steps) / (base["train"]["lr"] * steps(base)) - 1) < 0.03
    assert len(matched["record"]["schedule"]) == 61  # the b32 run's 61 recorded epochs, in steps
    assert {c["record"]["probe_seed"] for c in cfg.values()} == {0}
    assert cfg["gain0.1", 0.0, 3]["model"]["init_gain"] == 0.1
    assert sum(p.pretrain is not None for p in pts) == 15


def test_plan_is_the_product_of_grid_axes_and_seeds(tmp_path):
    sp = _spec(seeds=[0, 1], set=TINY, grid={"train.lr": [0.01, 0.1], "model.hidden_sizes": [[8], [4, 4]]},
               axes={"k": [{"value": 0}, {"value": 1, "phases": [{"epochs": 1, "lr": 0.5}]}]})
    assert sp.dims == ["lr", "hidden_sizes", "k"]
    pts = sweep.plan(sp, tmp_path)
    assert len(pts) == 2 * 2 * 2 * 2
    assert len({p.run_dir for p in pts}) == len(pts)
    p = next(p for p in pts if p.coords == {"lr": 0.1, "hidden_sizes": "4x4", "k": 1, "seed": 1})
    cfg = json.loads(p.config_json)
    assert cfg["train"]["lr"] == 0.1 and cfg["model"]["hidden_sizes"] == [4, 4] and cfg["seed"] == 1
    assert cfg["train"]["phases"][0]["lr"] == 0.5 and cfg["train"]["epochs"] == 2


def test_pretrain_run_is_shared_and_feeds_init_from(tmp_path):
    sp = _spec(seeds=[0], set=TINY, grid={"train.lr": [0.01, 0.1]},
               axes={"start": [{"value": "scratch"}, {"value": "pre", "pretrain": {"epochs": 1}}]})
    pts = sweep.plan(sp, tmp_path)
    pre = [p for p in pts if p.pretrain is not None]
    assert len(pre) == 2
    # the pretraining config takes the point's overrides, so the two lr values give two pretraining runs
    assert len({p.pretrain.run_id for p in pre}) == 2
    assert all(json.loads(p.config_json)["train"]["init_from"] == p.pretrain.run_dir for p in pre)


@pytest.mark.parametrize("table, match", [
    ({"seeds": []}, "seeds"),
    ({"grid": {"train.lr": 0.1}}, "non-empty list"),
    ({"axes": {"k": [{"phases": []}]}}, "value"),
    ({"bogus": 1}, "unknown key sweep.bogus"),
    ({"set": {"train.nope": 1}}, "nope"),
    ({"analysis": {"folds": 1}}, "folds"),
])
def test_bad_specs_raise_one_line_config_errors(tmp_path, table, match):
    with pytest.raises(ConfigError, match=match) as e:
        sweep.plan(_spec(**table), tmp_path)
    assert "\n" not in str(e.value)


def test_unknown_spec_name_and_missing_file():
    with pytest.raises(ConfigError, match="unknown sweep"):
        sweep.load_spec("no-such-sweep")
    with pytest.raises(ConfigError, match="not found"):
        sweep.load_spec("nowhere/spec.toml")


# --- one run: diverged and crashed runs are recorded, not raised -------------------------------------
def test_run_point_records_divergence_and_crashes(tmp_path):
    sp = _spec(seeds=[0], set={**TINY, "train.epochs": 1},
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

    with pytest.raises(UserError, match="cannot connect"):
        sweep._client("tcp://127.0.0.1:9", None, timeout="1s")


def test_edited_spec_is_refused_before_running(tmp_path):
    sp = _spec(seeds=[0], set=TINY)
    (p,) = sweep.plan(sp, tmp_path / "s")
    Path(p.run_dir).mkdir(parents=True)
    (Path(p.run_dir) / "config.json").write_text(json.dumps({**json.loads(p.config_json), "seed": 7}))
    spec = tmp_path / "s.toml"
    spec.write_text('[sweep]\nbase = "color-direction-static"\nseeds = [0]\n[sweep.set]\n"train.epochs" = 2\n'
                    '"train.n_trials" = 200\n"model.hidden_sizes" = [8]\n"record.n_per_condition" = 2\n'
                    '"record.schedule" = "all"\n')
    with pytest.raises(ConfigError, match="another config"):
        sweep.run_sweep(spec, out=tmp_path, progress=False)


def test_raw_linear_decoder_writes_information(tmp_path):
    sp = _spec(seeds=[0], set={**TINY, "train.n_trials": 100})
    (p,) = sweep.plan(sp, tmp_path)
    analysis = sweep.parse_spec({"sweep": {"base": "x", "analysis": {"decoder": "linear-raw", "folds": 3}}}).analysis
    assert sweep.run_point(p, analysis)["status"] == "completed"
    import xarray as xr

    with xr.open_dataset(Path(p.run_dir) / "information.nc") as ds:
        assert ds["information"].dims == ("layer", "variable", "epoch")  # the layout of `decisionnets analyze`
        assert ds.attrs["analysis_decoder"] == "linear-raw"
        info, flags = ds["information"].values, ds["unreliable"].values
        # a label with one class at an epoch (a tiny net that always makes the same choice) has no
        # estimate: NaN, flagged; every other problem has a finite number of bits
        assert np.isfinite(ds["information"].sel(variable=["color", "direction", "target_config"]).values).all()
        assert ((flags & 1) != 0)[~np.isfinite(info)].all()
        assert (info[np.isfinite(info)] <= 1.0).all()


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


def test_worker_leaves_a_run_another_process_writes_alone(tmp_path):
    sp = _spec(seeds=[0], set=TINY)
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


# --- one analysis: new options re-analyse finished runs without retraining; summaries of runs as they are --
def test_new_analysis_options_reanalyse_without_retraining_and_summary_only(tmp_path):
    import xarray as xr

    from decisionnets.sweep.analysis import is_analyzed
    from decisionnets.sweep.summary import run_information

    spec = tmp_path / "re.toml"
    spec.write_text('[sweep]\nbase = "color-direction-static"\nseeds = [0]\n[sweep.set]\n"train.epochs" = 2\n'
                    '"train.n_trials" = 100\n"model.hidden_sizes" = [8]\n"record.n_per_condition" = 2\n'
                    '"record.schedule" = "all"\n[sweep.analysis]\nvariables = ["color", "direction"]\nfolds = 3\n')
    sp = sweep.load_spec(spec)
    (p,) = sweep.plan(sp, tmp_path / "out" / sp.name)
    assert sweep.run_point(p, sp.analysis)["action"] == "trained+analyzed"
    run = Path(p.run_dir)
    trained = {f: f.stat().st_mtime_ns for f in [run / "log.csv", *run.glob("checkpoints/*"), *run.glob("activations/*")]}
    two = sp.analysis.replace(decoder=["linear", "linear-raw"])
    assert is_analyzed(run, sp.analysis) and not is_analyzed(run, two)
    assert sweep.run_point(p, two)["action"] == "analyzed"  # decoded again, not retrained
    assert trained == {f: f.stat().st_mtime_ns for f in trained}
    info = xr.load_dataset(run / "information.nc")
    assert list(info["decoder"].values) == ["linear", "linear-raw"]
    assert sweep.run_point(p, two)["action"] == "skipped"
    # the former sweep-only layout (no layer dim, `accuracy`) is read by the summary and analysed again by a rerun
    old = info.isel(layer=0).sel(decoder="linear").rename(decoding_accuracy="accuracy")
    old = old[["information", "information_sd", "accuracy"]]
    old.attrs = {"analysis": "decisionnets.sweep.analyze_information"}
    old.to_netcdf(run / "information.nc")
    assert not is_analyzed(run, sp.analysis)
    assert run_information(run)["information"].dims == ("variable", "epoch")
    text = sweep.run_sweep(spec, out=tmp_path / "out", summary_only=True, summary_dir=tmp_path / "summary")
    assert "nothing trained or analysed" in text
    assert not (tmp_path / "out" / sp.name / "summary.nc").exists()  # the sweep folder is left as it was
    summary = xr.load_dataset(tmp_path / "summary" / "summary.nc")
    np.testing.assert_array_equal(summary["information"].sel(seed=0).transpose("variable", "epoch").values,
                                  old["information"].values)
    assert (tmp_path / "summary" / "summary.txt").read_text().startswith("regime | n | color:")
