"""The batched estimator (decisionnets.decoding.estimator): known truths on planted signals, MNE make_data style."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from decisionnets.decoding import UsableInformation, usable_information
from decisionnets.errors import UserError

from decoding_data import gaussian_bayes_information, make_data

torch.set_num_threads(1)


def test_shuffled_labels_give_zero_bits():
    X, y = make_data(n_problems=16, n=300, d=20, signal=0.0, seed=1)
    est = UsableInformation(seed=3).fit(X, y)
    assert abs(est.information_.mean()) <= 0.02
    assert np.all(np.abs(est.information_) < 0.06)

@pytest.mark.parametrize("n_classes", [2, 4])
def test_separable_labels_give_label_entropy(n_classes):
    X, y = make_data(n_problems=3, n=200, d=5, signal=8.0, n_classes=n_classes, seed=2)
    est = UsableInformation().fit(X, y)
    counts = np.stack([np.bincount(row, minlength=n_classes) for row in y]) / y.shape[1]
    h = -(counts * np.log2(counts)).sum(-1)
    assert np.all(est.information_[:, 0] >= h - 0.02)
    assert np.all(est.accuracy_ == 1.0)

def test_gaussian_two_class_recovers_bayes_information():
    mu = 1.0
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, size=(4, 4000))
    X = rng.standard_normal((4, 4000, 4))
    X[..., 0] += np.where(y == 1, mu, -mu)
    est = UsableInformation().fit(X, y)
    assert abs(est.information_.mean() - gaussian_bayes_information(mu)) <= 0.03

def test_invariant_to_rescaling_units():
    X, y = make_data(n_problems=2, n=200, d=6, signal=1.0, seed=3)
    scale = np.array([1e-3, 1.0, 50.0, 2.0, 1e3, 0.5])
    a = UsableInformation(dtype="float64").fit(X, y)
    b = UsableInformation(dtype="float64").fit(X * scale + 7.0, y)
    np.testing.assert_allclose(a.information_, b.information_, atol=1e-3)

def test_invariant_to_joint_permutation_of_trials():
    X, y = make_data(n_problems=6, n=300, d=6, signal=1.0, seed=4)
    perm = np.random.default_rng(0).permutation(300)
    a = UsableInformation().fit(X, y)
    b = UsableInformation().fit(X[:, perm], y[:, perm])
    # folds differ after the permutation: equal up to the estimator's fold noise
    assert abs(a.information_.mean() - b.information_.mean()) <= 0.02
    # the same trials with the same folds give the same answer
    c = UsableInformation().fit(X[:, perm], y[:, perm])
    np.testing.assert_allclose(b.information_, c.information_)

def test_missing_labels_imbalance_and_rare_classes():
    X, y = make_data(n_problems=1, n=300, d=4, signal=3.0, seed=6)
    y = y.astype(float)
    y[0, :20] = np.nan
    y[0, 20:40] = -1
    y[0, 40:43] = 2  # a class with < folds samples: dropped
    est = UsableInformation().fit(X, y)
    assert est.n_samples_[0, 0] == 300 - 43
    assert (est.folds_[0, 0, :43] == -1).all()
    assert est.information_[0, 0] > 0.5
    # imbalanced: 90/10 classes, planted signal still measured against the prior, not 1 bit
    rng = np.random.default_rng(0)
    yi = (rng.random((1, 500)) < 0.1).astype(int)
    Xi = rng.standard_normal((1, 500, 3))
    est = UsableInformation().fit(Xi, yi)
    assert abs(est.information_[0, 0]) < 0.03
    assert est.ce_prior_[0, 0] < 0.6

def test_single_class_and_empty_are_nan_with_a_warning():
    """A constant label is a question the data cannot answer: NaN bits and a warning, not 0 bits."""
    X = np.random.default_rng(0).standard_normal((2, 50, 3))
    y = np.zeros((2, 50))
    y[1] = -1
    with pytest.warns(RuntimeWarning, match="is NaN: fewer than 2 classes"):
        est = UsableInformation().fit(X, y)
    assert np.isnan(est.information_[0, 0])
    assert np.isnan(est.information_[1, 0])
    assert (est.unreliable_[:, 0] & 1).all()

@pytest.mark.parametrize(
    "kwargs, match",
    [({"decoder": "svm"}, "decoder must be one of"), ({"folds": 2}, "folds must be"), ({"l2_grid": [0.0]}, "l2_grid")],
)
def test_bad_parameters_raise_user_errors(kwargs, match):
    X, y = make_data(n_problems=1, n=50, d=2)
    with pytest.raises(UserError, match=match):
        UsableInformation(**kwargs).fit(X, y)

def test_constant_and_near_constant_columns_are_dropped_float32():
    """Dead ReLU units (exact zeros), float32-wobbling constants and a unit active on one trial only."""
    X, y = make_data(n_problems=3, n=300, d=6, signal=1.0, seed=7)
    X = X.astype(np.float32)
    n = X.shape[1]
    rng = np.random.default_rng(0)
    dead = np.zeros((3, n, 4), np.float32)
    wobble = (0.5 + 1e-8 * rng.standard_normal((3, n, 2))).astype(np.float32)
    single = np.zeros((3, n, 2), np.float32)
    single[:, 5, 0] = 3.0  # active on one trial: constant in every training fold but one
    single[:, 7, 1] = 1e-3
    Xp = np.concatenate([X, dead, wobble, single], axis=-1)
    ref = UsableInformation(dtype="float64").fit(X, y)
    for dtype in ("float32", "float64"):
        est = UsableInformation(dtype=dtype).fit(Xp, y)
        assert np.all(np.isfinite(est.information_))
        np.testing.assert_allclose(est.information_, ref.information_, atol=0.02)
    # all-dead problem: 0 bits, not NaN
    est = UsableInformation().fit(np.zeros((1, n, 5), np.float32), y[:1])
    np.testing.assert_allclose(est.information_, 0.0, atol=1e-6)

def test_trained_cnn_layer_regression_stays_finite():
    """A small CNN's penultimate layer (digits-coarse, epochs 3 and 60, 500 probe images x 64 units)
    on which the float32 accelerated iteration once diverged (-7e25 bits). Default precision must give
    sane numbers: between 0 and H(Y), near-perfect coarse decoding late in training."""
    import pathlib

    d = np.load(pathlib.Path(__file__).resolve().parents[1] / "data" / "digits_penultimate.npz")
    act = xr.DataArray(d["activity"], dims=("epoch", "trial", "unit"))
    labels = {"fine": xr.DataArray(d["fine"], dims="trial"), "coarse": xr.DataArray(d["coarse"], dims="trial")}
    info = usable_information(act, labels)
    assert np.isfinite(info.values).all()
    assert (info.sel(variable="fine").values > 2.0).all() and (info.sel(variable="fine").values <= np.log2(10)).all()
    assert 0.8 < float(info.sel(variable="coarse")[-1]) <= 1.0  # float64: 0.918

@pytest.mark.filterwarnings("ignore:.*did not converge.*:RuntimeWarning")
def test_unstable_estimates_are_flagged_not_silent():
    """A fold-to-fold s.d. above UNSTABLE_SD bits warns (30 trials, 50 noise units, random labels: -0.34 bits,
    s.d. 0.67 over 5 folds); a well-posed problem (1,000 trials, one informative unit) does not."""
    import warnings

    from decisionnets.decoding import UNSTABLE_SD

    rng = np.random.default_rng(1)
    X = rng.standard_normal((1, 30, 50)).astype(np.float32)
    y = rng.integers(0, 2, (1, 1, 30))
    with pytest.warns(RuntimeWarning, match="fold-to-fold s.d."):
        est = UsableInformation(folds=5).fit(X, y)
    assert est.information_sd_[0, 0] > UNSTABLE_SD
    X = rng.standard_normal((1, 1000, 20)).astype(np.float32)
    y = rng.integers(0, 2, (1, 1, 1000))
    X[0, :, 0] += 2 * y[0, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        est = UsableInformation(folds=5).fit(X, y)
    assert est.information_sd_[0, 0] < 0.1
