"""Usable (predictive V-) information, estimated by batched, cross-validated decoders.

The quantity (Xu et al. 2020; Kleinman et al. 2021) of a representation Z about a label Y is

    I_V(Z -> Y) = H_V(Y | nothing) - H_V(Y | Z)        in bits,

where H_V(Y | Z) is the *held-out* cross-entropy of the best decoder of the family V fitted on
training folds and H_V(Y | nothing) the held-out cross-entropy of the best constant predictor, the
training-fold label prior. Both are measured on the same held-out trials of a stratified K-fold
split, so each trial is predicted exactly once by a decoder that never saw it.

Estimator (what :class:`UsableInformation` does)
-------------------------------------------------
* **Folds.** Stratified K-fold: within each class the trials are put in a random order (one seeded
  key per trial, shared by every problem of a call, so problems with the same labels share folds)
  and dealt round-robin to the folds from a random starting fold. Samples whose label is < 0 or NaN
  are "missing" and dropped for that problem; so are the samples of classes with fewer than K
  samples (they cannot appear in every training fold). A problem left with < 2 classes carries
  0 bits (there is nothing to predict) unless it has no sample at all (NaN).
* **Standardization inside the training fold, exactly, without materializing it.** Standardizing
  with the training fold's mean and s.d. and fitting ``w'`` with penalty ``alpha/2 ||w'||^2`` is the
  same model as fitting ``w = w'/sd`` on the raw features with penalty
  ``alpha/2 sum_j sd_j^2 w_j^2`` and a free intercept. We use that identity: one global (all-trial,
  label-free) centring, scaling and PCA rotation per problem serves only as a numerical
  preconditioner shared by every fold, and each fit is penalized with its own training-fold
  variances. The fitted predictor is the fold-standardized one; no test-fold statistic enters it.
* **L2 strength, chosen honestly (nested CV without extra fits).** For outer fold k, the inner
  cross-validation uses the remaining K-1 folds as its inner folds: the inner fit that holds out
  fold j is trained on all folds but {j, k}. That fit is the same one that outer fold j needs when it
  holds out fold k, so the K(K-1)/2 "pair" fits (for every alpha of the grid) serve every outer fold.
  For outer fold k, alpha is the grid value with the lowest mean inner held-out cross-entropy
  (ties go to the stronger penalty); the outer fold's decoder is then refitted on all folds but k with
  that alpha and scored on fold k. Fold k's labels never influence its alpha or its decoder.
  The penalty follows scikit-learn's convention: minimize ``sum_i CE_i + alpha/2 ||w||^2`` (alpha
  = 1/C); default grid: 5 log-spaced values alpha = 10**(-3..4).
* **Decoders.** ``"linear"``: multinomial logistic regression (binomial for two classes, as
  scikit-learn does). ``"mlp"``: one hidden layer (tanh), the same L2 on both weight matrices,
  trained full-batch with Adam.
* **Batched.** All problems (e.g. epoch x time x variable), all folds and all alphas are fitted
  together as columns of one tensor program in torch (CPU or GPU): a diagonally preconditioned
  (Boehning curvature bound in the PCA basis) Nesterov-accelerated gradient method with adaptive
  restart, float32 matmuls by default. The float32 iteration can diverge on near-separable, badly
  scaled problems (seen on a trained CNN layer: -7e25 bits); every problem with a non-finite fold
  or one below -1 bit (impossible for a CV-chosen decoder) is refitted in float64.

Reported per problem: ``information`` (bits, pooled over the held-out trials), ``information_sd``
(s.d. across the K folds of the per-fold information), ``accuracy`` (held-out argmax accuracy),
``ce_prior`` / ``ce_decoder`` (bits), ``n_samples`` and the chosen ``l2`` (per fold).
"""

from __future__ import annotations

import copy
import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from decisionnets.errors import UserError

__all__ = [
    "UsableInformation",
    "usable_information",
    "decoding_scores",
    "cross_temporal_information",
    "DEFAULT_L2_GRID",
    "LN2",
]

LN2 = math.log(2.0)
DEFAULT_L2_GRID = tuple(float(a) for a in np.logspace(-3, 4, 5))
_DECODERS = ("linear", "mlp")


# --------------------------------------------------------------------------------------------------
# array-level helpers
# --------------------------------------------------------------------------------------------------


def _clean_labels(y: np.ndarray, folds: int) -> tuple[np.ndarray, int]:
    """Integer labels with -1 for missing, rare classes (< ``folds`` samples) set to -1.

    Parameters
    ----------
    y : ndarray (P, V, n) of float or int
    folds : int

    Returns
    -------
    labels : ndarray (P, V, n) int64, -1 where missing
    n_classes : int, max label + 1 (at least 1)
    """
    y = np.asarray(y)
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y)
        yi = np.where(bad, -1, y).astype(np.int64)
        if np.any((yi != np.where(bad, -1, y))):
            raise UserError("labels must be whole numbers (class indices); got non-integer values")
    elif y.dtype.kind in "iub":
        yi = y.astype(np.int64)
    else:
        raise UserError(f"labels must be integer class indices (-1/NaN = missing); got dtype {y.dtype}")
    yi = np.where(yi < 0, -1, yi)
    n_classes = int(yi.max()) + 1 if yi.size and yi.max() >= 0 else 1
    n_classes = max(n_classes, 1)
    counts = _class_counts(yi, n_classes)  # (P, V, C)
    rare = counts < folds
    if rare.any():
        idx = np.clip(yi, 0, None)
        is_rare = np.take_along_axis(rare, idx, axis=-1) & (yi >= 0)
        yi = np.where(is_rare, -1, yi)
    return yi, n_classes


