"""UsableInformationEstimator: scikit-learn's estimator checks, the same numbers as the batched
fast path, score in bits, drop-in use with cross_val_score and a search-light loop over time."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.utils.estimator_checks import check_estimator, parametrize_with_checks

import decisionnets as dn
from decisionnets import UsableInformation, UsableInformationEstimator, get_decoder
from decisionnets.errors import UserError

#: Checks that cannot apply to a usable-information estimator, with the reason. None today: every
#: scikit-learn check passes (check_array_api_input is skipped by scikit-learn itself unless the
#: environment variable SCIPY_ARRAY_API=1 is set; the estimator computes in torch on numpy input).
EXPECTED_FAILED_CHECKS: dict[str, str] = {}

#: A cheap configuration for the many small fits of the checks: 3 folds, 2 penalties.
FAST = UsableInformationEstimator(decoder=get_decoder("linear", l2_grid=(0.1, 10.0)), folds=3)


@parametrize_with_checks([FAST], expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.slow
@pytest.mark.parametrize("decoder", ["linear", "linear-raw"])
def test_check_estimator_with_the_default_decoders(decoder):
    """The default families and grid (5 folds, 5 penalties): 54 passed, 1 skipped (array API)."""
    results = check_estimator(UsableInformationEstimator(decoder=decoder), on_fail=None,
                              expected_failed_checks=EXPECTED_FAILED_CHECKS)
    status = {r["check_name"]: r["status"] for r in results}
    assert [k for k, v in status.items() if v == "failed"] == []


def _problem(n=240, d=6, classes=2, signal=1.0, seed=0):
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    y = rng.permutation(np.arange(n) % classes)
    X = rng.standard_normal((n, d))
    X[:, :classes] += signal * np.eye(classes)[y]
    return X, y


@pytest.mark.parametrize(
    "decoder, classes, dtype",
    [("linear", 2, "float64"), ("linear", 3, "float64"), ("linear-raw", 2, "float64"), ("linear", 2, "float32")],
)
def test_same_numbers_as_the_batched_fast_path(decoder, classes, dtype):
    X, y = _problem(classes=classes)
    y = y.copy()
    y[:3] = classes  # a class with fewer trials than folds: left out of the CV by both
    one = UsableInformationEstimator(decoder=decoder, dtype=dtype).fit(X, y)
    many = UsableInformation(decoder=decoder, dtype=dtype).fit(X, y)
    assert abs(one.information_ - many.information_[0, 0]) < 1e-3
    np.testing.assert_allclose(one.information_folds_, many.information_folds_[0, 0], atol=1e-3)
    np.testing.assert_allclose(one.l2_, many.l2_[0, 0], rtol=1e-6)  # the same penalties chosen
    np.testing.assert_array_equal(one.folds_, many.folds_[0, 0])
    assert abs(one.accuracy_ - many.accuracy_[0, 0]) < 1e-9
    assert one.information_ > 0.15  # a problem with something to decode


def test_same_numbers_as_the_batched_fast_path_for_a_nonlinear_family():
    X, y = _problem(n=90, d=3, signal=1.5)
    mlp = get_decoder("mlp", hidden=4, max_iter=20, l2_grid=(0.1, 10.0))
    one = UsableInformationEstimator(decoder=mlp, folds=3).fit(X, y)
    many = UsableInformation(decoder=mlp, folds=3, dtype="float64").fit(X, y)
    assert abs(one.information_ - many.information_[0, 0]) < 1e-3
    assert one.coef_ is None
    # predictions refit on the stored training trials: they do not depend on what else is predicted
    p = one.predict_proba(X)
    np.testing.assert_allclose(p.sum(1), 1.0)
    np.testing.assert_allclose(one.predict_proba(X[:7]), p[:7], atol=1e-6)


def test_time_resolved_batched_information_equals_one_estimator_per_time_step():
    """decisionnets.usable_information over time == the one-problem estimator fitted at each time."""
    rng = np.random.default_rng(np.random.SeedSequence(4))
    n, d, T = 120, 4, 4
    y = rng.permutation(np.arange(n) % 2)
    X = rng.standard_normal((n, T, d))
    X[:, 2:, 0] += 1.5 * (2 * y[:, None] - 1)
    act = xr.DataArray(X, dims=("trial", "time", "unit"))
    info = dn.usable_information(act, xr.DataArray(y, dims="trial"), dtype="float64")
    per_t = [UsableInformationEstimator().fit(X[:, t], y).information_ for t in range(T)]
    np.testing.assert_allclose(info.values, per_t, atol=1e-3)
    assert np.all(np.abs(per_t[:2]) < 0.1) and np.all(np.array(per_t[2:]) > 0.4)


def test_score_is_held_out_information_in_bits():
    X, y = _problem(n=600, signal=1.2, seed=1)
    Xtr, ytr, Xte, yte = X[:300], y[:300], X[300:], y[300:]
    est = UsableInformationEstimator().fit(Xtr, ytr)
    held_out = est.score(Xte, yte)
    assert abs(held_out - est.information_) < 0.08  # both estimate the same held-out quantity
    assert est.score(Xtr, ytr) > held_out  # on the training trials it is optimistic
    # by hand: H(training prior) - cross-entropy of the fitted decoder, bits
    p = est.predict_proba(Xte)[np.arange(300), yte]
    assert abs(held_out - np.mean(np.log2(p) - np.log2(est.class_prior_[yte]))) < 1e-12
    # a label not seen in fit is an error, not a silent number
    with pytest.raises(ValueError, match="not seen in fit"):
        est.score(Xte[:2], np.array([0, 7]))


def test_drop_in_for_cross_val_score():
    X, y = _problem(n=300, signal=3.0, seed=2)
    bits = cross_val_score(UsableInformationEstimator(folds=3), X, y, cv=StratifiedKFold(5, shuffle=True,
                                                                                           random_state=0))
    assert bits.shape == (5,)
    est = UsableInformationEstimator(folds=3).fit(X, y)
    assert abs(bits.mean() - est.information_) < 0.05
    shuffled = cross_val_score(UsableInformationEstimator(folds=3), X, np.random.default_rng(0).permutation(y), cv=3)
    assert abs(shuffled.mean()) < 0.1


def test_search_light_loop_over_time_with_clones():
    """MNE's SlidingEstimator pattern (one clone per time point, fit then score on held-out trials)."""
    rng = np.random.default_rng(np.random.SeedSequence(5))
    n, d, T = 200, 3, 3
    y = rng.permutation(np.arange(n) % 2)
    X = rng.standard_normal((n, d, T))
    X[:, 0, 1:] += 4.0 * (2 * y[:, None] - 1)
    base = UsableInformationEstimator(folds=3)
    tr, te = next(StratifiedKFold(2, shuffle=True, random_state=0).split(X, y))
    scores = []
    for t in range(T):
        est = clone(base).fit(X[tr, :, t], y[tr])
        scores.append(est.score(X[te, :, t], y[te]))
    assert abs(scores[0]) < 0.1 and min(scores[1:]) > 0.9
    assert not hasattr(base, "classes_")  # the template stays unfitted


