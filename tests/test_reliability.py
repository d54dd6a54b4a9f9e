"""kill -9 a real training process at several points, resume it, compare with an uninterrupted run.

The child process is the real CLI (``decisionnets.cli.main``) with one hook
patched in *by the test*: at the chosen point it creates a marker file and
sleeps, so the test knows the process is exactly there when it sends SIGKILL.
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
import xarray as xr

from decisionnets.cli import main
from decisionnets.errors import DataFileError
from decisionnets.io import open_activations, open_dataset

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")

OVERRIDES = ["epochs=4", "n_trials=96", "batch_size=16", "model.hidden_size=8", "n_per_condition=1",
             "model.noise=0.1", "schedule=all", "momentum=0.5"]

CHILD = textwrap.dedent("""
    import sys, time, pathlib
    import torch
    torch.set_num_threads(1)
    import decisionnets.io as dio
    import decisionnets.metrics as met
    import decisionnets.training as tr
    from decisionnets.cli import main

    where, marker = sys.argv[1], pathlib.Path(sys.argv[2])
    count = {"n": 0}

    def hold():
        marker.write_text("here")
        time.sleep(600)

    if where == "before-first-epoch":          # epoch 0 recorded, no training step yet
        real = met.masked_cross_entropy
        def masked_loss(*a, **k):
            hold()
        met.masked_cross_entropy = masked_loss
    elif where == "mid-epoch":                   # in the middle of epoch 2's SGD steps
        real = met.masked_cross_entropy
        def masked_loss(*a, **k):
            count["n"] += 1
            if count["n"] == 9:
                hold()
            return real(*a, **k)
        met.masked_cross_entropy = masked_loss
    elif where == "during-write":                # epoch 3's netCDF half written to its temporary name
        real_replace = dio.os.replace
        def replace(src, dst):
            if str(dst).endswith("epoch_00003.nc"):
                hold()
            return real_replace(src, dst)
        dio.os.replace = replace
    elif where == "during-checkpoint":           # epoch 2's checkpoint being written
        real_save = tr.torch.save
        def save(obj, f):
            if isinstance(obj, dict) and obj.get("epoch") == 2 and "optimizer" in obj:
                open(f, "wb").write(b"partial")
                hold()
            return real_save(obj, f)
        tr.torch.save = save
    sys.exit(main(sys.argv[3:]))
""")


def _train_args(run_dir):
    args = ["train", "--task", "color-direction", "--run-dir", str(run_dir), "--no-progress", "--seed", "5"]
    for o in OVERRIDES:
        args += ["--set", o]
    return args


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "decisionnets.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run = tmp_path_factory.mktemp("ref") / "run"
    r = _cli(*_train_args(run))
    assert r.returncode == 0, r.stderr
    return run


def _kill_at(where, run_dir, tmp_path):
    marker = tmp_path / "marker"
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    p = subprocess.Popen([sys.executable, str(child), where, str(marker), *_train_args(run_dir)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while not marker.exists():
        if p.poll() is not None:
            raise AssertionError(f"child ended before reaching {where}: {p.stderr.read().decode()}")
        if time.time() > deadline:
            p.kill()
            raise AssertionError(f"child never reached {where}")
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL


def _all_files_open(run_dir):
    for f in (run_dir / "activations").glob("epoch_*.nc"):
        open_dataset(f).close()
    for f in (run_dir / "checkpoints").glob("*.pt"):
        torch.load(f, weights_only=False)
    leftovers = list(run_dir.rglob(".*.tmp"))
    return leftovers


@pytest.mark.parametrize("where", ["before-first-epoch", "mid-epoch", "during-write", "during-checkpoint"])
def test_kill_then_resume_is_bit_identical(where, reference, tmp_path):
    run = tmp_path / "run"
    _kill_at(where, run, tmp_path)
    # what the kill left behind opens (temporaries aside, which resume removes)
    _all_files_open(run)
    r = _cli("train", "--resume", str(run), "--no-progress")
    assert r.returncode == 0, r.stderr
    # the killed process's lock is taken over, with one warning line
    assert "warning: taking over the lock" in r.stderr and "no longer running" in r.stderr
    assert r.stdout.strip().splitlines()[-1] == str(run)
    _assert_same_as_reference(reference, run)


def _assert_same_as_reference(reference, run):
    assert _all_files_open(run) == []
    assert not (run / "writer.lock").exists()
    a, b = open_activations(reference).load(), open_activations(run).load()
    assert b.epoch.values.tolist() == [0, 1, 2, 3, 4]  # none missing, none duplicated
    xr.testing.assert_identical(a, b)
    wa = torch.load(reference / "checkpoints" / "final.pt", weights_only=False)["model"]
    wb = torch.load(run / "checkpoints" / "final.pt", weights_only=False)["model"]
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    # the weights of every recorded epoch: all there, byte-identical to the uninterrupted run's
    wref, wrun = sorted((reference / "weights").glob("*.pt")), sorted((run / "weights").glob("*.pt"))
    assert [p.name for p in wrun] == [p.name for p in wref] == [f"epoch_{e:04d}.pt" for e in range(5)]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(wref, wrun))
    log = (run / "log.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in log[1:]] == ["1", "2", "3", "4"]
    assert json.loads((run / "status.json").read_text())["status"] == "completed"


def test_resume_refuses_a_non_run_directory(tmp_path):
    r = _cli("train", "--resume", str(tmp_path))
    assert r.returncode == 2 and "not a run directory" in r.stderr and "Traceback" not in r.stderr


def test_diverged_run_exits_3_and_analysis_data_survives(tmp_path):
    run = tmp_path / "run"
    args = ["train", "--task", "color-direction-static", "--run-dir", str(run), "--no-progress",
            "--set", "lr=1e8", "--set", "n_trials=96", "--set", "epochs=3", "--set", "n_per_condition=1"]
    r = _cli(*args)
    assert r.returncode == 3, r.stderr
    assert "diverged" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    ds = open_activations(run)
    assert 0 in ds.epoch.values and np.isfinite(ds.hidden.sel(epoch=0).values).all()


# --- one writer per run directory ------------------------------------------------------------------
RACER = textwrap.dedent("""
    import os, sys, time, pathlib
    import torch
    torch.set_num_threads(1)
    import decisionnets.metrics as met
    import decisionnets.training as tr
    from decisionnets.cli import main

    barrier, go = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    (barrier / f"ready-{os.getpid()}").write_text("")
    while len(list(barrier.glob("ready-*"))) < 2:   # both racers enter main() at the same moment
        time.sleep(0.002)
    real, calls = met.masked_cross_entropy, {"n": 0}
    def masked_loss(*a, **k):                        # a racer that trains says so, then waits for "go"
        if calls["n"] == 0:
            (barrier / f"training-{os.getpid()}").write_text("")
            while not go.exists():
                time.sleep(0.02)
        calls["n"] += 1
        return real(*a, **k)
    met.masked_cross_entropy = masked_loss
    sys.exit(main(sys.argv[3:]))
