"""The registry of representation analyses, `decisionnets analyze --analyses` and sweeps' `analyses`."""

import json

import numpy as np
import pytest
import xarray as xr

from decisionnets.errors import ConfigError, UserError
from decisionnets.representation import REPRESENTATION_ANALYSES, get_analysis, run_representation


def _analyze(*args):
    from decisionnets.cli import main

    return main(["analyze", *args, "--no-progress", "--threads", "1"])


def _write_run(run, n_trials=48, T=4, U=6, epochs=(0, 1, 2)):
    """A run directory of synthetic recorded epochs: color- and direction-driven units, periods a, b."""
    from decisionnets.io import FORMAT_VERSION, write_epoch

    rng = np.random.default_rng(0)
    color = np.repeat([0, 1], n_trials // 2)
    direction = np.tile([0, 1], n_trials // 2)
    for e in epochs:
        drive = np.stack([2 * color - 1, 2 * direction - 1, np.zeros(n_trials)] * (U // 3), -1) * e
        act = drive[:, None, :] + 0.5 * rng.normal(size=(n_trials, T, U))
        ds = xr.Dataset({"hidden": (("epoch", "trial", "time", "unit"), act[None])},
                        coords={"epoch": [e], "trial": np.arange(n_trials), "time": np.arange(T) * 20.0,
                                "period": ("time", ["a"] * (T // 2) + ["b"] * (T - T // 2)),
                                "color": ("trial", color), "direction": ("trial", direction)},
                        attrs={"decode_labels": json.dumps(["color", "direction"]), "task": "synthetic",
                               "format_version": FORMAT_VERSION})
        write_epoch(ds, run, e)
    return run


@pytest.fixture
def run(tmp_path):
    return _write_run(tmp_path / "run")


def test_registry_names_and_contract():
    assert list(REPRESENTATION_ANALYSES) == ["selectivity", "geometry", "similarity", "fixed-points"]
    assert REPRESENTATION_ANALYSES["fixed-points"] == ("decisionnets.representation.fixed_points", "fixed_points",
                                                       "plot_fixed_points")
    compute, plot = get_analysis("selectivity")
    assert compute.__name__ == "selectivity" and plot.__name__ == "plot_selectivity"
    with pytest.raises(UserError, match="unknown analysis 'selectivty'; known: information, selectivity"):
        get_analysis("selectivty")


def test_run_representation_writes_result_and_figure(run, tmp_path):
    paths = run_representation("geometry", run_dir=run, out_dir=tmp_path, seed=1, n_components=2, bogus=1)
    assert paths == [tmp_path / "analyses" / "geometry.nc", tmp_path / "figures" / "geometry.png"]
    res = xr.load_dataset(paths[0])
    assert res.sizes["pc"] == 2 and res.attrs["analysis"] == "geometry" and res.attrs["task"] == "synthetic"
    assert paths[1].stat().st_size > 10_000
    assert not list((tmp_path / "analyses").glob(".*.tmp"))  # written through a temporary name


def test_analyze_runs_exactly_the_named_analyses(run):
    assert _analyze(str(run), "--analyses", "selectivity", "geometry", "--epochs", "0", "2") == 0
    assert not (run / "information.nc").exists()  # the decoding runs only when named (or by default)
    sel = xr.load_dataset(run / "analyses" / "selectivity.nc")
    assert sel["class_fraction"].dims == ("layer", "epoch", "period", "class")
    assert list(sel["epoch"].values) == [0, 2] and list(sel["variable"].values) == ["color", "direction"]
    # epoch 0 carries no signal; at epoch 2 units 0 and 1 of each triple are pure, unit 2 none
    assert (sel["unit_class"].sel(epoch=0) == "none").all()
    assert list(sel["unit_class"].sel(epoch=2, period="b").values) == ["pure", "pure", "none"] * 2
    assert (run / "figures" / "selectivity.png").is_file() and (run / "figures" / "geometry.png").is_file()


def test_analyze_unknown_analysis_is_one_line_exit_2(run, capsys):
    assert _analyze(str(run), "--analyses", "geometry", "dpca") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--analyses must name analyses (information, selectivity" in err and "'dpca'" in err
    assert not (run / "analyses").exists()


def test_sweep_analysis_table_takes_analyses(run):
    from decisionnets import sweep
    from decisionnets.sweep.analysis import analyze, analyze_kwargs, is_analyzed

    with pytest.raises(ConfigError, match="sweep.analysis.analyses must name analyses .*got 'pca'"):
        sweep.parse_spec({"sweep": {"base": "color-direction-static", "analysis": {"analyses": ["pca"]}}})
    analysis = sweep.parse_spec({"sweep": {"base": "color-direction-static", "analysis": {"folds": 3, "periods": ["b"], "epochs": [2],
                                                                     "analyses": ["geometry"]}}}).analysis
    assert analyze_kwargs(run, analysis)["config"].analyses == ("information", "geometry")
    no_rep = analysis.replace(analyses=[])
    assert analyze_kwargs(run, no_rep)["config"].analyses is None
    analyze(run, no_rep)
    assert is_analyzed(run, no_rep) and not is_analyzed(run, analysis)
    analyze(run, analysis)
    assert (run / "information.nc").is_file()
    geo = xr.load_dataset(run / "analyses" / "geometry.nc")
    assert list(geo["period"].values) == ["a", "b"]  # the decoding's period = "b" does not narrow it
    assert is_analyzed(run, analysis)
    (run / "analyses" / "geometry.nc").unlink()
    assert not is_analyzed(run, analysis)  # a missing representation analysis is run again
