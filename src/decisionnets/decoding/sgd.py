"""Fresh decoders trained by full-batch, fixed-step SGD on raw units: the ``sgd-mlp`` and ``sgd-linear``
families (the analysis decoder of Kleinman et al., ICLR 2021).
"""

from __future__ import annotations

import math

from decisionnets.decoding.base import Decoder, DecoderFit, _torch
from decisionnets.errors import UserError

__all__ = ["SGDDecoder"]


class SGDDecoder(Decoder):
    """A fresh decoder trained on raw units by full-batch plain SGD: the authors' analysis decoder.

    As in the public analysis code of Kleinman et al. (ICLR 2021): layers D -> 64 -> 64 -> 64 -> K,
    each hidden layer followed by LeakyReLU(0.2) (``nonlinear=True``, family ``sgd-mlp``, dropout
    0.5) or by nothing (``sgd-linear``, dropout 0.8: a linear map trained through a deep linear
    stack), dropout after each hidden layer (``dropout`` = probability of *dropping* a unit, as
    ``torch.nn.Dropout``; off when the held-out samples are scored), PyTorch's default
    initialisation of ``nn.Linear``, mean cross-entropy over the training samples, plain SGD
    (lr 0.05, no momentum, no weight decay), 3,000 full-batch iterations, no early stopping, no
    standardization. Bits = H(training-fold prior) - held-out cross-entropy.

    **Scale-sensitive**, "is the variable usable by this decoder within this training budget":
    units of tiny scale move the logits by tiny amounts per step, so what weight decay has shrunk is
    hard to use in 3,000 steps of lr 0.05; the answer also depends on the budget (``iterations``,
    ``lr``) and is a lower bound of what a converged decoder would reach. No penalty is chosen
    (``penalties`` is None: no nested CV, one fit per outer fold). Random initialisation and
    dropout masks come from ``seed``. There is no convergence criterion (a fixed budget); a fit
    whose held-out loss is non-finite or below -1 bit, also when refitted in float64, is reported
    as not converged, with a warning naming the inputs' scale: on raw rates of tens (an untrained
    Dale multi-area net reached 62) the fixed ``lr`` of 0.05 diverges; pass a smaller ``lr``.

    The authors used one stratified 25 % train / 75 % test split; pass ``split="holdout"`` (with
    ``train_fraction=0.25``) to :class:`decisionnets.decoding.UsableInformation` for that.

    Parameters
    ----------
    nonlinear : bool; dropout : float in [0, 1); hidden : tuple of int; lr : float; iterations : int
    """

    penalties = None
    scale_invariant = False

    def __init__(self, nonlinear: bool = True, dropout: float | None = None, hidden=(64, 64, 64), lr: float = 0.05,
                 iterations: int = 3000):
        self.nonlinear = bool(nonlinear)
        self.dropout = (0.5 if self.nonlinear else 0.8) if dropout is None else float(dropout)
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"dropout must be in [0, 1); got {dropout!r}")
        self.hidden = tuple(int(h) for h in hidden)
        self.lr = float(lr)
        self.iterations = int(iterations)
        if self.iterations < 1:
            raise UserError(f"iterations must be >= 1; got {iterations!r}")
        self.name = "sgd-mlp" if self.nonlinear else "sgd-linear"

    def describe(self) -> str:
        act = "LeakyReLU(0.2)" if self.nonlinear else "linear"
        return (f"{self.name}: D-{'-'.join(map(str, self.hidden))}-K {act}, dropout {self.dropout:g}, raw units, "
                f"full-batch SGD lr {self.lr:g} x {self.iterations}")

    def prepare(self, X, used, *, dtype, device):
        return X.to(device=device, dtype=dtype)

    def column_bytes(self, n, d, n_classes):
        return 4 * n * (d + 6 * sum(self.hidden) + 4 * n_classes)

    def init_weights(self, gen, Q, G, d, Cp, dtype):
        """PyTorch's nn.Linear default init for every layer, (weights (Q, G, in, out), biases (Q, G, 1, out))."""
        torch = _torch()
        sizes = (d, *self.hidden, Cp)
        Ws, bs = [], []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(max(fan_in, 1))
            Ws.append(((torch.rand(Q, G, fan_in, fan_out, generator=gen, dtype=torch.float64) * 2 - 1) * bound).to(dtype))
            bs.append(((torch.rand(Q, G, 1, fan_out, generator=gen, dtype=torch.float64) * 2 - 1) * bound).to(dtype))
        return Ws, bs

    def fit(self, X, train, y, penalty, present, *, seed: int = 0) -> DecoderFit:
        torch = _torch()
        Q, n, d = X.shape
        G = train.shape[1]
        C = y.shape[-1]
        Cp = C  # K outputs, softmax (as the authors' nn.CrossEntropyLoss)
        dt, dev = X.dtype, X.device
        y = y.to(dt)
        # gather each column's training samples (padded to the largest training set; pad rows weigh 0)
        ntr = train.sum(-1)  # (Q, G)
        N = max(int(ntr.max()), 1)
        order = torch.argsort((~train).to(torch.int8), dim=-1, stable=True)[..., :N]  # train samples first
        wtr = (torch.arange(N, device=dev)[None, None, :] < ntr[..., None]).to(dt)  # (Q, G, N)
        Xtr = torch.gather(X[:, None].expand(Q, G, n, d), 2, order[..., None].expand(Q, G, N, d))
        ytr = torch.gather(y, 2, order[..., None].expand(Q, G, N, C))
        gen = torch.Generator(device="cpu").manual_seed(int(seed) + 0x5D)
        Ws, bs = self.init_weights(gen, Q, G, d, Cp, dt)
        params = [p.to(dev).requires_grad_(True) for p in (*Ws, *bs)]
        Ws, bs = params[: len(Ws)], params[len(Ws):]
        denom = ntr.to(dt).clamp_min(1)
        keep = 1.0 - self.dropout
        pmask = torch.where(present, 0.0, -1e4).to(dt)[:, :, None, :]
        lr = self.lr

        def forward(h, masks=None):
            for i, (W, bb) in enumerate(zip(Ws, bs)):
                h = h @ W + bb
                if i < len(Ws) - 1:
                    if self.nonlinear:
                        h = torch.nn.functional.leaky_relu(h, 0.2)
                    if masks is not None:
                        h = h * masks[i]
            return torch.log_softmax(h + pmask, -1)

        with torch.enable_grad():
            for _ in range(self.iterations):
                masks = None
                if self.dropout > 0:
                    masks = [(torch.rand(Q, G, N, hdim, generator=gen, dtype=torch.float32) < keep).to(dev, dt) / keep
                             for hdim in self.hidden]
                lp = forward(Xtr, masks)
                loss = (-(lp * ytr).sum(-1) * wtr).sum(-1) / denom  # (Q, G) mean CE per column
                grads = torch.autograd.grad(loss.sum(), params)
                with torch.no_grad():
                    for p, g in zip(params, grads):
                        p.sub_(lr * g)
        with torch.no_grad():
            lp = forward(X[:, None]).detach()  # (Q, G, n, C), dropout off
        return DecoderFit(log_proba=lp, converged=torch.ones(Q, G, dtype=torch.bool, device=dev))
