"""Decoder families: the "V" of usable (V-) information, as pluggable, batched objects.

The family decides the answer. :class:`decisionnets.decoding.UsableInformation` owns the folds,
the nested cross-validation of the penalty and the scoring; a *decoder* owns everything about the
model: how the features are prepared (standardized or not), how a model is fitted on a training
fold with a given penalty, and the held-out log-probabilities it returns. In the spirit of MNE's
``SlidingEstimator(base_estimator)``, one decoder object is applied to many problems at once
(problems x folds x penalties are columns of one tensor program, CPU or GPU).

The protocol (subclass :class:`Decoder`)::

    prepared = decoder.prepare(X, used, dtype=..., device=...)     # X: (Q, n, d) float64 tensor
    fit = decoder.fit(prepared, train, y, penalty, present, seed=...)
    fit.log_proba        # (Q, G, n, C) log-probabilities of every sample (held-out ones are scored)
    fit.converged        # (Q, G) bool: False where the fit did not reach its tolerance

``penalties``: the grid searched by nested CV (None: the decoder has no penalty to choose, as the
SGD decoders). Register a family with :func:`register_decoder`; look one up with
:func:`get_decoder`; :func:`decoder_names` lists them.

Families
--------
=============  ==============================================================  =====================
name           model                                                           question
=============  ==============================================================  =====================
``linear``     L2 logistic regression on fold-standardized units, nested CV    scale-invariant
``linear-raw`` L2 logistic regression on raw units, nested CV                  scale-sensitive
``mlp``        one hidden layer (tanh) on fold-standardized units, Adam, L2    scale-invariant
``sgd-mlp``    the authors' decoder: D-64-64-64-K LeakyReLU MLP, dropout 0.5,  scale-sensitive
               full-batch plain SGD lr 0.05, 3,000 iterations, raw units
``sgd-linear`` the same stack, no nonlinearity, dropout 0.8                    scale-sensitive
=============  ==============================================================  =====================

A *scale-invariant* family asks "is the variable (linearly) present at all": it counts a signal
carried by units that weight decay has shrunk to float-noise level. A *scale-sensitive* family asks
"is it usable by a decoder of bounded size or training budget": such units are hard to use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from decisionnets.errors import UserError

__all__ = [
    "Decoder",
    "DecoderFit",
    "LogisticDecoder",
    "MLPDecoder",
    "SGDDecoder",
    "register_decoder",
    "get_decoder",
    "decoder_names",
    "DEFAULT_L2_GRID",
]

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
    """A decoder family (the protocol; subclass it and register it with :func:`register_decoder`).

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


# --------------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------------

_REGISTRY: dict[str, Callable[..., Decoder]] = {}


def register_decoder(name: str, factory: Callable[..., Decoder], *, overwrite: bool = False) -> None:
    """Make a decoder family available by name (``decoder=name`` everywhere, ``--decoder name``).

    Parameters
    ----------
    name : str
    factory : callable returning a :class:`Decoder` (a class or a function); keyword arguments of
        :func:`get_decoder` are passed on to it.
    overwrite : bool — replace an existing name (else a UserError).
    """
    if not isinstance(name, str) or not name:
        raise UserError(f"a decoder name must be a non-empty string; got {name!r}")
    if name in _REGISTRY and not overwrite:
        raise UserError(f"decoder {name!r} is already registered; pass overwrite=True to replace it")
    _REGISTRY[name] = factory


def decoder_names() -> tuple[str, ...]:
    """Registered decoder names."""
    return tuple(_REGISTRY)


def get_decoder(decoder, **kwargs) -> Decoder:
    """A :class:`Decoder` from a registered name (with keyword overrides) or a Decoder object.

    The family owns its parameters: ``get_decoder("linear", l2_grid=[0.1, 1, 10], tol=1e-5)``,
    ``get_decoder("mlp", hidden=64, max_iter=300)``, ``get_decoder("sgd-mlp", lr=0.005)`` (see
    :class:`LogisticDecoder`, :class:`MLPDecoder`, :class:`SGDDecoder`). Pass the object as
    ``decoder=`` to :class:`decisionnets.UsableInformation`, :func:`decisionnets.usable_information`
    or :class:`decisionnets.UsableInformationEstimator`.

    Raises
    ------
    UserError
        An unknown name, or a keyword the family does not take.
    """
    if isinstance(decoder, Decoder):
        return decoder
    if isinstance(decoder, str) and decoder in _REGISTRY:
        try:
            return _REGISTRY[decoder](**kwargs)
        except TypeError as e:  # an unknown keyword: the family's own parameters are in its docstring
            raise UserError(f"decoder {decoder!r} cannot be configured with {sorted(kwargs)}: {e}") from None
    raise UserError(f"decoder must be one of {decoder_names()} or a decisionnets.decoders.Decoder; got {decoder!r}")


# --------------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------------


def _binary_log_proba(torch, z):
    """(..., n) logit of class 1 -> (..., n, 2) log-probabilities."""
    return torch.stack([torch.nn.functional.logsigmoid(-z), torch.nn.functional.logsigmoid(z)], -1)


def _masked_log_softmax(torch, logits, present):
    """logits (Q, G, n, C), present (Q, G, C) -> log-probabilities with absent classes excluded."""
    mask = torch.where(present, 0.0, -1e4).to(logits.dtype)[:, :, None, :]
    return torch.log_softmax(logits + mask, -1)


@dataclass
class _Basis:
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


def _basis(torch, X, used, *, dtype, per_unit: bool) -> _Basis:
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
    return _Basis(Z1=Z1, Xs=Xs.to(dtype), evecs=evecs.to(dtype), evecs64=evecs, keep=keep1, keep64=keep,
                  bound=bound, mu=mu, sd=sd, const=const, r=r, raw_weight=rw)


