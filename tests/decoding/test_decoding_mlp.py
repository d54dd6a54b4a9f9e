"""The one-hidden-layer decoder family (decisionnets.decoding.mlp)."""

from __future__ import annotations

import numpy as np
import torch

from decisionnets.decoding import UsableInformation

torch.set_num_threads(1)


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
