"""Batched usable-information estimator vs a scikit-learn loop, measured in the same run.

    python bench/decode_speed.py [--epochs 30 --times 50 --trials 1000 --units 100 --subset 24]
    python bench/decode_speed.py --families linear linear-raw mlp sgd-mlp sgd-linear [--threads 1]
    python bench/decode_speed.py --json bench/results/decode_speed.json   # + the numbers as JSON

``--families``: every decoder family against its reference loop on the same folds (scikit-learn
``LogisticRegressionCV`` for ``linear`` / ``linear-raw``, standardized per training fold or raw; an
``nn.Sequential`` per fold trained by ``torch.optim.SGD`` for ``sgd-mlp`` / ``sgd-linear``, on a few
problems: 3,000 iterations are expensive on a CPU; for ``mlp`` the same one-hidden-layer Adam decoder
fitted one problem, fold and penalty after another, ``torch_mlp_information`` of ``tests/decoder_reference.py``),
printing ms per problem (wall and CPU), the ratio and |delta|.

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
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import _benchjson
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


def bench_family(family, X, labels, args):
    """Batched estimate of one family vs its reference loop on a random subset; prints one line.

    Both sides are timed in wall-clock and in CPU seconds of this process (``time.process_time``:
    with one thread each, the CPU ratio is what other jobs on a shared machine disturb least).
    """
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the reference loops live with the tests
    from decoder_reference import sklearn_information, torch_mlp_information, torch_sgd_information

    from decisionnets.decoding import get_decoder

    import sklearn.linear_model  # noqa: F401  (imported before the clock starts: seconds on a busy machine)

    P, V = X.shape[0], labels.shape[0]
    sgd = family.startswith("sgd-")
    dec = get_decoder(family, iterations=args.sgd_iterations) if sgd else get_decoder(family)
    n_prob = min(P, args.sgd_problems) if sgd else P
    subset = {"mlp": args.mlp_subset}.get(family, args.sgd_subset if sgd else args.subset)
    y = np.broadcast_to(labels[None], (n_prob, V, args.trials))
    t0, c0 = time.perf_counter(), time.process_time()
    est = UsableInformation(decoder=dec, folds=args.folds, device=args.device).fit(X[:n_prob], y)
    per_b, cpu_b = (time.perf_counter() - t0) / (n_prob * V), (time.process_time() - c0) / (n_prob * V)
    rng = np.random.default_rng(1)
    pick = rng.choice(n_prob * V, size=min(subset, n_prob * V), replace=False)
    ref = np.empty(len(pick))
    t0, c0 = time.perf_counter(), time.process_time()
    for i, idx in enumerate(pick):
        p, v = divmod(int(idx), V)
        if sgd:
            ref[i] = torch_sgd_information(X[p], labels[v], est.folds_[p, v], dec, seed=i)
        elif family == "mlp":
            ref[i] = torch_mlp_information(X[p], labels[v], est.folds_[p, v], dec, seed=i)[0]
        else:
            ref[i] = sklearn_information(X[p], labels[v], est.folds_[p, v], standardize=family == "linear",
                                         tol=1e-4, max_iter=1000)[0]
    per_r, cpu_r = (time.perf_counter() - t0) / len(pick), (time.process_time() - c0) / len(pick)
    ours = est.information_.reshape(-1)[pick]
    delta = np.abs(ours - ref)
    what = {"mlp": "per-problem torch loop (naive nested CV)"}.get(
        family, "per-problem torch loop" if sgd else "scikit-learn LogisticRegressionCV loop")
    budget = f", {args.sgd_iterations} SGD iterations" if sgd else ""
    print(f"{family:11s} batched {1e3 * per_b:8.1f} ms/problem ({n_prob * V} problems) | {what} "
          f"{1e3 * per_r:8.1f} ms/problem (timed on {len(pick)}, extrapolated) | speed-up wall {per_r / per_b:5.1f}x, "
          f"CPU {cpu_r / cpu_b:5.1f}x | max |delta| {delta.max():.4f} bits, mean {delta.mean():.4f}; "
          f"converged {est.converged_.mean():.0%}{budget}; load {_load()}", flush=True)
    return dict(family=family, problems=n_prob * V, reference=what, reference_timed_on=len(pick),
                ours_ms=1e3 * per_b, reference_ms=1e3 * per_r, ours_cpu_ms=1e3 * cpu_b, reference_cpu_ms=1e3 * cpu_r,
                ratio_wall=per_r / per_b, ratio_cpu=cpu_r / cpu_b, max_delta=float(delta.max()),
                mean_delta=float(delta.mean()))


def _load():
    try:
        return "%.1f" % __import__("os").getloadavg()[0]
    except OSError:
        return "?"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--times", type=int, default=50)
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--units", type=int, default=100)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--subset", type=int, default=24, help="problems timed with the scikit-learn loop")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--families", nargs="+", default=None,
                    help="time these decoder families against their reference loops (default: only the legacy "
                         "`linear` comparison below); e.g. --families linear linear-raw mlp sgd-mlp sgd-linear")
    ap.add_argument("--sgd-problems", type=int, default=4, help="activity problems fitted by the batched SGD decoders")
    ap.add_argument("--sgd-subset", type=int, default=2, help="problems timed with the per-problem torch loop")
    ap.add_argument("--sgd-iterations", type=int, default=3000)
    ap.add_argument("--mlp-subset", type=int, default=2, help="problems timed with the per-problem mlp loop")
    _benchjson.add_arguments(ap)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    info = _benchjson.start()

    X, labels = synthetic_run(args.epochs, args.times, args.trials, args.units)
    if args.families:
        print(f"input: {X.shape[0]} activity problems x {labels.shape[0]} variables; {args.trials} trials x "
              f"{args.units} units; {args.folds} folds; torch threads={args.threads}, device={args.device}")
        print("each reference loop is timed on a random subset of the problems and extrapolated per problem; "
              "|delta| on that subset (the torch loops draw their own initialisation and dropout)")
        rows = [bench_family(fam, X, labels, args) for fam in args.families]
        _benchjson.write(args.json, "decode_speed", info, args, {r["family"]: r["ratio_wall"] for r in rows},
                         trials=args.trials, units=args.units, rows=rows)
        return
    P, V = X.shape[0], labels.shape[0]
    y = np.broadcast_to(labels[None], (P, V, args.trials))
    print(f"input: {args.epochs} epochs x {args.times} time steps = {P} activity problems x {V} variables "
          f"= {P * V} decoding problems; {args.trials} trials x {args.units} units; {args.folds} folds, "
          f"{len(DEFAULT_L2_GRID)} L2 values; torch threads={args.threads}, device={args.device}")

    print(f"load average before: {_load()}")
    t0, c0 = time.perf_counter(), time.process_time()
    est = UsableInformation(folds=args.folds, device=args.device).fit(X, y)
    t_batched, c_batched = time.perf_counter() - t0, time.process_time() - c0
    print(f"batched (torch): {t_batched:.1f} s for {P * V} problems = {1e3 * t_batched / (P * V):.2f} ms/problem "
          f"(CPU {1e3 * c_batched / (P * V):.2f} ms/problem); converged {est.converged_.mean():.2%}")

    rng = np.random.default_rng(1)
    pick = rng.choice(P * V, size=min(args.subset, P * V), replace=False)
    sk = np.empty(len(pick))
    import sklearn.linear_model  # noqa: F401  (imported before the clock starts)
    t0, c0 = time.perf_counter(), time.process_time()
    for i, idx in enumerate(pick):
        p, v = divmod(int(idx), V)
        sk[i] = sklearn_information(X[p].astype(np.float64), labels[v], est.folds_[p, v], DEFAULT_L2_GRID, args.folds)
    t_sub, c_sub = time.perf_counter() - t0, time.process_time() - c0
    per = t_sub / len(pick)
    t_sk = per * P * V
    ours = est.information_.reshape(-1)[pick]
    delta = np.abs(ours - sk)
    print(f"sklearn loop (LogisticRegressionCV per problem and outer fold, same folds): timed on a random "
          f"subset of {len(pick)} problems, {t_sub:.1f} s = {1e3 * per:.0f} ms/problem; extrapolated to all "
          f"{P * V} problems: {t_sk:.0f} s")
    print(f"speed-up (sklearn extrapolated / batched): {t_sk / t_batched:.1f}x wall, "
          f"{(c_sub / len(pick)) / (c_batched / (P * V)):.1f}x CPU time (torch threads={args.threads}); "
          f"load average after: {_load()}")
    print(f"estimates on the subset: sklearn mean {sk.mean():.4f} bits, batched mean {ours.mean():.4f} bits, "
          f"max |delta| = {delta.max():.4f} bits, mean |delta| = {delta.mean():.5f} bits "
          f"(range of information on the subset: {sk.min():.3f}..{sk.max():.3f} bits)")
    row = dict(family="linear", problems=P * V, reference="scikit-learn LogisticRegressionCV loop (tol 1e-6)",
               reference_timed_on=len(pick), ours_ms=1e3 * t_batched / (P * V), reference_ms=1e3 * per,
               ours_cpu_ms=1e3 * c_batched / (P * V), reference_cpu_ms=1e3 * c_sub / len(pick),
               ratio_wall=t_sk / t_batched, ratio_cpu=(c_sub / len(pick)) / (c_batched / (P * V)),
               max_delta=float(delta.max()), mean_delta=float(delta.mean()))
    _benchjson.write(args.json, "decode_speed", info, args, {"linear": row["ratio_wall"]},
                     trials=args.trials, units=args.units, rows=[row])


if __name__ == "__main__":
    main()