def _train_variance(torch, Xs, m):
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


# --------------------------------------------------------------------------------------------------
# L2 logistic regression
# --------------------------------------------------------------------------------------------------


class LogisticDecoder(Decoder):
    """L2-penalized multinomial logistic regression (binomial for two classes), batched.

    Objective (scikit-learn's convention, alpha = 1/C): ``sum_i CE_i + alpha/2 ||w||^2`` over the
    training fold, free intercept.

    * ``standardize=True`` (family ``linear``, **scale-invariant**, "is the variable linearly
      present at all"): ``w`` acts on features standardized with the *training fold's* mean and
      s.d. (exactly, without materializing them: penalty ``alpha/2 sum_j var_j w_j^2`` on globally
      scaled features). Rescaling a unit changes nothing, so a unit that weight decay has shrunk to
      s.d. 1e-7 counts as fully usable. The answer is bounded by the grid's weakest penalty
      (alpha >= 1e-3 by default: a signal that needs a larger standardized weight is under-counted)
      and by the feature-drop thresholds (units constant to 1e-5 of their mean, principal axes
      below 1e-6 of the largest variance).
    * ``standardize=False`` (family ``linear-raw``, **scale-sensitive**, "is it usable by a linear
      read-out of bounded weight"): penalty ``alpha/2 ||w||^2`` on raw weights, as scikit-learn's
      ``LogisticRegression`` without a scaler. A unit of s.d. 1e-7 needs a weight ~1e7 to be used
      and so is nearly unusable; rescaling units changes the answer. Only exactly constant
      units and principal axes below 1e-13 of the largest variance are dropped.

    Solver (``solver="lbfgs"``, default): all folds and penalties of all problems are columns of one
    tensor program, each running its own preconditioned L-BFGS (:func:`_fit_logistic_lbfgs`: initial
    inverse Hessian = a scalar times a diagonal, in the PCA basis, upper bound of the Hessian --
    Boehning's bound on the cross-entropy with the Gram matrix of all used samples plus a bound of the
    penalty's curvature --, Armijo backtracking per column, converged when a full quasi-Newton step
    moves the training logits by < ``tol`` RMS or predicts a decrease < 1e-9 nats per training
    sample); converged columns leave the batch. ``solver="agd"``: the earlier Nesterov-accelerated
    gradient with that diagonal as step and adaptive restart (converged when one iteration moves the
    logits by < ``tol``), slow where the bound is loose (near-separable trained layers). Columns
    unconverged after ``max_iter`` iterations are refitted in float64 from where they stopped: two
    classes by a damped Newton's method (up to ``refit_iter`` steps, converged when half the squared
    Newton decrement is below 1e-9 nats per training sample), more classes by ``max_iter`` more
    iterations of the solver; those still unconverged are reported (``converged`` False), never
    silently returned. The outer fits of the estimator start from the mean of the pair fits at their
    chosen penalty (``init``).

    The estimator's penalty search (``path_search``): the pair fits of the nested CV run along the
    L2 path, strongest penalty first, each warm-started from the previous penalty's solutions and
    converged to ``search_tol`` (they only rank the penalties and warm-start the outer fits, which
    are converged to ``tol``); with ``path_stop`` a variable leaves the path once its inner CV loss
    has risen at every outer fold. Two-class columns still running after ``newton_after``
    iterations, or once no more than a fraction ``tail`` of a batch's columns is, are finished by
    the Newton refit rather than keeping the whole batch iterating.

    Parameters
    ----------
    standardize : bool
    l2_grid : sequence of float — candidate alphas (default: 5 values 10**(-3..4)).
    max_iter, refit_iter : int
    tol : float
    solver : {"lbfgs", "agd"}
    search_tol : float or None — tolerance of the pair fits (None: ``tol``).
    path_stop : bool
    tail : float in [0, 1); newton_after : int
    """

    penalties = DEFAULT_L2_GRID

    #: the estimator fits the pair fits of its nested CV along the L2 path (see ``path_stop``)
    path_search = True

    def __init__(self, standardize: bool = True, l2_grid=None, max_iter: int = 300, tol: float = 1e-4,
                 refit_iter: int = 50, solver: str = "lbfgs", search_tol: float | None = 1e-3,
                 path_stop: bool = True, tail: float = 0.1, newton_after: int = 100):
        self.standardize = bool(standardize)
        self.search_tol = float(tol) if search_tol is None else float(search_tol)
        self.path_stop = bool(path_stop)
        self.tail = float(tail)
        self.newton_after = int(newton_after)
        if solver not in ("lbfgs", "agd"):
            raise UserError(f"solver must be 'lbfgs' or 'agd'; got {solver!r}")
        self.solver = solver
        grid = DEFAULT_L2_GRID if l2_grid is None else tuple(float(a) for a in l2_grid)
        if len(grid) == 0 or min(grid) <= 0:
            raise UserError(f"l2_grid must be a non-empty sequence of positive numbers; got {l2_grid!r}")
        self.penalties = grid
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.refit_iter = int(refit_iter)
        self.name = "linear" if self.standardize else "linear-raw"
        self.scale_invariant = self.standardize

    def describe(self) -> str:
        return (f"{self.name}: L2 logistic regression on {'fold-standardized' if self.standardize else 'raw'} units, "
                f"alpha in [{min(self.penalties):g}, {max(self.penalties):g}] ({len(self.penalties)} values)")

    def prepare(self, X, used, *, dtype, device):
        torch = _torch()
        return _basis(torch, X.to(device), used.to(device), dtype=dtype, per_unit=self.standardize)

    #: :meth:`fit` takes ``init`` (a warm start, e.g. the outer fits from the pair fits' solutions)
    warm_start = True

    def fit(self, prepared, train, y, penalty, present, *, seed: int = 0, init=None, tol=None, active=None,
            stats=None) -> DecoderFit:
        """See :meth:`Decoder.fit`.

        ``init``: (Q, r+1, G*C') parameters in the basis to start from; ``tol``: this call's
        convergence threshold (default ``self.tol``; the penalty search passes ``search_tol``);
        ``active``: (Q, G) bool, the columns to fit (the others are returned as ``init`` left them,
        marked converged, at no cost; lbfgs solver only); ``stats``: a dict that receives
        ``iterations`` (Q, G), the L-BFGS iterations (function + gradient evaluations) of each column.
        """
        torch = _torch()
        b = prepared
        tol = self.tol if tol is None else float(tol)
        if self.solver == "lbfgs":
            # two classes: the last few slow columns go to the (float64) Newton refit below, not
            # on through L-BFGS iterations that cost the whole batch's overhead each
            newton = y.shape[-1] == 2 and self.refit_iter > 0
            tail = self.tail if newton else 0.0
            iters = min(self.max_iter, self.newton_after) if newton else self.max_iter
            theta, conv = _fit_logistic_lbfgs(torch, b, train, y, penalty, present, init, iters, tol,
                                              active=active, stats=stats, tail=tail)
        else:
            theta, conv = _fit_logistic(torch, b, train, y, penalty, present, init, self.max_iter, tol)
        if not bool(conv.all()) and self.refit_iter > 0:
            theta, conv = theta.clone(), conv.clone()
            if y.shape[-1] == 2:
                # two classes: Newton's method (float64) on each unconverged column, from where it stopped
                q, g = torch.nonzero(~conv, as_tuple=True)
                for lo in range(0, q.numel(), 256):  # bounded memory: (256, r+1, r+1) Hessians
                    qq, gg = q[lo:lo + 256], g[lo:lo + 256]
                    th, ok = _newton(torch, b, qq, gg, train, y, penalty, present, theta, self.refit_iter)
                    theta[qq, :, gg] = th[..., 0].to(theta.dtype)
                    conv[qq, gg] = ok
            else:
                # more classes (a Newton step would cost ((r+1) C)^3): the accelerated iteration in
                # float64 from where it stopped, max_iter more, on the problems concerned
                bad = torch.nonzero(~conv.all(1)).flatten()
                b64 = _subset_basis(torch, b, bad, torch.float64)
                args64 = (torch, b64, train[bad], y[bad].to(torch.float64), penalty[bad].to(torch.float64),
                          present[bad], theta[bad].to(torch.float64), self.max_iter, tol)
                if self.solver == "lbfgs":
                    th64, conv64 = _fit_logistic_lbfgs(*args64, active=None if active is None else active[bad])
                else:
                    th64, conv64 = _fit_logistic(*args64)
                theta[bad] = th64.to(theta.dtype)
                conv[bad] = conv64
        Q, n = b.Z1.shape[:2]
        G, C = y.shape[1], y.shape[-1]
        Cp = 1 if C == 2 else C
        lg = torch.bmm(b.Z1, theta).reshape(Q, n, G, Cp).permute(0, 2, 1, 3)  # (Q, G, n, Cp)
        if C == 2:
            lp = _binary_log_proba(torch, lg[..., 0])
        else:
            lp = _masked_log_softmax(torch, lg, present)
        coef, icpt = _raw_coefficients(torch, theta, b, G, Cp)
        return DecoderFit(log_proba=lp, converged=conv, coef=coef, intercept=icpt, state=theta)


