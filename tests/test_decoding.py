"""Known-truth tests of the usable-information estimator (planted signals, MNE make_data style)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from decisionnets.decoding import (
    UsableInformation,
    cross_temporal_information,
    decoding_scores,
    usable_information,
)
from decisionnets.errors import UserError

torch.set_num_threads(1)


def make_data(n_problems=4, n=300, d=10, signal=0.0, n_classes=2, seed=0):
    """Features (P, n, d) with ``signal`` times the class index planted on feature 0."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, size=(n_problems, n))
    X = rng.standard_normal((n_problems, n, d))
    X[..., 0] += signal * y
    return X, y


def gaussian_bayes_information(mu: float) -> float:
    """I(X;Y) in bits for Y ~ Bernoulli(1/2), X | Y ~ N(+-mu, 1)."""
    xs = np.linspace(-12, 12, 40001)
    px = 0.5 * (np.exp(-((xs - mu) ** 2) / 2) + np.exp(-((xs + mu) ** 2) / 2)) / np.sqrt(2 * np.pi)
    p1 = 1 / (1 + np.exp(-2 * mu * xs))
    h = -(p1 * np.log2(p1) + (1 - p1) * np.log2(1 - p1))
    return float(1 - np.trapezoid(px * h, xs))


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


def test_stratified_folds_are_balanced():
    X, y = make_data(n_problems=1, n=103, d=2, seed=7)
    est = UsableInformation(folds=5).fit(X, y)
    f, lab = est.folds_[0, 0], y[0]
    for c in (0, 1):
        counts = np.bincount(f[lab == c], minlength=5)
        assert counts.max() - counts.min() <= 1


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
    assert (ds.accuracy.sel(variable="direction") > 0.95).all()
    assert ds.information.attrs["units"] == "bits"


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


def test_mlp_decoder_detects_xor():
    rng = np.random.default_rng(0)
    n = 300
    a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
    X = np.stack([a * 2 - 1, b * 2 - 1], -1) + 0.2 * rng.standard_normal((n, 2))
    y = a ^ b
    lin = UsableInformation().fit(X, y)
    mlp = UsableInformation(decoder="mlp", l2_grid=[0.1, 10.0], max_iter=300).fit(X, y)
    assert lin.information_[0, 0] < 0.1
    assert mlp.information_[0, 0] > 0.7


@pytest.mark.parametrize(
    "kwargs, match",
    [({"decoder": "svm"}, "decoder must be one of"), ({"folds": 2}, "folds must be"), ({"l2_grid": [0.0]}, "l2_grid")],
)
def test_bad_parameters_raise_user_errors(kwargs, match):
    X, y = make_data(n_problems=1, n=50, d=2)
    with pytest.raises(UserError, match=match):
        UsableInformation(**kwargs).fit(X, y)


def test_wrapper_rejects_unknown_dims():
    da = xr.DataArray(np.zeros((10, 3)), dims=("trial", "unit"))
    with pytest.raises(UserError, match="sample_dim"):
        usable_information(da, xr.DataArray(np.zeros(10), dims="trial"), sample_dim="image")


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


def test_raw_decoder_option():
    X, y = make_data(n_problems=2, n=300, d=4, signal=1.0, seed=8)
    std = UsableInformation(dtype="float64").fit(X, y)
    raw = UsableInformation(dtype="float64", standardize=False).fit(X, y)
    np.testing.assert_allclose(raw.information_, std.information_, atol=0.03)  # unit-scale features: same
    small = X.copy()
    small[..., 0] *= 1e-3  # the signal unit shrunk: the raw probe's penalty makes it hard to use
    raw_small = UsableInformation(dtype="float64", standardize=False).fit(small, y)
    std_small = UsableInformation(dtype="float64").fit(small, y)
    np.testing.assert_allclose(std_small.information_, std.information_, atol=1e-3)
    assert np.all(raw_small.information_ < std.information_ - 0.1)


def test_trained_cnn_layer_regression_stays_finite():
    """A small CNN's penultimate layer (digits-coarse, epochs 3 and 60, 500 probe images x 64 units)
    on which the float32 accelerated iteration once diverged (-7e25 bits). Default precision must give
    sane numbers: between 0 and H(Y), near-perfect coarse decoding late in training."""
    import pathlib

    d = np.load(pathlib.Path(__file__).parent / "data" / "digits_penultimate.npz")
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
