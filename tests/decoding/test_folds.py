"""Labels and folds (decisionnets.decoding.folds): stratification, missing and rare classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from decisionnets.decoding import UsableInformation
from decisionnets.decoding.folds import check_folds_fit, clean_labels, missing_samples, stratified_folds
from decisionnets.errors import UserError

from decoding_data import make_data

torch.set_num_threads(1)


def test_stratified_folds_are_balanced():
    X, y = make_data(n_problems=1, n=103, d=2, seed=7)
    est = UsableInformation(folds=5).fit(X, y)
    f, lab = est.folds_[0, 0], y[0]
    for c in (0, 1):
        counts = np.bincount(f[lab == c], minlength=5)
        assert counts.max() - counts.min() <= 1


def test_labels_are_cleaned_rare_classes_dropped_fractions_refused():
    y = np.array([[[0, 0, 0, 1, 1, 1, 2, -1, np.nan]]])
    lab, n_classes = clean_labels(y, 3)
    assert n_classes == 3
    assert lab.tolist() == [[[0, 0, 0, 1, 1, 1, -1, -1, -1]]]
    with pytest.raises(UserError, match="whole numbers"):
        clean_labels(np.array([[[0.5, 1.0]]]), 1)


def test_folds_larger_than_every_second_class_are_refused():
    raw = np.array([[[0] * 10 + [1] * 2]])
    with pytest.raises(UserError, match="second-largest class"):
        check_folds_fit(raw, 3)
    check_folds_fit(raw, 2)


def test_a_sample_with_no_features_is_missing_any_other_nan_an_error():
    X = np.ones((1, 4, 2))
    X[0, 1] = np.nan
    out = missing_samples(X, np.zeros((1, 1, 4)))
    assert np.isnan(out[0, 0, 1]) and (out[0, 0, [0, 2, 3]] == 0).all()
    X[0, 2, 0] = np.inf
    with pytest.raises(UserError, match="features must be finite: 0 NaN and 1 inf"):
        missing_samples(X, np.zeros((1, 1, 4)))


def test_rows_with_equal_labels_share_their_folds():
    y = np.array([0, 1, 0, 1, 1, 0, 0, 1, 0, 1, -1, 1])
    rows = np.stack([y, y, np.where(np.arange(12) < 6, y, -1)])[:, None]  # (3, 1, 12)
    f = stratified_folds(rows, 3, 2, seed=0)
    assert (f[0] == f[1]).all()
    assert (f[:, 0, 10] == -1).all() and (f[2, 0, 6:] == -1).all()
    assert (f[2, 0, :6] >= 0).all()