def _subset_basis(torch, b: _Basis, idx, dtype) -> _Basis:
    """The problems ``idx`` of a basis, with the fit tensors in ``dtype``."""
    return _Basis(Z1=b.Z1[idx].to(dtype), Xs=b.Xs[idx].to(dtype), evecs=b.evecs64[idx].to(dtype), evecs64=b.evecs64[idx],
                  keep=b.keep[idx], keep64=b.keep64[idx], bound=b.bound[idx].to(dtype), mu=b.mu[idx], sd=b.sd[idx],
                  const=b.const[idx], r=b.r, raw_weight=None if b.raw_weight is None else b.raw_weight[idx].to(dtype))


def _fit_logistic(torch, b: _Basis, m, y, alpha, pres, theta0, max_iter, tol):
    """Batched penalized logistic regression in the basis ``b``.

    Parameters
    ----------
    m : (Q, G, n) bool training masks; y : (Q, G, n, C) one-hot labels; alpha : (Q, G);
    pres : (Q, G, C) classes present; theta0 : (Q, r+1, G*C') warm start or None.

    Returns
    -------
    theta (Q, r+1, G*C') and converged (Q, G) bool.
    """
    Z1 = b.Z1
    Q, n, d1 = Z1.shape
    r = d1 - 1
    G = m.shape[1]
    C = y.shape[-1]
    binary = C == 2
    Cp = 1 if binary else C
    dt = Z1.dtype
    GC = G * Cp
    mf = m.to(dt)
    y = y.to(dt)
    alpha = alpha.to(dt)
    a = alpha[..., None]  # (Q, G, 1)
    if b.raw_weight is None:
        var, ntr = _train_variance(torch, b.Xs, m)  # (Q, G, d)
        # the penalty's Hessian in the rotated basis is V' diag(var) V: not diagonal, and its
        # diagonal is no bound of it when the training-fold variances differ (sparse units: 1e-4..2);
        # its largest eigenvalue is at most max_j var_j, a safe bound for every axis. (The diagonal
        # was used before: at the strongest penalty the iteration then diverged on trained ReLU
        # layers, and the inner CV, reading NaN as the smallest loss, chose that penalty.)
        pen_bound = var.amax(-1, keepdim=True).expand(Q, G, r)
        va = (var * a).transpose(1, 2)[..., None].expand(Q, var.shape[-1], G, Cp).reshape(Q, -1, GC).contiguous()
    else:
        w = b.raw_weight[:, None, None]  # (Q, 1, 1): isotropic, exact in any orthonormal basis
        pen_bound = w.expand(Q, G, r)
        wa = (a * w).transpose(1, 2)[..., None].expand(Q, 1, G, Cp).reshape(Q, 1, GC).contiguous()  # (Q, 1, GC)
    curv = (0.25 if binary else 0.5) * b.bound[:, None, :].expand(Q, G, d1)
    precond = curv.clone()
    precond[..., :r] = precond[..., :r] + a * pen_bound
    precond = 1.0 / precond.clamp_min(1e-30)
    precond = precond * b.keep[:, None, :].to(dt)
    precond = precond.transpose(1, 2)[..., None].expand(Q, d1, G, Cp).reshape(Q, d1, GC).contiguous()
    if theta0 is None:
        cnt = (mf[..., None] * y).sum(2)  # (Q, G, C)
        logp = torch.log((cnt + 1e-3) / (cnt.sum(-1, keepdim=True) + 1e-3 * C))
        theta = torch.zeros(Q, d1, G, Cp, dtype=dt, device=Z1.device)
        if binary:
            theta[:, r, :, 0] = logp[..., 1] - logp[..., 0]
        else:
            theta[:, r] = torch.where(pres, logp - logp.mean(-1, keepdim=True), torch.zeros_like(logp))
        theta = theta.reshape(Q, d1, GC)
    else:
        theta = theta0.to(dt).clone()
    mT = mf.transpose(1, 2).contiguous()  # (Q, n, G)
    if binary:
        ym = (y[..., 1] * mf).transpose(1, 2).contiguous()
    else:
        ylab = y.permute(0, 2, 1, 3).contiguous()
        pmask = torch.where(pres, 0.0, -1e4).to(dt)[:, None]
    evecs, evecsT = b.evecs, b.evecs.transpose(1, 2).contiguous()
    Z1T = Z1.transpose(1, 2).contiguous()
    rms = torch.sqrt((Z1 * Z1).mean(1))[..., None]  # (Q, r+1, 1)

    def grad(th):
        lg = torch.bmm(Z1, th)
        if binary:
            res = torch.sigmoid_(lg).mul_(mT).sub_(ym)
        else:
            res = torch.softmax(lg.reshape(Q, n, G, Cp) + pmask, -1).sub_(ylab).mul_(mT[..., None]).reshape(Q, n, GC)
        g = torch.bmm(Z1T, res)
        if r:
            if b.raw_weight is None:
                w = torch.bmm(evecs, th[:, :r]).mul_(va)
                g[:, :r] += torch.bmm(evecsT, w)
            else:
                g[:, :r] += th[:, :r] * wa
        return g

    prev = theta
    yk = theta
    t = torch.ones(Q, 1, GC, dtype=dt, device=Z1.device)
    conv = torch.zeros(Q, G, dtype=torch.bool, device=Z1.device)
    step = torch.zeros_like(theta)
    for it in range(max_iter):
        g = grad(yk)
        new = yk - precond * g
        step = new - prev
        restart = (g * step).sum(1, keepdim=True) > 0
        t_new = 0.5 * (1 + torch.sqrt(1 + 4 * t * t))
        beta = torch.where(restart, 0.0, (t - 1) / t_new)
        t = torch.where(restart, 1.0, t_new)
        yk = new + beta * step
        prev = new
        if it % 10 == 9 or it == max_iter - 1:
            # a bound of the RMS change of the training logits over this iteration, per column
            change = (step.abs() * rms).sum(1).reshape(Q, G, Cp).amax(-1)
            conv = torch.isfinite(change) & (change < tol)
            if bool(conv.all()):
                break
    return prev, conv


