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
