"""kill -9 a real training process at several points, resume it, compare with an uninterrupted run.

The child process is the real CLI (``decisionnets.cli.main``) with one hook
patched in *by the test*: at the chosen point it creates a marker file and
sleeps, so the test knows the process is exactly there when it sends SIGKILL.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
import xarray as xr

from decisionnets.io import open_activations, open_dataset

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")

OVERRIDES = ["epochs=4", "n_trials=96", "batch_size=16", "model.hidden_size=8", "n_per_condition=1",
             "model.noise=0.1", "schedule=all", "momentum=0.5"]

CHILD = textwrap.dedent("""
    import sys, time, pathlib
    import torch
    torch.set_num_threads(1)
    import decisionnets.io as dio
    import decisionnets.training as tr
    from decisionnets.cli import main

    where, marker = sys.argv[1], pathlib.Path(sys.argv[2])
    count = {"n": 0}

    def hold():
        marker.write_text("here")
        time.sleep(600)

    if where == "before-first-epoch":          # epoch 0 recorded, no training step yet
        real = tr.masked_loss
        def masked_loss(*a, **k):
            hold()
        tr.masked_loss = masked_loss
    elif where == "mid-epoch":                   # in the middle of epoch 2's SGD steps
        real = tr.masked_loss
        def masked_loss(*a, **k):
            count["n"] += 1
            if count["n"] == 9:
                hold()
            return real(*a, **k)
        tr.masked_loss = masked_loss
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
    assert r.stdout.strip().splitlines()[-1] == str(run)
    assert _all_files_open(run) == []
    a, b = open_activations(reference).load(), open_activations(run).load()
    assert b.epoch.values.tolist() == [0, 1, 2, 3, 4]  # none missing, none duplicated
    xr.testing.assert_identical(a, b)
    wa = torch.load(reference / "checkpoints" / "final.pt", weights_only=False)["model"]
    wb = torch.load(run / "checkpoints" / "final.pt", weights_only=False)["model"]
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    log = (run / "log.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in log[1:]] == ["1", "2", "3", "4"]


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