def _fit_logistic_lbfgs(torch, b: _Basis, m, y, alpha, pres, theta0, max_iter, tol, history=6, active=None,
                        stats=None, tail=0.0):
    """Batched penalized logistic regression in the basis ``b`` by preconditioned L-BFGS.

    The same objective as :func:`_fit_logistic`. Every column (fold x penalty x variable of a
    problem) runs its own L-BFGS: initial inverse Hessian ``gamma D`` with ``D`` the diagonal
    (PCA-basis) Boehning-bound preconditioner of :func:`_fit_logistic` and ``gamma = s'y / y'Dy``
    of the newest curvature pair, a history of ``history`` iterations (a column's rejected
    iterations leave an empty pair), Armijo backtracking with one trial point per iteration (a
    column whose trial fails shrinks its step by quadratic interpolation and tries again next
    iteration, the others go on). A column has converged when an accepted full quasi-Newton step
    (t = 1, at least two curvature pairs taken: a first, preconditioned-gradient step is short
    whether or not the column is near its optimum) changes its training logits by less than
    ``tol`` RMS (a bound: sum over axes of |step| x the axis' RMS value), or predicts a decrease
    (-g'p / 2) below 1e-9 nats per training sample; converged columns are dropped from the batch (the batch is compacted per
    problem, so the cost follows the columns still running, not the slowest one).

    Parameters
    ----------
    m : (Q, G, n) bool training masks; y : (Q, G, n, C) one-hot labels; alpha : (Q, G);
    pres : (Q, G, C) classes present; theta0 : (Q, r+1, G*C') warm start or None.
    active : (Q, G) bool, optional
        Columns to fit; the others are returned as they start (``theta0``), marked converged, and
        cost nothing (they never enter the batch).
    stats : dict, optional
        Filled with ``iterations`` (Q, G) int: the iterations (each one function and gradient
        evaluation) every column ran.
    tail : float
        Stop (after 20 iterations at least) once no more than this fraction of the active columns
        is still running, returning those unconverged: a few slow columns (near-separable ones at
        the weakest penalty) would otherwise keep the whole batch iterating, at its full per-step
        overhead; the caller finishes them by Newton's method.

    Returns
    -------
    theta (Q, r+1, G*C') and converged (Q, G) bool.
    """
    Z1 = b.Z1
    Q, n, d1 = Z1.shape
    r = d1 - 1
    G = m.shape[1]
    C = y.shape[-1]
    binary = C == 2
    Cp = 1 if binary else C
    dt = Z1.dtype
    dev = Z1.device
    active0 = torch.ones(Q, G, dtype=torch.bool, device=dev) if active is None else active.to(dev)
    its_glob = torch.zeros(Q, G, dtype=torch.int32, device=dev)
    if stats is not None:
        stats["iterations"] = its_glob
    mf = m.to(dt)
    y = y.to(dt)
    a = alpha.to(dt)[..., None]  # (Q, G, 1)
    if b.raw_weight is None:
        var, _ = _train_variance(torch, b.Xs, m)  # (Q, G, d)
        pen_bound = var.amax(-1, keepdim=True)
        pen_glob = (var * a).transpose(1, 2)  # (Q, d, G): the penalty's weight of each scaled feature
    else:
        pen_bound = b.raw_weight[:, None, None].expand(Q, G, 1)
        pen_glob = (a[..., 0] * b.raw_weight[:, None])  # (Q, G): isotropic weight
    curv = (0.25 if binary else 0.5) * b.bound[:, None, :].expand(Q, G, d1)
    pre = curv.clone()
    pre[..., :r] = pre[..., :r] + a * pen_bound
    pre = (1.0 / pre.clamp_min(1e-30)) * b.keep[:, None, :].to(dt)
    pre_glob = pre.transpose(1, 2)  # (Q, d1, G)
    if theta0 is None:
        cnt = (mf[..., None] * y).sum(2)  # (Q, G, C)
        logp = torch.log((cnt + 1e-3) / (cnt.sum(-1, keepdim=True) + 1e-3 * C))
        x_glob = torch.zeros(Q, G, d1, Cp, dtype=dt, device=dev)
        if binary:
            x_glob[:, :, r, 0] = logp[..., 1] - logp[..., 0]
        else:
            x_glob[:, :, r] = torch.where(pres, logp - logp.mean(-1, keepdim=True), torch.zeros_like(logp))
    else:
        x_glob = theta0.to(dt).reshape(Q, d1, G, Cp).transpose(1, 2).clone()  # (Q, G, d1, Cp)
    conv_glob = torch.zeros(Q, G, dtype=torch.bool, device=dev)
    mT_glob = mf.transpose(1, 2)  # (Q, n, G)
    if binary:
        ym_glob = (y[..., 1] * mf).transpose(1, 2)  # (Q, n, G)
    else:
        ym_glob = (y * mf[..., None]).permute(0, 2, 1, 3)  # (Q, n, G, C)
        pm_glob = torch.where(pres, 0.0, -1e4).to(dt)  # (Q, G, C)
    rms_glob = torch.sqrt((Z1 * Z1).mean(1))  # (Q, d1)
    eps = float(torch.finfo(dt).eps)

    def dot(u, v):  # (Q', d1, W, Cp) x2 -> (Q', W)
        return (u * v).sum((1, 3))

    # ---- the working set: rows qi of the problems, columns gi (Q', W) of each, pad marks filler;
    # only the active columns enter it (the others are returned as they start, converged)
    conv_glob |= ~active0
    nact0 = active0.sum(1)
    qi = torch.nonzero(nact0 > 0).flatten()
    if qi.numel() == 0:
        return x_glob.transpose(1, 2).reshape(Q, d1, G * Cp), conv_glob
    W0 = int(nact0.max())
    gi = torch.argsort((~active0[qi]).to(torch.int8), dim=1, stable=True)[:, :W0]
    pad = torch.arange(W0, device=dev)[None] >= nact0[qi][:, None]
    n_cols0 = int(nact0.sum())

    def statics(qi, gi):
        W = gi.shape[1]
        Zw = Z1[qi]
        s = {"Z": Zw, "ZT": Zw.transpose(1, 2).contiguous(), "rms": rms_glob[qi][:, :, None, None]}
        gn = gi[:, None, :].expand(-1, n, -1)
        s["m"] = torch.gather(mT_glob[qi], 2, gn)  # (Q', n, W)
        s["ntr"] = s["m"].sum(1)
        if binary:
            s["ym"] = torch.gather(ym_glob[qi], 2, gn)
            s["sgn"] = 1.0 - 2.0 * s["ym"]
        else:
            s["ym"] = torch.gather(ym_glob[qi], 2, gn[..., None].expand(-1, -1, -1, C))
            s["pm"] = torch.gather(pm_glob[qi], 1, gi[..., None].expand(-1, -1, C))[:, None]  # (Q', 1, W, C)
        s["pre"] = torch.gather(pre_glob[qi], 2, gi[:, None, :].expand(-1, d1, -1))[..., None]  # (Q', d1, W, 1)
        if b.raw_weight is None:
            dd = pen_glob.shape[1]
            s["pen"] = torch.gather(pen_glob[qi], 2, gi[:, None, :].expand(-1, dd, -1))[..., None]  # (Q', d, W, 1)
            s["E"] = b.evecs[qi]
            s["ET"] = s["E"].transpose(1, 2).contiguous()
        else:
            s["pen"] = torch.gather(pen_glob[qi], 1, gi)[:, None, :, None]  # (Q', 1, W, 1)
        s["W"] = W
        return s

    def evaluate(s, x):
        """Objective (Q', W) and gradient (Q', d1, W, Cp) at x (Q', d1, W, Cp)."""
        Qw, W = x.shape[0], s["W"]
        lg = torch.bmm(s["Z"], x.reshape(Qw, d1, W * Cp))  # (Q', n, W*Cp)
        if binary:
            # softplus(z) - y z = softplus(+-z): no cancellation between large terms (float32 noise
            # in the objective must stay far below the decrease the line search asks for)
            f = (torch.nn.functional.softplus(lg * s["sgn"]) * s["m"]).sum(1)
            res = torch.sigmoid(lg).mul_(s["m"]).sub_(s["ym"])
        else:
            lg4 = lg.reshape(Qw, n, W, Cp) + s["pm"]
            lse = torch.logsumexp(lg4, -1)  # (Q', n, W)
            ly = (lg4 * s["ym"]).sum(-1, keepdim=True)  # logit of the true class (0 off the training rows)
            f = (torch.logsumexp(lg4 - ly, -1) * s["m"]).sum(1)  # lse - logit_y without cancellation
            res = (torch.exp(lg4 - lse[..., None]) * s["m"][..., None] - s["ym"]).reshape(Qw, n, W * Cp)
        g = torch.bmm(s["ZT"], res).reshape(Qw, d1, W, Cp)
        if r:
            xr = x[:, :r]
            if b.raw_weight is None:
                u = torch.bmm(s["E"], xr.reshape(Qw, r, W * Cp)).reshape(Qw, -1, W, Cp)
                w = u * s["pen"]
                f = f + 0.5 * (u * w).sum((1, 3))
                g[:, :r] += torch.bmm(s["ET"], w.reshape(Qw, -1, W * Cp)).reshape(Qw, r, W, Cp)
            else:
                f = f + 0.5 * s["pen"][:, 0, :, 0] * (xr * xr).sum((1, 3))
                g[:, :r] += s["pen"] * xr
        return f, g

    s = statics(qi, gi)
    x = torch.gather(x_glob[qi], 1, gi[:, :, None, None].expand(-1, -1, d1, Cp)).transpose(1, 2).contiguous()
    f, g = evaluate(s, x)
    p = -s["pre"] * g
    gp = dot(g, p)
    Qw0 = qi.numel()
    t = torch.ones(Qw0, W0, dtype=dt, device=dev)
    Sh = torch.zeros(history, Qw0, d1, W0, Cp, dtype=dt, device=dev)
    Yh = torch.zeros_like(Sh)
    rho = torch.zeros(history, Qw0, W0, dtype=dt, device=dev)
    conv = pad.clone()
    gamma = torch.ones(Qw0, W0, dtype=dt, device=dev)
    npair = torch.zeros(Qw0, W0, dtype=torch.int32, device=dev)  # curvature pairs taken (0: gradient steps only)
    its = torch.ones(Qw0, W0, dtype=torch.int32, device=dev)  # evaluations (the first one above)

    def write_back():
        keep = ~pad
        qq = qi[:, None].expand_as(gi)[keep]
        gg = gi[keep]
        x_glob[qq, gg] = x.transpose(1, 2)[keep]
        conv_glob[qq, gg] = conv[keep]
        its_glob[qq, gg] = its[keep]

    for it in range(max_iter):
        active = ~conv & ~pad
        if not bool(active.any()):
            break
        Qw, W = x.shape[0], x.shape[2]
        if it % 5 == 4:
            nact = active.sum(1)
            if tail > 0 and it >= 19 and int(nact.sum()) <= tail * n_cols0:
                break
            Wn = int(nact.max())
            rows = torch.nonzero(nact > 0).flatten()
            if Wn * rows.numel() < 0.8 * Qw * W:
                # compact: drop finished problems and finished columns (padding rows to the widest)
                write_back()
                order = torch.argsort((~active[rows]).to(torch.int8), dim=1, stable=True)[:, :Wn]  # (Q'', Wn)
                newpad = torch.arange(Wn, device=dev)[None] >= nact[rows][:, None]
                i4 = order[:, None, :, None].expand(-1, d1, -1, Cp)
                x = torch.gather(x[rows], 2, i4)
                g = torch.gather(g[rows], 2, i4)
                p = torch.gather(p[rows], 2, i4)
                Sh = torch.gather(Sh[:, rows], 3, i4[None].expand(history, -1, -1, -1, -1))
                Yh = torch.gather(Yh[:, rows], 3, i4[None].expand(history, -1, -1, -1, -1))
                rho = torch.gather(rho[:, rows], 2, order[None].expand(history, -1, -1))
                f, gp, t, conv, gamma, npair, its = (torch.gather(v[rows], 1, order)
                                                     for v in (f, gp, t, conv, gamma, npair, its))
                gi = torch.gather(gi[rows], 1, order)
                qi = qi[rows]
                pad = newpad
                conv = conv | pad
                active = ~conv & ~pad
                s = statics(qi, gi)
        t4 = t[:, None, :, None]
        xt = x + t4 * p
        ft, gt = evaluate(s, xt)
        its += active.to(its.dtype)
        ok = torch.isfinite(ft) & (ft <= f + 1e-4 * t * gp + 8 * eps * f.abs())
        acc = ok & active
        sv = xt - x
        yv = gt - g
        sy = dot(sv, yv)
        good = acc & (sy > 1e-10 * dot(sv, sv).sqrt() * dot(yv, yv).sqrt())
        change = (sv.abs() * s["rms"]).sum(1).amax(-1)  # (Q', W) bound of the RMS change of a logit
        # converged: a full quasi-Newton step that moves the training logits by < tol RMS, or whose
        # predicted decrease (half of -g'p, the Newton decrement's analogue) is < 1e-9 nats per
        # training sample (the criterion of the Newton refit)
        npair = npair + good.to(npair.dtype)
        conv = conv | (acc & (t >= 1.0) & (npair >= 2) & ((change < tol) | (-0.5 * gp <= 1e-9 * s["ntr"])))
        # ... or a column already at its optimum (e.g. features constant over the trials, as at the
        # first step of a trial: the prior intercept is the answer): its steps are ~0 and give no
        # curvature pair, so the test above would never pass and it would run to max_iter
        conv = conv | (acc & (-0.5 * gp <= 1e-12 * s["ntr"]))
        acc4 = acc[:, None, :, None]
        x = torch.where(acc4, xt, x)
        f = torch.where(acc, ft, f)
        g = torch.where(acc4, gt, g)
        slot = it % history
        good4 = good[:, None, :, None]
        Sh[slot] = torch.where(good4, sv, 0.0)
        Yh[slot] = torch.where(good4, yv, 0.0)
        rho[slot] = torch.where(good, 1.0 / torch.where(good, sy, 1.0), 0.0)
        yDy = dot(yv * s["pre"], yv)
        gamma = torch.where(good, sy / yDy.clamp_min(1e-30), gamma)
        # new direction for the accepted columns: two-loop recursion, newest pair first
        q = g.clone()
        als = []
        for k in range(history):
            j = (it - k) % history
            al = rho[j] * dot(Sh[j], q)
            q -= al[:, None, :, None] * Yh[j]
            als.append(al)
        z = gamma[:, None, :, None] * s["pre"] * q
        for k in range(history - 1, -1, -1):
            j = (it - k) % history
            be = rho[j] * dot(Yh[j], z)
            z += (als[k] - be)[:, None, :, None] * Sh[j]
        pn = -z
        gpn = dot(g, pn)
        # not a descent direction (bad curvature pairs): forget the history, preconditioned gradient
        bad = acc & ~(gpn < 0)
        if bool(bad.any()):
            pn = torch.where(bad[:, None, :, None], -s["pre"] * g, pn)
            gpn = torch.where(bad, dot(g, pn), gpn)
            rho = torch.where(bad[None], 0.0, rho)
            gamma = torch.where(bad, 1.0, gamma)
        p = torch.where(acc4, pn, p)
        gp = torch.where(acc, gpn, gp)
        # rejected trial: shrink the step (quadratic interpolation, within [0.1, 0.5] of it)
        dq = ft - f - gp * t
        tq = torch.where(torch.isfinite(dq) & (dq > 0), -gp * t * t / (2 * dq.clamp_min(1e-30)), 0.5 * t)
        t = torch.where(acc, torch.ones_like(t), torch.minimum(torch.maximum(tq, 0.1 * t), 0.5 * t))
    write_back()
    return x_glob.transpose(1, 2).reshape(Q, d1, G * Cp), conv_glob


