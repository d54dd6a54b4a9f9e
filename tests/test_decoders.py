"""The logistic decoders' solver: the L2 path search, its stopping rules, and their accuracy on real layers.

The trained layers are ``tests/data/trained_layers.npz`` (see make_trained_layers.py); the pinned
estimates ``trained_layers_information.json`` were written by the solver before the path search
(see make_trained_layers_information.py).
"""

from __future__ import annotations

import json
import pathlib
import warnings

import numpy as np
import pytest
import torch

from decisionnets.decoders import LogisticDecoder, _basis, _fit_logistic_lbfgs, get_decoder
from decisionnets.decoding import UsableInformation

DATA = pathlib.Path(__file__).parent / "data"
LAYERS = np.load(DATA / "trained_layers.npz")
PINNED = json.loads((DATA / "trained_layers_information.json").read_text())


def _layer(name):
    X = LAYERS[name].astype(np.float32) * LAYERS[f"{name}__scale"]
    y = np.stack([LAYERS[f"{name}__{v}"].astype(np.int64) for v in ("color", "direction")])
    return X, y[None]


def _fit(X, y, dec="linear", seed=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return UsableInformation(decoder=dec, seed=seed).fit(X, y)


@pytest.mark.parametrize("layer", ["nowd_e60", "wd_e45", "wd_e60", "rnn_e12"])
def test_path_search_keeps_the_pinned_estimates_on_trained_layers(layer):
    """Warm starts along the L2 path, the looser search tolerance, leaving the path early and the
    Newton tail move no estimate by more than 0.005 bits from the solver before them."""
    X, y = _layer(layer)
    est = _fit(X, y)
    now = est.information_[0]
    pinned = np.array([PINNED[layer]["color"], PINNED[layer]["direction"]])
    np.testing.assert_allclose(now, pinned, atol=0.005)
    assert est.converged_.all()


def test_path_search_agrees_with_the_one_batch_search():
    """The same estimator with the path switched off (every penalty cold-started, to ``tol``)."""
    X, y = _layer("nowd_e30")
    dec = get_decoder("linear")
    flat = get_decoder("linear")
    flat.path_search = False
    a, b = _fit(X, y, dec), _fit(X, y, flat)
    np.testing.assert_array_equal(a.l2_, b.l2_)
    np.testing.assert_allclose(a.information_, b.information_, atol=1e-3)


def _tiny_problem(const: bool):
    rng = np.random.default_rng(0)
    n, d = 120, 4
    X = rng.standard_normal((1, n, d))
    if const:
        X[:] = 0.5  # as at a trial's first step: every trial alike
    y = np.tile([0, 1], n // 2)
    X = torch.as_tensor(X)
    used = torch.ones(1, n, dtype=torch.bool)
    b = _basis(torch, X, used, dtype=torch.float32, per_unit=True)
    G = 3
    m = torch.ones(1, G, n, dtype=torch.bool)
    m[0, 1, :20] = False
    yy = torch.nn.functional.one_hot(torch.as_tensor(y), 2).to(torch.float32)[None, None].expand(1, G, n, 2)
    alpha = torch.full((1, G), 1.0)
    pres = torch.ones(1, G, 2, dtype=torch.bool)
    return b, m, yy, alpha, pres


def test_a_column_at_its_optimum_stops_at_once():
    """Features constant over the trials: the prior intercept is the answer; the column must not run
    to max_iter waiting for curvature pairs its zero steps never give (it did: 300 iterations)."""
    b, m, y, alpha, pres = _tiny_problem(const=True)
    stats = {}
    _, conv = _fit_logistic_lbfgs(torch, b, m, y, alpha, pres, None, 300, 1e-4, stats=stats)
    assert conv.all()
    assert int(stats["iterations"].max()) <= 5


def test_inactive_columns_are_not_fitted_and_keep_their_start():
    b, m, y, alpha, pres = _tiny_problem(const=False)
    d1 = b.Z1.shape[-1]
    init = torch.randn(1, d1, 3, generator=torch.Generator().manual_seed(0))
    active = torch.tensor([[True, False, True]])
    stats = {}
    th, conv = _fit_logistic_lbfgs(torch, b, m, y, alpha, pres, init, 300, 1e-4, active=active, stats=stats)
    assert conv.all()
    assert int(stats["iterations"][0, 1]) == 0 and int(stats["iterations"][0, 0]) > 0
    torch.testing.assert_close(th[0, :, 1], init[0, :, 1])
    full, _ = _fit_logistic_lbfgs(torch, b, m, y, alpha, pres, init, 300, 1e-4)
    torch.testing.assert_close(th[0, :, [0, 2]], full[0, :, [0, 2]], atol=1e-3, rtol=1e-3)


def test_a_variable_without_information_leaves_the_path_early():
    """No signal: the inner CV loss rises as the penalty weakens, so the weaker penalties are not
    fitted (fewer solver iterations) and the strongest one is chosen, as the full grid chooses it."""
    rng = np.random.default_rng(3)
    n = 200
    X = rng.standard_normal((1, n, 10)).astype(np.float32)
    y = rng.integers(0, 2, (1, 1, n))
    counts = {}

    def count(dec):
        orig = dec.fit

        def fit(*a, **kw):
            kw["stats"] = st = {}
            out = orig(*a, **kw)
            counts[dec] = counts.get(dec, 0) + int(st["iterations"].sum())
            return out

        dec.fit = fit
        return dec

    stop, full = count(get_decoder("linear")), count(get_decoder("linear", path_stop=False))
    a, b = _fit(X, y, stop), _fit(X, y, full)
    np.testing.assert_array_equal(a.l2_, b.l2_)
    np.testing.assert_allclose(a.information_, b.information_, atol=1e-6)
    assert counts[stop] < 0.8 * counts[full]


def test_a_flat_stretch_of_the_path_does_not_end_it():
    """linear-raw on a weight-decayed layer (units of s.d. ~1e-7): the strong penalties all give the
    prior (inner losses equal up to float noise) and the signal shows only at the weak ones. Leaving
    the path at the first noise-level rise read 0.55 bits as -0.002 for fold seed 2."""
    X, y = _layer("wd_e20")
    vals = [_fit(X, y[:, :1], "linear-raw", seed=s).information_[0, 0] for s in (0, 2)]
    assert min(vals) > 0.5 and np.ptp(vals) < 0.03


def test_logistic_decoder_search_settings_are_kept():
    dec = LogisticDecoder(search_tol=None, tol=1e-5)
    assert dec.search_tol == 1e-5 and dec.path_stop and dec.path_search
