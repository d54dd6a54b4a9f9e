"""The logistic families (decisionnets.decoding.logistic): the L-BFGS solver, its stopping rules,
raw vs standardized units."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from decisionnets.decoding import LogisticDecoder, UsableInformation
from decisionnets.decoding.base import make_basis
from decisionnets.decoding.logistic import fit_logistic_lbfgs, newton_refit

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


def _planted(n, d, C, seed):
    """Features (1, n, d) and labels (n,) with a planted linear signal on the first unit."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((1, n, d))
    y = np.clip(np.floor((X[0, :, 0] + 0.7 * rng.standard_normal(n)) * C / 3 + C / 2), 0, C - 1).astype(int)
    return X, y


@pytest.mark.parametrize("C", [2, 3])
def test_rows_outside_the_training_mask_do_not_enter_the_fit(C):
    """A fit whose training mask leaves out rows equals the fit on the data without them, whatever
    those rows hold (here: labels flipped, features 50x larger). The solver masks them by a -inf
    bias of the two-class logits, by products with the mask for more classes."""
    X, y = _planted(150, 4, C, seed=3)
    X[0, :40] *= 50.0
    y = y.copy()
    y[:40] = (C - 1) - y[:40]
    dec = LogisticDecoder(tol=1e-7)

    def fit(X, y, mask):
        Xt = torch.as_tensor(X)
        n = Xt.shape[1]
        prep = dec.prepare(Xt, torch.ones(1, n, dtype=torch.bool), dtype=torch.float64, device="cpu")
        yy = torch.nn.functional.one_hot(torch.as_tensor(y), C).to(torch.float64)[None, None]
        pres = torch.ones(1, 1, C, dtype=torch.bool)
        return dec.fit(prep, torch.as_tensor(mask)[None, None], yy, torch.full((1, 1), 0.1, dtype=torch.float64), pres)

    mask = np.arange(150) >= 40
    full = fit(X, y, mask)
    sub = fit(X[:, 40:], y[40:], np.ones(110, bool))
    assert bool(full.converged.all()) and bool(sub.converged.all())
    # within the solver's stopping rule (a predicted decrease below 1e-9 nats per sample); a leak of
    # the left-out rows moves the weights by O(1)
    torch.testing.assert_close(full.coef, sub.coef, atol=2e-3, rtol=1e-2)
    torch.testing.assert_close(full.intercept, sub.intercept, atol=2e-3, rtol=1e-2)