def _newton(torch, b: _Basis, q, g, train, y, alpha, present, theta, max_iter):
    """Damped Newton's method, float64, for the columns (q[i], g[i]) of a chunk.

    Minimizes the same objective as :func:`_fit_logistic` exactly (the penalty's Hessian,
    V' diag(var) V or the isotropic raw weight, is formed in full); binomial (one logit) for two
    classes, multinomial otherwise (Hessian sum_i z_i z_i' (x) (diag p_i - p_i p_i')). Converged:
    half the squared Newton decrement (the remaining objective gap, nats, to second order) below
    1e-9 per training sample.

    Parameters
    ----------
    theta : (Q, r+1, G*C') the current solutions (warm start).

    Returns
    -------
    theta (M, r+1, C') and converged (M,) bool.
    """
    f64 = torch.float64
    M = q.numel()
    r = b.r
    d1 = r + 1
    C = y.shape[-1]
    binary = C == 2
    Cp = 1 if binary else C
    G = train.shape[1]
    dev = b.Z1.device
    if M == 0:
        return theta.new_zeros(0, d1, Cp), torch.zeros(0, dtype=torch.bool, device=dev)
    Z = b.Z1[q].to(f64)  # (M, n, d1)
    m = train[q, g].to(f64)  # (M, n)
    Y = y[q, g].to(f64) * m[..., None]  # (M, n, C)
    a = alpha[q, g].to(f64)
    th = theta.reshape(theta.shape[0], d1, G, Cp)[q, :, g].to(f64)  # (M, d1, Cp)
    pen = torch.zeros(M, d1, d1, dtype=f64, device=dev)
    if b.raw_weight is None:
        var, _ = _train_variance(torch, b.Xs[q].to(f64), train[q, g][:, None])  # (M, 1, d)
        E = b.evecs64[q]
        pen[:, :r, :r] = E.transpose(1, 2) @ (var[:, 0, :, None] * E)
    else:
        pen[:, :r, :r] = torch.eye(r, dtype=f64, device=dev) * b.raw_weight[q].to(f64)[:, None, None]
    pen = pen * a[:, None, None]
    # unused axes (and absent classes) get unit curvature: their weights stay where they are (0)
    eyeC = torch.eye(Cp, dtype=f64, device=dev)[None, None, :, None, :]
    fixed = torch.diag_embed((~b.keep[q]).to(f64))[:, :, None, :, None] * eyeC
    penK = pen[:, :, None, :, None] * eyeC  # (M, d1, Cp, d1, Cp)
    pmask = None if binary else torch.where(present[q, g], 0.0, -1e4).to(f64)[:, None, :]
    ntr = m.sum(-1).clamp_min(1)
    P = d1 * Cp

    def terms(t, need_grad=True):
        z = torch.einsum("mnd,mdc->mnc", Z, t)
        if binary:
            z1 = z[..., 0]
            data = (torch.nn.functional.softplus(z1) * m - Y[..., 1] * z1).sum(-1)
        else:
            lp = torch.log_softmax(z + pmask, -1)
            data = -(lp * Y).sum((-1, -2))
        f = data + 0.5 * torch.einsum("mdc,mde,mec->m", t, pen, t)
        if not need_grad:
            return f, None, None
        if binary:
            p1 = torch.sigmoid(z1)
            res = (p1 * m - Y[..., 1])[..., None]
            A = (p1 * (1 - p1) * m)[..., None, None]  # (M, n, 1, 1)
        else:
            p = lp.exp()
            res = p * m[..., None] - Y
            A = (torch.diag_embed(p) - p[..., :, None] * p[..., None, :]) * m[..., None, None]
        grad = torch.einsum("mnd,mnc->mdc", Z, res) + torch.einsum("mde,mec->mdc", pen, t)
        H = torch.empty(M, d1, Cp, d1, Cp, dtype=f64, device=dev)
        for c in range(Cp):  # one class row at a time: (M, n, d1, C') intermediates only
            H[:, :, c] = torch.einsum("mni,mnjb->mijb", Z, Z[..., None] * A[:, :, c, None, :])
        H = H + penK + fixed
        return f, grad, H.reshape(M, P, P)

    conv = torch.zeros(M, dtype=torch.bool, device=dev)
    f, grad, H = terms(th)
    eye = torch.eye(P, dtype=f64, device=dev)
    for _ in range(max_iter):
        Hj = H + 1e-10 * (torch.diagonal(H, dim1=1, dim2=2).abs().amax(-1) + 1.0)[:, None, None] * eye
        L, info = torch.linalg.cholesky_ex(Hj)
        gv = grad.reshape(M, P)
        step = torch.cholesky_solve(gv[..., None], L)[..., 0]
        step = torch.where((info == 0)[:, None], step, gv / torch.diagonal(Hj, dim1=1, dim2=2).clamp_min(1e-12))
        dec2 = (gv * step).sum(-1)  # squared Newton decrement
        conv = torch.isfinite(dec2) & (0.5 * dec2 <= 1e-9 * ntr)
        if bool(conv.all()):
            break
        # backtracking: halve the step until the objective does not increase (per column)
        step = step.reshape(M, d1, Cp)
        t_step = torch.ones(M, dtype=f64, device=dev)
        fn, _, _ = terms(th - step, need_grad=False)
        for _ in range(30):
            worse = ~(fn <= f + 1e-12 * f.abs())
            if not bool(worse.any()):
                break
            t_step = torch.where(worse, t_step * 0.5, t_step)
            fn = torch.where(worse, terms(th - t_step[:, None, None] * step, need_grad=False)[0], fn)
        ok = (fn <= f + 1e-12 * f.abs()) & ~conv
        th = torch.where(ok[:, None, None], th - t_step[:, None, None] * step, th)
        f, grad, H = terms(th)
    return th, conv