def test_params_clone_and_decoders_owning_their_parameters():
    dec = get_decoder("linear", l2_grid=[1.0, 100.0])
    est = UsableInformationEstimator(decoder=dec, folds=4, seed=3)
    assert est.get_params() == {"decoder": dec, "folds": 4, "seed": 3, "dtype": "float64", "device": "cpu"}
    twin = clone(est).set_params(folds=3)
    assert twin.folds == 3 and twin.decoder is not dec and twin.decoder.penalties == (1.0, 100.0)
    X, y = _problem(n=90, seed=6)
    est.fit(X, y)
    assert set(est.l2_) <= {1.0, 100.0} and est.alpha_ in (1.0, 100.0)
    # the batched estimator takes the same configured decoder, with the same result as its old knob
    a = UsableInformation(decoder=get_decoder("linear", l2_grid=[0.5, 5.0])).fit(X, y)
    b = UsableInformation(decoder="linear", l2_grid=[0.5, 5.0]).fit(X, y)
    np.testing.assert_array_equal(a.information_, b.information_)
    assert dn.get_decoder("sgd-mlp", lr=0.005).lr == 0.005
    assert "linear" in dn.decoder_names()


def test_string_labels_and_errors():
    X, y = _problem(n=60, signal=4.0, seed=7)
    names = np.array(["red", "green"])[y]
    est = UsableInformationEstimator(folds=3).fit(X, names)
    assert list(est.classes_) == ["green", "red"]
    assert set(est.predict(X)) <= {"green", "red"}
    with pytest.raises(UserError, match="decoder 'linear' cannot be configured with \\['l2'\\]"):
        get_decoder("linear", l2=1.0)
    with pytest.raises(UserError, match="decoder must be one of"):
        UsableInformationEstimator(decoder="svm").fit(X, y)
    with pytest.raises(UserError, match=r"folds must be an integer >= 3 \(nested CV uses K-1 inner folds\); got 2"):
        UsableInformationEstimator(folds=2).fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes; got 1 class"):
        UsableInformationEstimator().fit(X, np.zeros(60))


def test_one_class_left_for_the_folds_is_nan_with_a_warning():
    """57 trials of class 0 and 3 of class 1 with 5 folds: class 1 is left out, one class remains,
    so there is no estimate (NaN, as in the batched estimator), not 0 bits."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = np.r_[np.zeros(57, int), np.ones(3, int)]
    with pytest.warns(RuntimeWarning, match="fewer than 2 classes"):
        est = UsableInformationEstimator(folds=5).fit(X, y)
    assert np.isnan(est.information_) and np.isnan(est.information_folds_).all()
