"""The estimator's inputs: non-finite features, folds against samples and classes, parameters."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import xarray as xr

from decisionnets.decoding import UsableInformation, decoding_scores, usable_information
from decisionnets.errors import UserError


def planted(n=80, d=4, seed=0):
    """Features carrying the label in unit 0 (about 0.5 bits)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.standard_normal((n, d))
    X[:, 0] += 1.2 * (2 * y - 1)
    return X, y


def test_one_inf_is_an_error_naming_samples_and_units():
    X, y = planted()
    X[7, 2] = np.inf
    with pytest.raises(UserError, match=r"0 NaN and 1 inf values in 1 of 80 samples .*\[7\].* 1 of 4 features .*\[2\]"):
        UsableInformation(folds=3).fit(X, y)


def test_partly_nan_sample_is_an_error_all_nan_sample_is_missing():
    X, y = planted()
    X[:40, 1] = np.nan  # half a column
    with pytest.raises(UserError, match="40 NaN and 0 inf values in 40 of 80 samples"):
        usable_information(xr.DataArray(X, dims=("trial", "unit")), xr.DataArray(y, dims="trial"), folds=3)
    X, y = planted()
    X[:4] = np.nan  # whole samples (a closed-loop trial that had ended): missing, counted
    est = UsableInformation(folds=3).fit(X, y)
    assert est.n_samples_[0, 0] == 76 and est.information_[0, 0] > 0.3


def test_folds_larger_than_samples_is_refused_before_any_fit():
    X, y = planted(n=20)
    t0 = time.perf_counter()
    with pytest.raises(UserError, match="folds=40 is larger than the second-largest class .* use folds <= 10"):
        UsableInformation(folds=40).fit(X, y)
    with pytest.raises(UserError, match="folds=40 is larger than the number of samples"):
        UsableInformation(folds=40).fit(X, np.zeros(20))  # one class
    with pytest.raises(UserError, match="second-largest class of every decoding problem"):
        UsableInformation(folds=12).fit(X, y)  # 10 samples per class
    assert time.perf_counter() - t0 < 5  # refused up front: 190 pair fits x 5 penalties never run


@pytest.mark.parametrize("param,value", [("hidden", 0), ("hidden", 2.5), ("max_iter", -5), ("max_iter", 0),
                                         ("tol", float("nan")), ("tol", 0.0), ("tol", -1e-3), ("tol", float("inf"))])
def test_parameters_are_validated_naming_the_value(param, value):
    X, y = planted()
    with pytest.raises(UserError, match=rf"{param} must be .*got {value!r}".replace("(", r"\(").replace(")", r"\)")):
        UsableInformation(folds=3, **{param: value}).fit(X, y)


def test_single_class_is_nan_with_a_warning_naming_variable_and_coordinates():
    rng = np.random.default_rng(0)
    act = xr.DataArray(rng.standard_normal((2, 30, 3)), dims=("epoch", "trial", "unit"), coords={"epoch": [0, 5]})
    choice = xr.DataArray(np.stack([np.zeros(30), np.arange(30) % 2]), dims=("epoch", "trial"))
    with pytest.warns(RuntimeWarning, match=r"'choice' at epoch=0 is NaN: fewer than 2 classes"):
        out = decoding_scores(act, {"choice": choice}, folds=3)
    info = out["information"].sel(variable="choice")
    assert np.isnan(info.sel(epoch=0)) and np.isfinite(info.sel(epoch=5))
    assert int(out["unreliable"].sel(variable="choice", epoch=0)) & 1
    assert int(out["unreliable"].sel(variable="choice", epoch=5)) & 1 == 0
    assert "epoch=0" in json.loads(out.attrs["warnings"])[0]


def test_rare_classes_are_left_out_with_a_warning_and_flag():
    X, y = planted(n=62)
    y = y.copy()
    y[:2] = 2  # a third class of 2 samples, fewer than folds=3
    with pytest.warns(RuntimeWarning, match="leaves out classes with fewer than folds=3"):
        est = UsableInformation(folds=3).fit(X, y)
    assert est.unreliable_[0, 0] & 2 and np.isfinite(est.information_[0, 0])


def test_continuous_label_names_the_variable_and_suggests_bins():
    from decisionnets.analyses import trial_labels

    ds = xr.Dataset(coords={"trial": np.arange(8), "sample_theta": ("trial", np.linspace(0, 2 * np.pi, 8,
                                                                                        endpoint=False))})
    with pytest.raises(UserError, match=r"'sample_theta' is continuous .* --bins sample_theta=K"):
        trial_labels(ds, ["sample_theta"], exclude_catch=False)
    lab = trial_labels(ds, ["sample_theta"], exclude_catch=False, bins={"sample_theta": 4})["sample_theta"]
    assert lab.values.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    with pytest.raises(UserError, match="continuous"):
        usable_information(xr.DataArray(np.zeros((8, 2)), dims=("trial", "unit")), ds["sample_theta"], folds=3)


def test_bin_label_keeps_nan_and_makes_equal_count_classes():
    from decisionnets.analyses import bin_label

    v = np.array([0.1, 0.5, np.nan, 0.9, 0.3, 0.7])
    out = bin_label(v, 2)
    assert np.isnan(out[2]) and np.bincount(out[np.isfinite(out)].astype(int)).tolist() == [2, 3]
    with pytest.raises(UserError, match="bins for 'x' must be an integer >= 2"):
        bin_label(v, 1, "x")
