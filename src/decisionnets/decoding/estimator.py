"""The batched usable-information estimator, :class:`UsableInformation`.

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
import math
import warnings
from collections.abc import Sequence

import numpy as np

from decisionnets.decoding.base import Decoder, _torch
from decisionnets.decoding.folds import (
    check_folds_fit,
    class_counts,
    class_warnings,
    clean_labels,
    missing_samples,
    stratified_folds,
)
from decisionnets.decoding.nested import choose_penalties
from decisionnets.decoding.registry import decoder_names, get_decoder
from decisionnets.errors import UserError

__all__ = ["UsableInformation", "UNRELIABLE_FLAGS", "UNSTABLE_SD", "LN2"]


#: Fold-to-fold s.d. of information (bits) above which a problem's estimate is flagged as unreliable.
UNSTABLE_SD = 0.25


#: Bits of the ``unreliable`` mask of a decoding problem (0: a trustworthy estimate).
UNRELIABLE_FLAGS = {
    1: "fewer than 2 classes with >= folds samples (information is NaN)",
    2: "classes with fewer samples than folds were left out",
    4: "a fit did not converge",
    8: f"fold-to-fold s.d. of information above {UNSTABLE_SD} bits",
}


LN2 = math.log(2.0)


class UsableInformation:
    """Batched cross-validated usable information for many decoding problems at once.

    Parameters
    ----------
    decoder : str or :class:`decisionnets.decoding.Decoder`
        Decoder family: a registered name (``"linear"``, ``"linear-raw"``, ``"mlp"``, ``"sgd-mlp"``,
        ``"sgd-linear"``, or one added with :func:`decisionnets.decoding.register_decoder`) or a
        Decoder object. See :mod:`decisionnets.decoding.registry` for the question each family answers.
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
        Iteration budget of a named family (linear: L-BFGS iterations before the float64 refit
        of unconverged fits; mlp: Adam steps); None: the family's default.
    tol : float, optional
        Convergence threshold of the linear families (RMS change of a training logit per iteration).
    hidden : int, optional
        Hidden units of the ``mlp`` decoder; None: the family's default.
    max_chunk_bytes : int
        Memory budget per chunk of problems.
    standardize : bool, optional
        A parameter of the logistic families: ``decoder="linear", standardize=False`` is
        ``decoder="linear-raw"``; None: the family's own.

    ``l2_grid``, ``max_iter``, ``tol``, ``hidden`` and ``standardize`` are the decoder family's
    parameters, passed to :func:`decisionnets.decoding.get_decoder` when given (not None), which
    refuses one the family does not take; a Decoder object carries its own.
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
        hidden: int | None = None,
        max_chunk_bytes: int = 2**28,
        standardize: bool | None = None,
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
        y = missing_samples(X, y)
        raw, _ = clean_labels(y, 1)  # every class, before the rare ones are left out
        check_folds_fit(raw, K)  # before any fit: K(K-1)/2 pair fits that could not keep two classes
        if K > n:
            raise UserError(f"folds={K} is larger than the number of samples ({n}); use folds <= {n}")
        labels, C = clean_labels(y, K)
        fold = stratified_folds(labels, K, C, self.seed)
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
        n_raw = (class_counts(raw, max(C, 1)) > 0).sum(-1) if raw.size else np.zeros((P, V), int)
        self.n_classes_used_ = (class_counts(labels, max(C, 1)) > 0).sum(-1) if labels.size else np.zeros((P, V), int)
        few = self.n_classes_used_ < 2
        dropped = (n_raw > self.n_classes_used_) & ~few
        self.unreliable_ = (1 * few + 2 * dropped + 4 * ~self.converged_ + 8 * unstable).astype(np.int8)
        self.warnings_ = class_warnings(few, dropped, raw, labels, K, where)
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
        """The decoder object: :func:`get_decoder` resolves the name and checks the parameters given here."""
        given = {"l2_grid": self.l2_grid, "max_iter": self.max_iter, "tol": self.tol, "hidden": self.hidden,
                 "standardize": self.standardize}
        return get_decoder(self.decoder, **{k: v for k, v in given.items() if v is not None})

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
        if not isinstance(self.decoder, Decoder) and self.decoder not in decoder_names():
            raise UserError(f"decoder must be one of {decoder_names()} or a Decoder object; got {self.decoder!r}")
        if not isinstance(self.folds, (int, np.integer)) or self.folds < 3:
            raise UserError(f"folds must be an integer >= 3 (nested CV uses K-1 inner folds); got {self.folds!r}")
        if self.hidden is not None and (not isinstance(self.hidden, (int, np.integer)) or isinstance(self.hidden, bool)
                                        or self.hidden < 1):
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
        alpha_k, initB, convA = choose_penalties(torch, dec, prep, valid, fol, onehot, present, K, seed, fdt, dev)
        conv &= convA
        alphaB = alpha_k.reshape(Q, V * K)
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