@pytest.mark.parametrize("C", [2, 3])
@pytest.mark.parametrize("basis_dtype", [torch.float64, torch.float32])
def test_newton_refit_reaches_the_lbfgs_optimum(C, basis_dtype):
    """The float64 Newton refit, from the cold start, lands where a tightly converged float64 L-BFGS
    does, also when its Hessians come from float32 products (a float32 basis)."""
    X, y = _planted(200, 5, C, seed=4)
    Xt = torch.as_tensor(X)
    b = make_basis(torch, Xt, torch.ones(1, 200, dtype=torch.bool), dtype=torch.float64, per_unit=True)
    bn = make_basis(torch, Xt, torch.ones(1, 200, dtype=torch.bool), dtype=basis_dtype, per_unit=True)
    G = 3
    m = torch.ones(1, G, 200, dtype=torch.bool)
    m[0, 1, :50] = False
    m[0, 2, 150:] = False
    yy = torch.nn.functional.one_hot(torch.as_tensor(y), C).to(torch.float64)[None, None].expand(1, G, 200, C)
    alpha = torch.tensor([[0.01, 1.0, 100.0]], dtype=torch.float64)
    pres = torch.ones(1, G, C, dtype=torch.bool)
    ref, conv = fit_logistic_lbfgs(torch, b, m, yy, alpha, pres, None, 2000, 1e-9)
    assert conv.all()
    Cp = 1 if C == 2 else C
    start = torch.zeros_like(ref)
    q, g = torch.zeros(G, dtype=torch.long), torch.arange(G)
    th, ok = newton_refit(torch, bn, q, g, m, yy, alpha, pres, start, 50)
    assert ok.all()
    want = ref.reshape(1, b.r + 1, G, Cp)[0].permute(1, 0, 2)  # (G, r+1, C')
    if Cp > 1:  # the multinomial logits are defined up to a constant per sample: compare centred
        th, want = th - th.mean(-1, keepdim=True), want - want.mean(-1, keepdim=True)
    torch.testing.assert_close(th, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("per_unit", [True, False])
@pytest.mark.parametrize("padding", [4, 0])
def test_newton_refit_of_interleaved_columns_of_several_problems(per_unit, padding, monkeypatch):
    """The refit groups its columns by problem (one float64 copy of each problem's data, its columns
    side by side; with ``padding`` 0 every column is a group of its own): columns of two problems,
    interleaved and in unequal numbers, get what each gets when refitted alone."""
    from decisionnets.decoding import logistic

    monkeypatch.setattr(logistic, "NEWTON_MAX_PADDING", padding)
    rng = np.random.default_rng(5)
    X = rng.standard_normal((2, 120, 4)) * np.array([1.0, 3.0])[:, None, None]
    y = (X[:, :, 0] + 0.8 * rng.standard_normal((2, 120)) > 0).astype(int)  # (2, n)
    Xt = torch.as_tensor(X)
    b = make_basis(torch, Xt, torch.ones(2, 120, dtype=torch.bool), dtype=torch.float32, per_unit=per_unit)
    G = 3
    m = torch.ones(2, G, 120, dtype=torch.bool)
    m[:, 1, :40] = False
    m[:, 2, 80:] = False
    yy = torch.nn.functional.one_hot(torch.as_tensor(y), 2).to(torch.float64)[:, None].expand(2, G, 120, 2)
    alpha = torch.tensor([[0.01, 1.0, 100.0], [0.1, 10.0, 0.001]], dtype=torch.float64)
    pres = torch.ones(2, G, 2, dtype=torch.bool)
    start = torch.zeros(2, b.r + 1, G, dtype=torch.float32)
    q, g = torch.tensor([1, 0, 1, 1, 0]), torch.tensor([2, 0, 0, 1, 2])  # 5 columns, 2 problems: grouped
    th, ok = newton_refit(torch, b, q, g, m, yy, alpha, pres, start, 50)
    assert ok.all()
    for i in range(q.numel()):
        one, ok1 = newton_refit(torch, b, q[i:i + 1], g[i:i + 1], m, yy, alpha, pres, start, 50)
        assert ok1.all()
        torch.testing.assert_close(th[i], one[0], atol=1e-6, rtol=1e-6)
    # and the columns differ from each other (a mix-up of the grouping would show)
    assert (th[0] - th[2]).abs().max() > 1e-2


class _HessianCounter:
    """``torch`` with the Newton refit's Hessian products recorded: the number of columns of each."""

    def __init__(self):
        self.columns = []

    def __getattr__(self, name):
        return getattr(torch, name)

    def einsum(self, eq, *ops):
        if eq == "mni,mnjb->mijb":
            self.columns.append(ops[0].shape[0])
        return torch.einsum(eq, *ops)


def test_newton_refit_drops_converged_columns():
    """A column that has converged is not evaluated again: the Hessians of later steps are formed for
    the columns still running only, and every column ends where it ends when refitted alone."""
    rng = np.random.default_rng(11)
    X = rng.standard_normal((1, 150, 5))
    y = (X[0, :, 0] + 0.3 * rng.standard_normal(150) > 0).astype(int)  # nearly separable at a weak penalty
    b = make_basis(torch, torch.as_tensor(X), torch.ones(1, 150, dtype=torch.bool), dtype=torch.float32,
                   per_unit=True)
    G = 3
    m = torch.ones(1, G, 150, dtype=torch.bool)
    yy = torch.nn.functional.one_hot(torch.as_tensor(y), 2).to(torch.float64)[None, None].expand(1, G, 150, 2)
    alpha = torch.tensor([[1e4, 1e-3, 1.0]], dtype=torch.float64)  # the strong penalty converges first
    pres = torch.ones(1, G, 2, dtype=torch.bool)
    start = torch.zeros(1, b.r + 1, G, dtype=torch.float32)
    q, g = torch.zeros(G, dtype=torch.long), torch.arange(G)
    count = _HessianCounter()
    th, ok = newton_refit(count, b, q, g, m, yy, alpha, pres, start, 50)
    assert ok.all()
    assert count.columns[0] == G
    assert min(count.columns) < G  # later steps form fewer Hessians than there are columns
    assert count.columns == sorted(count.columns, reverse=True)  # a column that left does not come back
    for i in range(G):
        one, _ = newton_refit(torch, b, q[i:i + 1], g[i:i + 1], m, yy, alpha, pres, start, 50)
        torch.testing.assert_close(th[i], one[0], atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("it", [1, 7])
def test_lbfgs_direction_is_the_bfgs_update_of_its_pairs(it):
    """The two-loop recursion (it skips the slots not yet written) gives -H g, H the BFGS inverse
    Hessian built from the initial ``gamma * pre`` by the stored pairs, oldest first."""
    from decisionnets.decoding.logistic import _lbfgs_direction

    rng = np.random.default_rng(2)
    hist, d1 = 6, 4
    npairs = min(hist, it + 1)
    A = rng.standard_normal((d1, d1))
    A = A @ A.T + d1 * np.eye(d1)  # a curvature: y = A s, so s'y > 0
    Sh = torch.zeros(hist, 1, d1, 1, 1, dtype=torch.float64)
    Yh = torch.zeros_like(Sh)
    rho = torch.zeros(hist, 1, 1, dtype=torch.float64)
    order = [(it - k) % hist for k in range(npairs)][::-1]  # slots, oldest first
    for j in order:
        s = rng.standard_normal(d1)
        Sh[j, 0, :, 0, 0] = torch.as_tensor(s)
        Yh[j, 0, :, 0, 0] = torch.as_tensor(A @ s)
        rho[j] = 1.0 / float(s @ A @ s)
    g = torch.as_tensor(rng.standard_normal(d1))[None, :, None, None]
    pre = torch.as_tensor(rng.uniform(0.5, 2.0, d1))[None, :, None, None]
    gamma = torch.tensor([[0.7]], dtype=torch.float64)
    H = 0.7 * np.diag(pre[0, :, 0, 0].numpy())
    for j in order:
        s, yv, r = Sh[j, 0, :, 0, 0].numpy(), Yh[j, 0, :, 0, 0].numpy(), float(rho[j])
        V = np.eye(d1) - r * np.outer(yv, s)
        H = V.T @ H @ V + r * np.outer(s, s)
    p = _lbfgs_direction(g, Sh, Yh, rho, gamma, pre, it, lambda u, v: (u * v).sum((1, 3)))
    np.testing.assert_allclose(p[0, :, 0, 0].numpy(), -H @ g[0, :, 0, 0].numpy(), rtol=1e-10, atol=1e-12)
