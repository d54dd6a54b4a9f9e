"""Decoder families by name (decisionnets.decoding.registry)."""

from __future__ import annotations

import pytest

from decisionnets.decoding import LogisticDecoder, MLPDecoder, SGDDecoder, decoder_names, get_decoder, register_decoder
from decisionnets.errors import UserError


def test_the_builtin_families_are_registered_with_their_settings():
    assert set(decoder_names()) >= {"linear", "linear-raw", "mlp", "sgd-mlp", "sgd-linear"}
    lin, raw = get_decoder("linear"), get_decoder("linear-raw")
    assert isinstance(lin, LogisticDecoder) and lin.standardize and lin.scale_invariant
    assert isinstance(raw, LogisticDecoder) and not raw.standardize and not raw.scale_invariant
    assert isinstance(get_decoder("mlp"), MLPDecoder)
    sgd, sgdl = get_decoder("sgd-mlp"), get_decoder("sgd-linear")
    assert isinstance(sgd, SGDDecoder) and sgd.nonlinear and sgd.dropout == 0.5 and sgd.penalties is None
    assert isinstance(sgdl, SGDDecoder) and not sgdl.nonlinear and sgdl.dropout == 0.8


def test_keywords_reach_the_family_and_unknown_ones_are_refused():
    dec = get_decoder("linear", l2_grid=[0.1, 1.0], tol=1e-5)
    assert dec.penalties == (0.1, 1.0) and dec.tol == 1e-5
    assert get_decoder("sgd-mlp", lr=0.005, hidden=(8,)).hidden == (8,)
    with pytest.raises(UserError, match="cannot be configured with \\['solver'\\]"):
        get_decoder("linear", solver="lbfgs")  # one solver: the option is gone
    with pytest.raises(UserError, match="decoder must be one of"):
        get_decoder("svm")


def test_a_decoder_object_passes_through_and_names_are_not_replaced_silently():
    dec = get_decoder("mlp", hidden=4)
    assert get_decoder(dec) is dec
    with pytest.raises(UserError, match="already registered"):
        register_decoder("linear", LogisticDecoder)
    with pytest.raises(UserError, match="non-empty string"):
        register_decoder("", LogisticDecoder)


def test_the_registry_declares_each_familys_parameters_and_refuses_others_by_name():
    from decisionnets.decoding import decoder_params

    assert {"l2_grid", "tol", "standardize"} <= set(decoder_params("linear"))
    assert set(decoder_params("mlp")) == {"hidden", "max_iter", "l2_grid"}
    assert "l2_grid" not in decoder_params("sgd-mlp")
    with pytest.raises(UserError, match=r"'sgd-mlp' cannot be configured with \['l2_grid'\]: it takes .*lr"):
        get_decoder("sgd-mlp", l2_grid=[1.0])
    with pytest.raises(UserError, match="carries its own parameters"):
        get_decoder(get_decoder("mlp"), hidden=3)


def test_standardize_false_is_the_linear_raw_family_in_one_place():
    """The logistic decoder names itself from ``standardize``; the estimator passes it on, nothing else maps it."""
    import numpy as np

    from decisionnets.decoding import UsableInformation

    assert get_decoder("linear", standardize=False).name == "linear-raw"
    X = np.random.default_rng(0).standard_normal((40, 2))
    y = (X[:, 0] > 0).astype(float)
    assert UsableInformation(folds=3, standardize=False, l2_grid=[1.0]).fit(X, y).decoder_.name == "linear-raw"
    assert UsableInformation(folds=3, l2_grid=[1.0]).fit(X, y).decoder_.name == "linear"
    with pytest.raises(UserError, match="'mlp' cannot be configured with \\['standardize'\\]"):
        UsableInformation(decoder="mlp", folds=3, standardize=False).fit(X, y)
