"""The xarray front end (decisionnets.decoding.frontend): dims, coords, labels, the fitted decoders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from decisionnets.decoding import decoding_scores, usable_information
from decisionnets.errors import UserError

torch.set_num_threads(1)


def test_xarray_wrapper_dims_coords_and_label_broadcast():
    rng = np.random.default_rng(0)
    n_epoch, n_time, n, d = 2, 3, 120, 5
    act = rng.standard_normal((n_epoch, n, n_time, d))
    direction = rng.integers(0, 2, n)
    color = rng.integers(0, 2, n)
    act[..., 0] += 8.0 * direction[None, :, None]
    choice = np.stack([direction, 1 - direction])  # (epoch, trial)
    da = xr.DataArray(
        act,
        dims=("epoch", "trial", "time", "unit"),
        coords={"epoch": [0, 5], "time": [0.0, 10.0, 20.0], "direction": ("trial", direction), "color": ("trial", color)},
    )
    info = usable_information(da, da.direction)
    assert info.dims == ("epoch", "time")
    assert list(info.epoch.values) == [0, 5]
    assert (info > 0.8).all()
    labels = {
        "direction": da.direction,
        "color": da.color,
        "choice": xr.DataArray(choice, dims=("epoch", "trial")),
    }
    ds = decoding_scores(da, labels)
    assert ds.information.dims == ("variable", "epoch", "time")
    assert list(ds.variable.values) == ["direction", "color", "choice"]
    assert ds.l2.dims == ("variable", "epoch", "time", "fold")
    assert (ds.information.sel(variable="color") < 0.1).all()
    assert (ds.information.sel(variable="choice") > 0.8).all()
    assert (ds.decoding_accuracy.sel(variable="direction") > 0.95).all()
    assert "accuracy" not in ds  # the probe set's accuracy is another variable of a run
    assert ds.information.attrs["units"] == "bits"

def test_decoding_scores_returns_the_fitted_decoders():
    rng = np.random.default_rng(5)
    n = 100
    y = rng.integers(0, 2, n)
    X = rng.standard_normal((2, n, 3))
    X[:, :, 0] += 2.0 * y
    da = xr.DataArray(X, dims=("time", "trial", "unit"), coords={"unit": ["a", "b", "c"]})
    ds = decoding_scores(da, xr.DataArray(y, dims="trial"), folds=4, return_decoders=True)
    assert ds["coef"].dims == ("time", "fold", "unit", "logit") and ds["coef"].shape == (2, 4, 3, 1)
    assert ds["intercept"].dims == ("time", "fold", "logit")
    assert ds["fold_assignment"].dims == ("time", "trial") and set(np.unique(ds["fold_assignment"])) == {0, 1, 2, 3}
    assert (ds["coef"].sel(unit="a") > 0.5).all()  # the planted unit carries the weight
    with pytest.raises(UserError, match="one decoder family"):
        decoding_scores(da, xr.DataArray(y, dims="trial"), decoder=["linear", "mlp"], return_decoders=True)

def test_wrapper_rejects_unknown_dims():
    da = xr.DataArray(np.zeros((10, 3)), dims=("trial", "unit"))
    with pytest.raises(UserError, match="sample_dim"):
        usable_information(da, xr.DataArray(np.zeros(10), dims="trial"), sample_dim="image")
