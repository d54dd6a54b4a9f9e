"""A scikit-learn estimator of usable information for one decoding problem.

:class:`UsableInformationEstimator` follows scikit-learn's rules: ``__init__`` only stores its
parameters, :meth:`~UsableInformationEstimator.fit` validates ``X`` (n_trials, n_features) and
``y`` and returns ``self`` with the learned state in attributes ending in ``_``, and
:meth:`~UsableInformationEstimator.score` returns usable information in bits. So it drops into
``sklearn.model_selection`` (``cross_val_score``, ``GridSearchCV``), ``sklearn.base.clone`` and
MNE's ``SlidingEstimator`` (one clone per time point).

What ``fit(X, y)`` learns:

* ``information_`` -- the cross-validated usable information of X about y (bits): stratified
  K-fold, the decoder's penalty chosen by nested CV inside each outer training fold, held-out
  cross-entropy against the training-fold prior, pooled over the trials. It is the number that
  :class:`decisionnets.UsableInformation` (the batched fast path, many problems at once) gives for
  the same problem, folds and seed.
* a decoder fitted on all of X, with the penalty ``alpha_`` chosen by K-fold CV on all of X, used
  by ``predict``, ``predict_proba`` and ``score``.

``score(X_test, y_test)`` = H(training prior) - cross-entropy of that decoder on (X_test, y_test),
in bits per trial: the *held-out* usable information when the test trials were not used to fit.
On the training trials it is optimistic (a training-set number); use ``information_`` or
``cross_val_score`` instead.

The decoder family owns its parameters: pass a configured decoder, e.g.
``UsableInformationEstimator(decoder=get_decoder("linear", l2_grid=[0.1, 1, 10]))``.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from decisionnets.decoding import Decoder, decoder_names, get_decoder
from decisionnets.errors import UserError

__all__ = ["UsableInformationEstimator", "get_decoder"]

LN2 = math.log(2.0)


def _torch():
    import torch

    return torch


class UsableInformationEstimator(ClassifierMixin, BaseEstimator):
    """Usable information (bits) of features about a class label, for one decoding problem.

    Parameters
    ----------
    decoder : str or :class:`decisionnets.decoding.Decoder`
        A decoder family by name (:func:`decisionnets.decoding.decoder_names`: ``"linear"``,
        ``"linear-raw"``, ``"mlp"``, ``"sgd-mlp"``, ``"sgd-linear"``) with its default parameters,
        or a configured one from :func:`get_decoder` (``get_decoder("linear", l2_grid=...)``).
    folds : int
        Number K >= 3 of stratified folds (the nested CV of the penalty uses the other K-1).
    seed : int
        Seed of the fold assignment (and of a decoder's random initialisation / dropout).
    dtype : {"float64", "float32"}
        Precision of the decoder fits (float64 by default: one problem is cheap).
    device : str
        torch device of the fits.

    Attributes
    ----------
    classes_ : ndarray (n_classes,)
        The class labels seen by ``fit``, sorted; columns of ``predict_proba``.
    n_features_in_ : int
    class_prior_ : ndarray (n_classes,)
        Class frequencies of the training trials (the constant predictor of ``score``).
    information_ : float
        Cross-validated usable information of X about y, bits (nested CV; NaN if fewer than two
        classes have at least ``folds`` trials, with a warning: no estimate, not 0 bits).
    information_folds_ : ndarray (folds,)
        Usable information of each outer fold's held-out trials, bits.
    accuracy_ : float
        Cross-validated (held-out) accuracy.
    ce_prior_, ce_decoder_ : float
        Held-out cross-entropies (bits per trial) of the training-fold prior and of the decoder.
    l2_ : ndarray (folds,)
        Penalty chosen by the inner CV of each outer fold (NaN for decoders without a penalty).
    folds_ : ndarray (n_trials,) int
        Fold of each trial (-1: left out of the CV: a class with fewer than ``folds`` trials).
    alpha_ : float
        Penalty of the decoder fitted on all trials (chosen by K-fold CV on all of them; NaN for
        decoders without a penalty).
    decoder_ : Decoder
        The decoder family used.
    coef_ : ndarray (n_features, C') or None
        Linear families: weights of the decoder fitted on all trials, raw feature units
        (C' = 1 for two classes: the logit of ``classes_[1]``); None for nonlinear families.
    intercept_ : ndarray (C',) or None
    converged_ : bool
        Every fit converged (False: do not trust the numbers).

    Notes
    -----
    Nonlinear families (``mlp``, ``sgd-*``) expose no weights: ``predict_proba`` refits the
    decoder on the stored training trials with the same seed and penalty (the fit does not depend
    on the trials being predicted, which only ride along), so their predictions cost one fit.

    Examples
    --------
    >>> from sklearn.model_selection import cross_val_score          # doctest: +SKIP
    >>> est = UsableInformationEstimator(folds=5).fit(X, y)          # doctest: +SKIP
    >>> est.information_                                             # doctest: +SKIP
    >>> cross_val_score(UsableInformationEstimator(), X, y, cv=5)    # bits per outer fold  # doctest: +SKIP
    """

    def __init__(self, decoder="linear", folds: int = 5, seed: int = 0, dtype: str = "float64", device: str = "cpu"):
        self.decoder = decoder
        self.folds = folds
        self.seed = seed
        self.dtype = dtype
        self.device = device

    # ------------------------------------------------------------------------------------ sklearn
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags

    def _check_params(self) -> Decoder:
        if not isinstance(self.decoder, Decoder) and self.decoder not in decoder_names():
            raise UserError(f"decoder must be one of {decoder_names()} or a Decoder (get_decoder(...)); "
                            f"got {self.decoder!r}")
        if isinstance(self.folds, bool) or not isinstance(self.folds, (int, np.integer)) or self.folds < 3:
            raise UserError(f"folds must be an integer >= 3 (nested CV uses K-1 inner folds); got {self.folds!r}")
        if self.dtype not in ("float32", "float64"):
            raise UserError(f"dtype must be 'float32' or 'float64'; got {self.dtype!r}")
        return self.decoder if isinstance(self.decoder, Decoder) else get_decoder(self.decoder)

    def fit(self, X, y):
        """Estimate the cross-validated information and fit the decoder on all trials.

        Parameters
        ----------
        X : array-like (n_trials, n_features)
        y : array-like (n_trials,)
            Class labels (any values scikit-learn accepts as classes: ints, strings, ...).

        Returns
        -------
        self
        """
        dec = self._check_params()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_, yi = np.unique(y, return_inverse=True)
        C = len(self.classes_)
        if C < 2:
            raise ValueError(f"usable information needs at least 2 classes; got 1 class ({self.classes_[0]!r})")
        self.decoder_ = dec
        K = int(self.folds)
        X64 = np.asarray(X, dtype=np.float64)
        n = X64.shape[0]
        counts = np.bincount(yi, minlength=C)
        self.class_prior_ = counts / n
        self.converged_ = True

        # ---- cross-validated information (the samples of classes with < K trials are left out)
        from decisionnets.decoding.folds import stratified_folds

        ycv = np.where(counts[yi] >= K, yi, -1)
        self.folds_ = stratified_folds(ycv[None, None], K, C, int(self.seed))[0, 0]
        cv_classes = int((counts >= K).sum())
        self.l2_ = np.full(K, np.nan)
        self.information_folds_ = np.full(K, np.nan)
        if cv_classes >= 2:
            self._cross_validate(dec, X64, ycv, C, K)
        else:
            # one class left (or none): no estimate, as in the batched estimator (NaN, not 0 bits)
            self.information_ = float("nan")
            self.accuracy_ = self.ce_prior_ = self.ce_decoder_ = float("nan")
            warnings.warn(f"fewer than 2 classes have >= folds={K} trials (class counts {counts.tolist()}): "
                          f"information_ is {self.information_}", RuntimeWarning, stacklevel=2)

        # ---- the decoder on all trials, penalty chosen by K-fold CV on all of them
        self.alpha_ = float("nan")
        if dec.penalties is not None:
            grid = np.asarray(dec.penalties, dtype=float)
            if cv_classes >= 2 and len(grid) > 1:
                fold = self.folds_
                cols = [(fold >= 0) & (fold != k) for k in range(K)]
                train = np.repeat(np.stack(cols), len(grid), axis=0)  # (K*L, n): fold-major
                pen = np.tile(grid, K)
                lp, conv, _, _ = self._fit_columns(dec, X64, ycv, C, train, pen, seed=int(self.seed) + 2)
                ce = -lp[:, np.arange(n), np.clip(ycv, 0, None)]  # (K*L, n)
                per_fold = np.stack([
                    np.mean(ce[k * len(grid):(k + 1) * len(grid)][:, fold == k], axis=1) for k in range(K)])  # (K, L)
                loss = per_fold.mean(0)
                loss = np.where(np.isfinite(loss), loss, np.inf)
                order = np.argsort(grid)[::-1]  # ties -> the stronger penalty
                self.alpha_ = float(grid[order[np.argmin(loss[order])]])
                self.converged_ &= bool(conv.all())
            else:
                self.alpha_ = float(np.sort(grid)[len(grid) // 2])
        self._X_fit = X64
        self._y_fit = yi
        lp, conv, coef, icpt = self._fit_columns(dec, X64, yi, C, np.ones((1, n), bool),
                                                 None if dec.penalties is None else np.array([self.alpha_]),
                                                 seed=int(self.seed) + 3)
        self.converged_ &= bool(conv.all())
        self.coef_ = None if coef is None else coef[0]
        self.intercept_ = None if icpt is None else icpt[0]
        if not self.converged_:
            warnings.warn(f"some fits of the {dec.name} decoder did not converge; see converged_", RuntimeWarning,
                          stacklevel=2)
        return self

    # ---------------------------------------------------------------------------- prediction
    def predict_log_proba(self, X):
        """Log-probability of each class, ndarray (n_trials, n_classes), columns in ``classes_`` order."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        X64 = np.asarray(X, dtype=np.float64)
        if self.coef_ is not None:
            z = X64 @ self.coef_ + self.intercept_
            if len(self.classes_) == 2:
                z = np.concatenate([np.zeros_like(z), z], axis=1)
            return z - np.logaddexp.reduce(z, axis=1, keepdims=True)
        # nonlinear families: refit on the training trials, the new trials ride along unscored
        n = self._X_fit.shape[0]
        Xall = np.concatenate([self._X_fit, X64])
        yall = np.concatenate([self._y_fit, np.full(X64.shape[0], -1)])
        train = np.zeros((1, Xall.shape[0]), bool)
        train[0, :n] = True
        pen = None if self.decoder_.penalties is None else np.array([self.alpha_])
        lp, _, _, _ = self._fit_columns(self.decoder_, Xall, yall, len(self.classes_), train, pen,
                                        seed=int(self.seed) + 3, used=train[0])
        return lp[0, n:]

    def predict_proba(self, X):
        """Probability of each class, ndarray (n_trials, n_classes), columns in ``classes_`` order."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        """The most probable class of each trial, ndarray (n_trials,)."""
        lp = self.predict_log_proba(X)
        return self.classes_[np.argmax(lp, axis=1)]

    def score(self, X, y, sample_weight=None):
        """Usable information (bits per trial) of the fitted decoder on (X, y).

        H(training prior) - cross-entropy, both in bits, averaged over the trials (weighted by
        ``sample_weight``): the *held-out* usable information when X, y were not used to fit
        (e.g. inside ``cross_val_score``); on the training trials it is a training-set number.

        Parameters
        ----------
        X : array-like (n_trials, n_features)
        y : array-like (n_trials,) — labels among ``classes_``.
        sample_weight : array-like (n_trials,), optional

        Returns
        -------
        float, bits
        """
        lp = self.predict_log_proba(X)
        y = np.asarray(y)
        idx = np.searchsorted(self.classes_, y)
        idx = np.clip(idx, 0, len(self.classes_) - 1)
        unknown = self.classes_[idx] != y
        if np.any(unknown):
            raise ValueError(f"y holds classes not seen in fit: {np.unique(y[unknown]).tolist()}; "
                             f"classes_: {self.classes_.tolist()}")
        gain = (lp[np.arange(len(y)), idx] - np.log(self.class_prior_[idx])) / LN2
        return float(np.average(gain, weights=sample_weight))

    # ------------------------------------------------------------------------------- private
    def _cross_validate(self, dec, X64, ycv, C, K) -> None:
        """Nested CV, one outer fold after another (their fits batched as columns)."""
        fold = self.folds_
        valid = ycv >= 0
        n = len(ycv)
        seed = int(self.seed)
        lab = np.clip(ycv, 0, None)
        if dec.penalties is not None:
            grid = np.asarray(dec.penalties, dtype=float)
            L = len(grid)
            # inner CV of outer fold k: hold out fold j != k, train on the others; that fit (pair
            # {j, k}) is the same for outer fold j holding out k, so every pair is fitted once
            pairs = list(itertools.combinations(range(K), 2))
            train = np.stack([valid & (fold != j) & (fold != k) for j, k in pairs for _ in range(L)])
            lp, conv, _, _ = self._fit_columns(dec, X64, ycv, C, train, np.tile(grid, len(pairs)), seed=seed)
            self.converged_ &= bool(conv.all())
            ce = -lp[:, np.arange(n), lab].reshape(len(pairs), L, n)
            inner = np.zeros((K, L))
            for f, (j, k) in enumerate(pairs):
                for held, outer in ((j, k), (k, j)):
                    inner[outer] += ce[f][:, valid & (fold == held)].mean(axis=1) / (K - 1)
            inner = np.where(np.isfinite(inner), inner, np.inf)
            order = np.argsort(grid)[::-1]  # ties -> the stronger penalty
            self.l2_ = grid[order[np.argmin(inner[:, order], axis=1)]]
            pen = self.l2_
        else:
            pen = None
        # outer fits: train on all folds but k (penalty of its inner CV), score fold k
        train = np.stack([valid & (fold != k) for k in range(K)])
        lp, conv, _, _ = self._fit_columns(dec, X64, ycv, C, train, pen, seed=seed + 1)
        self.converged_ &= bool(conv.all())
        ce_dec = ce_pri = correct = 0.0
        for k in range(K):
            te = valid & (fold == k)
            prior = np.bincount(lab[train[k]], minlength=C) / train[k].sum()
            cd = -lp[k, te, lab[te]]
            cp = -np.log(np.maximum(prior[lab[te]], 1e-300))
            self.information_folds_[k] = (cp.sum() - cd.sum()) / te.sum() / LN2
            ce_dec += cd.sum()
            ce_pri += cp.sum()
            correct += (lp[k, te].argmax(1) == lab[te]).sum()
        N = valid.sum()
        self.information_ = float((ce_pri - ce_dec) / N / LN2)
        self.ce_prior_ = float(ce_pri / N / LN2)
        self.ce_decoder_ = float(ce_dec / N / LN2)
        self.accuracy_ = float(correct / N)

    def _fit_columns(self, dec, X64, y, C, train, penalty, *, seed, used=None):
        """Fit G columns (training masks) of one problem with the decoder's batched protocol.

        Parameters
        ----------
        X64 : ndarray (n, d); y : ndarray (n,) int, -1 = no label; C : number of classes
        train : bool ndarray (G, n); penalty : ndarray (G,) or None
        used : bool ndarray (n,), optional — samples whose (label-free) statistics prepare the
            features (default: every labelled sample, as the batched estimator does)

        Returns
        -------
        log_proba (G, n, C), converged (G,), coef (G, d, C') or None, intercept (G, C') or None;
        numpy float64.
        """
        torch = _torch()
        dev = torch.device(self.device)
        fdt = torch.float32 if self.dtype == "float32" else torch.float64
        G, n = train.shape
        Xt = torch.as_tensor(X64, dtype=torch.float64, device=dev)[None]
        used_t = torch.as_tensor((y >= 0) if used is None else used, device=dev)[None]
        prep = dec.prepare(Xt, used_t, dtype=fdt, device=dev)
        yt = torch.as_tensor(y, device=dev)
        valid = yt >= 0
        onehot = torch.nn.functional.one_hot(yt.clamp_min(0), C).to(fdt) * valid[:, None]
        present = onehot.sum(0) > 0
        yG = onehot[None, None].expand(1, G, n, C)
        presG = present[None, None].expand(1, G, C)
        m = torch.as_tensor(train, device=dev)[None] & valid[None, None]
        pen = None if penalty is None else torch.as_tensor(np.asarray(penalty), dtype=fdt, device=dev)[None]
        with torch.no_grad():
            fit = dec.fit(prep, m, yG, pen, presG, seed=seed)
        lp = fit.log_proba[0].to(torch.float64).cpu().numpy()
        conv = fit.converged[0].cpu().numpy()
        coef = None if fit.coef is None else fit.coef[0].to(torch.float64).cpu().numpy()
        icpt = None if fit.intercept is None else fit.intercept[0].to(torch.float64).cpu().numpy()
        return lp, conv, coef, icpt
