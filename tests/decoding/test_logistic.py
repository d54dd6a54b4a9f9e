"""The logistic families (decisionnets.decoding.logistic): the L-BFGS solver, its stopping rules,
raw vs standardized units."""

from __future__ import annotations

import numpy as np
import torch

from decisionnets.decoding import LogisticDecoder, UsableInformation
from decisionnets.decoding.base import make_basis
from decisionnets.decoding.logistic import fit_logistic_lbfgs

from decoding_data import make_data

torch.set_num_threads(1)


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

def _tiny_problem(const: bool):
    rng = np.random.default_rng(0)
    n, d = 120, 4
    X = rng.standard_normal((1, n, d))
    if const:
        X[:] = 0.5  # as at a trial's first step: every trial alike
    y = np.tile([0, 1], n // 2)
    X = torch.as_tensor(X)
    used = torch.ones(1, n, dtype=torch.bool)
    b = make_basis(torch, X, used, dtype=torch.float32, per_unit=True)
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
    _, conv = fit_logistic_lbfgs(torch, b, m, y, alpha, pres, None, 300, 1e-4, stats=stats)
    assert conv.all()
    assert int(stats["iterations"].max()) <= 5

def test_inactive_columns_are_not_fitted_and_keep_their_start():
    b, m, y, alpha, pres = _tiny_problem(const=False)
    d1 = b.Z1.shape[-1]
    init = torch.randn(1, d1, 3, generator=torch.Generator().manual_seed(0))
    active = torch.tensor([[True, False, True]])
    stats = {}
    th, conv = fit_logistic_lbfgs(torch, b, m, y, alpha, pres, init, 300, 1e-4, active=active, stats=stats)
    assert conv.all()
    assert int(stats["iterations"][0, 1]) == 0 and int(stats["iterations"][0, 0]) > 0
    torch.testing.assert_close(th[0, :, 1], init[0, :, 1])
    full, _ = fit_logistic_lbfgs(torch, b, m, y, alpha, pres, init, 300, 1e-4)
    torch.testing.assert_close(th[0, :, [0, 2]], full[0, :, [0, 2]], atol=1e-3, rtol=1e-3)

def test_logistic_decoder_search_settings_are_kept():
    dec = LogisticDecoder(search_tol=None, tol=1e-5)
    assert dec.search_tol == 1e-5 and dec.path_stop and dec.path_search
