"""Reference implementations of the decoder families, one problem and one fold at a time.

Slow, plain loops used by the regression tests and ``bench/decode_speed.py`` (not part of the
installed package: the tests import it from this folder, the bench adds the folder to its path) to check the batched
estimator (:class:`decisionnets.decoding.UsableInformation`) on the same folds:

* :func:`sklearn_information` — the logistic families with scikit-learn: for each outer fold,
  ``LogisticRegressionCV`` (``Cs = 1/alpha`` of the same grid, the same inner folds, scored by
  log-loss, refitted on the whole training fold), on features standardized with the training
  fold's mean and s.d. (``linear``) or on raw features (``linear-raw``);
* :func:`sklearn_mlp_information` — the ``mlp`` family with scikit-learn's ``MLPClassifier`` (one
  tanh hidden layer, Adam lr 0.01, full batch, the same number of steps, no early stopping) on
  fold-standardized features, ``alpha`` chosen per outer fold by the same inner folds;
* :func:`torch_sgd_information` — the SGD families with an ``nn.Sequential`` per fold trained by
  ``torch.optim.SGD`` (its own random initialisation and dropout masks);
* :func:`torch_mlp_information` — the ``mlp`` family (one tanh hidden layer, Adam, L2 chosen by
  nested CV) one fit after another: for each outer fold, every penalty on every inner fold, then
  the refit at the chosen penalty (its own random initialisation).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from decisionnets.decoding import DEFAULT_L2_GRID, MLPDecoder, SGDDecoder

__all__ = ["sklearn_information", "sklearn_mlp_information", "torch_sgd_information", "torch_mlp_information"]

LN2 = math.log(2.0)


def _prior_ce(y_tr, y_te, n_classes):
    prior = np.bincount(y_tr, minlength=n_classes) / len(y_tr)
    return -np.log(prior[y_te]).sum()


def _problem(X, y, fold, dtype):
    """``X`` as ``dtype``, the used samples (``fold >= 0``), the number of outer folds and of classes."""
    X = np.asarray(X, dtype)
    ok = fold >= 0
    return X, ok, int(fold.max()) + 1, int(y[ok].max()) + 1


def _standardized(Xtr, Xte):
    """Both sets scaled by the training set's mean and s.d. (constant features left unscaled)."""
    mu, sd = Xtr.mean(0), Xtr.std(0)
    sd[sd == 0] = 1.0
    return (Xtr - mu) / sd, (Xte - mu) / sd


def sklearn_information(X, y, fold, *, standardize=True, grid=DEFAULT_L2_GRID, tol=1e-8, max_iter=10000):
    """Usable information (bits) of one problem by scikit-learn's L2 logistic regression, nested CV.

    Parameters
    ----------
    X : ndarray (n, d); y : ndarray (n,) int labels; fold : ndarray (n,) outer fold of each sample
        (-1: unused), e.g. ``UsableInformation(...).fit(X, y).folds_[p, v]``.
    standardize : bool — ``linear`` (True) or ``linear-raw`` (False).
    grid : sequence of alpha (``C = 1/alpha``).

    Returns
    -------
    (information in bits, chosen alpha per outer fold)
    """
    from sklearn.linear_model import LogisticRegressionCV

    X, ok, K, C = _problem(X, y, fold, np.float64)
    ce_d = ce_p = 0.0
    n_used = 0
    alphas = []
    for k in range(K):
        tr, te = ok & (fold != k), fold == k
        Xtr, Xte = X[tr], X[te]
        if standardize:
            Xtr, Xte = _standardized(Xtr, Xte)
        ftr = fold[tr]
        cv = [(np.flatnonzero(ftr != j), np.flatnonzero(ftr == j)) for j in range(K) if j != k]
        clf = LogisticRegressionCV(Cs=1 / np.asarray(grid), cv=cv, scoring="neg_log_loss", max_iter=max_iter, tol=tol)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(Xtr, y[tr])
        p = clf.predict_proba(Xte)
        cols = np.searchsorted(clf.classes_, y[te])
        ce_d -= np.log(np.clip(p[np.arange(te.sum()), cols], 1e-300, None)).sum()
        ce_p += _prior_ce(y[tr], y[te], C)
        n_used += te.sum()
        alphas.append(1.0 / float(np.atleast_1d(clf.C_)[0]))
    return (ce_p - ce_d) / n_used / LN2, np.asarray(alphas)


