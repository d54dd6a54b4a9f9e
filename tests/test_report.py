"""analyze_run on a synthetic activation dataset (the recorder's contract) with a planted signal."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr

from decisionnets.envs.color_direction_analyses import psychometric
from decisionnets.report import analyze_run, balanced_error_labels, load_information

torch.set_num_threads(1)

N_TRIALS, N_TIME, N_UNITS = 160, 6, 8
PERIODS = ["fixation", "targets", "stimulus", "stimulus", "decision", "decision"]


def write_run(run_dir, epochs=(0, 2, 4), seed=0):
    """Direction is encoded (from the stimulus on, growing with epoch); color is not."""
    rng = np.random.default_rng(seed)
    color = rng.integers(0, 2, N_TRIALS)
    config = rng.integers(0, 2, N_TRIALS)
    direction = color ^ config
    coh_levels = np.array([-0.6, -0.2, 0.2, 0.6])
    coherence = np.abs(rng.choice(coh_levels, N_TRIALS)) * np.where(color == 0, 1, -1)
    catch = np.zeros(N_TRIALS, np.int8)
    catch[:8] = 1
    folder = run_dir / "activations"
    folder.mkdir(parents=True)
    cfg = json.dumps({"task": "color-direction", "train": {"lr": 0.05, "batch_size": 32}})
    for i, e in enumerate(epochs):
        gain = 1.0 + 2.0 * i
        hidden = rng.standard_normal((1, N_TRIALS, N_TIME, N_UNITS)).astype(np.float32)
        hidden[0, :, 2:, 0] += gain * (2 * direction[:, None] - 1)
        # 20% errors at every epoch, 10 per direction at least
        err = rng.random(N_TRIALS) < 0.2
        choice = np.where(err, 1 - direction, direction)
        hidden[0, :, 4:, 1] += 3.0 * (2 * choice[:, None] - 1)  # choice signal in the decision period
        ds = xr.Dataset(
            {
                "hidden": (("epoch", "trial", "time", "unit"), hidden),
                "logits": (("epoch", "trial", "time", "action"), rng.standard_normal((1, N_TRIALS, N_TIME, 3)).astype(np.float32)),
                "choice": (("epoch", "trial"), choice[None].astype(np.int64)),
                "correct": (("epoch", "trial"), (choice == direction)[None].astype(np.int8)),
                "loss": (("epoch",), [0.7 / (1 + i)]),
                "accuracy": (("epoch",), [0.5 + 0.15 * i]),
                "step": (("epoch",), [100 * e]),
            },
            coords={
                "epoch": [e],
                "trial": np.arange(N_TRIALS),
                "time": ("time", np.arange(N_TIME) * 20.0, {"units": "ms"}),
                "period": ("time", PERIODS),
                "color": ("trial", color),
                "target_config": ("trial", config),
                "direction": ("trial", direction),
                "coherence": ("trial", coherence),
                "catch": ("trial", catch),
            },
            attrs={"task": "color-direction", "env": "ColorDirection", "model": "rnn", "seed": 0, "dt": 20.0,
                   "config": cfg, "decisionnets_version": "0.1.0", "format_version": 1, "target": "direction"},
        )
        ds.to_netcdf(folder / f"epoch_{e:05d}.nc")
    return run_dir


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    run = write_run(tmp_path_factory.mktemp("run") / "run")
    paths = analyze_run(run, progress=False)
    return run, paths, load_information(run)


def test_writes_information_and_figures(analysed):
    run, paths, info = analysed
    assert paths[0] == run / "information.nc"
    names = {p.name for p in paths[1:]}
    assert {"information_vs_epoch.png", "information_vs_time.png", "cross_temporal.png", "learning_curve.png",
            "psychometric.png", "choice_vs_direction.png"} <= names
    assert all(p.is_file() and p.stat().st_size > 1000 for p in paths)


def test_planted_signal_is_found(analysed):
    _, _, info = analysed
    i = info["information"].sel(layer="hidden")
    assert i.dims == ("variable", "epoch", "time")
    assert set(i["variable"].values) == {"color", "direction", "target_config", "choice"}
    stim = i.isel(time=slice(2, None))
    assert (stim.sel(variable="direction", epoch=4) > 0.6).all()
    assert abs(float(i.sel(variable="color").mean())) < 0.05
    assert abs(float(i.sel(variable="direction").isel(time=slice(0, 2)).mean())) < 0.05
    # direction information grows with training
    assert float(stim.sel(variable="direction", epoch=4).mean()) > float(stim.sel(variable="direction", epoch=0).mean())
    assert info["information"].attrs["units"] == "bits"


def test_period_information_and_cross_temporal(analysed):
    _, _, info = analysed
    per = info["period_information"].sel(layer="hidden")
    assert set(per["period"].values) == {"fixation", "targets", "stimulus", "decision"}
    expected = info["information"].sel(layer="hidden", variable="direction", epoch=4).isel(time=[2, 3]).mean()
    np.testing.assert_allclose(per.sel(variable="direction", epoch=4, period="stimulus"), expected)
    ct = info["cross_temporal"].sel(layer="hidden", variable="direction")
    assert ct.dims == ("train_time", "test_time")
    assert ct.attrs["epoch"] == 4 or info["cross_temporal"].attrs["epoch"] == 4
    assert float(ct.sel(train_time=40.0, test_time=80.0)) > 0.3  # a fixed code generalizes
    assert abs(float(ct.sel(train_time=0.0, test_time=0.0))) < 0.15


def test_choice_vs_direction_on_error_trials(analysed):
    _, _, info = analysed
    ei = info["error_information"].sel(layer="hidden")
    assert list(ei["error_period"].values) == ["fixation", "targets", "stimulus", "decision"]  # period ends
    dec = ei.isel(error_time=-1)  # the response step
    # in the decision period the choice signal is there on the balanced subset...
    assert (dec.sel(error_variable="choice") > 0.2).all()
    # ...and direction, decorrelated from choice there, is still carried by unit 0 late in training
    assert float(dec.sel(error_variable="direction", epoch=4)) > 0.2
    # before the decision period choice is only knowable through direction: ~0 on the subset
    assert abs(float(ei.sel(error_variable="choice").isel(error_time=slice(0, 2)).mean())) < 0.1


def test_catch_trials_excluded_and_psychometric(analysed):
    _, _, info = analysed
    assert info.attrs["analysis_exclude_catch"] == 1
    p = info["p_right"]
    assert p.dims == ("epoch", "evidence")
    assert ((p >= 0) & (p <= 1)).all()


def test_balanced_error_labels_nan_when_too_few_errors():
    direction = xr.DataArray(np.array([0, 1] * 20), dims="trial")
    choice = xr.DataArray(np.stack([direction.values, direction.values]), dims=("epoch", "trial"))
    choice[1, :12] = 1 - choice[1, :12]  # 6 errors per direction in epoch 1, none in epoch 0
    lab = balanced_error_labels(choice, direction, folds=5)
    assert (lab["choice"][0] == -1).all()
    sub = lab["choice"][1] >= 0
    assert int(sub.sum()) == 24
    d = lab["stimulus"][1].values[sub.values]
    c = lab["choice"][1].values[sub.values]
    assert np.mean(c == d) == 0.5


def test_psychometric_signs_evidence_by_target_config():
    choice = xr.DataArray([[1, 0, 1, 0]], dims=("epoch", "trial"), coords={"epoch": [0]})
    coh = xr.DataArray([0.5, 0.5, -0.5, -0.5], dims="trial")
    cfg = xr.DataArray([1, 0, 0, 1], dims="trial")
    p = psychometric(choice, coh, cfg)
    np.testing.assert_allclose(p.sel(evidence=0.5), 1.0)
    np.testing.assert_allclose(p.sel(evidence=-0.5), 0.0)


def test_information_plot_keeps_a_sensible_y_span():
    from matplotlib.figure import Figure

    from decisionnets import plots

    flat = xr.DataArray(1e-8 * np.random.default_rng(0).standard_normal((2, 3)), dims=("variable", "epoch"),
                        coords={"variable": ["color", "direction"], "epoch": [0, 1, 2]})
    ax = Figure().subplots()
    plots.plot_information_vs_epoch(ax, flat)
    lo, hi = ax.get_ylim()
    assert lo <= 0 and hi >= 1.0


def test_every_layer_of_an_image_run_is_analyzed(tmp_path, tiny):
    """Layers with their own unit dims (conv1_unit, conv2_unit, penultimate_unit) all get numbers."""
    from decisionnets.config import load_config
    from decisionnets.training import train

    cfg = load_config("digits-coarse", overrides=tiny("digits-coarse"))
    train(cfg, tmp_path / "run", progress=False)
    analyze_run(tmp_path / "run", progress=False, folds=3)
    info = xr.open_dataset(tmp_path / "run" / "information.nc")
    assert list(info.layer.values) == ["conv1", "conv2", "penultimate"]
    assert np.isfinite(info.information.sel(variable=["fine_label", "coarse_label"]).values).all()


def test_analyze_is_deterministic(tmp_path, tiny):
    """Same run, same seed: identical information.nc (read back from two copies of the run)."""
    import shutil

    from decisionnets.config import load_config
    from decisionnets.training import train

    train(load_config("color-direction", overrides=tiny("color-direction")), tmp_path / "a", progress=False)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    for run in ("a", "b"):
        analyze_run(tmp_path / run, progress=False, folds=3)
    a = xr.load_dataset(tmp_path / "a" / "information.nc")
    b = xr.load_dataset(tmp_path / "b" / "information.nc")
    xr.testing.assert_identical(a, b)


def test_demo_figure_puts_a_static_and_a_timed_run_side_by_side(tmp_path, tiny, analysed):
    """The figure `decisionnets demo` ends with: a static FC run beside a time-resolved one."""
    from matplotlib.image import imread

    from decisionnets.config import load_config
    from decisionnets.report import demo_figure
    from decisionnets.training import train

    cfg = load_config("color-direction-static-wd", overrides=[*tiny("color-direction-static"), "epochs=3"])
    assert cfg.train.weight_decay == 1e-2 and cfg.record.schedule == "all"  # the preset's own values
    train(cfg, tmp_path / "fc", progress=False)
    analyze_run(tmp_path / "fc", variables=["color", "direction"], progress=False)
    timed_run = analysed[0] if isinstance(analysed, tuple) else analysed
    path = demo_figure([tmp_path / "fc", timed_run], tmp_path / "demo.png")
    img = imread(path)
    assert img.shape[1] > 1.5 * img.shape[0]  # two panels side by side
    # the preset's [analysis] table: every 3rd recorded epoch and the last (of 0..3)
    assert load_information(tmp_path / "fc")["epoch"].values.tolist() == [0, 3]


# --- partial runs, output folders, the analysis lock, full disks (through the CLI) -------------------
STATIC_RUN = ["--task", "color-direction-static", "--no-progress", "--set", "epochs=3", "--set", "n_trials=64",
              "--set", "model.hidden_sizes=[8]", "--set", "n_per_condition=3", "--set", "schedule=all"]


@pytest.fixture(scope="module")
def static_run(tmp_path_factory):
    from decisionnets.cli import main

    run = tmp_path_factory.mktemp("partial") / "run"
    assert main(["train", *STATIC_RUN, "--run-dir", str(run)]) == 0
    return run


def _copy(run, tmp_path):
    import shutil

    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    return dst


def _analyze(capsys, *args):
    from decisionnets.cli import main

    capsys.readouterr()
    code = main(["analyze", *map(str, args), "--no-progress", "--folds", "3"])
    return code, capsys.readouterr().err


def test_information_records_coverage_and_an_incomplete_run_warns(static_run, tmp_path, capsys):
    run = _copy(static_run, tmp_path)
    code, err = _analyze(capsys, run)
    assert code == 0 and "not complete" not in err
    info = load_information(run)
    assert info.attrs["run_complete"] == 1 and info.attrs["run_status"] == "completed"
    assert list(info.attrs["analysis_epochs"]) == [0, 1, 2, 3]
    # the ideal observer's ceiling: in the recorded attrs and in information.nc, per variable
    from decisionnets.io import open_activations

    assert json.loads(open_activations(run).attrs["ceiling"])["color"] == pytest.approx(0.676, abs=1e-3)
    assert float(info["ceiling"].sel(variable="direction")) == pytest.approx(0.676, abs=1e-3)
    assert np.isnan(float(info["ceiling"].sel(variable="choice")))
    # a run still training: status running, epoch 3 not recorded yet
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "status": "running", "epoch": 2}))
    (run / "activations" / "epoch_00003.nc").unlink()
    code, err = _analyze(capsys, run)
    assert code == 0 and "warning: run" in err and "is not complete (status running" in err and "not yet 3" in err
    info = load_information(run)
    assert info.attrs["run_complete"] == 0 and info.attrs["run_status"] == "running"
    assert list(info.attrs["analysis_epochs"]) == [0, 1, 2] and list(info.attrs["run_epochs_planned"]) == [0, 1, 2, 3]


def test_a_missing_middle_epoch_is_refused_unless_epochs_are_named(static_run, tmp_path, capsys):
    run = _copy(static_run, tmp_path)
    (run / "activations" / "epoch_00001.nc").unlink()
    code, err = _analyze(capsys, run)
    assert code == 2 and "lacks the activation file of recorded epoch 1" in err and "--epochs 0 2 3" in err, err
    assert len(err.strip().splitlines()) == 1 and not (run / "information.nc").exists()
    code, err = _analyze(capsys, run, "--epochs", 0, 2, 3, "--variables", "color")
    assert code == 0, err
    info = load_information(run)
    assert list(info.attrs["analysis_epochs"]) == [0, 2, 3] and list(np.atleast_1d(info.attrs["run_epochs_missing"])) == [1]


def test_out_writes_elsewhere_and_an_unwritable_folder_is_refused_before_any_work(static_run, tmp_path, capsys,
                                                                                  monkeypatch):
    import errno
    import tempfile

    import decisionnets.analyses as an

    run = _copy(static_run, tmp_path)
    real = tempfile.mkstemp

    def mkstemp(*a, dir=None, **k):  # the run directory is read-only (tests may run as root: chmod is not enough)
        if dir is not None and str(dir).startswith(str(run)):
            raise PermissionError(errno.EROFS, "Read-only file system")
        return real(*a, dir=dir, **k)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    called = []
    real_info = an.information
    monkeypatch.setattr(an, "information", lambda *a, **k: called.append(1) or real_info(*a, **k))
    code, err = _analyze(capsys, run)
    assert code == 2 and "cannot write the analysis into" in err and "--out DIR" in err and not called, err
    code, err = _analyze(capsys, run, "--out", tmp_path / "elsewhere", "--variables", "color")
    assert code == 0, err
    assert (tmp_path / "elsewhere" / "information.nc").is_file() and (tmp_path / "elsewhere" / "figures").is_dir()
    assert not (run / "information.nc").exists() and not (tmp_path / "elsewhere" / "analysis.lock").exists()


def test_a_second_analysis_at_once_is_refused_with_one_line(static_run, tmp_path, capsys):
    import os
    import signal
    import subprocess
    import sys

    run = _copy(static_run, tmp_path)
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time; from decisionnets.locks import acquire; "
                               "acquire(sys.argv[1], name='analysis.lock'); print('held', flush=True); time.sleep(60)",
                               str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, err = _analyze(capsys, run)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert code == 2 and "analysis output folder" in err and "is in use by" in err, err
    assert len(err.strip().splitlines()) == 1 and not (run / "information.nc").exists()


def test_a_full_disk_while_saving_a_figure_exits_4_without_a_half_image(static_run, tmp_path, capsys, monkeypatch):
    import errno

    from matplotlib.figure import Figure

    run = _copy(static_run, tmp_path)
    real = Figure.savefig

    def savefig(self, fname, *a, **k):
        real(self, fname, *a, **k)
        if "information_vs_epoch" in str(fname):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", savefig)
    code, err = _analyze(capsys, run, "--variables", "color", "--epochs", 0, 3)
    assert code == 4 and "No space left on device (ENOSPC)" in err and "Traceback" not in err, err
    assert not (run / "figures" / "information_vs_epoch.png").exists()
    assert not list(run.rglob("*.tmp")) and not (run / "analysis.lock").exists()


def test_analyze_announces_its_problems_and_suggests_fewer_for_a_large_run(tmp_path, capsys):
    """Each analysis of the registry declares its decoding problems; analyze prints them and their total."""
    from decisionnets.analyses import ANALYSES, AnalysisJob, count_problems
    from decisionnets.envs.color_direction_analyses import ANALYSES as CHECKERBOARD_ANALYSES
    from decisionnets.analysis_config import AnalysisConfig
    from decisionnets.io import open_activations
    from decisionnets.report import LARGE_RUN, _announce

    run = write_run(tmp_path / "run", epochs=tuple(range(0, 12, 2)))
    ds = open_activations(run)
    labels = {"color": None, "direction": None, "target_config": None, "choice": None}
    todo = [ANALYSES[n] for n in ("information", "cross_temporal")] + list(CHECKERBOARD_ANALYSES)
    job = AnalysisJob(ds, labels, None, AnalysisConfig(), cross_temporal_epoch=10)
    counts = count_problems(job, ["hidden"], todo)
    # 6 epochs x 6 steps x 4 variables; the cross-temporal matrix reuses the linear fits; 2 variables x
    # 6 epochs x 4 period ends on error trials; the psychometric curve fits nothing
    assert counts == {"information": 6 * 6 * 4, "cross_temporal": 0, "choice_vs_direction": 2 * 6 * 4,
                      "psychometric": 0}
    total = _announce(run, ds, ["hidden"], labels, job.config, counts)
    err = capsys.readouterr().err
    assert total == 6 * 6 * 4 + 2 * 6 * 4
    assert f"{total} decoding problems to fit" in err and "choice_vs_direction 48" in err
    import torch

    assert f"decoding on {torch.get_num_threads()} thread(s) (" in err  # and where that number came from
    assert "--time-stride" not in err  # small
    job.config = AnalysisConfig(decoder=["linear", "mlp", "linear-raw"])
    counts = count_problems(job, ["hidden"], todo)
    assert counts["cross_temporal"] == 6 * 4  # several decoders: the matrix is fitted on its own
    big = _announce(run, ds, ["hidden"], labels, job.config, counts)
    err = capsys.readouterr().err
    assert big == 3 * (6 * 6 * 4 + 2 * 6 * 4) + 6 * 4 and big > LARGE_RUN
    assert "--time-stride 2" in err and "--epochs 0 6 10" in err


# --- the run's [analysis] table: defaults < the run's table < keyword arguments ---------------------
def _with_table(run_dir, table):
    """A synthetic run whose config (the activations' ``config`` attr) carries an [analysis] table."""
    run = write_run(run_dir, epochs=(0, 2))
    for f in sorted((run / "activations").glob("*.nc")):
        ds = xr.load_dataset(f)
        ds.attrs["config"] = json.dumps({**json.loads(ds.attrs["config"]), "analysis": table})
        ds.to_netcdf(f)
    return run


def test_the_runs_table_is_the_base_and_keyword_arguments_override_it(tmp_path):
    from decisionnets.analysis_config import AnalysisConfig
    from decisionnets.report import run_analysis_config

    run = _with_table(tmp_path / "run", {"variables": ["direction"], "folds": 4, "figures": False})
    base = run_analysis_config(run)
    assert (base.variables, base.folds, base.figures, base.time_stride) == (("direction",), 4, False, 1)
    (run / "config.json").write_text(json.dumps({"analysis": {"folds": 3}}))  # config.json wins when present
    assert run_analysis_config(run).folds == 3 and run_analysis_config(run).variables is None
    (run / "config.json").unlink()
    paths = analyze_run(run, folds=3, epochs=[2], progress=False)
    assert [p.name for p in paths] == ["information.nc"]  # figures = false came from the table
    used = json.loads(load_information(run).attrs["analysis_config"])
    assert (used["variables"], used["folds"], used["epochs"]) == (["direction"], 3, [2])
    # a whole config given: the run's table is not read
    analyze_run(run, AnalysisConfig(folds=3, epochs=[2], variables=["color"], figures=False), progress=False)
    assert json.loads(load_information(run).attrs["analysis_config"])["variables"] == ["color"]


def test_a_run_without_a_table_gets_the_defaults(tmp_path):
    from decisionnets.analysis_config import AnalysisConfig
    from decisionnets.report import run_analysis_config

    assert run_analysis_config(write_run(tmp_path / "run", epochs=(0,))) == AnalysisConfig()
    assert run_analysis_config(tmp_path / "nowhere") == AnalysisConfig()
