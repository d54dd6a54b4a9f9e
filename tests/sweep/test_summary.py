"""decisionnets.sweep.summary and .figures: the ceiling and the variable shown come from the task's
declarations stored in each run's information.nc, never from env names."""

import json

import numpy as np
import pytest
import xarray as xr

from decisionnets.sweep.figures import plot_information_vs_epoch, plot_summary
from decisionnets.sweep.summary import ceiling, describe, first_variable, gather

VARIABLES = ["direction", "speed"]  # the order analyze decoded them in; the task declares speed first


def _info(level, ceil=None, declared=("speed", "direction")):
    """A run's information.nc: information = level + epoch/10 about each variable, a planted ceiling."""
    epochs = [0, 1, 2]
    ds = xr.Dataset({"information": (("variable", "epoch"), level + np.array([epochs, epochs]) / 10),
                     "information_sd": (("variable", "epoch"), np.zeros((2, 3)))},
                    coords={"variable": VARIABLES, "epoch": epochs})
    if ceil is not None:
        ds["ceiling"] = ("variable", np.asarray(ceil, float))
    if declared is not None:
        ds.attrs["decode_labels"] = json.dumps(list(declared))
    return ds


def _sweep(tmp_path, infos):
    runs = [{"run_id": f"r{k}", "coords": {"lr": lr, "seed": 0}} for k, lr in enumerate((0.1, 0.2))]
    (tmp_path / "sweep.json").write_text(json.dumps({"dims": ["lr"], "runs": runs}))
    for r, info in zip(runs, infos):
        (tmp_path / "runs" / r["run_id"]).mkdir(parents=True)
        info.to_netcdf(tmp_path / "runs" / r["run_id"] / "information.nc")
    return gather(tmp_path)


def test_ceiling_is_read_per_variable_from_the_runs(tmp_path):
    s = _sweep(tmp_path, [_info(0.1, ceil=[0.6, 0.9]), _info(0.2)])  # the second task knows no ceiling
    assert s["ceiling"].dims == ("lr", "variable")
    assert ceiling(s, {"lr": 0.1}, "speed") == pytest.approx(0.9)
    assert ceiling(s, {"lr": 0.1}, "direction") == pytest.approx(0.6)
    assert np.isnan(ceiling(s, {"lr": 0.2}, "speed"))
    table = describe(s).splitlines()
    assert table[1].split(" | ")[-3] == "0.600, 0.900" and table[2].split(" | ")[-3] == "-"


def test_the_variable_shown_is_the_tasks_first_declared_label(tmp_path):
    s = _sweep(tmp_path, [_info(0.1), _info(0.2)])
    assert first_variable(s) == "speed"  # declared first, decoded second
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    ax = plot_information_vs_epoch(Figure().subplots(), s)
    assert ax.get_ylabel() == "speed information (bits)"
    names = sorted(p.name for p in plot_summary(s, tmp_path / "figures"))
    assert "speed_vs_lr.png" in names


def test_without_a_declaration_the_first_decoded_variable_is_shown(tmp_path):
    s = _sweep(tmp_path, [_info(0.1, declared=None), _info(0.2, declared=None)])
    assert first_variable(s) == "direction" and "ceiling" in s and np.isnan(s["ceiling"]).all()
