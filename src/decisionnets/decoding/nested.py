"""Nested cross-validation of the penalty: the pair fits, searched along the L2 path.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

__all__ = ["choose_penalties", "penalty_path", "PATH_STOP_MARGIN"]


def choose_penalties(torch, dec, prep, valid, fol, onehot, present, K, seed, fdt, dev):
    """The penalty of every outer fold, by the inner CV of the nested CV (the pair fits).

    For outer fold k, the inner CV uses the other K-1 folds; the inner fit holding out fold j is
    trained on all folds but {j, k}: the same fit serves outer fold j holding out k, so K(K-1)/2
    pair fits (every penalty of ``dec.penalties``) serve every outer fold. Ties go to the stronger
    penalty; a non-finite inner loss never wins.

    Parameters
    ----------
    valid : (Q, V, n) bool samples with a label; fol : (Q, V, n) fold of each sample;
    onehot : (Q, V, n, C) labels; present : (Q, V, C) bool classes present; K : int folds;
    fdt, dev : dtype and device of the fits.

    Returns
    -------
    alpha (Q, V, K) chosen penalties (``fdt``), init (Q, d1, V*K*C') warm starts of the outer fits
    (None for decoders without ``warm_start``), converged (Q, V) bool of the pair fits.
    """
    Q, V, n = valid.shape
    C = onehot.shape[-1]
    conv = torch.ones(Q, V, dtype=torch.bool, device=dev)
    # ---- phase A: pair fits, all penalties. For outer fold k, the inner CV uses the other K-1
    # folds; the inner fit holding out fold j is trained on all folds but {j, k}: the same fit
    # serves outer fold j holding out k, so K(K-1)/2 pair fits serve every outer fold.
    grid = np.asarray(dec.penalties, dtype=float)
    L = len(grid)
    pairs = list(itertools.combinations(range(K), 2))
    F = len(pairs)
    pj = torch.tensor([p[0] for p in pairs], device=dev)
    pk = torch.tensor([p[1] for p in pairs], device=dev)
    trA = valid[:, :, None, :] & (fol[:, :, None, :] != pj[None, None, :, None]) & (
        fol[:, :, None, :] != pk[None, None, :, None])
    held_m = [(valid & (fol == j)).to(torch.float64) for j in range(K)]

    def inner_loss(ce):  # ce (Q, V, F, [L,] n) -> mean inner held-out CE of each outer fold (Q, V, K[, L])
        out = torch.zeros((Q, V, K) + tuple(ce.shape[3:-1]), dtype=torch.float64, device=dev)
        for f, (j, k) in enumerate(pairs):
            for held, outer in ((j, k), (k, j)):
                m = held_m[held].reshape((Q, V) + (1,) * (ce.dim() - 4) + (n,))
                out[:, :, outer] += (ce[:, :, f] * m).sum(-1) / m.sum(-1).clamp_min(1) / (K - 1)
        return out

    if getattr(dec, "path_search", False):
        inner, convA, stA = penalty_path(torch, dec, prep, trA, onehot, present, grid, inner_loss, seed)
        conv &= convA
        fitA_state = stA
    else:
        mA = trA[:, :, :, None, :].expand(Q, V, F, L, n).reshape(Q, V * F * L, n)
        yA = onehot[:, :, None, None].expand(Q, V, F, L, n, C).reshape(Q, V * F * L, n, C)
        aA = torch.as_tensor(grid, dtype=fdt, device=dev)[None, None, None, :].expand(Q, V, F, L).reshape(Q, -1)
        presA = present[:, :, None, None, :].expand(Q, V, F, L, C).reshape(Q, V * F * L, C)
        fitA = dec.fit(prep, mA, yA, aA, presA, seed=seed)
        ceA = -(fitA.log_proba * yA).sum(-1).reshape(Q, V, F, L, n).to(torch.float64)
        conv &= fitA.converged.reshape(Q, V, F, L).all(-1).all(-1)
        inner = inner_loss(ceA)
        fitA_state = fitA.state
    # a non-finite inner loss (a diverged fit) must never win the choice: torch's argmin
    # returns NaN as the minimum
    inner = torch.where(torch.isfinite(inner), inner, torch.full_like(inner, float("inf")))
    # ties -> stronger penalty: search from the largest alpha down
    order = np.argsort(grid)[::-1].copy()
    inner_sorted = inner[..., torch.as_tensor(order, device=dev)]
    best = torch.as_tensor(order, device=dev)[inner_sorted.argmin(-1)]  # (Q, V, K)
    alpha_k = torch.as_tensor(grid, dtype=fdt, device=dev)[best]
    initB = None
    if getattr(dec, "warm_start", False) and fitA_state is not None:
        # warm start of outer fold k: the mean of the pair fits (j, k) at its chosen penalty
        # (trained on all folds but {j, k}; the outer fit drops only k). The optimum does not
        # depend on the start, only the number of iterations does.
        st = fitA_state
        d1 = st.shape[1]
        st = st.reshape(Q, d1, V, F, L, -1)
        initB = torch.empty(Q, d1, V, K, st.shape[-1], dtype=st.dtype, device=dev)
        for k in range(K):
            fk = torch.tensor([f for f, pr in enumerate(pairs) if k in pr], device=dev)
            sel = st[:, :, :, fk]  # (Q, d1, V, K-1, L, C')
            idx = best[:, :, k].to(dev)[:, None, :, None, None, None].expand(Q, d1, V, fk.numel(), 1, st.shape[-1])
            initB[:, :, :, k] = torch.gather(sel, 4, idx)[:, :, :, :, 0].mean(3)
        initB = initB.reshape(Q, d1, -1)
    return alpha_k, initB, conv


#: Rise of the inner CV loss (nats per held-out sample) at every outer fold that ends a variable's L2 path.
PATH_STOP_MARGIN = 1e-3


def penalty_path(torch, dec, prep, trA, onehot, present, grid, inner_loss, seed):
    """The pair fits of the nested CV along the L2 path, strongest penalty first, each warm-started.

    Penalty l's pair fits start from penalty l-1's solutions (the path is smooth in log alpha: a
    weaker penalty's optimum lies near the stronger one's, so most columns need a few iterations
    instead of a cold start), to the decoder's ``search_tol`` (the pair fits only rank the
    penalties and warm-start the outer fits; the outer fits are converged to ``tol``). With
    ``path_stop``, a problem's variable leaves the path once its inner CV loss has risen, for
    every outer fold, by more than :data:`PATH_STOP_MARGIN` nats per held-out sample from the
    previous (stronger) penalty to this one: its weaker penalties are not fitted and cannot be
    chosen (inner loss +inf). The margin keeps flat stretches going: with raw units of tiny scale
    (``linear-raw`` on weight-decayed layers) the strong penalties all give the prior, their
    losses differing by float noise, and the signal appears only at the weak ones (without the
    margin a weight-decayed FC layer's 0.55 bits read as 0 for one fold seed). This assumes the
    inner CV loss, beyond such stretches, is unimodal in log alpha; where it is not, the chosen
    penalty can only be a stronger one than the full grid would pick.

    Parameters
    ----------
    trA : (Q, V, F, n) bool training masks of the F pair fits; onehot : (Q, V, n, C);
    present : (Q, V, C) bool; grid : ndarray (L,) penalties; inner_loss : callable (Q, V, F, n) CE
    -> (Q, V, K) inner CV loss per outer fold.

    Returns
    -------
    inner (Q, V, K, L) float64 (+inf where not fitted), converged (Q, V) bool, states (Q, d1, V*F*L*C').
    """
    Q, V, F, n = trA.shape
    C = onehot.shape[-1]
    L = len(grid)
    dev = onehot.device
    fdt = onehot.dtype
    G = V * F
    m = trA.reshape(Q, G, n)
    y = onehot[:, :, None].expand(Q, V, F, n, C).reshape(Q, G, n, C)
    pres = present[:, :, None, :].expand(Q, V, F, C).reshape(Q, G, C)
    K = int(round((1 + math.sqrt(1 + 8 * F)) / 2))
    inner = torch.full((Q, V, K, L), float("inf"), dtype=torch.float64, device=dev)
    conv = torch.ones(Q, V, dtype=torch.bool, device=dev)
    alive = torch.ones(Q, V, dtype=torch.bool, device=dev)
    states = [None] * L
    state = None
    prev = None
    for step, l in enumerate(np.argsort(grid)[::-1]):  # strongest first
        act = alive[:, :, None].expand(Q, V, F).reshape(Q, G)
        if not bool(act.any()):
            states[l] = state
            continue
        a = torch.full((Q, G), float(grid[l]), dtype=fdt, device=dev)
        fit = dec.fit(prep, m, y, a, pres, seed=seed, init=state, tol=getattr(dec, "search_tol", None), active=act)
        ce = -(fit.log_proba * y).sum(-1).reshape(Q, V, F, n).to(torch.float64)
        cur = inner_loss(ce)  # (Q, V, K)
        inner[..., l] = torch.where(alive[..., None], cur, inner[..., l])
        conv &= fit.converged.reshape(Q, V, F).all(-1) | ~alive
        state = fit.state
        states[l] = state
        if prev is not None and getattr(dec, "path_stop", False):
            # a rise by more than PATH_STOP_MARGIN nats per held-out sample: a flat stretch (strong
            # penalties on units of tiny scale all give the prior, up to float noise) is no rise
            alive &= ~(torch.isfinite(prev).all(-1) & (cur > prev + PATH_STOP_MARGIN).all(-1))
        prev = torch.where(alive[..., None], cur, prev) if prev is not None else cur
    d1 = states[0].shape[1]
    st = torch.stack([s.reshape(Q, d1, V, F, -1) for s in states], 4)  # (Q, d1, V, F, L, C')
    return inner, conv, st.reshape(Q, d1, -1)
