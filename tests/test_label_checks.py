"""Labels that cannot be decoded say so: NaN + a named warning, stored in information.nc and drawn."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from decisionnets.cli import main
from decisionnets.config import load_config
from decisionnets.errors import UserError
from decisionnets.report import _check_folds, analyze_run
from decisionnets.training import train

TINY = ["epochs=1", "n_trials=32", "batch_size=16", "model.hidden_size=8", "record.schedule=all"]


@pytest.fixture(scope="module")
def dms_run(tmp_path_factory):
    """A tiny DelayMatchSample run (declares bins for its continuous sample/test directions)."""
    run = tmp_path_factory.mktemp("dms") / "run"
    cfg = load_config("neurogym", overrides=["env.name=neurogym:DelayMatchSample-v0", "n_per_condition=8", *TINY],
                      seed=1)
    train(cfg, run, progress=False)
    return run


def test_information_nc_stores_unreliable_problems_and_warnings(dms_run):
    with pytest.warns(RuntimeWarning, match=r"'choice' at epoch=0, time=.* is NaN"):
        paths = analyze_run(dms_run, folds=3, time_stride=4, progress=False)
    info = xr.load_dataset(paths[0])
    assert info["unreliable"].dims == info["information"].dims
    flags = info["unreliable"].sel(variable="choice", epoch=0)
    # the untrained network chooses one option on every probe trial: NaN, flagged, not 0 bits
    assert np.isnan(info["information"].sel(variable="choice", epoch=0)).all() and (flags & 1 != 0).all()
    messages = json.loads(info.attrs["warnings"])
    assert info.attrs["n_warnings"] == len(messages) and any("'choice' at epoch=0" in m for m in messages)
    assert (dms_run / "figures" / "information_vs_epoch.png").is_file()


def test_declared_bins_decode_a_continuous_label(dms_run, tmp_path, capsys):
    paths = analyze_run(dms_run, variables=["sample_theta"], folds=3, time_stride=100, progress=False,
                        figures=False)
    info = xr.load_dataset(paths[0])
    assert json.loads(info.attrs["analysis_label_bins"]) == {"sample_theta": 4}
    assert np.isfinite(info["information"]).all()
    # on the command line, --bins overrides the declaration; a bad --bins is one line, exit 2
    assert main(["analyze", str(dms_run), "--variables", "sample_theta", "--bins", "sample_theta=2", "--folds", "3",
                 "--time-stride", "100", "--no-progress"]) == 0
    assert json.loads(xr.load_dataset(dms_run / "information.nc").attrs["analysis_label_bins"]) == {"sample_theta": 2}
    assert main(["analyze", str(dms_run), "--bins", "sample_theta=1", "--no-progress"]) == 2
    assert "--bins takes VAR=K" in capsys.readouterr().err


def test_too_few_trials_per_class_gives_useful_advice():
    """A label whose second-largest class is smaller than folds is refused up front; the advice is
    never an impossible --folds (AntiReach's 32 directions at 1-2 probe trials each)."""
    lab = xr.DataArray(np.r_[np.zeros(10), np.ones(2), 2 * np.ones(1)], dims="trial")
    with pytest.raises(UserError, match=r"fewer than two classes .*--set n_per_condition") as e:
        _check_folds({"ground_truth": lab}, 3)
    assert "--folds" not in str(e.value)
    lab = xr.DataArray(np.r_[np.zeros(10), np.ones(4)], dims="trial")
    with pytest.raises(UserError, match="use --folds 4"):
        _check_folds({"ground_truth": lab}, 5)
    _check_folds({"ground_truth": xr.DataArray(np.zeros(10), dims="trial")}, 5)  # one class: NaN later, no error


def test_unreliable_points_are_drawn_hollow_and_nan_as_x():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from decisionnets.plots import plot_information_vs_epoch

    info = xr.DataArray([[0.8, np.nan, 0.5]], dims=("variable", "epoch"), coords={"variable": ["y"], "epoch": [0, 1, 2]})
    flags = xr.DataArray([[0, 1, 4]], dims=("variable", "epoch"), coords=info.coords)
    fig, ax = plt.subplots()
    plot_information_vs_epoch(ax, info, unreliable=flags)
    hollow = [ln for ln in ax.lines if ln.get_marker() == "o" and ln.get_markerfacecolor() == "white"]
    crosses = [ln for ln in ax.lines if ln.get_marker() == "x"]
    assert len(hollow) == 1 and hollow[0].get_xdata().tolist() == [2]
    assert len(crosses) == 1 and crosses[0].get_xdata().tolist() == [1] and crosses[0].get_ydata().tolist() == [0]
    plt.close(fig)
