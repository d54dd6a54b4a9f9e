"""One hidden layer (tanh) on fold-standardized units, trained by Adam with L2: the ``mlp`` family.
"""

from __future__ import annotations

import math

from decisionnets.decoding.base import (
    DEFAULT_L2_GRID,
    Decoder,
    DecoderFit,
    binary_log_proba,
    make_basis,
    masked_log_softmax,
    _torch,
    train_variance,
)
from decisionnets.errors import UserError

__all__ = ["MLPDecoder"]


class MLPDecoder(Decoder):
    """One hidden layer (tanh) on fold-standardized units, L2 on both weight matrices, Adam.

    **Scale-invariant** in its input layer (the first layer's penalty is on fold-standardized
    weights), nonlinear: asks "is the variable present, decodable by a small network". Trained
    full-batch by Adam (lr 0.01) for ``max_iter`` steps with no convergence test (``converged`` is
    always True: the answer is that of this training budget); penalties chosen by nested CV.

    Parameters
    ----------
    hidden : int; max_iter : int; l2_grid : sequence of float.
    """

    name = "mlp"
    scale_invariant = True

    def __init__(self, hidden: int = 32, max_iter: int = 150, l2_grid=None):
        self.hidden = int(hidden)
        self.max_iter = int(max_iter)
        grid = DEFAULT_L2_GRID if l2_grid is None else tuple(float(a) for a in l2_grid)
        if len(grid) == 0 or min(grid) <= 0:
            raise UserError(f"l2_grid must be a non-empty sequence of positive numbers; got {l2_grid!r}")
        self.penalties = grid

    def describe(self) -> str:
        return f"mlp: 1 hidden layer of {self.hidden} tanh units on fold-standardized units, Adam {self.max_iter} steps"

    def prepare(self, X, used, *, dtype, device):
        torch = _torch()
        return make_basis(torch, X.to(device), used.to(device), dtype=dtype, per_unit=True)

    def column_bytes(self, n, d, n_classes):
        return 4 * n * (self.hidden * 6 + n_classes * 4)

    def fit(self, prepared, train, y, alpha, pres, *, seed: int = 0) -> DecoderFit:
        torch = _torch()
        Xs = prepared.Xs
        Q, n, d = Xs.shape
        G = train.shape[1]
        C = y.shape[-1]
        binary = C == 2
        Cp = 1 if binary else C
        H = self.hidden
        dt = Xs.dtype
        dev = Xs.device
        y = y.to(dt)
        mf = train.to(dt)
        var, ntr = train_variance(torch, Xs, train)
        gen = torch.Generator(device="cpu").manual_seed(int(seed) + 1)
        W1 = (torch.randn(Q, G, d, H, generator=gen, dtype=torch.float64) / math.sqrt(max(d, 1))).to(dt).to(dev)
        b1 = torch.zeros(Q, G, 1, H, dtype=dt, device=dev)
        W2 = (torch.randn(Q, G, H, Cp, generator=gen, dtype=torch.float64) / math.sqrt(H)).to(dt).to(dev)
        cnt = (mf[..., None] * y).sum(2)
        logp = torch.log((cnt + 1e-3) / (cnt.sum(-1, keepdim=True) + 1e-3 * C))
        if binary:
            b2 = (logp[..., 1] - logp[..., 0])[..., None, None].clone()
        else:
            b2 = torch.where(pres, logp - logp.mean(-1, keepdim=True), torch.zeros_like(logp))[:, :, None, :].clone()
        params = [W1, b1, W2, b2]
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.Adam(params, lr=0.01)
        Xg = Xs[:, None]
        a = alpha.to(dt)
        var4 = var[..., None]

        def log_proba():
            lg = torch.tanh(Xg @ W1 + b1) @ W2 + b2  # (Q, G, n, Cp)
            return binary_log_proba(torch, lg[..., 0]) if binary else masked_log_softmax(torch, lg, pres)

        with torch.enable_grad():
            for _ in range(max(1, self.max_iter)):
                opt.zero_grad()
                ce = -(log_proba() * y).sum(-1)
                loss = (ce * mf).sum(-1) / ntr[..., 0] + 0.5 * (a / ntr[..., 0]) * (
                    (W1 * W1 * var4).sum((-1, -2)) + (W2 * W2).sum((-1, -2))
                )
                loss.sum().backward()
                opt.step()
        with torch.no_grad():
            lp = log_proba().detach()
        return DecoderFit(log_proba=lp, converged=torch.ones(Q, G, dtype=torch.bool, device=dev))
