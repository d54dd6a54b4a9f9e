import subprocess
import sys

import pytest

from decisionnets.cli import main


def _run(*args):
    return subprocess.run([sys.executable, "-m", "decisionnets.cli", *args], capture_output=True, text=True)


def test_tasks_lists_presets(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "color-direction " in out and "perceptual-dm" in out


@pytest.mark.parametrize("args,match", [
    (["train", "--task", "nope"], "unknown task 'nope'; valid: "),
    (["train", "--task", "color-direction", "--set", "lrr=1"], "unknown config key 'lrr'"),
    (["train", "--task", "color-direction", "--set", "lr=-1"], "train.lr must be > 0; got -1.0"),
    (["train", "--task", "color-direction", "--set", "batch_size=0"], "batch_size must be >= 1; got 0"),
    (["train", "--task", "color-direction", "--set", "env.name=Nope"], "unknown env 'Nope'"),
    (["train", "--task", "color-direction", "--set", "model.kind=transformer"], "unknown model kind"),
    (["train", "--task", "color-direction", "--device", "gpu"], "invalid choice: 'gpu'"),
    (["analyze", "/nonexistent/run"], "run directory not found"),
])
def test_errors_are_one_line_exit_2_no_traceback(args, match, tmp_path):
    r = _run(*args, *(["--out", str(tmp_path)] if args[0] == "train" else []))
    assert r.returncode == 2, r.stderr
    assert match in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing written


def test_train_prints_run_dir_last(tiny, tmp_path):
    args = ["train", "--task", "color-direction-static", "--out", str(tmp_path), "--no-progress", "--seed", "3"]
    for a in tiny("color-direction-static"):
        args += ["--set", a]
    r = _run(*args)
    assert r.returncode == 0, r.stderr
    run_dir = r.stdout.strip().splitlines()[-1]
    assert run_dir.startswith(str(tmp_path)) and "seed3" in run_dir
    assert (tmp_path / run_dir.split("/")[-1] / "activations" / "epoch_00002.nc").is_file()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from conftest import tiny_overrides

    run = tmp_path_factory.mktemp("cli") / "run"
    args = ["train", "--task", "color-direction", "--run-dir", str(run), "--no-progress"]
    for a in tiny_overrides("color-direction"):
        args += ["--set", a]
    r = _run(*args)
    assert r.returncode == 0, r.stderr
    return run


def _snapshot(folder):
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*")}


@pytest.mark.parametrize("extra,match", [
    (["--folds", "15"], "folds=15 is larger than the smallest class of 'color' (14 trials"),
    (["--folds", "1"], "--folds must be >= 2"),
    (["--cross-temporal-epoch", "7"], "cross_temporal_epoch 7 was not recorded"),
    (["--variables", "colour"], "variable 'colour' is not in the activation dataset"),
])
def test_analyze_bad_arguments(tiny_run, extra, match):
    before = _snapshot(tiny_run)
    r = _run("analyze", str(tiny_run), *extra)
    assert r.returncode == 2 and match in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert _snapshot(tiny_run) == before  # nothing written or modified


def test_analyze_truncated_file_is_one_line(tiny_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    f = run / "activations" / "epoch_00001.nc"
    f.write_bytes(f.read_bytes()[:500])
    before = _snapshot(run)
    r = _run("analyze", str(run))
    assert r.returncode == 2 and "epoch_00001.nc" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert _snapshot(run) == before


@pytest.mark.slow  # two tiny trainings and analyses: ~15 s idle, ~30 s on a busy machine
def test_demo_says_what_it_does_and_how_long_each_part_took(tmp_path, monkeypatch, capsys):
    """`make run`: each step announced as it starts, and a table of train / analyze / figures times."""
    import decisionnets.config as config

    real = config.load_config
    tiny = {"color-direction": ["epochs=2", "n_trials=160", "batch_size=16", "model.hidden_size=8",
                                "n_per_condition=2", "record.schedule=all"],
            "color-direction-static-wd": ["epochs=2", "n_trials=160", "batch_size=16", "model.hidden_sizes=[8, 8]",
                                          "n_per_condition=3", "record.schedule=all"]}
    monkeypatch.setattr(config, "load_config", lambda task, seed=None, **kw: real(task, overrides=tiny[task], seed=seed))
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for line in ("[1/2] color-direction: training leaky_rnn for 2 epochs", "[1/2] color-direction: trained in",
                 "[2/2] color-direction-static-wd: analyzed in", "time taken (s):", "total"):
        assert line in out
    row = next(ln for ln in out.splitlines() if ln.strip().startswith("color-direction-static-wd ")).split()
    assert len(row) == 4 and all(v.isdigit() for v in row[1:])  # train, analyze, figures
