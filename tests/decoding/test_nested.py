"""The nested CV of the penalty (decisionnets.decoding.nested): the L2 path search and its stopping rules,
and their accuracy on real layers.

The trained layers are ``tests/data/trained_layers.npz`` (see make_trained_layers.py); the pinned
estimates ``trained_layers_information.json`` were written by the solver before the path search
(see make_trained_layers_information.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from decisionnets.decoding import get_decoder

from decoding_data import PINNED, fit_quietly, trained_layer

torch.set_num_threads(1)


@pytest.mark.parametrize("layer", ["nowd_e60", "wd_e45", "wd_e60", "rnn_e12"])
def test_path_search_keeps_the_pinned_estimates_on_trained_layers(layer):
    """Warm starts along the L2 path, the looser search tolerance, leaving the path early and the
    Newton tail move no estimate by more than 0.005 bits from the solver before them."""
    X, y = trained_layer(layer)
    est = fit_quietly(X, y)
    now = est.information_[0]
    pinned = np.array([PINNED[layer]["color"], PINNED[layer]["direction"]])
    np.testing.assert_allclose(now, pinned, atol=0.005)
    assert est.converged_.all()

def test_path_search_agrees_with_the_one_batch_search():
    """The same estimator with the path switched off (every penalty cold-started, to ``tol``)."""
    X, y = trained_layer("nowd_e30")
    dec = get_decoder("linear")
    flat = get_decoder("linear")
    flat.path_search = False
    a, b = fit_quietly(X, y, dec), fit_quietly(X, y, flat)
    np.testing.assert_array_equal(a.l2_, b.l2_)
    np.testing.assert_allclose(a.information_, b.information_, atol=1e-3)

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
    a, b = fit_quietly(X, y, stop), fit_quietly(X, y, full)
    np.testing.assert_array_equal(a.l2_, b.l2_)
    np.testing.assert_allclose(a.information_, b.information_, atol=1e-6)
    assert counts[stop] < 0.8 * counts[full]

def test_a_flat_stretch_of_the_path_does_not_end_it():
    """linear-raw on a weight-decayed layer (units of s.d. ~1e-7): the strong penalties all give the
    prior (inner losses equal up to float noise) and the signal shows only at the weak ones. Leaving
    the path at the first noise-level rise read 0.55 bits as -0.002 for fold seed 2."""
    X, y = trained_layer("wd_e20")
    vals = [fit_quietly(X, y[:, :1], "linear-raw", seed=s).information_[0, 0] for s in (0, 2)]
    assert min(vals) > 0.5 and np.ptp(vals) < 0.03