def _class_counts(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts per class, ndarray (..., C), of integer labels (..., n) with -1 missing."""
    out = np.zeros(y.shape[:-1] + (n_classes,), dtype=np.int64)
    for c in range(n_classes):
        out[..., c] = (y == c).sum(-1)
    return out


def _stratified_folds(y: np.ndarray, folds: int, n_classes: int, seed: int) -> np.ndarray:
    """Stratified fold index per sample, ndarray (P, V, n) int64, -1 for missing samples.

    One random key per sample position and one random starting fold per class are drawn from
    ``seed``; they are shared by all rows, so rows with equal labels get equal folds.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED]))
    n = y.shape[-1]
    key = rng.random(n)
    start = rng.integers(0, folds, size=n_classes)
    flat = y.reshape(-1, n)
    sort_key = np.where(flat >= 0, flat, n_classes) + key[None, :]
    order = np.argsort(sort_key, axis=-1, kind="stable")
    sorted_y = np.take_along_axis(flat, order, axis=-1)
    # rank of each sorted sample within its class
    pos = np.arange(n)[None, :]
    new_block = np.ones_like(sorted_y, dtype=bool)
    new_block[:, 1:] = sorted_y[:, 1:] != sorted_y[:, :-1]
    block_start = np.maximum.accumulate(np.where(new_block, pos, 0), axis=-1)
    rank = pos - block_start
    offs = start[np.clip(sorted_y, 0, None)]
    f_sorted = np.where(sorted_y >= 0, (rank + offs) % folds, -1)
    f = np.empty_like(f_sorted)
    np.put_along_axis(f, order, f_sorted, axis=-1)
    return f.reshape(y.shape)


def _torch():
    import torch  # lazily: torch is only a linear-algebra backend here

    return torch


# --------------------------------------------------------------------------------------------------
# the batched estimator
# --------------------------------------------------------------------------------------------------


