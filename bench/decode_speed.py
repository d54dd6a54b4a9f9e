"""Batched usable-information estimator vs a scikit-learn loop, measured in the same run.

    python bench/decode_speed.py [--epochs 30 --times 50 --trials 1000 --units 100 --subset 24]

Input: a synthetic run of the given size (activity of an RNN-like population whose coding of
color, target configuration and direction drifts over epochs and time), three label variables.
Batched: :class:`decisionnets.decoding.UsableInformation` on all epoch x time x variable problems.
Baseline: for each problem and outer fold, StandardScaler fitted on the training fold +
``LogisticRegressionCV`` (same alpha grid as ``Cs = 1/alpha``, the same inner folds, neg. log-loss)
refitted on the training fold, scored on the held-out fold: the same estimator, one fit after
another. The sklearn loop is timed on a random subset of the problems and extrapolated per problem
(said so in the printout); estimates are compared on that subset.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from decisionnets.decoding import DEFAULT_L2_GRID, UsableInformation


def synthetic_run(epochs, times, trials, units, seed=0):
    """Activity (epochs*times, trials, units) float32 and labels (3, trials)."""
    rng = np.random.default_rng(seed)
    color = rng.integers(0, 2, trials)
    config = rng.integers(0, 2, trials)
    direction = color ^ config
    lat = np.stack([2 * color - 1, 2 * config - 1, 2 * direction - 1], 0).astype(np.float32)  # (3, n)
    loadings = rng.standard_normal((units, 3)).astype(np.float32) / np.sqrt(3)
    e = np.linspace(0, 1, epochs)[:, None]
    t = np.linspace(0, 1, times)[None, :]
    onset = (t > 0.3).astype(np.float32)
    gain = np.stack(
        [onset * 1.5 * np.exp(-3 * e) * np.ones_like(t),  # color: encoded early, discarded later
         onset * 0.6 * np.ones_like(e),  # configuration: weak
         onset * 2.0 * e * np.clip((t - 0.3) * 3, 0, 1)],  # direction: grows with training and time
        -1,
    ).astype(np.float32)  # (E, T, 3)
    X = np.empty((epochs * times, trials, units), dtype=np.float32)
    for i in range(epochs):
        sig = np.einsum("tk,kn,uk->tnu", gain[i], lat, loadings)
        X[i * times:(i + 1) * times] = np.tanh(sig + rng.standard_normal(sig.shape).astype(np.float32))
    return X, np.stack([color, config, direction])


def sklearn_information(X, y, fold, grid, K):
    """Same estimator with scikit-learn, one fit after another; X (n, d), y (n,), fold (n,)."""
    from sklearn.linear_model import LogisticRegressionCV

    ce_d = ce_p = 0.0
    n_used = 0
    for k in range(K):
        tr = (fold != k) & (fold >= 0)
        te = fold == k
        mu, sd = X[tr].mean(0), X[tr].std(0)
        sd[sd == 0] = 1
        ftr = fold[tr]
        cv = [(np.flatnonzero(ftr != j), np.flatnonzero(ftr == j)) for j in range(K) if j != k]
        clf = LogisticRegressionCV(Cs=1 / np.asarray(grid), cv=cv, scoring="neg_log_loss", max_iter=1000, tol=1e-6)
        clf.fit((X[tr] - mu) / sd, y[tr])
        p = clf.predict_proba((X[te] - mu) / sd)
        ce_d -= np.log(np.clip(p[np.arange(te.sum()), y[te]], 1e-300, None)).sum()
        prior = np.bincount(y[tr], minlength=p.shape[1]) / tr.sum()
        ce_p -= np.log(prior[y[te]]).sum()
        n_used += te.sum()
    return (ce_p - ce_d) / n_used / np.log(2)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--times", type=int, default=50)
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--units", type=int, default=100)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--subset", type=int, default=24, help="problems timed with the sklearn loop")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")

    X, labels = synthetic_run(args.epochs, args.times, args.trials, args.units)
    P, V = X.shape[0], labels.shape[0]
    y = np.broadcast_to(labels[None], (P, V, args.trials))
    print(f"input: {args.epochs} epochs x {args.times} time steps = {P} activity problems x {V} variables "
          f"= {P * V} decoding problems; {args.trials} trials x {args.units} units; {args.folds} folds, "
          f"{len(DEFAULT_L2_GRID)} L2 values; torch threads={args.threads}, device={args.device}")

    t0 = time.perf_counter()
    est = UsableInformation(folds=args.folds, device=args.device).fit(X, y)
    t_batched = time.perf_counter() - t0
    print(f"batched (torch): {t_batched:.1f} s for {P * V} problems = {1e3 * t_batched / (P * V):.2f} ms/problem")

    rng = np.random.default_rng(1)
    pick = rng.choice(P * V, size=min(args.subset, P * V), replace=False)
    sk = np.empty(len(pick))
    t0 = time.perf_counter()
    for i, idx in enumerate(pick):
        p, v = divmod(int(idx), V)
        sk[i] = sklearn_information(X[p].astype(np.float64), labels[v], est.folds_[p, v], DEFAULT_L2_GRID, args.folds)
    t_sub = time.perf_counter() - t0
    per = t_sub / len(pick)
    t_sk = per * P * V
    ours = est.information_.reshape(-1)[pick]
    delta = np.abs(ours - sk)
    print(f"sklearn loop (LogisticRegressionCV per problem and outer fold, same folds): timed on a random "
          f"subset of {len(pick)} problems, {t_sub:.1f} s = {1e3 * per:.0f} ms/problem; extrapolated to all "
          f"{P * V} problems: {t_sk:.0f} s")
    print(f"speed-up (sklearn extrapolated / batched): {t_sk / t_batched:.1f}x")
    print(f"estimates on the subset: sklearn mean {sk.mean():.4f} bits, batched mean {ours.mean():.4f} bits, "
          f"max |delta| = {delta.max():.4f} bits, mean |delta| = {delta.mean():.5f} bits "
          f"(range of information on the subset: {sk.min():.3f}..{sk.max():.3f} bits)")


if __name__ == "__main__":
    main()