def sklearn_mlp_information(X, y, fold, *, hidden=32, max_iter=150, grid=DEFAULT_L2_GRID, seed=0):
    """Usable information (bits) of one problem by scikit-learn's ``MLPClassifier``, nested CV over alpha.

    The ``mlp`` family's recipe in scikit-learn: features standardized with the training fold's
    mean and s.d.; one tanh hidden layer of ``hidden`` units; Adam (lr 0.01) on the full training
    fold for ``max_iter`` steps, no early stopping; L2 ``alpha`` (scikit-learn's penalty
    ``alpha / 2 ||W||^2 / n``, the same scaling as the family's) chosen for each outer fold by the
    held-out log-loss on the same inner folds. scikit-learn initialises and penalises slightly
    differently (Glorot-uniform weights, no penalty on the input-layer biases either way), so the two
    agree to the precision of a 150-step training budget, not to float tolerance.

    Parameters
    ----------
    X : ndarray (n, d); y : ndarray (n,) int labels; fold : ndarray (n,) outer fold (-1: unused)
    hidden, max_iter : int; grid : sequence of alpha; seed : int (scikit-learn's ``random_state``)

    Returns
    -------
    (information in bits, chosen alpha per outer fold)
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    X, ok, K, C = _problem(X, y, fold, np.float64)

    def fit_predict(Xtr, ytr, Xte, alpha):
        Xtr, Xte = _standardized(Xtr, Xte)
        clf = MLPClassifier(hidden_layer_sizes=(hidden,), activation="tanh", solver="adam", alpha=alpha,
                            batch_size=len(Xtr), learning_rate_init=0.01, max_iter=max_iter, shuffle=False,
                            tol=0.0, n_iter_no_change=max_iter + 1, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(Xtr, ytr)
        p = np.zeros((len(Xte), C))
        p[:, clf.classes_] = clf.predict_proba(Xte)
        return p

    ce_d = ce_p = 0.0
    n_used = 0
    alphas = []
    for k in range(K):
        tr, te = ok & (fold != k), fold == k
        inner = [j for j in range(K) if j != k]
        losses = []
        for a in grid:
            loss = 0.0
            for j in inner:
                itr, ite = tr & (fold != j), fold == j
                p = fit_predict(X[itr], y[itr], X[ite], a)
                loss -= np.log(np.clip(p[np.arange(ite.sum()), y[ite]], 1e-300, None)).sum()
            losses.append(loss)
        a = float(np.asarray(grid)[int(np.argmin(losses))])
        p = fit_predict(X[tr], y[tr], X[te], a)
        ce_d -= np.log(np.clip(p[np.arange(te.sum()), y[te]], 1e-300, None)).sum()
        ce_p += _prior_ce(y[tr], y[te], C)
        n_used += te.sum()
        alphas.append(a)
    return (ce_p - ce_d) / n_used / LN2, np.asarray(alphas)


def torch_sgd_information(X, y, fold, decoder: SGDDecoder, *, seed=0):
    """Usable information (bits) of one problem by the SGD decoder, one ``nn.Sequential`` per fold.

    Parameters
    ----------
    X : ndarray (n, d); y : ndarray (n,); fold : ndarray (n,) (-1: unused)
    decoder : :class:`decisionnets.decoding.SGDDecoder` — its architecture, lr, iterations, dropout.
    seed : int — torch generator of this loop (it does not reproduce the batched draws).
    """
    import torch

    X, ok, K, C = _problem(X, y, fold, np.float32)
    ce_d = ce_p = 0.0
    n_used = 0
    torch.manual_seed(seed)  # nn.Linear's init draws from the global generator; kept local to this loop
    for k in range(K):
        tr, te = ok & (fold != k), fold == k
        sizes = (X.shape[1], *decoder.hidden, C)
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(torch.nn.Linear(a, b))
            if i < len(sizes) - 2:
                if decoder.nonlinear:
                    layers.append(torch.nn.LeakyReLU(0.2))
                layers.append(torch.nn.Dropout(decoder.dropout))
        net = torch.nn.Sequential(*layers)
        opt = torch.optim.SGD(net.parameters(), lr=decoder.lr)
        xtr, ytr = torch.as_tensor(X[tr]), torch.as_tensor(y[tr], dtype=torch.long)
        net.train()
        for _ in range(decoder.iterations):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xtr), ytr).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            lp = torch.log_softmax(net(torch.as_tensor(X[te])), -1).numpy()
        ce_d -= lp[np.arange(te.sum()), y[te]].sum()
        ce_p += _prior_ce(y[tr], y[te], C)
        n_used += te.sum()
    return (ce_p - ce_d) / n_used / LN2


def torch_mlp_information(X, y, fold, decoder: MLPDecoder, *, seed=0):
    """Usable information (bits) of one problem by the ``mlp`` family, one fit after another.

    The same model and training as :class:`decisionnets.decoding.MLPDecoder` (features centred and
    scaled with all used samples, first-layer penalty weighted by each training fold's variance of
    the scaled features, tanh hidden layer, Adam lr 0.01 for ``max_iter`` full-batch steps, loss =
    mean cross-entropy + alpha / (2 n_train) x penalty), without batching or shared pair fits: for
    outer fold k, each alpha is fitted on the K-1 inner splits of the other folds, the alpha with the
    lowest mean inner held-out cross-entropy (ties: the stronger) is refitted on all folds but k.

    Parameters
    ----------
    X : ndarray (n, d); y : ndarray (n,); fold : ndarray (n,) (-1: unused)
    decoder : :class:`decisionnets.decoding.MLPDecoder`
    seed : int — this loop's generator (it does not reproduce the batched draws)

    Returns
    -------
    (information in bits, chosen alpha per outer fold)
    """
    import torch

    X, ok, K, C = _problem(X, y, fold, np.float64)
    Cp = 1 if C == 2 else C
    mu, sd = X[ok].mean(0), X[ok].std(0)
    const = (sd <= 1e-5 * np.abs(mu)) | (sd <= 1e-30)
    Xs = np.where(const, 0.0, (X - mu) / np.where(const, 1.0, sd))
    Xt = torch.as_tensor(Xs, dtype=torch.float32)
    yt = torch.as_tensor(np.clip(y, 0, None), dtype=torch.long)
    gen = torch.Generator().manual_seed(int(seed))
    d, H = X.shape[1], decoder.hidden

    def fit_score(tr, te, alpha):
        xtr = Xt[tr]
        var = xtr.var(0, unbiased=False)
        var = torch.where(var < 1e-4, torch.ones_like(var), var)
        ntr = float(tr.sum())
        W1 = (torch.randn(d, H, generator=gen) / math.sqrt(max(d, 1))).requires_grad_(True)
        b1 = torch.zeros(H, requires_grad=True)
        W2 = (torch.randn(H, Cp, generator=gen) / math.sqrt(H)).requires_grad_(True)
        cnt = np.bincount(y[tr], minlength=C).astype(float)
        logp = np.log((cnt + 1e-3) / (cnt.sum() + 1e-3 * C))
        b2 = torch.tensor([logp[1] - logp[0]] if Cp == 1 else logp - logp.mean(), dtype=torch.float32,
                          requires_grad=True)
        opt = torch.optim.Adam([W1, b1, W2, b2], lr=0.01)

        def logp_of(x):
            out = torch.tanh(x @ W1 + b1) @ W2 + b2
            if Cp == 1:
                return torch.stack([torch.nn.functional.logsigmoid(-out[:, 0]),
                                    torch.nn.functional.logsigmoid(out[:, 0])], -1)
            return torch.log_softmax(out, -1)

        ytr = yt[tr]
        for _ in range(max(1, decoder.max_iter)):
            opt.zero_grad()
            ce = torch.nn.functional.nll_loss(logp_of(xtr), ytr)
            loss = ce + 0.5 * (alpha / ntr) * ((W1 * W1 * var[:, None]).sum() + (W2 * W2).sum())
            loss.backward()
            opt.step()
        with torch.no_grad():
            return -logp_of(Xt[te]).gather(1, yt[te][:, None]).sum().item()

    grid = np.asarray(decoder.penalties, dtype=float)
    ce_d = ce_p = 0.0
    n_used = 0
    alphas = []
    for k in range(K):
        inner = np.zeros(len(grid))
        for li, alpha in enumerate(grid):
            for j in range(K):
                if j == k:
                    continue
                tr, te = ok & (fold != k) & (fold != j), fold == j
                inner[li] += fit_score(tr, te, alpha) / te.sum() / (K - 1)
        order = np.argsort(grid)[::-1]  # ties -> stronger penalty
        alpha = grid[order[np.argmin(inner[order])]]
        tr, te = ok & (fold != k), fold == k
        ce_d += fit_score(tr, te, alpha)
        ce_p += _prior_ce(y[tr], y[te], C)
        n_used += te.sum()
        alphas.append(alpha)
    return (ce_p - ce_d) / n_used / LN2, np.asarray(alphas)
