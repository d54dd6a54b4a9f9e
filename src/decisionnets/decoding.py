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
  samples (they cannot appear in every training fold), with a warning. A problem left with < 2
  classes has no estimate: NaN bits, with a warning (a constant label is not "0 bits known", it
  is a question the data cannot answer), and so has a problem with no sample at all.
* **Inputs.** Features must be finite: a sample whose features are *all* NaN is missing (a
  closed-loop trial that had ended by that time step is stored so), any other NaN or inf is an
  error that counts the samples and features holding one. ``folds`` larger than the number of
  samples, or than the second-largest class of every problem (no problem could keep two classes),
  is refused before any fit.
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
  together as columns of one tensor program in torch (CPU or GPU): L-BFGS per column, preconditioned
  by a diagonal (Boehning curvature bound in the PCA basis), with its own line search and
  convergence test, finished columns leaving the batch; float32 matmuls by default. The float32 iteration can diverge on near-separable, badly
  scaled problems (seen on a trained CNN layer: -7e25 bits); every problem with a non-finite fold
  or one below -1 bit (impossible for a CV-chosen decoder) is refitted in float64.

Reported per problem: ``unreliable`` (a bit mask, 0 = none of :data:`UNRELIABLE_FLAGS`),
``information`` (bits, pooled over the held-out trials), ``information_sd``
(s.d. across the K folds of the per-fold information; above :data:`UNSTABLE_SD` bits the fit warns
that the estimate is unreliable), ``accuracy`` (held-out argmax accuracy),
``ce_prior`` / ``ce_decoder`` (bits), ``n_samples`` and the chosen ``l2`` (per fold).
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from decisionnets.decoders import DEFAULT_L2_GRID, Decoder, decoder_names, get_decoder, register_decoder
from decisionnets.errors import UserError

#: Fold-to-fold s.d. of information (bits) above which a problem's estimate is flagged as unreliable.
UNSTABLE_SD = 0.25

#: Bits of the ``unreliable`` mask of a decoding problem (0: a trustworthy estimate).
UNRELIABLE_FLAGS = {
    1: "fewer than 2 classes with >= folds samples (information is NaN)",
    2: "classes with fewer samples than folds were left out",
    4: "a fit did not converge",
    8: f"fold-to-fold s.d. of information above {UNSTABLE_SD} bits",
}

__all__ = [
    "UsableInformation",
    "UNRELIABLE_FLAGS",
    "usable_information",
    "decoding_scores",
    "cross_temporal_information",
    "DEFAULT_L2_GRID",
    "LN2",
    "Decoder",
    "get_decoder",
    "register_decoder",
    "decoder_names",
]

LN2 = math.log(2.0)


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


