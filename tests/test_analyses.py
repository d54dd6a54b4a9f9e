"""analyses: the task's declarations choose the default labels and the task-specific analyses."""

import json

import numpy as np
import pytest
import xarray as xr

from decisionnets.analyses import cross_temporal, information, label_variables, task_analyses
from decisionnets.errors import UserError


def _ds(attrs=None, labels=("color", "direction", "coherence", "ground_truth")):
    n = 40
    coords = {k: ("trial", np.arange(n) % 2) for k in labels}
    ds = xr.Dataset({"hidden": (("epoch", "trial", "unit"), np.zeros((1, n, 3))),
                     "choice": (("epoch", "trial"), np.zeros((1, n), int))}, coords=coords)
    ds.attrs.update(attrs or {})
    return ds


def test_declared_labels_and_analyses_are_used():
    ds = _ds({"decode_labels": json.dumps(["ground_truth", "coherence"]), "analyses": json.dumps(["psychometric"])})
    assert label_variables(ds) == ["ground_truth", "coherence", "choice"]
    assert task_analyses(ds) == ["psychometric"]
    ds.attrs["analyses"] = json.dumps([])
    assert task_analyses(ds) == []  # a direction label alone does not make the error analysis run
    ds.attrs["analyses"] = json.dumps(["tea_leaves"])
    with pytest.raises(UserError, match="unknown analyses.*tea_leaves"):
        task_analyses(ds)


def test_undeclared_datasets_are_analyzed_as_before():
    assert label_variables(_ds()) == ["color", "direction", "choice"]
    assert task_analyses(_ds()) == ["choice_vs_direction", "psychometric"]
    assert label_variables(_ds(labels=("ground_truth", "coh"))) == ["ground_truth", "choice"]
    assert task_analyses(_ds(labels=("ground_truth", "coh"))) == []


def test_information_and_cross_temporal_return_datasets_with_a_planted_signal():
    rng = np.random.default_rng(0)
    n, T = 80, 3
    y = np.arange(n) % 2
    x = rng.standard_normal((1, n, T, 4))
    x[0, :, 1:, 0] += 3 * (2 * y[:, None] - 1)  # y is readable from time step 1 on
    act = xr.DataArray(x, dims=("epoch", "trial", "time", "unit"),
                       coords={"epoch": [0], "time": [0.0, 20.0, 40.0], "period": ("time", ["a", "b", "b"])})
    labels = {"y": xr.DataArray(y.astype(float), dims="trial")}
    out = information(act, labels, folds=4)
    assert set(out.data_vars) == {"information", "information_sd", "decoding_accuracy", "converged",
                                  "unreliable", "period_information"}
    info = out["information"].sel(variable="y", epoch=0)
    assert float(info.isel(time=0)) < 0.2 and (info.isel(time=slice(1, None)) > 0.6).all()
    ct = cross_temporal(act, labels, epoch=0, folds=4)["cross_temporal"].sel(variable="y")
    assert ct.dims == ("train_time", "test_time") and float(ct.sel(train_time=20.0, test_time=40.0)) > 0.6


def test_cross_temporal_reuses_the_time_resolved_fits_and_its_diagonal_is_the_information():
    rng = np.random.default_rng(2)
    n, T = 90, 4
    y = np.arange(n) % 2
    x = rng.standard_normal((2, n, T, 5))
    x[:, :, 2:, 0] += 2.0 * (2 * y[:, None] - 1)  # readable from step 2 on, in both epochs
    x[1, :, 1, 1] += 1.5 * (2 * y - 1)  # epoch 1, step 1: another axis, which step 3 does not use
    act = xr.DataArray(x, dims=("epoch", "trial", "time", "unit"), coords={"epoch": [3, 7], "time": 20.0 * np.arange(T)})
    labels = {"y": xr.DataArray(y.astype(float), dims="trial"),
              "z": xr.DataArray(rng.integers(0, 2, (2, n)).astype(float), dims=("epoch", "trial"), coords={"epoch": [3, 7]})}
    out = information(act, labels, folds=4, cross_temporal_epoch=7)
    ct = out["cross_temporal"]
    assert ct.dims == ("variable", "train_time", "test_time")
    for v in ("y", "z"):
        np.testing.assert_allclose(np.diag(ct.sel(variable=v).values), out["information"].sel(variable=v, epoch=7).values,
                                   atol=1e-5)
    # the same matrix as fitting the epoch again on its own (same folds and seed)
    again = cross_temporal(act, labels, epoch=7, folds=4)["cross_temporal"]
    np.testing.assert_allclose(ct.values, again.values, atol=2e-3)
    assert float(ct.sel(variable="y", train_time=40.0, test_time=60.0)) > 0.5
    assert float(ct.sel(variable="y", train_time=20.0, test_time=60.0)) < 0.2
    # no reuse for other families: no matrix from information(), the caller computes it
    assert "cross_temporal" not in information(act, labels, folds=4, decoder="linear-raw", cross_temporal_epoch=7)