""")


def test_two_concurrent_resumes_one_trains_the_other_exits_2(reference, tmp_path):
    run = tmp_path / "run"
    _kill_at("mid-epoch", run, tmp_path)  # a killed job, requeued twice
    barrier, go, racer = tmp_path / "barrier", tmp_path / "go", tmp_path / "racer.py"
    barrier.mkdir()
    racer.write_text(RACER)
    procs = [subprocess.Popen([sys.executable, str(racer), str(barrier), str(go), "train", "--resume", str(run),
                               "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"}) for _ in range(2)]
    try:
        deadline = time.time() + 120
        while True:
            exited = [p for p in procs if p.poll() is not None]
            training = sorted(barrier.glob("training-*"))
            assert len(training) < 2, "both processes are training the same run directory"
            if (exited and training) or len(exited) == 2:
                break
            assert time.time() < deadline, "neither racer got to train or gave up"
            time.sleep(0.02)
        assert len(exited) == 1 and len(training) == 1, [p.communicate() for p in exited]
        loser = exited[0]
        winner = next(p for p in procs if p is not loser)
        out, err = loser.communicate()
        assert loser.returncode == 2, err
        assert training[0].name == f"training-{winner.pid}"
        lines = err.strip().splitlines()
        assert len(lines) == 1 and f"is in use by pid {winner.pid} on host" in lines[0], err
        assert "Traceback" not in err and out == ""
        go.write_text("")
        out, err = winner.communicate(timeout=120)
        assert winner.returncode == 0, err
        assert "taking over the lock" in err  # of the killed process
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    _assert_same_as_reference(reference, run)


HOLD = textwrap.dedent("""
    import sys, time
    from decisionnets.locks import run_lock
    with run_lock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(120)