def _missing_samples(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``y`` (P, V, n) with the samples whose features are all NaN set missing; any other
    non-finite feature is a :class:`UserError` that counts the samples and features holding one."""
    finite = np.isfinite(X)
    if finite.all():
        return y
    empty = np.isnan(X).all(-1)  # (P, n): no features at all (e.g. a trial that had ended)
    bad = ~finite & ~empty[..., None]
    if bad.any():
        n_inf = int(np.isinf(X).sum())
        n_nan = int((np.isnan(X) & ~empty[..., None]).sum())
        samples = np.flatnonzero(bad.any(-1).any(0))
        units = np.flatnonzero(bad.any(1).any(0))
        raise UserError(
            f"features must be finite: {n_nan} NaN and {n_inf} inf values in {samples.size} of {X.shape[1]} "
            f"samples (trials, e.g. {samples[:5].tolist()}) and {units.size} of {X.shape[2]} features (units, "
            f"e.g. {units[:5].tolist()}); a sample whose features are all NaN counts as missing, any other "
            "must be dropped or imputed before decoding")
    y = np.array(y, dtype=np.float64)
    y[np.broadcast_to(empty[:, None, :], y.shape)] = np.nan
    return y


def _check_folds_fit(raw: np.ndarray, folds: int) -> None:
    """Refuse ``folds`` when no problem can keep two classes with >= ``folds`` samples each (all
    would be NaN, after K(K-1)/2 fits): the bound is the second-largest class of the problems."""
    if raw.size == 0 or raw.max() < 0:
        return
    counts = np.sort(_class_counts(raw, int(raw.max()) + 1), axis=-1)  # (P, V, C) ascending
    if counts.shape[-1] < 2:
        return
    second = counts[..., -2]
    has_two = second > 0
    if has_two.any() and (second[has_two] < folds).all():
        best = int(second[has_two].max())
        raise UserError(f"folds={folds} is larger than the second-largest class of every decoding problem (at most "
                        f"{best} samples): no problem keeps two classes to decode; "
                        + (f"use folds <= {best}" if best >= 3 else
                           "record more trials per class (e.g. record.n_per_condition) or merge classes (bins)"))


def _class_warnings(few, dropped, raw, labels, folds, where) -> list[str]:
    """Messages for the problems with fewer than 2 usable classes and those that lost classes,
    one per variable and kind, naming the problems (``where(p, v)``) and the class counts."""
    P, V = few.shape
    out = []
    for v in range(V):
        for mask, what in ((few[:, v], "is NaN: fewer than 2 classes have >= folds={K} samples"),
                           (dropped[:, v], "leaves out classes with fewer than folds={K} samples")):
            idx = np.flatnonzero(mask)
            if idx.size == 0:
                continue
            p = int(idx[0])
            vals, cnt = np.unique(raw[p, v][raw[p, v] >= 0], return_counts=True)
            counts = ", ".join(f"{int(a)}: {int(c)}" for a, c in zip(vals, cnt)) or "none"
            name = where(p, v) if where is not None else f"problem {p}, variable {v}"
            more = f" (and {idx.size - 1} more of {P} problems)" if idx.size > 1 else ""
            out.append(f"information about {name}{more} {what.format(K=folds)} (samples per class: {counts}); "
                       "the problem is flagged in `unreliable`")
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
    decoder : str or :class:`decisionnets.decoders.Decoder`
        Decoder family: a registered name (``"linear"``, ``"linear-raw"``, ``"mlp"``, ``"sgd-mlp"``,
        ``"sgd-linear"``, or one added with :func:`decisionnets.decoders.register_decoder`) or a
        Decoder object. See :mod:`decisionnets.decoders` for the question each family answers.
    folds : int
        Number K of stratified folds (>= 3; the inner CV uses the other K-1 folds).
    l2_grid : sequence of float, optional
        Candidate penalties alpha (objective ``sum_i CE_i + alpha/2 ||w||^2``) of a named family
        with a penalty; default :data:`DEFAULT_L2_GRID`.
    seed : int
        Seed of the fold assignment (and of the decoders' random initialisation / dropout).
    device : str
        torch device ("cpu", "cuda").
    dtype : {"float32", "float64"}
        Precision of the large matmuls (the PCA is always float64).
    max_iter : int, optional
        Iteration budget of a named family (linear: accelerated gradient before the float64 refit
        of unconverged fits; mlp: Adam steps); None: the family's default.
    tol : float, optional
        Convergence threshold of the linear families (RMS change of a training logit per iteration).
    hidden : int
        Hidden units of the ``mlp`` decoder.
    max_chunk_bytes : int
        Memory budget per chunk of problems.
    standardize : bool
        Kept for compatibility: ``decoder="linear", standardize=False`` is ``decoder="linear-raw"``.
    split : {"kfold", "holdout"}
        ``"kfold"`` (default): every trial is predicted once by a decoder trained on the other K-1
        folds. ``"holdout"``: one stratified split, a fraction ``train_fraction`` of the trials for
        training and the rest for testing (the authors' 25 % / 75 % with ``train_fraction=0.25``);
        only for decoders without a penalty grid (no nested CV on one split).
    train_fraction : float
        Training fraction of ``split="holdout"``; 1/train_fraction must be an integer (>= 2).

    Attributes
    ----------
    decoder_ : Decoder
        The decoder object used.
    information_ : ndarray (P, V)
        Usable information in bits.
    information_folds_ : ndarray (P, V, K')
        Per-outer-fold information in bits (K' = K, or 1 for the holdout split).
    information_sd_ : ndarray (P, V)
        S.d. across folds of the per-fold information.
    accuracy_ : ndarray (P, V)
        Held-out decoding accuracy.
    ce_prior_, ce_decoder_ : ndarray (P, V)
        Held-out cross-entropies (bits) of the training-fold prior and of the decoder.
    l2_ : ndarray (P, V, K')
        Penalty chosen for each outer fold (NaN for decoders without one).
    converged_ : ndarray (P, V) bool
        False where some fit of the problem (any inner or outer fit) did not converge even after
        its refit, or diverged: the number is then not to be trusted.
    n_samples_ : ndarray (P, V)
        Samples used (non-missing labels of classes with >= K samples).
    folds_ : ndarray (P, V, n)
        Fold of each sample (-1: not used).
    n_classes_ : int
    coef_ : ndarray (P, V, K', d, C') or None
        Linear decoders in raw feature units (C' = 1 for two classes: logit of class 1).
    intercept_ : ndarray (P, V, K', C') or None
    """

    def __init__(
        self,
        decoder="linear",
        folds: int = 5,
        l2_grid: Sequence[float] | None = None,
        seed: int = 0,
        device: str = "cpu",
        dtype: str = "float32",
        max_iter: int | None = None,
        tol: float | None = None,
        hidden: int = 32,
        max_chunk_bytes: int = 2**28,
        standardize: bool = True,
        split: str = "kfold",
        train_fraction: float = 0.25,
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
        self.split = split
        self.train_fraction = train_fraction

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
        return self._fit(X, y, progress)

    def _fit(self, X, y, progress=None, where=None) -> "UsableInformation":
        """:meth:`fit`; ``where(p, v)`` names problem p's variable v in the warnings (the xarray
        front end gives the variable and the coordinates, e.g. ``'choice' at epoch=0, time=300``)."""
        torch = _torch()
        self._check_params()
        dec = self._make_decoder()
        self.decoder_ = dec
        if self.split == "holdout" and dec.penalties is not None:
            raise UserError(f"split='holdout' is for decoders without a penalty grid (sgd-mlp, sgd-linear); "
                            f"{dec.name!r} chooses its penalty by nested CV, which needs split='kfold'")
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
        holdout = self.split == "holdout"
        K = int(round(1.0 / self.train_fraction)) if holdout else self.folds
        KO = 1 if holdout else K  # outer fits per problem
        y = _missing_samples(X, y)
        raw, _ = _clean_labels(y, 1)  # every class, before the rare ones are left out
        _check_folds_fit(raw, K)  # before any fit: K(K-1)/2 pair fits that could not keep two classes
        if K > n:
            raise UserError(f"folds={K} is larger than the number of samples ({n}); use folds <= {n}")
        labels, C = _clean_labels(y, K)
        fold = _stratified_folds(labels, K, C, self.seed)
        self.n_classes_ = max(C, 2)
        self.folds_ = fold
        self.n_samples_ = (labels >= 0).sum(-1)

        info_f = np.full((P, V, KO), np.nan)
        self.information_ = np.full((P, V), np.nan)
        self.accuracy_ = np.full((P, V), np.nan)
        self.ce_prior_ = np.full((P, V), np.nan)
        self.ce_decoder_ = np.full((P, V), np.nan)
        self.l2_ = np.full((P, V, KO), np.nan)
        self.converged_ = np.ones((P, V), dtype=bool)
        Cp = 1 if self.n_classes_ == 2 else self.n_classes_
        self.coef_ = None
        self.intercept_ = None

        n_cols = V * max(K * (K - 1) // 2 * len(dec.penalties), K) if dec.penalties is not None else V * KO
        per_problem = 8 * n * (d + 1) * 3 + n_cols * dec.column_bytes(n, d, self.n_classes_)
        chunk = max(1, min(P, int(self.max_chunk_bytes // max(per_problem, 1))))
        for start in range(0, P, chunk):
            sl = slice(start, min(P, start + chunk))
            res = _fit_chunk(torch, X[sl], labels[sl], fold[sl], self.n_classes_, K, dec, self, holdout)
            if self.dtype == "float32":
                self._refit_diverged(torch, res, X[sl], labels[sl], fold[sl], K, dec, holdout)
            info_f[sl] = res["info_folds"]
            self.information_[sl] = res["information"]
            self.accuracy_[sl] = res["accuracy"]
            self.ce_prior_[sl] = res["ce_prior"]
            self.ce_decoder_[sl] = res["ce_decoder"]
            self.l2_[sl] = res["l2"]
            self.converged_[sl] = res["converged"]
            if res.get("coef") is not None:
                if self.coef_ is None:
                    self.coef_ = np.full((P, V, KO, d, Cp), np.nan)
                    self.intercept_ = np.full((P, V, KO, Cp), np.nan)
                self.coef_[sl] = res["coef"]
                self.intercept_[sl] = res["intercept"]
            if progress is not None:
                progress(sl.stop - sl.start)
        self.information_folds_ = info_f
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            sd = np.nanstd(info_f, axis=-1)
        self.information_sd_ = np.where(np.isfinite(self.information_), sd, np.nan)
        unstable = np.nan_to_num(self.information_sd_, nan=0.0) > UNSTABLE_SD
        if unstable.any():
            warnings.warn(
                f"{int(unstable.sum())} of {unstable.size} decoding problems ({dec.name}) have a fold-to-fold s.d. "
                f"of information above {UNSTABLE_SD} bits (largest {float(np.nanmax(self.information_sd_)):.2f}): their "
                "estimates are unreliable. Causes: too few trials for the units, or, with the standardized "
                "'linear' decoder, units active on a handful of trials that standardizing blows up (compare "
                "decoder='linear-raw'); see information_sd_ / the `information_sd` variable",
                RuntimeWarning,
                stacklevel=2,
            )
        if not self.converged_.all():
            warnings.warn(self._not_converged_message(dec, X), RuntimeWarning, stacklevel=2)
        # the problems whose estimate is not to be trusted, and why (UNRELIABLE_FLAGS)
        n_raw = (_class_counts(raw, max(C, 1)) > 0).sum(-1) if raw.size else np.zeros((P, V), int)
        self.n_classes_used_ = (_class_counts(labels, max(C, 1)) > 0).sum(-1) if labels.size else np.zeros((P, V), int)
        few = self.n_classes_used_ < 2
        dropped = (n_raw > self.n_classes_used_) & ~few
        self.unreliable_ = (1 * few + 2 * dropped + 4 * ~self.converged_ + 8 * unstable).astype(np.int8)
        self.warnings_ = _class_warnings(few, dropped, raw, labels, K, where)
        for msg in self.warnings_:
            warnings.warn(msg, RuntimeWarning, stacklevel=3)
        return self

    def _not_converged_message(self, dec, X) -> str:
        """The warning for problems whose fits did not converge, with the input scale and, for the
        fixed-budget SGD decoders, the likely cause (a learning rate too large for that scale)."""
        bad = ~self.converged_  # (P, V), some True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN inputs
            scale = float(np.nanmax(np.abs(X[bad.any(axis=1)])))
        msg = (f"{int(bad.sum())} of {bad.size} decoding problems did not converge ({dec.name}; their inputs reach "
               f"|x| = {scale:.3g})")
        if dec.penalties is None:  # fixed-budget SGD: a non-finite or < -1 bit held-out fit is a diverged run
            msg += (f": the fixed-step SGD diverged (non-finite or < -1 bit held-out fit, also in float64). This recipe "
                    f"does not standardize, and lr {getattr(dec, 'lr', '?')} is too large for units of that scale; "
                    "their estimates are not usable (NaN where the loss is non-finite). Pass a decoder with a smaller step (e.g. "
                    f"get_decoder({dec.name!r}, lr=0.005)) or compare the converged 'linear-raw'")
        return msg + "; see converged_ / the `converged` variable"

    # ---------------------------------------------------------------- private
    def _make_decoder(self):
        from decisionnets.decoders import Decoder, get_decoder

        if isinstance(self.decoder, Decoder):
            return self.decoder
        name = self.decoder
        if name == "linear" and not self.standardize:
            name = "linear-raw"
        kw: dict[str, Any] = {}
        if name in ("linear", "linear-raw", "mlp"):
            if self.l2_grid is not None:
                kw["l2_grid"] = self.l2_grid
            if self.max_iter is not None:
                kw["max_iter"] = self.max_iter
        if name in ("linear", "linear-raw") and self.tol is not None:
            kw["tol"] = self.tol
        if name == "mlp":
            kw["hidden"] = self.hidden
        return get_decoder(name, **kw)

    def _refit_diverged(self, torch, res, X, labels, fold, K, dec, holdout) -> None:
        """Refit in float64 the problems whose float32 fit diverged, in place in ``res``.

        A decoder whose L2 strength was chosen by cross-validation cannot lose a whole bit per
        held-out sample against the prior (the strongest penalty is the prior, nearly), so a fold
        below -1 bit, or a non-finite one, marks a diverged fit; if the float64 refit is no better,
        the problem is reported as not converged.
        """
        info = res["info_folds"]  # (Q, V, K)
        has = np.isfinite(res["ce_prior"])  # (Q, V)
        bad = ((~np.isfinite(info) | (info < -1.0)) & has[..., None]).any(axis=(1, 2))
        if not bad.any():
            return
        idx = np.flatnonzero(bad)
        est64 = copy.copy(self)
        est64.dtype = "float64"
        again = _fit_chunk(torch, X[idx], labels[idx], fold[idx], self.n_classes_, K, dec, est64, holdout)
        for key, value in again.items():
            if value is not None:
                res[key][idx] = value
        info2 = again["info_folds"]
        still = ((~np.isfinite(info2) | (info2 < -1.0)) & np.isfinite(again["ce_prior"])[..., None]).any(-1)
        res["converged"][idx] &= ~still

    def _check_params(self) -> None:
        from decisionnets.decoders import Decoder, decoder_names

        if not isinstance(self.decoder, Decoder) and self.decoder not in decoder_names():
            raise UserError(f"decoder must be one of {decoder_names()} or a Decoder object; got {self.decoder!r}")
        if not isinstance(self.folds, (int, np.integer)) or self.folds < 3:
            raise UserError(f"folds must be an integer >= 3 (nested CV uses K-1 inner folds); got {self.folds!r}")
        if not isinstance(self.hidden, (int, np.integer)) or isinstance(self.hidden, bool) or self.hidden < 1:
            raise UserError(f"hidden must be an integer >= 1 (units of the mlp decoder); got {self.hidden!r}")
        if self.max_iter is not None and (not isinstance(self.max_iter, (int, np.integer))
                                          or isinstance(self.max_iter, bool) or self.max_iter < 1):
            raise UserError(f"max_iter must be an integer >= 1 or None (the family's default); got {self.max_iter!r}")
        if self.tol is not None and (isinstance(self.tol, bool) or not isinstance(self.tol, (int, float, np.number))
                                     or not math.isfinite(self.tol) or self.tol <= 0):
            raise UserError(f"tol must be a finite number > 0 or None (the family's default); got {self.tol!r}")
        if self.dtype not in ("float32", "float64"):
            raise UserError(f"dtype must be 'float32' or 'float64'; got {self.dtype!r}")
        if self.l2_grid is not None and (len(self.l2_grid) == 0 or min(self.l2_grid) <= 0):
            raise UserError(f"l2_grid must be a non-empty sequence of positive numbers; got {self.l2_grid!r}")
        if self.split not in ("kfold", "holdout"):
            raise UserError(f"split must be 'kfold' or 'holdout'; got {self.split!r}")
        if self.split == "holdout":
            k = 1.0 / self.train_fraction if self.train_fraction > 0 else 0
            if not (0 < self.train_fraction <= 0.5 and abs(k - round(k)) < 1e-9):
                raise UserError(f"train_fraction must be 1/m for an integer m >= 2 (e.g. 0.25); got {self.train_fraction!r}")


def _fit_chunk(torch, X, labels, fold, C, K, dec, est, holdout) -> dict[str, np.ndarray]:
    """Fit all folds, penalties and variables of a chunk of problems (Q, n, d) with decoder ``dec``."""
    dev = torch.device(est.device)
    fdt = torch.float32 if est.dtype == "float32" else torch.float64
    Q, n, d = X.shape
    V = labels.shape[1]
    Cp = 1 if C == 2 else C
    Xt = torch.nan_to_num(torch.as_tensor(np.asarray(X), dtype=torch.float64, device=dev))
    used = torch.as_tensor((labels >= 0).any(1), device=dev)  # (Q, n): label-free sample mask
    prep = dec.prepare(Xt, used, dtype=fdt, device=dev)
    seed = int(est.seed)

    lab = torch.as_tensor(labels, device=dev)
    fol = torch.as_tensor(fold, device=dev)
    valid = lab >= 0
    onehot = torch.nn.functional.one_hot(lab.clamp_min(0), C).to(fdt) * valid[..., None]  # (Q,V,n,C)
    counts = onehot.sum(2)
    present = counts > 0
    n_present = present.sum(-1)
    conv = torch.ones(Q, V, dtype=torch.bool, device=dev)

    KO = 1 if holdout else K
    if dec.penalties is not None and not holdout:
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
            inner, convA, stA = _penalty_path(torch, dec, prep, trA, onehot, present, grid, inner_loss, seed)
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
        alphaB = alpha_k.reshape(Q, V * K)
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
    else:
        alpha_k = None
        alphaB = None
        initB = None

    # ---- phase B: outer fits (chosen penalty), scored on the held-out fold
    if holdout:  # train on fold 0, test on the others
        trB = (valid & (fol == 0))[:, :, None, :]
        test = (valid & (fol != 0))[:, :, None, :]
    else:
        ks = torch.arange(K, device=dev)
        trB = valid[:, :, None, :] & (fol[:, :, None, :] != ks[None, None, :, None])  # (Q, V, K, n)
        test = valid[:, :, None, :] & (fol[:, :, None, :] == ks[None, None, :, None])
    mB = trB.reshape(Q, V * KO, n)
    yB = onehot[:, :, None].expand(Q, V, KO, n, C).reshape(Q, V * KO, n, C)
    presB = present[:, :, None, :].expand(Q, V, KO, C).reshape(Q, V * KO, C)
    if initB is not None:
        fitB = dec.fit(prep, mB, yB, alphaB, presB, seed=seed + 1, init=initB)
    else:
        fitB = dec.fit(prep, mB, yB, alphaB, presB, seed=seed + 1)
    lpB = fitB.log_proba.reshape(Q, V, KO, n, C).to(torch.float64)
    conv &= fitB.converged.reshape(Q, V, KO).all(-1)
    ceB = -(lpB * onehot[:, :, None].to(torch.float64)).sum(-1)  # (Q, V, KO, n)
    predB = lpB.argmax(-1)

    testf = test.to(torch.float64)
    tr_counts = (trB[..., None].to(torch.float64) * onehot[:, :, None].to(torch.float64)).sum(3)  # (Q,V,KO,C)
    prior = tr_counts / tr_counts.sum(-1, keepdim=True).clamp_min(1)
    logprior = torch.log(prior.clamp_min(1e-300))
    lab_c = lab.clamp_min(0)
    ce_prior_s = -torch.gather(logprior, 3, lab_c[:, :, None, :].expand(Q, V, KO, n))
    n_test = testf.sum(-1)
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
    # one class: nothing to predict, and no estimate (NaN, flagged by the caller), not "0 bits"
    single = (npres == 1) & (Nn > 0)
    info = np.where(single, np.nan, info)
    info_folds = np.where(single[..., None], np.nan, info_folds)
    ce_p = np.where(single, np.nan, ce_p)
    ce_d = np.where(single, np.nan, ce_d)
    acc = np.where(single, np.nan, acc)
    empty = Nn == 0
    for a in (info, ce_p, ce_d, acc):
        a[empty] = np.nan
    info_folds[empty] = np.nan
    converged = conv.cpu().numpy() | single | empty
    if alpha_k is None:
        l2 = np.full((Q, V, KO), np.nan)
    else:
        l2 = alpha_k.to(torch.float64).cpu().numpy()
        l2 = np.where((npres >= 2)[..., None], l2, np.nan)
    out = dict(information=info, info_folds=info_folds, accuracy=acc, ce_prior=ce_p, ce_decoder=ce_d, l2=l2,
               converged=converged, coef=None, intercept=None)
    if fitB.coef is not None:
        out["coef"] = fitB.coef.reshape(Q, V, KO, d, Cp).cpu().numpy().astype(np.float64)
        out["intercept"] = fitB.intercept.reshape(Q, V, KO, Cp).cpu().numpy().astype(np.float64)
    return out



#: Rise of the inner CV loss (nats per held-out sample) at every outer fold that ends a variable's L2 path.
PATH_STOP_MARGIN = 1e-3


def _penalty_path(torch, dec, prep, trA, onehot, present, grid, inner_loss, seed):
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
        if vals.dtype.kind == "f":
            frac = np.isfinite(vals) & (np.mod(np.where(np.isfinite(vals), vals, 0), 1) != 0)
            if frac.any():
                raise UserError(f"label {name!r} is continuous (e.g. {vals[frac].flat[0]:.4g}), not class indices; "
                                f"decode it through bins (decisionnets analyze --bins {name}=K, or "
                                f"bin_label(...) / analyze_run(bins={{{name!r}: K}}))")
        ys.append(vals.astype(np.float64).reshape(P, n))
    y = np.stack(ys, axis=1)  # (P, V, n)
    # a sample whose activity is all NaN in a problem (e.g. a trial that had ended by that time
    # step in a closed-loop rollout) is missing for that problem; other NaN/inf: an error (the fit)
    coords = {dd: act.coords[dd] for dd in extra if dd in act.coords}
    return X, y, extra, shape_extra, list(lab), multi, coords, act


def decoding_scores(
    activity: xr.DataArray,
    labels,
    *,
    sample_dim: str = "trial",
    feature_dim: str = "unit",
    decoder="linear",
    folds: int = 5,
    seed: int = 0,
    l2_grid: Sequence[float] | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    max_iter: int | None = None,
    progress=None,
    standardize: bool = True,
    split: str = "kfold",
    train_fraction: float = 0.25,
    return_decoders: bool = False,
) -> xr.Dataset:
    """Cross-validated usable information, its fold spread, decoding accuracy and convergence.

    Parameters
    ----------
    activity : DataArray (..., sample_dim, ..., feature_dim)
        Any other dims (epoch, time, layer...) index separate decoding problems.
    labels : DataArray (sample_dim[, some of activity's other dims]) or Dataset / mapping of them
        Integer class indices; < 0 or NaN = missing (dropped for that problem). A mapping gives
        the result a ``variable`` dim.
    sample_dim, feature_dim : str
    decoder : str, Decoder, or a list of them
        Decoder family (see :mod:`decisionnets.decoders`); a list gives the result a ``decoder``
        dim (first), one family after another.
    folds : int
    seed : int
    l2_grid, device, dtype, max_iter, standardize, split, train_fraction
        See :class:`UsableInformation`.
    progress : callable, optional
        Called with the number of activity problems finished after each chunk (e.g. a tqdm's
        ``update``); the total is the product of activity's dims other than sample/feature (times
        the number of decoders).
    return_decoders : bool
        One linear decoder family only: also return the fitted outer-fold decoders in raw feature
        units, ``coef`` (..., fold, feature_dim, logit), ``intercept`` (..., fold, logit) (logit:
        1 for two classes, the logit of class 1; else one per class) and ``fold_assignment``
        (..., sample_dim; -1 = unused), e.g. for :func:`cross_temporal_information`.

    Returns
    -------
    Dataset with dims ([decoder,] [variable,] other dims of activity...) [+ fold]:
        ``information`` (bits), ``information_sd`` (bits, s.d. over folds), ``accuracy``,
        ``ce_prior``, ``ce_decoder`` (bits), ``n_samples``, ``converged`` (bool: False where a fit
        of the problem did not converge; such a number is not to be trusted), ``l2`` (fold;
        NaN for decoders without a penalty).
    """
    if isinstance(decoder, (list, tuple)):
        if not decoder:
            raise UserError("decoder list is empty; give at least one decoder name")
        if return_decoders:
            raise UserError(f"return_decoders=True takes one decoder family; got {list(decoder)}")
        parts = [
            decoding_scores(activity, labels, sample_dim=sample_dim, feature_dim=feature_dim, decoder=dd, folds=folds,
                            seed=seed, l2_grid=l2_grid, device=device, dtype=dtype, max_iter=max_iter,
                            progress=progress, standardize=standardize, split=split, train_fraction=train_fraction)
            for dd in decoder
        ]
        names = [p.attrs["decoder"] for p in parts]
        if len(set(names)) != len(names):
            raise UserError(f"decoder names must be unique; got {names}")
        descr = [p.attrs.get("decoder_description", "") for p in parts]
        out = xr.concat(parts, dim="decoder", join="outer", combine_attrs="drop_conflicts")
        out = out.assign_coords(decoder=names)
        out["decoder_description"] = ("decoder", descr)
        out.attrs["decoder"] = ",".join(names)
        out.attrs.pop("decoder_description", None)
        return out
    X, y, extra, shape_extra, names, multi, coords, act = _prepare(activity, labels, sample_dim, feature_dim)

    def where(p: int, v: int) -> str:  # problem p, variable v -> "'choice' at epoch=0, time=300"
        idx = np.unravel_index(p, shape_extra) if extra else ()
        at = ", ".join(f"{dd}={act[dd].values[i].item() if dd in act.coords else i}" for dd, i in zip(extra, idx))
        return f"{names[v]!r}" + (f" at {at}" if at else "")

    est = UsableInformation(
        decoder=decoder, folds=folds, l2_grid=l2_grid, seed=seed, device=device, dtype=dtype, max_iter=max_iter,
        standardize=standardize, split=split, train_fraction=train_fraction,
    )._fit(X, y, progress=progress, where=where)
    V = len(names)
    KO = est.l2_.shape[-1]

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
            "converged": (dims, shaped(est.converged_)),
            "unreliable": (dims, shaped(est.unreliable_)),
            "l2": (dims + ["fold"], shaped(est.l2_, (KO,))),
        },
        coords=coords,
    )
    if multi:
        out = out.assign_coords(variable=names)
    for v in ("information", "information_sd", "ce_prior", "ce_decoder"):
        out[v].attrs["units"] = "bits"
    out["accuracy"].attrs["units"] = "fraction correct (held-out)"
    out["converged"].attrs["long_name"] = "every fit of the problem converged (False: do not trust the number)"
    out["unreliable"].attrs.update(
        long_name="why the problem's estimate is not to be trusted (a bit mask; 0: none)",
        flag_masks=np.array(list(UNRELIABLE_FLAGS), dtype=np.int8),
        flag_meanings=" ".join(m.split(" (")[0].replace(" ", "_") for m in UNRELIABLE_FLAGS.values()))
    dec = est.decoder_
    if return_decoders:
        if est.coef_ is None:
            raise UserError(f"return_decoders=True needs a linear decoder family; {dec.name!r} has no coefficients")
        fdim = feature_dim
        out["coef"] = (dims + ["fold", fdim, "logit"], shaped(est.coef_, est.coef_.shape[2:]))
        out["intercept"] = (dims + ["fold", "logit"], shaped(est.intercept_, est.intercept_.shape[2:]))
        out["fold_assignment"] = (dims + [sample_dim], shaped(est.folds_, (est.folds_.shape[-1],)))
        if fdim in act.coords:
            out = out.assign_coords({fdim: act.coords[fdim].values})
    out.attrs.update(decoder=dec.name, decoder_description=dec.describe(), folds=int(folds), seed=int(seed),
                     scale_invariant=int(bool(dec.scale_invariant)), split=str(split),
                     estimator="usable information, nested CV" if dec.penalties is not None and split == "kfold"
                     else f"usable information, {split} split")
    if est.warnings_:
        out.attrs["warnings"] = json.dumps(est.warnings_)
    return out


def usable_information(
    activity: xr.DataArray,
    labels,
    *,
    sample_dim: str = "trial",
    feature_dim: str = "unit",
    decoder="linear",
    folds: int = 5,
    seed: int = 0,
    **kwargs: Any,
) -> xr.DataArray:
    """Usable information (bits) of ``activity`` about ``labels`` over every remaining dimension.

    A thin wrapper around :func:`decoding_scores` (which also returns the fold spread, the
    accuracy and the ``converged`` flag): returns its ``information`` variable, dims
    ([decoder,] [variable,] other dims of activity...). ``decoder``: a registered name
    (:func:`decisionnets.decoders.decoder_names`), a Decoder object, or a list of them. Where a fit
    did not converge a RuntimeWarning is raised (see ``decoding_scores(...)["converged"]``).

    Examples
    --------
    >>> info = usable_information(ds.hidden, ds.color)           # doctest: +SKIP
    >>> info.dims                                                 # doctest: +SKIP
    ('epoch', 'time')
    >>> usable_information(ds.hidden, ds.color, decoder=["linear", "sgd-mlp"])  # doctest: +SKIP
    """
    ds = decoding_scores(
        activity, labels, sample_dim=sample_dim, feature_dim=feature_dim, decoder=decoder, folds=folds, seed=seed, **kwargs
    )
    da = ds["information"]
    da.name = "information"
    return da


def cross_temporal_information(
    activity: xr.DataArray,
    labels,
    *,
    time_dim: str = "time",
    sample_dim: str = "trial",
    feature_dim: str = "unit",
    folds: int = 5,
    seed: int = 0,
    decoders: xr.Dataset | None = None,
    **kwargs: Any,
) -> xr.DataArray:
    """Temporal generalization: information of a linear decoder trained at t and tested at t'.

    For each training time t the decoder of every outer fold (penalty chosen by nested CV at t) is
    fitted once and applied to that fold's held-out trials at every test time t'; the held-out
    cross-entropy is compared with the training-fold prior's. The diagonal (t' = t) is the usable
    information at t (:func:`usable_information` with the same folds, seed and decoder). Every
    other dim of ``activity`` (e.g. ``epoch``) indexes separate matrices, fitted in one batch.

    Parameters
    ----------
    activity : DataArray (..., time_dim, sample_dim, feature_dim)
        Other dims (e.g. ``epoch``) give one matrix each.
    labels : DataArray (sample_dim[, other dims of activity]) or a Dataset / mapping of them
        Integer class indices, missing < 0 / NaN; must not vary over ``time_dim``. A mapping gives
        the result a ``variable`` dim.
    time_dim, sample_dim, feature_dim : str
    folds, seed : int
    decoders : Dataset, optional
        The fitted decoders of this very activity and these labels (``coef``, ``intercept``,
        ``fold_assignment`` from :func:`decoding_scores` with ``return_decoders=True``, with the
        same folds, seed and the ``linear`` decoder): they are reused, nothing is fitted.
    **kwargs
        Passed to :class:`UsableInformation` (``device``, ``dtype``, ``l2_grid``...).

    Returns
    -------
    DataArray ([variable,] ..., train_time, test_time), bits.
    """
    if not isinstance(activity, xr.DataArray) or not {time_dim, sample_dim, feature_dim} <= set(activity.dims):
        dims = getattr(activity, "dims", None)
        raise UserError(
            f"activity must be a DataArray with dims ({time_dim!r}, {sample_dim!r}, {feature_dim!r}) (and any "
            f"others, e.g. epoch); got {dims}"
        )
    lab_dict, multi = _as_label_dict(labels)
    for name, da in lab_dict.items():
        if isinstance(da, xr.DataArray) and time_dim in da.dims:
            raise UserError(f"cross-temporal labels must not vary over time; label {name!r} has dims {da.dims}")
    others = [dd for dd in activity.dims if dd not in (time_dim, sample_dim, feature_dim)]
    act = activity.transpose(*others, time_dim, sample_dim, feature_dim)
    T = act.sizes[time_dim]
    if decoders is None:
        decoders = decoding_scores(act, lab_dict, sample_dim=sample_dim, feature_dim=feature_dim, decoder="linear",
                                   folds=folds, seed=seed, return_decoders=True, **kwargs)
    X, y, extra, shape_extra, names, _, coords, _ = _prepare(act, lab_dict, sample_dim, feature_dim)
    E = int(np.prod(shape_extra[:-1])) if len(shape_extra) > 1 else 1
    V, n, d = len(names), X.shape[1], X.shape[2]
    dv = decoders if "variable" in decoders.dims else decoders.expand_dims(variable=[names[0]])
    order = ["variable", *others, time_dim]
    coef = np.asarray(dv["coef"].transpose(*order, "fold", feature_dim, "logit").values, np.float64)
    icpt = np.asarray(dv["intercept"].transpose(*order, "fold", "logit").values, np.float64)
    fold = np.asarray(dv["fold_assignment"].transpose(*order, sample_dim).values)
    K = coef.shape[-3]
    coef = coef.reshape(V, E, T, K, d, -1)
    icpt = icpt.reshape(V, E, T, K, -1)
    fold = fold.reshape(V, E, T, n)
    labs, _ = _clean_labels(y, K)  # (P, V, n), classes too small for K folds dropped, as the fits did
    labs = labs.reshape(E, T, V, n)
    C = max(int(labs.max()) + 1, 2)
    X = np.nan_to_num(X.reshape(E, T, n, d).astype(np.float64))
    out = np.full((V, E, T, T), np.nan)
    for e in range(E):
        for v in range(V):
            out[v, e] = _generalization(X[e], labs[e, :, v], fold[v, e], coef[v, e], icpt[v, e], C)
    tcoord = act.coords[time_dim].values if time_dim in act.coords else np.arange(T)
    out = out.reshape((V,) + tuple(shape_extra[:-1]) + (T, T))
    dims = ["variable", *others, "train_time", "test_time"]
    cc = {dd: coords[dd] for dd in others if dd in coords}
    cc.update(train_time=tcoord, test_time=tcoord)
    if multi:
        cc["variable"] = names
    else:
        out, dims = out[0], dims[1:]
    return xr.DataArray(out, dims=dims, coords=cc, name="cross_temporal_information",
                        attrs={"units": "bits", "folds": int(folds), "seed": int(seed)})


def _generalization(X, lab, fold, coef, icpt, C) -> np.ndarray:
    """One temporal-generalization matrix (T, T), bits.

    X (T, n, d) float64; lab (T, n) class of each trial at each time (-1 missing); fold (T, n) the
    outer fold of each trial in the fits at each training time (-1 unused); coef (T, K, d, C'),
    icpt (T, K, C'): the decoder of each training time and fold in raw feature units. Entry
    (t, t'): sum over folds k of (prior - decoder) held-out cross-entropy of the trials in fold k
    at t (held out by decoder (t, k)) whose label is valid at t', per such trial.
    """
    T, n, d = X.shape
    K, Cp = coef.shape[1], coef.shape[-1]
    out = np.full((T, T), np.nan)
    if not np.isfinite(coef).all():
        ok_t = np.isfinite(coef).all(axis=(1, 2, 3)) & np.isfinite(icpt).all(axis=(1, 2))
    else:
        ok_t = np.ones(T, bool)
    W = np.nan_to_num(coef).transpose(2, 0, 1, 3).reshape(d, T * K * Cp)
    lg = (X.reshape(T * n, d) @ W).reshape(T, n, T, K, Cp) + np.nan_to_num(icpt)[None, None]  # (t', i, t, k, c)
    labc = np.clip(lab, 0, None)  # (t', n)
    if C == 2 and Cp == 1:
        z = lg[..., 0]
        ce = np.logaddexp(0.0, z) - (labc == 1)[:, :, None, None] * z  # (t', i, t, k)
    else:
        mx = lg.max(-1, keepdims=True)
        lse = np.log(np.exp(lg - mx).sum(-1)) + mx[..., 0]
        ce = lse - np.take_along_axis(lg, labc[:, :, None, None, None].repeat(T, 2).repeat(K, 3), -1)[..., 0]
    for t in range(T):
        if not ok_t[t] or not (fold[t] >= 0).any():
            continue
        used = fold[t] >= 0
        classes = np.bincount(lab[t][used], minlength=C)
        if (classes > 0).sum() < 2:
            continue  # one class: no estimate (NaN; the time-resolved fit warned and flagged it)
        num = np.zeros(T)
        den = np.zeros(T)
        for k in range(K):
            te = fold[t] == k
            tr = used & ~te
            cnt = np.bincount(lab[t][tr], minlength=C).astype(float)
            logprior = np.log(np.maximum(cnt / max(cnt.sum(), 1), 1e-300))
            m = te[None, :] & (lab >= 0)  # (t', n): held out at t, labelled at t'
            num += ((-logprior[labc] - ce[:, :, t, k]) * m).sum(1)
            den += m.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[t] = num / den / LN2
    return out
