"""L2-penalized logistic regression, batched: the ``linear`` and ``linear-raw`` families.

All folds, penalties and problems are columns of one tensor program: preconditioned L-BFGS per
column (:func:`fit_logistic_lbfgs`), a float64 damped Newton refit of the columns it leaves
unconverged (:func:`newton_refit`), and the fitted weights mapped back to raw feature units.
"""

from __future__ import annotations

from decisionnets.decoding.base import (
    DEFAULT_L2_GRID,
    Basis,
    Decoder,
    DecoderFit,
    binary_log_proba,
    make_basis,
    masked_log_softmax,
    _torch,
    train_variance,
)
from decisionnets.errors import UserError

__all__ = ["LogisticDecoder"]


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

    Solver: all folds and penalties of all problems are columns of one
    tensor program, each running its own preconditioned L-BFGS (:func:`fit_logistic_lbfgs`: initial
    inverse Hessian = a scalar times a diagonal, in the PCA basis, upper bound of the Hessian --
    Boehning's bound on the cross-entropy with the Gram matrix of all used samples plus a bound of the
    penalty's curvature --, Armijo backtracking per column, converged when a full quasi-Newton step
    moves the training logits by < ``tol`` RMS or predicts a decrease < 1e-9 nats per training
    sample); converged columns leave the batch. Columns
    unconverged after ``max_iter`` iterations are refitted in float64 from where they stopped: two
    classes by a damped Newton's method (:func:`newton_refit`, its Hessians from float32 products;
    up to ``refit_iter`` steps, converged when half the squared Newton decrement is below 1e-9
    nats per training sample), more classes by ``max_iter`` more
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
    search_tol : float or None — tolerance of the pair fits (None: ``tol``).
    path_stop : bool
    tail : float in [0, 1); newton_after : int
    """

    penalties = DEFAULT_L2_GRID

    #: the estimator fits the pair fits of its nested CV along the L2 path (see ``path_stop``)
    path_search = True

    def __init__(self, standardize: bool = True, l2_grid=None, max_iter: int = 300, tol: float = 1e-4,
                 refit_iter: int = 50, search_tol: float | None = 1e-3,
                 path_stop: bool = True, tail: float = 0.1, newton_after: int = 100):
        self.standardize = bool(standardize)
        self.search_tol = float(tol) if search_tol is None else float(search_tol)
        self.path_stop = bool(path_stop)
        self.tail = float(tail)
        self.newton_after = int(newton_after)
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
        return make_basis(torch, X.to(device), used.to(device), dtype=dtype, per_unit=self.standardize)

    #: :meth:`fit` takes ``init`` (a warm start, e.g. the outer fits from the pair fits' solutions)
    warm_start = True

    def fit(self, prepared, train, y, penalty, present, *, seed: int = 0, init=None, tol=None, active=None,
            stats=None) -> DecoderFit:
        """See :meth:`Decoder.fit`.

        ``init``: (Q, r+1, G*C') parameters in the basis to start from; ``tol``: this call's
        convergence threshold (default ``self.tol``; the penalty search passes ``search_tol``);
        ``active``: (Q, G) bool, the columns to fit (the others are returned as ``init`` left them,
        marked converged, at no cost); ``stats``: a dict that receives
        ``iterations`` (Q, G), the L-BFGS iterations (function + gradient evaluations) of each column.
        """
        torch = _torch()
        b = prepared
        tol = self.tol if tol is None else float(tol)
        # two classes: the last few slow columns go to the (float64) Newton refit below, not
        # on through L-BFGS iterations that cost the whole batch's overhead each
        newton = y.shape[-1] == 2 and self.refit_iter > 0
        tail = self.tail if newton else 0.0
        iters = min(self.max_iter, self.newton_after) if newton else self.max_iter
        theta, conv = fit_logistic_lbfgs(torch, b, train, y, penalty, present, init, iters, tol,
                                          active=active, stats=stats, tail=tail)
        if not bool(conv.all()) and self.refit_iter > 0:
            theta, conv = theta.clone(), conv.clone()
            if y.shape[-1] == 2:
                # two classes: Newton's method (float64) on each unconverged column, from where it stopped
                q, g = torch.nonzero(~conv, as_tuple=True)
                for lo in range(0, q.numel(), 256):  # bounded memory: (256, r+1, r+1) Hessians
                    qq, gg = q[lo:lo + 256], g[lo:lo + 256]
                    th, ok = newton_refit(torch, b, qq, gg, train, y, penalty, present, theta, self.refit_iter)
                    theta[qq, :, gg] = th[..., 0].to(theta.dtype)
                    conv[qq, gg] = ok
            else:
                # more classes (a Newton step would cost ((r+1) C)^3): the L-BFGS iteration in
                # float64 from where it stopped, max_iter more, on the problems concerned
                bad = torch.nonzero(~conv.all(1)).flatten()
                b64 = _subset_basis(torch, b, bad, torch.float64)
                args64 = (torch, b64, train[bad], y[bad].to(torch.float64), penalty[bad].to(torch.float64),
                          present[bad], theta[bad].to(torch.float64), self.max_iter, tol)
                th64, conv64 = fit_logistic_lbfgs(*args64, active=None if active is None else active[bad])
                theta[bad] = th64.to(theta.dtype)
                conv[bad] = conv64
        Q, n = b.Z1.shape[:2]
        G, C = y.shape[1], y.shape[-1]
        Cp = 1 if C == 2 else C
        lg = torch.bmm(b.Z1, theta).reshape(Q, n, G, Cp).permute(0, 2, 1, 3)  # (Q, G, n, Cp)
        if C == 2:
            lp = binary_log_proba(torch, lg[..., 0])
        else:
            lp = masked_log_softmax(torch, lg, present)
        coef, icpt = _raw_coefficients(torch, theta, b, G, Cp)
        return DecoderFit(log_proba=lp, converged=conv, coef=coef, intercept=icpt, state=theta)


def _subset_basis(torch, b: Basis, idx, dtype) -> Basis:
    """The problems ``idx`` of a basis, with the fit tensors in ``dtype``."""
    return Basis(Z1=b.Z1[idx].to(dtype), Xs=b.Xs[idx].to(dtype), evecs=b.evecs64[idx].to(dtype), evecs64=b.evecs64[idx],
                  keep=b.keep[idx], keep64=b.keep64[idx], bound=b.bound[idx].to(dtype), mu=b.mu[idx], sd=b.sd[idx],
                  const=b.const[idx], r=b.r, raw_weight=None if b.raw_weight is None else b.raw_weight[idx].to(dtype))


def fit_logistic_lbfgs(torch, b: Basis, m, y, alpha, pres, theta0, max_iter, tol, history=6, active=None,
                        stats=None, tail=0.0):
    """Batched penalized logistic regression in the basis ``b`` by preconditioned L-BFGS.

    Minimizes ``sum_i CE_i + alpha/2 w' P w`` over each column's training samples (P: the
    training-fold variances of the scaled features, rotated into the basis, or the isotropic raw
    weight; see :class:`LogisticDecoder`), free intercept. Every column (fold x penalty x variable of a
    problem) runs its own L-BFGS: initial inverse Hessian ``gamma D`` with ``D`` the diagonal
    (PCA-basis) upper bound of the Hessian -- Boehning's bound of the cross-entropy's curvature
    (the Gram matrix of all used samples, 1/4 for two classes, 1/2 for more) plus a bound of the
    penalty's, the largest training-fold variance times alpha -- and ``gamma = s'y / y'Dy``
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
    ntr_glob = mf.sum(-1)  # (Q, G) training samples of each column (exact: a sum of 0s and 1s)
    y = y.to(dt)
    a = alpha.to(dt)[..., None]  # (Q, G, 1)
    pre_glob, pen_glob = _preconditioner(torch, b, m, a, binary)
    x_glob = _start(torch, mf, y, pres, r, Cp) if theta0 is None else (
        theta0.to(dt).reshape(Q, d1, G, Cp).transpose(1, 2).clone())  # (Q, G, d1, Cp)
    conv_glob = torch.zeros(Q, G, dtype=torch.bool, device=dev)
    # the per-column data are laid out (columns, samples): the GEMMs run as (W, d1) x (d1, n), which
    # the BLAS does at full speed for any number W of columns still running (the (n, d1) x (d1, W)
    # form is 4-10x slower per FLOP for W < 16, the tail of every fit)
    if binary:
        ym_glob = y[..., 1] * mf  # (Q, G, n)
        # sgn * logit + bias is -inf off the training rows: softplus and sigmoid give 0 there, so the
        # loss and residual need no mask pass
        bias_glob = torch.where(m, 0.0, -torch.inf).to(dt)
    else:
        ym_glob = (y * mf[..., None]).transpose(2, 3)  # (Q, G, C, n)
        pm_glob = torch.where(pres, 0.0, -1e4).to(dt)  # (Q, G, C)
    rms_glob = torch.sqrt((Z1 * Z1).mean(1))  # (Q, d1)
    eps = float(torch.finfo(dt).eps)
    zero = torch.zeros((), dtype=dt, device=dev)

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

    # the per-problem tensors in the layouts the products want, made once per call; a working set
    # that still holds every problem uses them as they are (no copy of the data per compaction)
    ZT_glob = Z1.transpose(1, 2).contiguous()
    if binary:
        sgn_glob = 1.0 - 2.0 * ym_glob
    if b.raw_weight is None:
        ET_glob = b.evecs.transpose(1, 2).contiguous()

    def statics(qi, gi):
        W = gi.shape[1]

        def rows(v):
            return v if qi.numel() == Q else v[qi]

        s = {"Z": rows(Z1), "ZT": rows(ZT_glob), "rms": rows(rms_glob)[:, :, None, None]}
        gn = gi[:, :, None].expand(-1, -1, n)
        s["ntr"] = torch.gather(rows(ntr_glob), 1, gi)
        if binary:
            s["sgn"] = torch.gather(rows(sgn_glob), 1, gn)
            s["bias"] = torch.gather(rows(bias_glob), 1, gn)
        else:
            s["m"] = torch.gather(rows(mf), 1, gn)  # (Q', W, n)
            s["ym"] = torch.gather(rows(ym_glob), 1, gn[:, :, None].expand(-1, -1, C, -1))  # (Q', W, C, n)
            s["pm"] = torch.gather(rows(pm_glob), 1, gi[..., None].expand(-1, -1, C))[..., None]  # (Q', W, C, 1)
        s["pre"] = torch.gather(rows(pre_glob), 2, gi[:, None, :].expand(-1, d1, -1))[..., None]  # (Q', d1, W, 1)
        if b.raw_weight is None:
            dd = pen_glob.shape[1]
            s["pen"] = torch.gather(rows(pen_glob), 2, gi[:, None, :].expand(-1, dd, -1))[..., None]  # (Q', d, W, 1)
            s["E"] = rows(b.evecs)
            s["ET"] = rows(ET_glob)
        else:
            s["pen"] = torch.gather(rows(pen_glob), 1, gi)[:, None, :, None]  # (Q', 1, W, 1)
        s["W"] = W
        return s

    def evaluate(s, x):
        """Objective (Q', W) and gradient (Q', d1, W, Cp) at x (Q', d1, W, Cp)."""
        Qw, W = x.shape[0], s["W"]
        lg = torch.bmm(x.reshape(Qw, d1, W * Cp).transpose(1, 2), s["ZT"])  # (Q', W*Cp, n)
        if binary:
            # softplus(z) - y z = softplus(+-z): no cancellation between large terms (float32 noise
            # in the objective must stay far below the decrease the line search asks for); the
            # residual sigmoid(z) - y = +-sigmoid(+-z)
            # (in place: the block is the largest temporary of an evaluation)
            u = torch.addcmul(s["bias"], lg, s["sgn"], out=lg)
            f = torch.nn.functional.softplus(u).sum(-1)
            res = u.sigmoid_().mul_(s["sgn"])
        else:
            lg4 = lg.reshape(Qw, W, Cp, n) + s["pm"]
            lse = torch.logsumexp(lg4, 2)  # (Q', W, n)
            ly = (lg4 * s["ym"]).sum(2, keepdim=True)  # logit of the true class (0 off the training rows)
            f = (torch.logsumexp(lg4 - ly, 2) * s["m"]).sum(-1)  # lse - logit_y without cancellation
            res = (torch.exp(lg4 - lse[:, :, None]) * s["m"][:, :, None] - s["ym"]).reshape(Qw, W * Cp, n)
        g = torch.bmm(res, s["Z"]).transpose(1, 2).reshape(Qw, d1, W, Cp).contiguous()
        if r:
            xr = x[:, :r]
            if b.raw_weight is None:
                # (W, r) x (r, d) rather than (d, r) x (r, W): see the data GEMMs above
                u = torch.bmm(xr.reshape(Qw, r, W * Cp).transpose(1, 2), s["ET"]).transpose(1, 2).reshape(Qw, -1, W, Cp)
                w = u * s["pen"]
                f = f + 0.5 * (u * w).sum((1, 3))
                g[:, :r] += torch.bmm(w.reshape(Qw, -1, W * Cp).transpose(1, 2), s["E"]).transpose(1, 2).reshape(
                    Qw, r, W, Cp)
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
                allr = rows.numel() == Qw  # every problem still running: no row copies

                def keep(v, h=False):
                    return v if allr else (v[:, rows] if h else v[rows])

                order = torch.argsort((~keep(active)).to(torch.int8), dim=1, stable=True)[:, :Wn]  # (Q'', Wn)
                newpad = torch.arange(Wn, device=dev)[None] >= keep(nact)[:, None]
                i4 = order[:, None, :, None].expand(-1, d1, -1, Cp)
                x = torch.gather(keep(x), 2, i4)
                g = torch.gather(keep(g), 2, i4)
                p = torch.gather(keep(p), 2, i4)
                Sh = torch.gather(keep(Sh, True), 3, i4[None].expand(history, -1, -1, -1, -1))
                Yh = torch.gather(keep(Yh, True), 3, i4[None].expand(history, -1, -1, -1, -1))
                rho = torch.gather(keep(rho, True), 2, order[None].expand(history, -1, -1))
                f, gp, t, conv, gamma, npair, its = (torch.gather(keep(v), 1, order)
                                                     for v in (f, gp, t, conv, gamma, npair, its))
                gi = torch.gather(keep(gi), 1, order)
                qi = keep(qi)
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
        torch.where(good4, sv, zero, out=Sh[slot])
        torch.where(good4, yv, zero, out=Yh[slot])
        rho[slot] = torch.where(good, 1.0 / torch.where(good, sy, 1.0), 0.0)
        yDy = dot(yv * s["pre"], yv)
        gamma = torch.where(good, sy / yDy.clamp_min(1e-30), gamma)
        # new direction for the accepted columns
        pn = _lbfgs_direction(g, Sh, Yh, rho, gamma, s["pre"], it, dot)
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


def _preconditioner(torch, b: Basis, m, a, binary):
    """The diagonal initial inverse Hessian of every column and the penalty's weights.

    An upper bound of the Hessian in the PCA basis: Boehning's bound of the cross-entropy's curvature
    (the diagonal Gram matrix of all used samples, times 1/4 for two classes, 1/2 for more) plus a
    bound of the penalty's; unused axes get 0.

    Parameters
    ----------
    m : (Q, G, n) bool training masks; a : (Q, G, 1) penalties, the fit dtype.

    Returns
    -------
    pre (Q, d1, G) and the penalty's weights: (Q, d, G), per scaled feature (``alpha`` times its
    training-fold variance), or (Q, G), the isotropic weight of raw features.
    """
    Q, G = m.shape[:2]
    d1 = b.Z1.shape[-1]
    r = d1 - 1
    dt = b.Z1.dtype
    if b.raw_weight is None:
        var, _ = train_variance(torch, b.Xs, m)  # (Q, G, d)
        # the penalty's Hessian in the rotated basis is V' diag(var) V: not diagonal, and its
        # diagonal is no bound of it when the training-fold variances differ (sparse units: 1e-4..2);
        # its largest eigenvalue is at most max_j var_j, a safe bound for every axis
        pen_bound = var.amax(-1, keepdim=True)
        pen_glob = (var * a).transpose(1, 2)  # (Q, d, G): the penalty's weight of each scaled feature
    else:
        pen_bound = b.raw_weight[:, None, None].expand(Q, G, 1)
        pen_glob = (a[..., 0] * b.raw_weight[:, None])  # (Q, G): isotropic weight
    curv = (0.25 if binary else 0.5) * b.bound[:, None, :].expand(Q, G, d1)
    pre = curv.clone()
    pre[..., :r] = pre[..., :r] + a * pen_bound
    pre = (1.0 / pre.clamp_min(1e-30)) * b.keep[:, None, :].to(dt)
    return pre.transpose(1, 2), pen_glob


def _start(torch, mf, y, pres, r, Cp):
    """The cold start (Q, G, d1, C'): the training fold's log prior in the intercept, 0 weights."""
    Q, G = mf.shape[:2]
    C = y.shape[-1]
    cnt = (mf[..., None] * y).sum(2)  # (Q, G, C)
    logp = torch.log((cnt + 1e-3) / (cnt.sum(-1, keepdim=True) + 1e-3 * C))
    x = torch.zeros(Q, G, r + 1, Cp, dtype=mf.dtype, device=mf.device)
    if C == 2:
        x[:, :, r, 0] = logp[..., 1] - logp[..., 0]
    else:
        x[:, :, r] = torch.where(pres, logp - logp.mean(-1, keepdim=True), torch.zeros_like(logp))
    return x


def _lbfgs_direction(g, Sh, Yh, rho, gamma, pre, it, dot):
    """The L-BFGS direction ``-H g`` by the two-loop recursion, newest curvature pair first.

    g : (Q', d1, W, C') gradients; Sh, Yh : (history, Q', d1, W, C') the pairs, ring-buffered with
    the newest at slot ``it % history`` (an empty pair has rho 0); rho : (history, Q', W);
    gamma : (Q', W) and pre : (Q', d1, W, 1): the initial inverse Hessian ``gamma * pre``.
    """
    # the slots not yet written (it < history - 1) hold empty pairs: skipped, their terms are 0
    history = min(Sh.shape[0], it + 1)
    hs = Sh.shape[0]
    q = g.clone()
    als = []
    for k in range(history):
        j = (it - k) % hs
        al = rho[j] * dot(Sh[j], q)
        q -= al[:, None, :, None] * Yh[j]
        als.append(al)
    z = gamma[:, None, :, None] * pre * q
    for k in range(history - 1, -1, -1):
        j = (it - k) % hs
        be = rho[j] * dot(Yh[j], z)
        z += (als[k] - be)[:, None, :, None] * Sh[j]
    return z.neg_()


#: the Newton refit groups its columns by problem unless the groups, padded to the largest, would
#: hold more than this many rows per column (then each column is a group of its own)
NEWTON_MAX_PADDING = 4


def newton_refit(torch, b: Basis, q, g, train, y, alpha, present, theta, max_iter):
    """Damped Newton's method, float64, for the columns (q[i], g[i]) of a chunk.

    Minimizes the same objective as :func:`fit_logistic_lbfgs` exactly (the penalty's Hessian,
    V' diag(var) V or the isotropic raw weight, is formed in full); binomial (one logit) for two
    classes, multinomial otherwise (Hessian sum_i z_i z_i' (x) (diag p_i - p_i p_i')). Converged:
    half the squared Newton decrement (the remaining objective gap, nats, to second order) below
    1e-9 per training sample; a converged column leaves the refit (its Hessian is not formed again,
    which is most of a step's cost). Objective, logits and gradients are float64; with a float32 basis the
    Hessian's products over the samples are float32 (3-4x cheaper; the optimum does not depend on
    them, only the steps do), and a step whose float32 Hessians fail Cholesky is retaken with
    float64 ones.

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
    # the logits and gradients are float64 products of one float64 copy of each problem's basis
    # (not one per column: a problem's slow columns are many), its columns side by side: row
    # pos[i] of problem inv[i]'s block, (U, Wu C', d1) x (d1, n) -- a GEMM, not M GEMVs
    uq, inv = torch.unique(q, return_inverse=True)
    U = uq.numel()
    cnt = torch.bincount(inv, minlength=U)
    Wu = int(cnt.max())
    if U * Wu > NEWTON_MAX_PADDING * M:  # mostly padding (one problem holds most columns): a group per column
        uq, inv, U, Wu = q, torch.arange(M, device=dev), M, 1
        pos = torch.zeros_like(inv)
    else:
        srt = torch.argsort(inv, stable=True)
        pos = torch.empty_like(inv)
        pos[srt] = torch.arange(M, device=dev) - (torch.cumsum(cnt, 0) - cnt)[inv[srt]]
    n = b.Z1.shape[1]
    Z64 = b.Z1[uq].to(f64)  # (U, n, d1)
    Z64T = Z64.transpose(1, 2)
    Zq = b.Z1[q]  # (M, n, d1), the fit's dtype: the Hessians' products
    # the Hessians' products over the samples in float32 when the basis is float32 (the basis is the
    # same numbers; the logits, gradients and objective stay float64, so the optimum does not move,
    # only the steps are approximate): 3-4x cheaper. Columns whose float32 Hessian is not positive
    # definite to Cholesky get their Hessians in float64.
    Z32 = Zq if Zq.dtype == torch.float32 else None
    m = train[q, g].to(f64)  # (M, n)
    Y = y[q, g].to(f64) * m[..., None]  # (M, n, C)
    a = alpha[q, g].to(f64)
    th = theta.reshape(theta.shape[0], d1, G, Cp)[q, :, g].to(f64)  # (M, d1, Cp)
    pen = torch.zeros(M, d1, d1, dtype=f64, device=dev)
    if b.raw_weight is None:
        # the training-fold variances from one float64 copy of each problem's features
        mp = torch.zeros(U, Wu, train.shape[-1], dtype=torch.bool, device=dev)
        mp[inv, pos] = train[q, g]
        var = train_variance(torch, b.Xs[uq].to(f64), mp)[0][inv, pos]  # (M, d)
        E = b.evecs64[q]
        pen[:, :r, :r] = E.transpose(1, 2) @ (var[:, :, None] * E)
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
    # the per-column data of the columns still running (narrowed when columns converge, once per step)
    cols = dict(ii=inv, pp=pos, m=m, Y=Y, pen=pen, penK=penK, fixed=fixed, pmask=pmask, ntr=ntr, Z32=Z32,
                Zx=Zq if Z32 is None else None)  # Zx: (M, n, d1) float64, made when a float64 Hessian is needed

    def terms(t, need_grad=True, exact=False):
        """Objective, gradient and Hessian of the running columns (``cols``) at t."""
        ii, pp, ml, Yl, penl = cols["ii"], cols["pp"], cols["m"], cols["Y"], cols["pen"]
        Ml = ii.numel()
        # (W C', d1) x (d1, n) per problem, its columns' rows side by side (zero rows pad the
        # problems with fewer columns, and the columns already converged): the BLAS is far slower on
        # (n, d1) x (d1, C') per column
        tp = t.new_zeros(U, Wu, Cp, d1)
        tp[ii, pp] = t.transpose(1, 2)
        z = torch.bmm(tp.reshape(U, Wu * Cp, d1), Z64T).reshape(U, Wu, Cp, n)[ii, pp].transpose(1, 2)  # (Ml, n, C')
        if binary:
            z1 = z[..., 0]
            data = (torch.nn.functional.softplus(z1) * ml - Yl[..., 1] * z1).sum(-1)
        else:
            lp = torch.log_softmax(z + cols["pmask"], -1)
            data = -(lp * Yl).sum((-1, -2))
        f = data + 0.5 * torch.einsum("mdc,mde,mec->m", t, penl, t)
        if not need_grad:
            return f, None, None
        if binary:
            p1 = torch.sigmoid(z1)
            res = (p1 * ml - Yl[..., 1])[..., None]
            A = (p1 * (1 - p1) * ml)[..., None, None]  # (Ml, n, 1, 1)
        else:
            p = lp.exp()
            res = p * ml[..., None] - Yl
            A = (torch.diag_embed(p) - p[..., :, None] * p[..., None, :]) * ml[..., None, None]
        rp = res.new_zeros(U, Wu, Cp, n)
        rp[ii, pp] = res.transpose(1, 2)
        grad = torch.bmm(rp.reshape(U, Wu * Cp, n), Z64).reshape(U, Wu, Cp, d1)[ii, pp].transpose(1, 2)
        grad = grad + torch.einsum("mde,mec->mdc", penl, t)
        H = torch.empty(Ml, d1, Cp, d1, Cp, dtype=f64, device=dev)
        if exact or Z32 is None:
            if cols["Zx"] is None:
                cols["Zx"] = Z64[ii]
            Zh, Ah = cols["Zx"], A
        else:
            Zh, Ah = cols["Z32"], A.to(torch.float32)
        for c in range(Cp):  # one class row at a time: (Ml, n, d1, C') intermediates only
            H[:, :, c] = torch.einsum("mni,mnjb->mijb", Zh, Zh[..., None] * Ah[:, :, c, None, :])
        H = H + cols["penK"] + cols["fixed"]
        return f, grad, H.reshape(Ml, P, P)

    # the columns still running: a converged column leaves (its solution no longer moves, so
    # evaluating it again would only repeat its test)
    conv = torch.zeros(M, dtype=torch.bool, device=dev)
    live = torch.arange(M, device=dev)
    f, grad, H = terms(th)
    eye = torch.eye(P, dtype=f64, device=dev)
    for _ in range(max_iter):
        Ml = live.numel()
        Hj = H + 1e-10 * (torch.diagonal(H, dim1=1, dim2=2).abs().amax(-1) + 1.0)[:, None, None] * eye
        L, info = torch.linalg.cholesky_ex(Hj)
        if Z32 is not None and bool((info != 0).any()):
            f, grad, H = terms(th[live], exact=True)  # rare: the running columns' Hessians in float64, this step
            Hj = H + 1e-10 * (torch.diagonal(H, dim1=1, dim2=2).abs().amax(-1) + 1.0)[:, None, None] * eye
            L, info = torch.linalg.cholesky_ex(Hj)
        gv = grad.reshape(Ml, P)
        step = torch.cholesky_solve(gv[..., None], L)[..., 0]
        step = torch.where((info == 0)[:, None], step, gv / torch.diagonal(Hj, dim1=1, dim2=2).clamp_min(1e-12))
        dec2 = (gv * step).sum(-1)  # squared Newton decrement
        done = torch.isfinite(dec2) & (0.5 * dec2 <= 1e-9 * cols["ntr"])
        conv[live] = done
        if bool(done.all()):
            break
        run = ~done
        live, step, f = live[run], step[run].reshape(-1, d1, Cp), f[run]
        if not bool(run.all()):
            cols = {k: (None if v is None else v[run]) for k, v in cols.items()}
        # backtracking: halve the step until the objective does not increase (per column)
        th_l = th[live]
        t_step = torch.ones(live.numel(), dtype=f64, device=dev)
        fn, _, _ = terms(th_l - step, need_grad=False)
        for _ in range(30):
            worse = ~(fn <= f + 1e-12 * f.abs())
            if not bool(worse.any()):
                break
            t_step = torch.where(worse, t_step * 0.5, t_step)
            fn = torch.where(worse, terms(th_l - t_step[:, None, None] * step, need_grad=False)[0], fn)
        ok = fn <= f + 1e-12 * f.abs()
        th[live] = torch.where(ok[:, None, None], th_l - t_step[:, None, None] * step, th_l)
        f, grad, H = terms(th[live])
    return th, conv


def _raw_coefficients(torch, theta, b: Basis, G, Cp):
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
