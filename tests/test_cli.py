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
    (["--folds", "15"], "folds=15 leaves 'color' fewer than two classes to decode"),
    (["--folds", "2"], "--folds must be an integer >= 3; got 2"),
    (["--time-stride", "0"], "--time-stride must be an integer >= 1; got 0"),
    (["--decoder", "svm"], "--decoder must name decoder families"),
    (["--bins", "x=1"], "--bins takes VAR=K with an integer K >= 2"),
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


STATIC = ["--task", "color-direction-static", "--no-progress", "--set", "epochs=1", "--set", "n_trials=64",
          "--set", "model.hidden_sizes=[8]", "--set", "n_per_condition=1"]


@pytest.mark.parametrize("args,match", [
    ([*STATIC, "--set", 'record.dtype="float64x"'], "record.dtype must be"),
    ([*STATIC, "--seed", "1180591620717411303424"], r"seed must be an integer in \[0, 2\*\*63 - 1\]"),
    ([*STATIC, "--set", "seed=-1"], "seed must be an integer in"),
    ([*STATIC, "--run-dir", "afile"], "afile is a file, not a folder"),
    ([*STATIC, "--run-dir", "afile/run"], "afile is a file, not a folder"),
    (["--config", "binary.toml"], "is not UTF-8 text"),
    ([*STATIC, "--run-dir", "bad\udcff\udcfename"], "is not a valid UTF-8 name"),
    (["--task", "neurogym", "--set", "env.name=neurogym:GoNogo-v0", "--set", "env.dt=abc"],
     "env.dt must be a positive number of ms; got 'abc'"),
    ([*STATIC, "--set", "lr=nan"], "train.lr must be a finite number > 0; got nan"),
    ([*STATIC, "--set", "lr=inf"], "train.lr must be a finite number > 0; got inf"),
    ([*STATIC, "--set", "weight_decay=nan"], "train.weight_decay must be a finite number >= 0; got nan"),
    ([*STATIC, "--set", "grad_clip=nan"], "train.grad_clip must be a finite number >= 0; got nan"),
    (["--config", "phases.toml"], r"train.phases\[0\].lr must be a finite number > 0; got nan"),
])
def test_bad_train_inputs_one_line_exit_2_nothing_written(args, match, tmp_path, monkeypatch, capsys):
    import re

    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "binary.toml").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "phases.toml").write_text('base = "color-direction-static"\n[[train.phases]]\nepochs = 1\nlr = nan\n')
    before = sorted(tmp_path.rglob("*"))
    assert main(["train", *args, "--out", "runs"]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err) and len(err.strip().splitlines()) == 1, err
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


def test_analyze_reads_the_runs_analysis_table_and_flags_override_it(tmp_path, capsys):
    """A preset's [analysis] table is the base of `decisionnets analyze RUN`; a flag given overrides it."""
    import json

    from conftest import tiny_overrides

    (tmp_path / "c.toml").write_text('base = "color-direction-static"\n[analysis]\nvariables = ["direction"]\n'
                                     'folds = 4\nfigures = false\n')
    run = tmp_path / "run"
    args = ["train", "--config", str(tmp_path / "c.toml"), "--run-dir", str(run), "--no-progress"]
    for a in tiny_overrides("color-direction-static"):
        args += ["--set", a]
    assert main(args) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert json.loads((run / "config.json").read_text())["analysis"]["folds"] == 4
    assert main(["analyze", str(run), "--folds", "3", "--epochs", "2", "--no-progress"]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.split() == [str(run / "information.nc")]  # no figures: the table's
    from decisionnets.report import load_information

    info = load_information(run)
    used = json.loads(info.attrs["analysis_config"])
    assert (used["variables"], used["folds"], used["figures"]) == (["direction"], 3, False)
    import torch  # the decoding's threads are recorded, with where the number came from

    assert info.attrs["analysis_threads"] == torch.get_num_threads() >= 1
    assert info.attrs["analysis_threads_source"].startswith(("auto: decoding", "DECISIONNETS_THREADS"))


def test_analyze_device_cuda_without_gpu_is_refused_up_front(tmp_path, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["analyze", str(tmp_path), "--device", "cuda"]) == 2  # before the run dir is even read
    assert "torch sees no CUDA GPU" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_loss_past_the_bound_is_a_divergence_exit_3(tmp_path, capsys):
    import json

    run = tmp_path / "run"
    assert main(["train", *STATIC, "--set", "lr=1e9", "--run-dir", str(run)]) == 3
    err = capsys.readouterr().err
    assert "above the divergence bound" in err and len(err.strip().splitlines()) == 1, err
    assert json.loads((run / "status.json").read_text())["status"] == "diverged"
    assert (run / "activations" / "epoch_00000.nc").is_file()  # recorded epochs kept


def test_record_dtype_float16_trains_and_reads_back(tmp_path, capsys):
    from decisionnets.io import open_activations

    run = tmp_path / "run"
    assert main(["train", *STATIC, "--set", 'record.dtype="float16"', "--run-dir", str(run)]) == 0, capsys.readouterr().err
    ds = open_activations(run)
    assert ds["hidden_0"].dtype == "float16" if "hidden_0" in ds else any(ds[v].dtype == "float16" for v in ds.data_vars)


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
