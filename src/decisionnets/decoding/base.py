"""The decoder protocol: the "V" of usable (V-) information, as pluggable, batched objects.

:class:`decisionnets.decoding.UsableInformation` owns the folds, the nested cross-validation of the
penalty and the scoring; a *decoder* owns everything about the model: how the features are prepared
(standardized or not), how a model is fitted on a training fold with a given penalty, and the
held-out log-probabilities it returns. In the spirit of MNE's
``SlidingEstimator(base_estimator)``, one decoder object is applied to many problems at once
(problems x folds x penalties are columns of one tensor program, CPU or GPU).

The protocol (subclass :class:`Decoder`)::

    prepared = decoder.prepare(X, used, dtype=..., device=...)     # X: (Q, n, d) float64 tensor
    fit = decoder.fit(prepared, train, y, penalty, present, seed=...)
    fit.log_proba        # (Q, G, n, C) log-probabilities of every sample (held-out ones are scored)
    fit.converged        # (Q, G) bool: False where the fit did not reach its tolerance

``penalties``: the grid searched by nested CV (None: the decoder has no penalty to choose, as the
SGD decoders). Register a family with :func:`decisionnets.decoding.register_decoder`; look one up with
:func:`decisionnets.decoding.get_decoder`; :func:`decisionnets.decoding.decoder_names` lists them.

The family decides the answer; the families are in :mod:`decisionnets.decoding.logistic`,
:mod:`decisionnets.decoding.mlp` and :mod:`decisionnets.decoding.sgd`, looked up by name in
:mod:`decisionnets.decoding.registry`. This module also holds the helpers the families share:
the label-free basis (centring, scaling, PCA rotation) the logistic and MLP families fit in,
training-fold variances, and log-probabilities with absent classes masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Decoder", "DecoderFit", "DEFAULT_L2_GRID"]


DEFAULT_L2_GRID = tuple(float(a) for a in np.logspace(-3, 4, 5))


def _torch():
    import torch  # lazily: importing decisionnets.decoding stays light

    return torch


@dataclass
class DecoderFit:
    """Result of :meth:`Decoder.fit` for G columns of Q problems.

    Attributes
    ----------
    log_proba : tensor (Q, G, n, C)
        Log-probability of each class for every sample (training and held-out); absent classes
        (not in the problem) get a very negative value.
    converged : tensor (Q, G) bool
        Whether each fit met the decoder's convergence criterion.
    coef : tensor (Q, G, d, C') or None
        Linear decoders only: weights in raw feature units (C' = 1 for two classes: logit of class 1).
    intercept : tensor (Q, G, C') or None
    state : tensor (Q, r+1, G*C') or None
        Logistic decoders only: the fitted parameters in the decoder's own basis, a warm start for
        related fits (``LogisticDecoder.fit(..., init=state)``).
    """

    log_proba: Any
    converged: Any
    coef: Any = None
    intercept: Any = None
    state: Any = None


class Decoder:
    """A decoder family (the protocol; subclass it and register it with :func:`decisionnets.decoding.register_decoder`).

    Class attributes
    ----------------
    name : str
        Registry name.
    scale_invariant : bool
        True if rescaling a unit does not change the answer (the question "is it present at all");
        False if small-scale units are harder to use ("is it usable by a bounded decoder").
    penalties : tuple of float or None
        Candidate penalties chosen by nested CV (the estimator fits every value on every pair of
        folds); None: no penalty is chosen (``penalty`` is passed as None to :meth:`fit`).
    """

    name = "decoder"
    scale_invariant = True
    penalties: tuple[float, ...] | None = None

    def prepare(self, X, used, *, dtype, device) -> Any:
        """Prepare the features of Q problems once, for every fold and penalty.

        Parameters
        ----------
        X : torch tensor (Q, n, d) float64, non-finite values already zeroed
        used : torch tensor (Q, n) bool — samples used by some label variable (a label-free mask:
            statistics over them never see a label)
        dtype : torch dtype of the fits; device : torch device
        """
        raise NotImplementedError

    def fit(self, prepared, train, y, penalty, present, *, seed: int) -> DecoderFit:
        """Fit G models per problem and return every sample's log-probabilities.

        Parameters
        ----------
        prepared : what :meth:`prepare` returned
        train : tensor (Q, G, n) bool — training samples of each column
        y : tensor (Q, G, n, C) one-hot labels (0 rows for missing samples)
        penalty : tensor (Q, G) or None — the penalty of each column
        present : tensor (Q, G, C) bool — classes present in the problem
        seed : int — for decoders with random initialisation or dropout
        """
        raise NotImplementedError

    def describe(self) -> str:
        """One line for attrs and figures."""
        return self.name

    def column_bytes(self, n: int, d: int, n_classes: int) -> int:
        """Rough working memory of one fitted column of n samples (chunk sizing)."""
        return 4 * n * n_classes * 8

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"


def binary_log_proba(torch, z):
    """(..., n) logit of class 1 -> (..., n, 2) log-probabilities."""
    return torch.stack([torch.nn.functional.logsigmoid(-z), torch.nn.functional.logsigmoid(z)], -1)


def masked_log_softmax(torch, logits, present):
    """logits (Q, G, n, C), present (Q, G, C) -> log-probabilities with absent classes excluded."""
    mask = torch.where(present, 0.0, -1e4).to(logits.dtype)[:, :, None, :]
    return torch.log_softmax(logits + mask, -1)


@dataclass
class Basis:
    """Globally centred, scaled and rotated features: a preconditioner shared by every fold."""

    Z1: Any  # (Q, n, r+1) rotated scaled features + a column of ones, fit dtype
    Xs: Any  # (Q, n, d) scaled features, fit dtype
    evecs: Any  # (Q, d, r) kept principal axes, fit dtype
    evecs64: Any
    keep: Any  # (Q, r+1) bool
    keep64: Any  # (Q, r) bool
    bound: Any  # (Q, r+1) diagonal of the Gram matrix of all used samples in this basis
    mu: Any  # (Q, 1, d) float64
    sd: Any  # (Q, 1, d) float64 scale of each feature (a common scalar for raw features)
    const: Any  # (Q, 1, d) bool
    r: int
    raw_weight: Any  # None (standardized penalty) or (Q,) weight of the isotropic raw penalty


def make_basis(torch, X, used, *, dtype, per_unit: bool) -> Basis:
    """Centre, scale (per unit, or by one common scalar for raw features) and PCA-rotate X.

    The Gram matrix of all used samples is diagonal in the rotated basis and bounds every training
    subset's Gram matrix, so its diagonal gives a safe curvature bound for the optimizer.
    """
    Q, n, d = X.shape
    u = used.to(torch.float64)[..., None]
    n_used = u.sum(1, keepdim=True).clamp_min(1)
    mu = (X * u).sum(1, keepdim=True) / n_used
    sd = torch.sqrt((((X - mu) ** 2) * u).sum(1, keepdim=True) / n_used)
    # constant features (exactly, or up to float32 rounding of their value) are dropped
    const = (sd <= 1e-5 * mu.abs()) | (sd <= 1e-30)
    if per_unit:
        sd = torch.where(const, torch.ones_like(sd), sd)
        thresh = 1e-6
        raw_weight = None
    else:
        # one common scale (the RMS s.d. of the non-constant units): the raw penalty
        # alpha/2 ||w_raw||^2 = alpha/(2 s^2) ||w_scaled||^2 stays isotropic, hence exactly diagonal
        # in the rotated basis whatever the units' scales
        nc = (~const).to(torch.float64)
        s = torch.sqrt(((sd * sd) * nc).sum(-1, keepdim=True) / nc.sum(-1, keepdim=True).clamp_min(1))
        s = torch.where(s > 0, s, torch.ones_like(s))
        sd = s.expand(Q, 1, d).clone()
        thresh = 1e-13
        raw_weight = 1.0 / (s[:, 0, 0] ** 2)
    Xs = torch.where(const, torch.zeros_like(X), (X - mu) / sd)
    Xu = Xs * u
    evals, evecs = torch.linalg.eigh(Xu.transpose(1, 2) @ Xu)
    evals, evecs = evals.flip(-1), evecs.flip(-1)
    # directions with < thresh of the largest variance carry nothing usable and only slow the
    # optimizer; the basis is cut to the largest rank in the chunk (cost scales with it)
    keep = evals > thresh * evals[:, :1].clamp_min(1e-300)
    r = max(int(keep.sum(-1).max()), 1) if d else 0
    evals, evecs, keep = evals[:, :r], evecs[:, :, :r] * keep[:, None, :r], keep[:, :r]
    Z = Xs @ evecs
    ones = torch.ones(Q, n, 1, dtype=torch.float64, device=X.device)
    Z1 = torch.cat([Z, ones], dim=2).to(dtype)
    keep1 = torch.cat([keep, torch.ones(Q, 1, dtype=torch.bool, device=X.device)], 1)
    bound = torch.cat([evals.clamp_min(0), n_used[:, 0]], 1).to(dtype)
    rw = None if raw_weight is None else raw_weight.to(dtype)
    return Basis(Z1=Z1, Xs=Xs.to(dtype), evecs=evecs.to(dtype), evecs64=evecs, keep=keep1, keep64=keep,
                  bound=bound, mu=mu, sd=sd, const=const, r=r, raw_weight=rw)


def train_variance(torch, Xs, m):
    """Training-fold variance of each scaled feature, (Q, G, d), and training counts (Q, G, 1).

    A feature (nearly) constant within a training fold (variance < 1e-4 of its all-sample
    variance, e.g. a sparse ReLU unit active only on held-out trials) cannot be standardized by
    that fold; as scikit-learn's StandardScaler does, it keeps its scale (weight 1 here) instead of
    dividing by ~0, so its weight is penalized and held-out logits stay bounded.
    """
    mf = m.to(Xs.dtype)
    ntr = mf.sum(-1, keepdim=True).clamp_min(1)
    m1 = (mf @ Xs) / ntr
    m2 = (mf @ (Xs * Xs)) / ntr
    var = m2 - m1 * m1
    return torch.where(var < 1e-4, torch.ones_like(var), var), ntr
