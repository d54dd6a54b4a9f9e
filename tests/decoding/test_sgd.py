"""The fixed-step SGD families (decisionnets.decoding.sgd): a planted signal, seeds, the holdout split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from decisionnets.decoding import UsableInformation, get_decoder
from decisionnets.errors import UserError

from decoding_data import make_data

torch.set_num_threads(1)


@pytest.mark.parametrize("family", ["sgd-mlp", "sgd-linear"])
def test_sgd_families_learn_a_planted_signal_reproducibly(family):
    X, y = make_data(n_problems=1, n=120, d=3, signal=3.0, seed=2)
    dec = get_decoder(family, hidden=(8,), iterations=150, lr=0.2)
    a = UsableInformation(decoder=dec, seed=1).fit(X, y)
    b = UsableInformation(decoder=dec, seed=1).fit(X, y)
    assert a.information_[0, 0] > 0.5
    np.testing.assert_array_equal(a.information_, b.information_)
    assert np.isnan(a.l2_).all() and a.converged_.all()  # no penalty to choose, no convergence test


def test_the_holdout_split_trains_on_a_quarter():
    X, y = make_data(n_problems=1, n=120, d=3, signal=3.0, seed=3)
    dec = get_decoder("sgd-linear", hidden=(8,), iterations=100, lr=0.2)
    est = UsableInformation(decoder=dec, split="holdout", train_fraction=0.25).fit(X, y)
    assert est.l2_.shape == (1, 1, 1)
    assert (np.bincount(est.folds_[0, 0]) == [30, 30, 30, 30]).all()  # fold 0 trains, the rest test
    assert est.information_[0, 0] > 0.3


def test_bad_settings_are_refused():
    with pytest.raises(UserError, match="dropout"):
        get_decoder("sgd-mlp", dropout=1.0)
    with pytest.raises(UserError, match="iterations"):
        get_decoder("sgd-mlp", iterations=0)