""")


def _snapshot(folder):
    return {p: (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else b"") for p in folder.rglob("*")}


def test_second_writer_is_refused_and_writes_nothing(reference, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    fresh = tmp_path / "fresh"
    holders = [subprocess.Popen([sys.executable, "-c", HOLD, str(d)], stdout=subprocess.PIPE, text=True)
               for d in (run, fresh)]
    try:
        for h in holders:
            assert h.stdout.readline().strip() == "held"
        for d, args in ((run, ["train", "--resume", str(run)]), (fresh, _train_args(fresh))):
            before = _snapshot(d)
            assert main(args) == 2
            lines = capsys.readouterr().err.strip().splitlines()
            assert len(lines) == 1 and "is in use by pid" in lines[0] and "writer.lock" in lines[0], lines
            assert _snapshot(d) == before
    finally:
        for h in holders:
            h.kill()
            h.wait()


# --- disk full and other write errors --------------------------------------------------------------
def _fail_once(monkeypatch, kind, code):
    """Make the writer of one kind of file write half of it, then raise ``OSError(code)``."""
    state = {"failed": False}

    def boom(target):
        state["failed"] = True
        with open(target, "wb") as f:
            f.write(b"half a file")
        raise OSError(code, os.strerror(code))

    if kind == "activation":
        real_nc = xr.Dataset.to_netcdf

        def to_netcdf(self, path=None, *a, **k):
            if not state["failed"] and os.path.basename(str(path)).startswith(".epoch_00002.nc."):
                boom(path)
            return real_nc(self, path, *a, **k)
        monkeypatch.setattr(xr.Dataset, "to_netcdf", to_netcdf)
    elif kind in ("checkpoint", "final"):
        real_save = torch.save

        def save(obj, f, *a, **k):
            if not state["failed"] and isinstance(obj, dict) and (
                    (kind == "checkpoint" and obj.get("epoch") == 2 and "optimizer" in obj)
                    or (kind == "final" and "model" in obj and "optimizer" not in obj)):  # not a weights/ file
                boom(f)
            return real_save(obj, f, *a, **k)
        monkeypatch.setattr(torch, "save", save)
    else:  # the log and status.json are written as text
        from pathlib import Path

        real_text = Path.write_text
        prefix, marker = {"log": (".log.csv.", "\n2,"), "status": (".status.json.", '"epoch": 2')}[kind]

        def write_text(self, data, *a, **k):
            if not state["failed"] and self.name.startswith(prefix) and marker in data:
                boom(self)
            return real_text(self, data, *a, **k)
        monkeypatch.setattr(Path, "write_text", write_text)
    return state


@pytest.mark.parametrize("kind,code,rel", [
    ("activation", errno.ENOSPC, "activations/epoch_00002.nc"),
    ("checkpoint", errno.ENOSPC, "checkpoints/last.pt"),
    ("log", errno.EIO, "log.csv"),
    ("status", errno.EACCES, "status.json"),
    ("final", errno.ENOSPC, "checkpoints/final.pt"),
])
def test_write_failure_stops_cleanly_and_resumes_bit_identical(kind, code, rel, reference, tmp_path, monkeypatch,
                                                              capsys):
    run = tmp_path / "run"
    state = _fail_once(monkeypatch, kind, code)
    rc = main(_train_args(run))
    assert state["failed"] and rc == 4
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"decisionnets: cannot write {run / rel}: {os.strerror(code)} ({errno.errorcode[code]})")
    assert f"decisionnets train --resume {run}" in lines[0]
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "write_failed" and status["file"] == rel and os.strerror(code) in status["error"]
    # nothing half-written under a real name, no temporaries, no lock left
    assert _all_files_open(run) == [] and not (run / "writer.lock").exists()
    if kind in ("activation", "final"):
        assert not (run / rel).exists()
    if kind == "checkpoint":
        assert torch.load(run / rel, weights_only=False)["epoch"] == 1
    if kind == "log":
        assert [r.split(",")[0] for r in (run / rel).read_text().splitlines()[1:]] == ["1"]
    monkeypatch.undo()  # space is back
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    _assert_same_as_reference(reference, run)


CAPPED = ("import resource, signal, sys\n"
          "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
          "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))\n"
          "from decisionnets.cli import main\n"
          "sys.exit(main(sys.argv[1:]))\n")


def test_real_write_error_inside_netcdf_is_named_and_resumable(reference, tmp_path):
    """No patch: the OS refuses to grow a file past 20 kB (RLIMIT_FSIZE), netCDF only says 'HDF error'."""
    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-c", CAPPED, *_train_args(run)], capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 4, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"decisionnets: cannot write {run}/activations/epoch_00000.nc: File too large (EFBIG)")
    assert json.loads((run / "status.json").read_text())["status"] == "write_failed"
    assert _all_files_open(run) == [] and not (run / "activations" / "epoch_00000.nc").exists()
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    _assert_same_as_reference(reference, run)


# --- no mixed runs ---------------------------------------------------------------------------------
def test_epoch_file_of_another_run_is_refused(reference, tmp_path, capsys):
    other = tmp_path / "other"
    args = _train_args(other)
    args[args.index("--seed") + 1] = "6"
    assert main(args) == 0
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    shutil.copy(other / "activations" / "epoch_00002.nc", run / "activations" / "epoch_00002.nc")
    odd = run / "activations" / "epoch_00002.nc"
    with pytest.raises(DataFileError, match=f"{odd} comes from another run"):
        open_activations(run)
    before = _snapshot(run)
    capsys.readouterr()
    for args in (["analyze", str(run), "--no-progress"], ["train", "--resume", str(run), "--no-progress"]):
        assert main(args) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and f"{odd} comes from another run" in lines[0], lines
        assert _snapshot(run) == before