def _timed_run(n=60, epochs=2, steps=4, units=3, seed=0):
    """A time-resolved dataset with periods (a, b), an encoded direction and 20 % error trials."""
    rng = np.random.default_rng(seed)
    direction = np.arange(n) % 2
    color = (np.arange(n) // 2) % 2
    hidden = rng.standard_normal((epochs, n, steps, units))
    hidden[..., 0] += 2 * direction[None, :, None] - 1
    choice = np.where(rng.random((epochs, n)) < 0.25, 1 - direction, direction)
    return xr.Dataset({"hidden": (("epoch", "trial", "time", "unit"), hidden),
                       "choice": (("epoch", "trial"), choice)},
                      coords={"epoch": np.arange(epochs), "time": np.arange(steps), "direction": ("trial", direction),
                              "color": ("trial", color), "coherence": ("trial", np.where(color, 0.3, -0.3)),
                              "period": ("time", ["a", "a", "b", "b"])})


@pytest.mark.parametrize("decoder", [["linear"], ["linear", "linear-raw"]])
def test_each_registered_analysis_reports_exactly_the_problems_it_declares(decoder):
    """The progress bar's total is the sum of the declared problems: each analysis must report as many."""
    from decisionnets.analyses import ANALYSES, AnalysisJob, analyses_for, trial_labels
    from decisionnets.analysis_config import AnalysisConfig

    ds = _timed_run()
    labels = trial_labels(ds, ["direction", "color", "choice"], exclude_catch=True)
    job = AnalysisJob(ds, labels, None, AnalysisConfig(folds=3, decoder=decoder), cross_temporal_epoch=1)
    assert [a.name for a in analyses_for(ds)] == list(ANALYSES)  # an undeclared dataset holding every input
    act = ds["hidden"]
    for a in ANALYSES.values():
        done = []
        job.progress = done.append
        out = a.run(job, act) if a.per_layer else a.run(job)
        declared = a.problems(job, act) if a.per_layer else a.problems(job)
        assert sum(done) == declared, a.name
        assert out is None or isinstance(out, xr.Dataset)
    reused = len(decoder) == 1  # the linear fits of `information` give the cross-temporal matrix
    assert ANALYSES["cross_temporal"].problems(job, act) == (0 if reused else 4 * 3)
    assert ANALYSES["information"].problems(job, act) == 2 * 4 * 3 * len(decoder)


def test_a_registered_analysis_runs_in_analyze_run_without_naming_it_there(tmp_path):
    """A new analysis is one register_analysis call: analyze_run runs it and counts its problems."""
    from decisionnets import analyses
    from decisionnets.analyses import ANALYSES, Analysis, register_analysis
    from decisionnets.report import analyze_run

    from decisionnets.io import FORMAT_VERSION

    run = tmp_path / "run.nc"
    _timed_run().assign_attrs(format_version=FORMAT_VERSION).to_netcdf(run)
    mean = Analysis("mean_activity", lambda job, act: xr.Dataset({"mean_activity": act.mean(("trial", "unit"))}),
                    lambda job, act: 0)
    register_analysis(mean)
    try:
        with pytest.raises(UserError, match="already registered"):
            register_analysis(mean)
        analyze_run(run, folds=3, progress=False, figures=False)
    finally:
        ANALYSES.pop("mean_activity")
    info = xr.load_dataset(tmp_path / "run" / "information.nc")
    assert info["mean_activity"].dims == ("layer", "epoch", "time")
    assert "p_right" in info and "error_information" in info  # the undeclared dataset's task analyses
    assert "mean_activity" not in analyses.ANALYSES


def test_a_fresh_interpreter_finds_the_analyses_an_existing_run_declares(tmp_path):
    """The checkerboard's analyses live in its env file; the registry imports it for a run that names them."""
    import subprocess
    import sys

    _ds({"analyses": json.dumps(["choice_vs_direction", "psychometric"])}).to_netcdf(tmp_path / "run.nc")
    _ds({"analyses": "[]"}).to_netcdf(tmp_path / "other.nc")
    code = ("import sys, xarray as xr\n"
            "from decisionnets.analyses import analyses_for\n"
            f"assert len(analyses_for(xr.load_dataset({str(tmp_path / 'other.nc')!r}))) == 2\n"
            "assert 'decisionnets.envs' not in sys.modules  # a run declaring none imports no env file\n"
            f"print([a.name for a in analyses_for(xr.load_dataset({str(tmp_path / 'run.nc')!r}))])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['information', 'cross_temporal', 'choice_vs_direction', 'psychometric']"
