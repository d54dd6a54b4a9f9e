"""The decoder protocol's shared helpers (decisionnets.decoding.base): the basis, masked log-probabilities."""

from __future__ import annotations

import numpy as np
import torch

from decisionnets.decoding.base import make_basis, masked_log_softmax

torch.set_num_threads(1)


def _features():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1, 40, 5)) * np.array([1.0, 10.0, 0.1, 1.0, 1.0])
    X[..., 3] = 2.5  # a constant unit
    used = torch.ones(1, 40, dtype=torch.bool)
    used[0, :5] = False
    return X, used


def test_the_basis_diagonalizes_the_gram_matrix_of_the_used_samples():
    """The rotated Gram matrix of the used samples is diagonal and its diagonal is ``bound`` (the
    optimizer's curvature bound); the constant unit is dropped; the intercept's bound is n used."""
    X, used = _features()
    b = make_basis(torch, torch.as_tensor(X), used, dtype=torch.float64, per_unit=True)
    assert bool(b.const[0, 0, 3]) and int(b.const.sum()) == 1
    assert b.r == 4
    Z = b.Z1[0, :, : b.r] * used[0, :, None]
    torch.testing.assert_close(Z.T @ Z, torch.diag(b.bound[0, : b.r]), atol=1e-8, rtol=1e-8)
    assert float(b.bound[0, -1]) == 35.0
    assert b.raw_weight is None


def test_the_raw_basis_scales_every_unit_by_one_common_scalar():
    """Raw units: one scale s (the RMS s.d. of the non-constant units over the used samples), so the
    raw penalty stays isotropic: its weight in the scaled basis is 1/s**2."""
    X, used = _features()
    b = make_basis(torch, torch.as_tensor(X), used, dtype=torch.float64, per_unit=False)
    sd = X[0, 5:][:, [0, 1, 2, 4]].std(0)
    s = np.sqrt(np.mean(sd**2))
    np.testing.assert_allclose(b.sd[0, 0].numpy(), s, rtol=1e-12)
    np.testing.assert_allclose(float(b.raw_weight[0]), 1.0 / s**2, rtol=1e-12)


def test_absent_classes_get_no_probability():
    logits = torch.zeros(1, 1, 3, 3)
    present = torch.tensor([[[True, False, True]]])
    p = masked_log_softmax(torch, logits, present).exp()
    torch.testing.assert_close(p.sum(-1), torch.ones(1, 1, 3))
    assert float(p[..., 1].max()) < 1e-12
    torch.testing.assert_close(p[..., 0], torch.full((1, 1, 3), 0.5))
