"""Temporal generalization (decisionnets.decoding.temporal)."""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from decisionnets.decoding import cross_temporal_information, usable_information

torch.set_num_threads(1)


def test_cross_temporal_matrix():
    rng = np.random.default_rng(1)
    n, T, d = 200, 4, 5
    y = rng.integers(0, 2, n)
    act = rng.standard_normal((T, n, d))
    act[2:, :, 0] += 3.0 * y  # signal only from t=2 on, in one fixed direction
    da = xr.DataArray(act, dims=("time", "trial", "unit"), coords={"time": np.arange(T) * 10.0})
    lab = xr.DataArray(y, dims="trial")
    ct = cross_temporal_information(da, lab)
    assert ct.dims == ("train_time", "test_time")
    assert ct.shape == (T, T)
    assert ct.sel(train_time=20.0, test_time=30.0) > 0.5
    assert abs(float(ct.sel(train_time=0.0, test_time=0.0))) < 0.1
    diag = usable_information(da, lab)
    np.testing.assert_allclose(np.diag(ct.values), diag.values, atol=1e-4)

def test_cross_temporal_loops_over_extra_dims():
    rng = np.random.default_rng(4)
    n, T, d = 120, 3, 4
    y = rng.integers(0, 2, n)
    act = rng.standard_normal((2, T, n, d))
    act[1, 1:, :, 0] += 3.0 * y  # signal in epoch 1 only, from t=1 on
    da = xr.DataArray(act, dims=("epoch", "time", "trial", "unit"), coords={"epoch": [0, 5]})
    lab = xr.DataArray(y, dims="trial")
    ct = cross_temporal_information(da, lab, folds=4)
    assert ct.dims == ("epoch", "train_time", "test_time") and list(ct["epoch"].values) == [0, 5]
    for e in (0, 5):
        one = cross_temporal_information(da.sel(epoch=e), lab, folds=4)
        np.testing.assert_allclose(ct.sel(epoch=e).values, one.values, atol=2e-3)
    assert float(ct.sel(epoch=5, train_time=1, test_time=2)) > 0.5 > float(ct.sel(epoch=0, train_time=1, test_time=2))
    both = cross_temporal_information(da, {"y": lab, "y2": lab}, folds=4)
    assert both.dims == ("variable", "epoch", "train_time", "test_time")
    np.testing.assert_allclose(both.sel(variable="y2").values, ct.values, atol=1e-9)