def _raw_coefficients(torch, theta, b: _Basis, G, Cp):
    """Decoders from the rotated basis back to raw feature units: coef (Q, G, d, C'), intercept (Q, G, C')."""
    Q = theta.shape[0]
    r = b.r
    th = theta.to(torch.float64).reshape(Q, r + 1, G, Cp)
    u = th[:, :r] * b.keep64[:, :, None, None]
    w_s = torch.einsum("qdk,qkgc->qdgc", b.evecs64, u)
    scale = torch.where(b.const, torch.zeros_like(b.sd), 1.0 / b.sd)[:, 0, :, None, None]
    w_raw = w_s * scale
    b_raw = th[:, r] - torch.einsum("qd,qdgc->qgc", b.mu[:, 0], w_raw)
    return w_raw.permute(0, 2, 1, 3), b_raw


# --------------------------------------------------------------------------------------------------
# one-hidden-layer MLP (Adam, L2)
# --------------------------------------------------------------------------------------------------


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
        return _basis(torch, X.to(device), used.to(device), dtype=dtype, per_unit=True)

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
        var, ntr = _train_variance(torch, Xs, train)
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
            return _binary_log_proba(torch, lg[..., 0]) if binary else _masked_log_softmax(torch, lg, pres)

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


# --------------------------------------------------------------------------------------------------
# the authors' SGD decoders
# --------------------------------------------------------------------------------------------------


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


register_decoder("linear", lambda **kw: LogisticDecoder(standardize=True, **kw))
register_decoder("linear-raw", lambda **kw: LogisticDecoder(standardize=False, **kw))
register_decoder("mlp", MLPDecoder)
register_decoder("sgd-mlp", lambda **kw: SGDDecoder(nonlinear=True, **kw))
register_decoder("sgd-linear", lambda **kw: SGDDecoder(nonlinear=False, **kw))