class UsableInformation:
    """Batched cross-validated usable information for many decoding problems at once.

    Parameters
    ----------
    decoder : {"linear", "mlp"}
        Decoder family: multinomial logistic regression, or a one-hidden-layer tanh network.
    folds : int
        Number K of stratified folds (>= 3; the inner CV uses the other K-1 folds).
    l2_grid : sequence of float, optional
        Candidate penalties alpha (objective ``sum_i CE_i + alpha/2 ||w||^2``); default
        :data:`DEFAULT_L2_GRID`.
    seed : int
        Seed of the fold assignment (and of the MLP initialisation).
    device : str
        torch device ("cpu", "cuda").
    dtype : {"float32", "float64"}
        Precision of the large matmuls (the PCA is always float64).
    max_iter : int
        Maximum optimizer iterations per phase (linear: accelerated gradient; mlp: Adam steps).
    tol : float
        Convergence threshold on the largest change of a training logit (linear only).
    hidden : int
        Hidden units of the MLP decoder.
    max_chunk_bytes : int
        Memory budget per chunk of problems.
    standardize : bool
        True (default): the decoder sees features standardized with the training fold's mean and
        s.d. (penalty ``alpha/2 ||w'||^2`` on standardized weights): the result does not depend on
        the units' scales, but a unit that weight decay has shrunk to tiny yet informative values
        counts as fully usable. False: logistic regression on the raw features, penalty
        ``alpha/2 ||w||^2`` on raw weights (scikit-learn's default without a scaler): signals
        carried by small-scale units are penalized as harder to use, and the result changes when
        units are rescaled. Constant features are dropped either way. **Experimental:** with raw
        features of very different scales (weight-decayed ReLU layers) the first-order solver does
        not converge within ``max_iter`` (seen: 0.006 bits at 150 iterations, 0.076 at 600, 0.397
        for scikit-learn's converged LogisticRegressionCV on the same data), so its numbers are
        lower bounds there; check against scikit-learn before relying on them.

    Attributes
    ----------
    information_ : ndarray (P, V)
        Usable information in bits.
    information_folds_ : ndarray (P, V, K)
        Per-fold information in bits.
    information_sd_ : ndarray (P, V)
        S.d. across folds of the per-fold information.
    accuracy_ : ndarray (P, V)
        Held-out decoding accuracy.
    ce_prior_, ce_decoder_ : ndarray (P, V)
        Held-out cross-entropies (bits) of the training-fold prior and of the decoder.
    l2_ : ndarray (P, V, K)
        Penalty chosen for each outer fold.
    n_samples_ : ndarray (P, V)
        Samples used (non-missing labels of classes with >= K samples).
    folds_ : ndarray (P, V, n)
        Fold of each sample (-1: not used).
    n_classes_ : int
    coef_ : ndarray (P, V, K, d, C') or None
        Linear decoders in raw feature units (C' = 1 for two classes: logit of class 1).
    intercept_ : ndarray (P, V, K, C') or None
    """

    def __init__(
        self,
        decoder: str = "linear",
        folds: int = 5,
        l2_grid: Sequence[float] | None = None,
        seed: int = 0,
        device: str = "cpu",
        dtype: str = "float32",
        max_iter: int = 150,
        tol: float = 1e-3,
        hidden: int = 32,
        max_chunk_bytes: int = 2**28,
        standardize: bool = True,
    ):
        self.decoder = decoder
        self.folds = folds
        self.l2_grid = l2_grid
        self.seed = seed
        self.device = device
        self.dtype = dtype
        self.max_iter = max_iter
        self.tol = tol
        self.hidden = hidden
        self.max_chunk_bytes = max_chunk_bytes
        self.standardize = standardize

    # ---------------------------------------------------------------- public
    def fit(self, X: np.ndarray, y: np.ndarray, progress=None) -> "UsableInformation":
        """Estimate the information of every problem.

        Parameters
        ----------
        X : ndarray (P, n, d) or (n, d)
            Features: P problems of n samples and d features.
        y : ndarray (P, V, n), (P, n) or (n,)
            Class labels (ints >= 0; < 0 or NaN = missing), V label variables per problem.
        progress : callable, optional
            Called with the number of problems (rows of X) finished after each chunk.

        Returns
        -------
        self
        """
        torch = _torch()
        self._check_params()
        X = np.asarray(X)
        if X.ndim == 2:
            X = X[None]
        if X.ndim != 3:
            raise UserError(f"X must have shape (problems, samples, features); got shape {X.shape}")
        y = np.asarray(y)
        if y.ndim == 1:
            y = np.broadcast_to(y, (X.shape[0], 1, y.shape[0]))
        elif y.ndim == 2:
            y = y[:, None, :] if y.shape[0] == X.shape[0] else y[None]
        y = np.broadcast_to(y, (X.shape[0],) + y.shape[1:]) if y.shape[0] == 1 else y
        if y.ndim != 3 or y.shape[0] != X.shape[0] or y.shape[2] != X.shape[1]:
            raise UserError(f"y must have shape (problems, variables, samples) matching X {X.shape}; got {y.shape}")
        P, n, d = X.shape
        V = y.shape[1]
        K = self.folds
        labels, C = _clean_labels(y, K)
        fold = _stratified_folds(labels, K, C, self.seed)
        self.n_classes_ = max(C, 2)
        self.folds_ = fold
        self.n_samples_ = (labels >= 0).sum(-1)
        grid = np.asarray(DEFAULT_L2_GRID if self.l2_grid is None else self.l2_grid, dtype=float)

        info_f = np.full((P, V, K), np.nan)
        self.information_ = np.full((P, V), np.nan)
        self.accuracy_ = np.full((P, V), np.nan)
        self.ce_prior_ = np.full((P, V), np.nan)
        self.ce_decoder_ = np.full((P, V), np.nan)
        self.l2_ = np.full((P, V, K), np.nan)
        Cp = 1 if self.n_classes_ == 2 else self.n_classes_
        linear = self.decoder == "linear"
        self.coef_ = np.full((P, V, K, d, Cp), np.nan) if linear else None
        self.intercept_ = np.full((P, V, K, Cp), np.nan) if linear else None

        n_pairs = K * (K - 1) // 2
        width = V * max(n_pairs * len(grid), K) * Cp * (self.hidden if not linear else 1)
        per_problem = 4 * n * (d + 1) * 3 + 4 * n * width * 6
        chunk = max(1, min(P, int(self.max_chunk_bytes // max(per_problem, 1))))
        for start in range(0, P, chunk):
            sl = slice(start, min(P, start + chunk))
            res = _fit_chunk(
                torch, X[sl], labels[sl], fold[sl], self.n_classes_, K, grid, self, linear
            )
            if self.dtype == "float32":
                self._refit_diverged(torch, res, X[sl], labels[sl], fold[sl], K, grid, linear)
            info_f[sl] = res["info_folds"]
            self.information_[sl] = res["information"]
            self.accuracy_[sl] = res["accuracy"]
            self.ce_prior_[sl] = res["ce_prior"]
            self.ce_decoder_[sl] = res["ce_decoder"]
            self.l2_[sl] = res["l2"]
            if linear:
                self.coef_[sl] = res["coef"]
                self.intercept_[sl] = res["intercept"]
            if progress is not None:
                progress(sl.stop - sl.start)
        self.information_folds_ = info_f
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            sd = np.nanstd(info_f, axis=-1)
        self.information_sd_ = np.where(np.isfinite(self.information_), sd, np.nan)
        return self

    # ---------------------------------------------------------------- private
    def _refit_diverged(self, torch, res, X, labels, fold, K, grid, linear) -> None:
        """Refit in float64 the problems whose float32 fit diverged, in place in ``res``.

        The float32 accelerated iteration can blow up on near-separable, badly scaled problems
        (seen on a trained CNN layer: -7e25 bits). A decoder whose L2 strength was chosen by
        cross-validation cannot lose a whole bit per held-out sample against the prior (the
        strongest penalty is the prior, nearly), so a fold below -1 bit, or a non-finite one, marks
        a diverged fit.
        """
        info = res["info_folds"]  # (Q, V, K)
        has = np.isfinite(res["ce_prior"])  # (Q, V)
        bad = ((~np.isfinite(info) | (info < -1.0)) & has[..., None]).any(axis=(1, 2))
        if not bad.any():
            return
        idx = np.flatnonzero(bad)
        est64 = copy.copy(self)
        est64.dtype = "float64"
        again = _fit_chunk(torch, X[idx], labels[idx], fold[idx], self.n_classes_, K, grid, est64, linear)
        for key, value in again.items():
            res[key][idx] = value

    def _check_params(self) -> None:
        if self.decoder not in _DECODERS:
            raise UserError(f"decoder must be one of {_DECODERS}; got {self.decoder!r}")
        if not isinstance(self.folds, (int, np.integer)) or self.folds < 3:
            raise UserError(f"folds must be an integer >= 3 (nested CV uses K-1 inner folds); got {self.folds!r}")
        if self.dtype not in ("float32", "float64"):
            raise UserError(f"dtype must be 'float32' or 'float64'; got {self.dtype!r}")
        if self.l2_grid is not None and (len(self.l2_grid) == 0 or min(self.l2_grid) <= 0):
            raise UserError(f"l2_grid must be a non-empty sequence of positive numbers; got {self.l2_grid!r}")


def _fit_chunk(torch, X, labels, fold, C, K, grid, est, linear) -> dict[str, np.ndarray]:
    """Fit all folds, alphas and variables of a chunk of problems (Q, n, d)."""
    dev = torch.device(est.device)
    fdt = torch.float32 if est.dtype == "float32" else torch.float64
    Q, n, d = X.shape
    V = labels.shape[1]
    Cp = 1 if C == 2 else C
    L = len(grid)

    # ---- label-free centring, scaling, PCA rotation over the samples used by any variable of the
    # problem: a preconditioner only. Their Gram matrix, diagonal in this basis, bounds every
    # training subset's Gram matrix, so the diagonal curvature bound used by the optimizer is safe.
    Xt = torch.as_tensor(np.asarray(X), dtype=torch.float64, device=dev)
    Xt = torch.nan_to_num(Xt)
    used = torch.as_tensor((labels >= 0).any(1), device=dev).to(torch.float64)[..., None]  # (Q, n, 1)
    n_used = used.sum(1, keepdim=True).clamp_min(1)
    mu = (Xt * used).sum(1, keepdim=True) / n_used
    sd = torch.sqrt((((Xt - mu) ** 2) * used).sum(1, keepdim=True) / n_used)
    # constant features (exactly, or up to float32 rounding of their value) are dropped
    const = (sd <= 1e-5 * mu.abs()) | (sd <= 1e-30)
    sd = torch.where(const, torch.ones_like(sd), sd)
    Xs = torch.where(const, torch.zeros_like(Xt), (Xt - mu) / sd)  # (Q, n, d)
    Xu = Xs * used
    evals, evecs = torch.linalg.eigh(Xu.transpose(1, 2) @ Xu)  # (Q, d), (Q, d, d), ascending
    evals, evecs = evals.flip(-1), evecs.flip(-1)
    # PCA truncation: directions with < 1e-6 of the largest variance carry nothing usable and only
    # slow the optimizer; the basis is cut to the largest rank in the chunk (cost scales with it)
    keep = evals > 1e-6 * evals[:, :1].clamp_min(1e-30)
    r = max(int(keep.sum(-1).max()), 1) if d else 0
    evals, evecs, keep = evals[:, :r], evecs[:, :, :r] * keep[:, None, :r], keep[:, :r]
    Z = Xs @ evecs
    ones = torch.ones(Q, n, 1, dtype=torch.float64, device=dev)
    Z1 = torch.cat([Z, ones], dim=2).to(fdt)  # (Q, n, r+1)
    Xs_f = Xs.to(fdt)
    evecs_f = evecs.to(fdt)
    keep_f = torch.cat([keep, torch.ones(Q, 1, dtype=torch.bool, device=dev)], 1)
    bound = torch.cat([evals.clamp_min(0), n_used[:, 0]], 1).to(fdt)  # (Q, r+1) diag of used Gram
    # raw-feature penalty (standardize=False): alpha/2 ||w_raw||^2 = alpha/2 sum_j w_j^2 / sd_j^2
    raw_pen = None if est.standardize else (1.0 / (sd[:, 0] ** 2)).to(fdt)  # (Q, d)

    lab = torch.as_tensor(labels, device=dev)
    fol = torch.as_tensor(fold, device=dev)
    valid = lab >= 0
    onehot = torch.nn.functional.one_hot(lab.clamp_min(0), C).to(fdt) * valid[..., None]  # (Q,V,n,C)
    counts = onehot.sum(2)  # (Q, V, C)
    present = counts > 0
    n_present = present.sum(-1)  # (Q, V)

    # ---- phase A: pair fits, all alphas
    pairs = list(itertools.combinations(range(K), 2))
    pj = torch.tensor([p[0] for p in pairs], device=dev)
    pk = torch.tensor([p[1] for p in pairs], device=dev)
    # train mask (Q, V, F, n)
    trA = valid[:, :, None, :] & (fol[:, :, None, :] != pj[None, None, :, None]) & (
        fol[:, :, None, :] != pk[None, None, :, None]
    )
    # columns: (V, F, L) -> G
    F = len(pairs)
    mA = trA[:, :, :, None, :].expand(Q, V, F, L, n).reshape(Q, V * F * L, n)
    yA = onehot[:, :, None, None].expand(Q, V, F, L, n, C).reshape(Q, V * F * L, n, C)
    aA = torch.as_tensor(grid, dtype=fdt, device=dev)[None, None, None, :].expand(Q, V, F, L).reshape(Q, -1)
    presA = present[:, :, None, None, :].expand(Q, V, F, L, C).reshape(Q, V * F * L, C)
    fitter = _fit_linear if linear else _fit_mlp
    outA = fitter(torch, Z1, Xs_f, evecs_f, keep_f, mA, yA, aA, presA, est, bound, raw_pen)
    # per-sample CE (nats) for every column: (Q, G, n)
    ceA = outA["ce"].reshape(Q, V, F, L, n)
    # inner score for outer fold k, alpha l: mean over j != k of mean CE on fold j of pair {j,k}
    inner = torch.zeros(Q, V, K, L, dtype=torch.float64, device=dev)
    for f, (j, k) in enumerate(pairs):
        for held, outer in ((j, k), (k, j)):
            m = (valid & (fol == held)).to(torch.float64)  # (Q, V, n)
            mean_ce = (ceA[:, :, f].to(torch.float64) * m[:, :, None, :]).sum(-1) / m.sum(-1, keepdim=True).clamp_min(1)
            inner[:, :, outer] += mean_ce / (K - 1)
    # ties -> stronger penalty: search from the largest alpha down
    order = np.argsort(grid)[::-1].copy()
    inner_sorted = inner[..., torch.as_tensor(order, device=dev)]
    best = torch.as_tensor(order, device=dev)[inner_sorted.argmin(-1)]  # (Q, V, K)
    alpha_k = torch.as_tensor(grid, dtype=fdt, device=dev)[best]  # (Q, V, K)

    # ---- phase B: outer fits, chosen alpha
    ks = torch.arange(K, device=dev)
    trB = valid[:, :, None, :] & (fol[:, :, None, :] != ks[None, None, :, None])  # (Q, V, K, n)
    mB = trB.reshape(Q, V * K, n)
    yB = onehot[:, :, None].expand(Q, V, K, n, C).reshape(Q, V * K, n, C)
    presB = present[:, :, None, :].expand(Q, V, K, C).reshape(Q, V * K, C)
    outB = fitter(torch, Z1, Xs_f, evecs_f, keep_f, mB, yB, alpha_k.reshape(Q, V * K), presB, est, bound, raw_pen)
    ceB = outB["ce"].reshape(Q, V, K, n).to(torch.float64)
    predB = outB["pred"].reshape(Q, V, K, n)

    # held-out scores
    test = valid[:, :, None, :] & (fol[:, :, None, :] == ks[None, None, :, None])  # (Q, V, K, n)
    testf = test.to(torch.float64)
    # training-fold prior
    tr_counts = (trB[..., None].to(torch.float64) * onehot[:, :, None].to(torch.float64)).sum(3)  # (Q,V,K,C)
    prior = tr_counts / tr_counts.sum(-1, keepdim=True).clamp_min(1)
    logprior = torch.log(prior.clamp_min(1e-300))
    lab_c = lab.clamp_min(0)
    ce_prior_s = -torch.gather(logprior, 3, lab_c[:, :, None, :].expand(Q, V, K, n))  # (Q,V,K,n)
    n_test = testf.sum(-1)  # (Q, V, K)
    ce_dec_fold = (ceB * testf).sum(-1)
    ce_pri_fold = (ce_prior_s * testf).sum(-1)
    correct = ((predB == lab[:, :, None, :]) & test).sum(-1).sum(-1).to(torch.float64)
    N = n_test.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        info_folds = ((ce_pri_fold - ce_dec_fold) / n_test / LN2).cpu().numpy()
        info = ((ce_pri_fold.sum(-1) - ce_dec_fold.sum(-1)) / N / LN2).cpu().numpy()
        ce_p = (ce_pri_fold.sum(-1) / N / LN2).cpu().numpy()
        ce_d = (ce_dec_fold.sum(-1) / N / LN2).cpu().numpy()
        acc = (correct / N).cpu().numpy()
    npres = n_present.cpu().numpy()
    Nn = N.cpu().numpy()
    single = (npres == 1) & (Nn > 0)
    info = np.where(single, 0.0, info)
    info_folds = np.where(single[..., None], 0.0, info_folds)
    ce_p = np.where(single, 0.0, ce_p)
    ce_d = np.where(single, 0.0, ce_d)
    acc = np.where(single, 1.0, acc)
    empty = Nn == 0
    for a in (info, ce_p, ce_d, acc):
        a[empty] = np.nan
    info_folds[empty] = np.nan
    l2 = alpha_k.to(torch.float64).cpu().numpy()
    l2 = np.where((npres >= 2)[..., None], l2, np.nan)
    out = dict(information=info, info_folds=info_folds, accuracy=acc, ce_prior=ce_p, ce_decoder=ce_d, l2=l2)
    if linear:
        coef, icpt = _raw_coefficients(torch, outB["theta"], evecs, keep, mu, sd, const, Q, V, K, Cp, d, r)
        out["coef"] = coef
        out["intercept"] = icpt
    return out


def _raw_coefficients(torch, theta, evecs, keep, mu, sd, const, Q, V, K, Cp, d, r):
    """Map decoders from the PCA basis back to raw feature units.

    theta : (Q, r+1, G*Cp) in the rotated (truncated to r axes), globally standardized basis.
    Returns coef (Q, V, K, d, Cp) and intercept (Q, V, K, Cp) so that logits = x @ coef + intercept.
    """
    th = theta.to(torch.float64).reshape(Q, r + 1, V * K, Cp)
    u = th[:, :r] * keep[:, :, None, None]
    w_std = torch.einsum("qdk,qkgc->qdgc", evecs, u)  # (Q, d, G, Cp)
    scale = torch.where(const, torch.zeros_like(sd), 1.0 / sd)[:, 0, :, None, None]  # (Q, d, 1, 1)
    w_raw = w_std * scale
    b_raw = th[:, r] - torch.einsum("qd,qdgc->qgc", mu[:, 0], w_raw)
    coef = w_raw.permute(0, 2, 1, 3).reshape(Q, V, K, d, Cp)
    icpt = b_raw.reshape(Q, V, K, Cp)
    return coef.cpu().numpy().astype(np.float64), icpt.cpu().numpy().astype(np.float64)


def _train_variance(torch, Xs, m, raw_pen=None):
    """Penalty weight of each globally standardized feature, (Q, G, d), from masks m (Q, G, n).

    Standardized decoder (``raw_pen`` None): the training-fold variance. A feature (nearly) constant
    within a training fold (variance < 1e-4 of its all-sample variance, e.g. a sparse ReLU unit
    active only on held-out trials) cannot be standardized by that fold; as scikit-learn's
    StandardScaler does, it keeps its scale (weight 1 here) instead of dividing by ~0, so its
    weight is penalized and held-out logits stay bounded. Raw decoder: ``raw_pen`` (Q, d), the same
    for every fold.
    """
    mf = m.to(Xs.dtype)
    ntr = mf.sum(-1, keepdim=True).clamp_min(1)
    if raw_pen is not None:
        return raw_pen[:, None, :].expand(m.shape[0], m.shape[1], raw_pen.shape[-1]), ntr
    m1 = (mf @ Xs) / ntr
    m2 = (mf @ (Xs * Xs)) / ntr
    var = m2 - m1 * m1
    return torch.where(var < 1e-4, torch.ones_like(var), var), ntr


def _logits_to_ce(torch, logits, y, pres, binary):
    """Per-sample CE (nats) and prediction; logits (Q, n, G, Cp), y (Q, G, n, C), pres (Q, G, C)."""
    if binary:
        z = logits[..., 0]  # (Q, n, G)
        y1 = y[..., 1].transpose(1, 2)  # (Q, n, G)
        ce = torch.nn.functional.softplus(z) - y1 * z
        pred = (z > 0).long()
        return ce.transpose(1, 2), pred.transpose(1, 2)
    mask = torch.where(pres, 0.0, -1e4).to(logits.dtype)[:, None]  # (Q, 1, G, C)
    lp = torch.log_softmax(logits + mask, -1)
    ce = -(lp * y.permute(0, 2, 1, 3)).sum(-1)
    pred = lp.argmax(-1)
    return ce.transpose(1, 2), pred.transpose(1, 2)


def _fit_linear(torch, Z1, Xs, evecs, keep, m, y, alpha, pres, est, bound, raw_pen=None):
    """Batched L2-penalized multinomial/binomial logistic regression.

    Parameters
    ----------
    Z1 : (Q, n, r+1) rotated standardized features (r kept principal axes) plus a column of ones.
    Xs : (Q, n, d) standardized (unrotated) features, for the training-fold variances.
    evecs : (Q, d, r) rotation (columns = kept principal axes).
    keep : (Q, r+1) bool, axes with non-zero variance (and the intercept).
    m : (Q, G, n) bool training masks; y : (Q, G, n, C) one-hot labels; alpha : (Q, G);
    pres : (Q, G, C) classes present in the problem.
    bound : (Q, r+1) diagonal (in this basis) of the Gram matrix of all samples used by the
        problem, which bounds every training subset's Gram matrix.

    Returns
    -------
    dict with ``ce`` (Q, G, n) per-sample CE in nats for *all* samples, ``pred`` (Q, G, n),
    ``theta`` (Q, d+1, G*Cp).

    Minimizes ``sum_{i in train} CE_i + alpha/2 * sum_j var_train_j * w_j^2`` (w on the globally
    standardized features, i.e. alpha/2 ||w'||^2 on fold-standardized ones) with a free intercept,
    by Nesterov's accelerated gradient preconditioned by a diagonal (in the PCA basis) upper bound
    of the Hessian (Boehning's bound with the Gram matrix of all used samples), with gradient-based adaptive restart.
    """
    Q, n, d1 = Z1.shape
    r = d1 - 1  # rotated (truncated) axes
    G = m.shape[1]
    C = y.shape[-1]
    binary = C == 2
    Cp = 1 if binary else C
    dt = Z1.dtype
    GC = G * Cp
    mf = m.to(dt)
    var, ntr = _train_variance(torch, Xs, m, raw_pen)  # (Q, G, d), (Q, G, 1)
    if raw_pen is None:
        # penalty diagonal in the rotated basis: sum_j V_jk^2 var_j (the training-fold variances of
        # standardized features are close to 1, so V' diag(var) V is nearly diagonal)
        pen_diag = var @ (evecs * evecs)  # (Q, G, r)
    else:
        # raw features: the penalty weights 1/sd_j^2 span orders of magnitude, V' diag(p) V is far
        # from diagonal and its diagonal is no bound; its Gershgorin row sums are (same for all fits)
        pen = evecs.transpose(1, 2) @ (raw_pen[..., None] * evecs)  # (Q, r, r)
        pen_diag = pen.abs().sum(-1)[:, None, :].expand(Q, G, pen.shape[-1])
    # Boehning: Hessian of the CE <= c * Z_tr' Z_tr <= c * diag(bound) (bound: Gram of all used samples)
    curv = (0.25 if binary else 0.5) * bound[:, None, :].expand(Q, G, d1)  # (Q, G, r+1)
    a = alpha[..., None]
    precond = curv.clone()
    precond[..., :r] = precond[..., :r] + a * pen_diag
    precond = 1.0 / precond.clamp_min(1e-12)
    precond = precond * keep[:, None, :]
    precond = precond.transpose(1, 2)[..., None].expand(Q, d1, G, Cp).reshape(Q, d1, GC).contiguous()
    # initial intercept: log prior of the training fold
    cnt = (mf[..., None] * y).sum(2)  # (Q, G, C)
    logp = torch.log((cnt + 1e-3) / (cnt.sum(-1, keepdim=True) + 1e-3 * C))
    theta = torch.zeros(Q, d1, G, Cp, dtype=dt, device=Z1.device)
    if binary:
        theta[:, r, :, 0] = logp[..., 1] - logp[..., 0]
    else:
        theta[:, r] = torch.where(pres, logp - logp.mean(-1, keepdim=True), torch.zeros_like(logp))
    theta = theta.reshape(Q, d1, GC)
    mT = mf.transpose(1, 2).contiguous()  # (Q, n, G)
    if binary:
        ym = (y[..., 1] * mf).transpose(1, 2).contiguous()  # (Q, n, G): label of class 1 on train
    else:
        ylab = y.permute(0, 2, 1, 3).contiguous()  # (Q, n, G, C)
        pmask = torch.where(pres, 0.0, -1e4).to(dt)[:, None]  # (Q, 1, G, C)
    # alpha * penalty weight, (Q, d, G*Cp)
    va = (var * a).transpose(1, 2)[..., None].expand(Q, var.shape[-1], G, Cp).reshape(Q, -1, GC).contiguous()
    evecsT = evecs.transpose(1, 2).contiguous()
    Z1T = Z1.transpose(1, 2).contiguous()
    rms = torch.sqrt((Z1 * Z1).mean(1))[..., None]  # (Q, r+1, 1)

    def grad(th):
        lg = torch.bmm(Z1, th)  # (Q, n, G*Cp)
        if binary:
            res = torch.sigmoid_(lg).mul_(mT).sub_(ym)
        else:
            res = torch.softmax(lg.reshape(Q, n, G, Cp) + pmask, -1).sub_(ylab).mul_(mT[..., None]).reshape(Q, n, GC)
        g = torch.bmm(Z1T, res)  # (Q, r+1, G*Cp)
        if r:
            w = torch.bmm(evecs, th[:, :r]).mul_(va)  # (Q, d, G*Cp): penalty gradient on std. features
            g[:, :r] += torch.bmm(evecsT, w)
        return g

    prev = theta
    yk = theta
    t = torch.ones(Q, 1, GC, dtype=dt, device=Z1.device)
    for it in range(est.max_iter):
        g = grad(yk)
        new = yk - precond * g
        step = new - prev
        # adaptive restart where the momentum points uphill
        restart = (g * step).sum(1, keepdim=True) > 0
        t_new = 0.5 * (1 + torch.sqrt(1 + 4 * t * t))
        beta = torch.where(restart, 0.0, (t - 1) / t_new)
        t = torch.where(restart, 1.0, t_new)
        yk = new + beta * step
        prev = new
        if it % 10 == 9:
            change = (step.abs() * rms).amax()
            if float(change) < est.tol:
                break
    theta = prev
    lg = (Z1 @ theta).reshape(Q, n, G, Cp)
    ce, pred = _logits_to_ce(torch, lg, y, pres, binary)
    return {"ce": ce, "pred": pred, "theta": theta}


def _fit_mlp(torch, Z1, Xs, evecs, keep, m, y, alpha, pres, est, bound=None, raw_pen=None):
    """Batched one-hidden-layer (tanh) decoders, full-batch Adam, L2 on both weight layers.

    Same interface as :func:`_fit_linear` (no ``theta`` returned). The first layer acts on the
    globally standardized features with the training-fold-variance-weighted penalty, which is the
    fold-standardized model (see the module docstring).
    """
    Q, n, d1 = Z1.shape
    d = d1 - 1
    G = m.shape[1]
    C = y.shape[-1]
    binary = C == 2
    Cp = 1 if binary else C
    H = est.hidden
    dt = Z1.dtype
    dev = Z1.device
    mf = m.to(dt)
    var, ntr = _train_variance(torch, Xs, m, raw_pen)  # (Q, G, d)
    gen = torch.Generator(device="cpu").manual_seed(int(est.seed) + 1)
    W1 = (torch.randn(Q, G, d, H, generator=gen, dtype=torch.float64) / math.sqrt(d)).to(dt).to(dev)
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
    Xg = Xs[:, None]  # (Q, 1, n, d)
    pmask = torch.where(pres, 0.0, -1e4).to(dt)[:, :, None, :]  # (Q, G, 1, C)
    a = alpha[..., None, None]
    var4 = var[..., None]  # (Q, G, d, 1)

    def forward():
        h = torch.tanh(Xg @ W1 + b1)  # (Q, G, n, H)
        return h @ W2 + b2  # (Q, G, n, Cp)

    def per_sample_ce(lg):
        if binary:
            z = lg[..., 0]
            return torch.nn.functional.softplus(z) - y[..., 1] * z, (z > 0).long()
        lp = torch.log_softmax(lg + pmask, -1)
        return -(lp * y).sum(-1), lp.argmax(-1)

    steps = max(1, int(est.max_iter))
    for _ in range(steps):
        opt.zero_grad()
        ce, _ = per_sample_ce(forward())
        loss = (ce * mf).sum(-1) / ntr[..., 0] + 0.5 * (a[..., 0, 0] / ntr[..., 0]) * (
            (W1 * W1 * var4).sum((-1, -2)) + (W2 * W2).sum((-1, -2))
        )
        loss.sum().backward()
        opt.step()
    with torch.no_grad():
        ce, pred = per_sample_ce(forward())
    return {"ce": ce.detach(), "pred": pred}


# --------------------------------------------------------------------------------------------------
# xarray front end (search-light style: loop the estimator over every remaining dimension)
# --------------------------------------------------------------------------------------------------


def _as_label_dict(labels) -> tuple[dict[str, xr.DataArray], bool]:
    """Labels as {name: DataArray}, and whether a `variable` dim is wanted."""
    if isinstance(labels, xr.DataArray):
        return {labels.name if labels.name is not None else "label": labels}, False
    if isinstance(labels, xr.Dataset):
        return {str(k): v for k, v in labels.data_vars.items()}, True
    if isinstance(labels, Mapping):
        return {str(k): v for k, v in labels.items()}, True
    if isinstance(labels, Sequence) and all(isinstance(v, xr.DataArray) for v in labels):
        return {str(v.name): v for v in labels}, True
    raise UserError(f"labels must be a DataArray, a Dataset or a mapping of DataArrays; got {type(labels).__name__}")


def _prepare(activity: xr.DataArray, labels, sample_dim: str, feature_dim: str):
    if not isinstance(activity, xr.DataArray):
        raise UserError(f"activity must be an xarray.DataArray; got {type(activity).__name__}")
    for dim, what in ((sample_dim, "sample_dim"), (feature_dim, "feature_dim")):
        if dim not in activity.dims:
            raise UserError(f"{what} {dim!r} is not a dimension of activity {activity.dims}")
    lab, multi = _as_label_dict(labels)
    extra = [dd for dd in activity.dims if dd not in (sample_dim, feature_dim)]
    act = activity.transpose(*extra, sample_dim, feature_dim)
    shape_extra = tuple(act.sizes[dd] for dd in extra)
    P = int(np.prod(shape_extra)) if extra else 1
    n = act.sizes[sample_dim]
    X = np.asarray(act.values, dtype=np.float32).reshape(P, n, act.sizes[feature_dim])
    ys = []
    for name, da in lab.items():
        if not isinstance(da, xr.DataArray):
            raise UserError(f"label {name!r} must be an xarray.DataArray; got {type(da).__name__}")
        if sample_dim not in da.dims:
            raise UserError(f"label {name!r} must have the sample dim {sample_dim!r}; its dims are {da.dims}")
        bad = [dd for dd in da.dims if dd not in extra and dd != sample_dim]
        if bad:
            raise UserError(f"label {name!r} has dims {bad} that activity does not have (besides {feature_dim!r})")
        if da.sizes[sample_dim] != n:
            raise UserError(f"label {name!r} has {da.sizes[sample_dim]} samples along {sample_dim!r}; activity has {n}")
        da = da.drop_vars([c for c in da.coords if c not in da.dims], errors="ignore")
        for dd in extra:
            if dd not in da.dims:
                da = da.expand_dims({dd: act.sizes[dd]})
        vals = np.asarray(da.transpose(*extra, sample_dim).values)
        if vals.dtype.kind not in "iufb":
            raise UserError(f"label {name!r} must hold integer class indices; got dtype {vals.dtype}")
        ys.append(vals.astype(np.float64).reshape(P, n))
    y = np.stack(ys, axis=1)  # (P, V, n)
    # a sample whose activity is not finite in a problem (e.g. a trial that had ended by that time
    # step in a closed-loop rollout, stored as NaN) is missing for that problem
    y[np.broadcast_to(~np.isfinite(X).all(-1)[:, None, :], y.shape)] = np.nan
    coords = {dd: act.coords[dd] for dd in extra if dd in act.coords}
    return X, y, extra, shape_extra, list(lab), multi, coords, act


def decoding_scores(
    activity: xr.DataArray,
    labels,
    *,
    sample_dim: str = "trial",
    feature_dim: str = "unit",
    decoder: str = "linear",
    folds: int = 5,
    seed: int = 0,
    l2_grid: Sequence[float] | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    max_iter: int = 150,
    progress=None,
    standardize: bool = True,
) -> xr.Dataset:
    """Cross-validated usable information, its fold spread and decoding accuracy.

    Parameters
    ----------
    activity : DataArray (..., sample_dim, ..., feature_dim)
        Any other dims (epoch, time, layer...) index separate decoding problems.
    labels : DataArray (sample_dim[, some of activity's other dims]) or Dataset / mapping of them
        Integer class indices; < 0 or NaN = missing (dropped for that problem). A mapping gives
        the result a ``variable`` dim.
    sample_dim, feature_dim : str
    decoder : {"linear", "mlp"}
    folds : int
    seed : int
    l2_grid, device, dtype, max_iter, standardize
        See :class:`UsableInformation` (``standardize=False``: raw-feature decoder).
    progress : callable, optional
        Called with the number of activity problems finished after each chunk (e.g. a tqdm's
        ``update``); the total is the product of activity's dims other than sample/feature.

    Returns
    -------
    Dataset with dims ([variable,] *other dims of activity) [+ fold]:
        ``information`` (bits), ``information_sd`` (bits, s.d. over folds), ``accuracy``,
        ``ce_prior``, ``ce_decoder`` (bits), ``n_samples``, ``l2`` (fold).
    """
    X, y, extra, shape_extra, names, multi, coords, act = _prepare(activity, labels, sample_dim, feature_dim)
    est = UsableInformation(
        decoder=decoder, folds=folds, l2_grid=l2_grid, seed=seed, device=device, dtype=dtype, max_iter=max_iter,
        standardize=standardize,
    ).fit(X, y, progress=progress)
    V = len(names)

    def shaped(a, more=()):
        a = np.asarray(a).reshape(shape_extra + (V,) + more)
        a = np.moveaxis(a, len(shape_extra), 0)
        return a if multi else a[0]

    dims = (["variable"] if multi else []) + list(extra)
    out = xr.Dataset(
        {
            "information": (dims, shaped(est.information_)),
            "information_sd": (dims, shaped(est.information_sd_)),
            "accuracy": (dims, shaped(est.accuracy_)),
            "ce_prior": (dims, shaped(est.ce_prior_)),
            "ce_decoder": (dims, shaped(est.ce_decoder_)),
            "n_samples": (dims, shaped(est.n_samples_)),
            "l2": (dims + ["fold"], shaped(est.l2_, (folds,))),
        },
        coords=coords,
    )
    if multi:
        out = out.assign_coords(variable=names)
    for v in ("information", "information_sd", "ce_prior", "ce_decoder"):
        out[v].attrs["units"] = "bits"
    out["accuracy"].attrs["units"] = "fraction correct (held-out)"
    out.attrs.update(decoder=decoder, folds=int(folds), seed=int(seed), standardize=int(bool(standardize)),
                     estimator="usable information, nested CV")
    return out


def usable_information(
    activity: xr.DataArray,
    labels,
    *,
    sample_dim: str = "trial",
    feature_dim: str = "unit",
    decoder: str = "linear",
    folds: int = 5,
    seed: int = 0,
    **kwargs: Any,
) -> xr.DataArray:
    """Usable information (bits) of ``activity`` about ``labels`` over every remaining dimension.

    A thin wrapper around :func:`decoding_scores` (which also returns the fold spread and the
    accuracy): returns its ``information`` variable, dims ([variable,] *other dims of activity).

    Examples
    --------
    >>> info = usable_information(ds.hidden, ds.color)           # doctest: +SKIP
    >>> info.dims                                                 # doctest: +SKIP
    ('epoch', 'time')
    """
    ds = decoding_scores(
        activity, labels, sample_dim=sample_dim, feature_dim=feature_dim, decoder=decoder, folds=folds, seed=seed, **kwargs
    )
    da = ds["information"]
    da.name = "information"
    return da


def cross_temporal_information(
    activity: xr.DataArray,
    labels: xr.DataArray,
    *,
    time_dim: str = "time",
    sample_dim: str = "trial",
    feature_dim: str = "unit",
    folds: int = 5,
    seed: int = 0,
    **kwargs: Any,
) -> xr.DataArray:
    """Temporal generalization: information of a linear decoder trained at t and tested at t'.

    For each training time t the decoder of every outer fold (penalty chosen by nested CV at t) is
    applied to the *same held-out trials* of that fold at every test time t'; the held-out
    cross-entropy is compared with the training-fold prior's.

    Parameters
    ----------
    activity : DataArray (time_dim, sample_dim, feature_dim) (other dims are not allowed: select an
        epoch first).
    labels : DataArray (sample_dim) or (time_dim?, sample_dim) — missing < 0 / NaN.

    Returns
    -------
    DataArray (train_time, test_time), bits.
    """
    if not isinstance(activity, xr.DataArray) or set(activity.dims) != {time_dim, sample_dim, feature_dim}:
        dims = getattr(activity, "dims", None)
        raise UserError(
            f"activity must be a DataArray with exactly dims ({time_dim!r}, {sample_dim!r}, {feature_dim!r}); got {dims}"
        )
    if time_dim in labels.dims:
        raise UserError("cross-temporal labels must not vary over time")
    X, y, extra, shape_extra, names, multi, coords, act = _prepare(activity, labels, sample_dim, feature_dim)
    est = UsableInformation(decoder="linear", folds=folds, seed=seed, **kwargs).fit(X, y)
    T = X.shape[0]
    lab = _clean_labels(y[:1], folds)[0][0, 0]  # (n,)
    fold = est.folds_[0, 0]  # same labels at every t -> same folds
    valid = lab >= 0
    coef, icpt = est.coef_[:, 0], est.intercept_[:, 0]  # (T, K, d, Cp), (T, K, Cp)
    C = est.n_classes_
    out = np.full((T, T), np.nan)
    if (np.bincount(lab[valid], minlength=C) > 0).sum() < 2:
        out[:] = 0.0
    else:
        for k in range(folds):
            te = valid & (fold == k)
            tr = valid & (fold != k)
            cnt = np.bincount(lab[tr], minlength=C).astype(float)
            logprior = np.log(np.maximum(cnt / cnt.sum(), 1e-300))
            ce_prior = -logprior[lab[te]].sum()
            Xte = X[:, te].astype(np.float64)  # (T', m, d)
            for t in range(T):
                lg = np.einsum("smd,dc->smc", Xte, coef[t, k].astype(np.float64)) + icpt[t, k]
                if C == 2:
                    z = lg[..., 0]
                    ce = np.logaddexp(0, z) - (lab[te] == 1) * z
                else:
                    lg = lg - lg.max(-1, keepdims=True)
                    lse = np.log(np.exp(lg).sum(-1))
                    ce = lse - np.take_along_axis(lg, lab[te][None, :, None], -1)[..., 0]
                contrib = (ce_prior - ce.sum(-1)) / LN2
                out[t] = np.where(np.isnan(out[t]), 0.0, out[t]) + contrib
        out /= valid.sum()
    tcoord = act.coords[time_dim].values if time_dim in act.coords else np.arange(T)
    da = xr.DataArray(
        out,
        dims=("train_time", "test_time"),
        coords={"train_time": tcoord, "test_time": tcoord},
        name="cross_temporal_information",
        attrs={"units": "bits", "folds": int(folds), "seed": int(seed)},
    )
    return da
