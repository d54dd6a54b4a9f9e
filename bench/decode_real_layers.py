"""The ``linear`` estimator on recorded layers of trained networks vs a scikit-learn loop, same folds.

    python bench/decode_real_layers.py                      # the stored trained layers only
    python bench/decode_real_layers.py --run RUN_DIR        # + a recorded time-resolved run (the demo RNN)
    python bench/decode_real_layers.py --train /tmp/rnn     # train the demo RNN there first (about a minute)
    python bench/decode_real_layers.py --threads 2 --json after.json --compare before.json

Inputs (real activations, not synthetic populations: trained layers are near-separable and badly
scaled, which is what makes a solver iterate):

* ``tests/data/trained_layers.npz``: the FC net 4-100-100-100-2 without weight decay (epochs 1, 30,
  60) and with weight decay 1e-2 (epochs 20, 45, 60; units down to s.d. 2e-8), the demo RNN at
  epoch 12 (end of the stimulus); labels color and direction. One estimator call per layer.
* ``--run RUN_DIR``: the ``hidden`` layer of a recorded time-resolved run at ``--run-epochs``
  (default: four recorded epochs spread over training) and every ``--time-stride``-th step (default
  1: every step, as ``decisionnets analyze`` fits them; a stride leaves fewer problems per call, so
  the per-iteration overhead is shared by fewer of them and the time per problem rises),
  labels the run declares plus ``choice``; one estimator call per epoch (all time steps and labels
  at once, as ``decisionnets analyze`` does).

Baseline: for each problem and outer fold, ``LogisticRegressionCV`` (lbfgs, ``Cs = 1/alpha`` of the
same grid, the same inner folds, log-loss, tol 1e-4) on features standardized with the training
fold, refitted at the chosen C, scored on the held-out fold; timed on ``--subset`` problems per
source (extrapolated per problem, said so) with its BLAS limited to ``--sklearn-threads``.

Printed per source: ms per problem (wall and process CPU) on both sides and their ratio;
evaluations per fitted column on our side (one L-BFGS iteration = one function+gradient evaluation
= two GEMMs over the samples; counted by wrapping ``torch.bmm``, deterministic) and fits per
problem, scikit-learn's lbfgs iterations per fit (its inner-CV fits; scipy's lbfgs evaluates the
function about once per iteration); the largest |delta| in bits against scikit-learn (and against
``--compare`` estimates from another run of this script, e.g. another version of the package).

The arithmetic floor: the FLOPs of the evaluations the solver made (``4 n (r+1)`` per column and
evaluation: the logits and the gradient GEMMs; the Newton refit's products over the samples, its
Hessians at the rate of their dtype (float32 products on a float32 basis), its float64 logits and
gradients counted twice) divided by one GEMM rate: ``--floor-gflops``, or the best rate of ``torch.bmm``
measured here, in this process, at the solver's shapes (64 columns) and threads. Every row of the
products counts, the rows that pad a problem's block and those of columns already converged
included: it is the floor of the products the solver made, not of the fits a problem needs.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time
import warnings

import numpy as np
import torch

import _benchjson

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "trained_layers.npz"


# ------------------------------------------------------------------------------------- counting GEMMs
class _CountingTorch:
    """``torch`` with ``bmm`` counted: FLOPs of the products over the samples (the solver's work)."""

    def __init__(self):
        self.n = None
        self.data_flops = 0.0
        self.other_flops = 0.0
        self.col_evals = 0.0
        self.newton_flops = 0.0
        self.hessian32_flops = 0.0

    def __getattr__(self, name):
        return getattr(torch, name)

    def einsum(self, eq, *ops):
        # the Newton refit's products over the samples: the Hessians (float32 products when the basis
        # is float32, float64 otherwise) and the logits
        if eq == "mni,mnjb->mijb":
            a, b = ops
            fl = 2.0 * a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2] * b.shape[3]
            if a.dtype == torch.float64:
                self.newton_flops += fl
            else:
                self.hessian32_flops += fl
        elif eq in ("mnd,mdc->mnc", "mnd,mnc->mdc"):  # the logits and the gradient
            a, b = ops
            self.newton_flops += 2.0 * a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
        return torch.einsum(eq, *ops)

    def bmm(self, a, b, *args, **kw):
        fl = 2.0 * a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
        if self.n is not None and self.n in (a.shape[1], a.shape[2], b.shape[2]):
            if a.dtype == torch.float64:  # the Newton refit's logits and gradients
                self.newton_flops += fl
                return torch.bmm(a, b, *args, **kw)
            self.data_flops += fl
            # the logits, one per column and evaluation: (samples x basis) by (basis x columns), or
            # (columns x basis) by (basis x samples)
            if a.shape[1] == self.n:
                self.col_evals += a.shape[0] * b.shape[2]
            elif b.shape[2] == self.n and a.shape[2] != self.n:
                self.col_evals += a.shape[0] * a.shape[1]
        else:
            self.other_flops += fl
        return torch.bmm(a, b, *args, **kw)


COUNT = _CountingTorch()


def _install_counter():
    from decisionnets.decoding import estimator, logistic

    logistic._torch = lambda: COUNT
    estimator._torch = lambda: COUNT


def gemm_rate(n, d1, width, threads, reps=20):
    """GFLOP/s of torch.bmm (float32) for the solver's two products at ``width`` columns, the best of
    the two layouts: (n, d1) x (d1, width) and its transpose, or (width, d1) x (d1, n) and (width, n) x (n, d1)."""
    torch.set_num_threads(threads)
    Z = torch.randn(1, n, d1)
    ZT = Z.transpose(1, 2).contiguous()
    x = torch.randn(1, d1, width)
    res = torch.randn(1, n, width)
    xT = x.transpose(1, 2).contiguous()
    resT = res.transpose(1, 2).contiguous()
    best = np.inf
    for pair in ((lambda: torch.bmm(Z, x), lambda: torch.bmm(ZT, res)),
                 (lambda: torch.bmm(xT, ZT), lambda: torch.bmm(resT, Z))):
        for _ in range(3):
            pair[0](), pair[1]()
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(reps):
                pair[0]()
                pair[1]()
            best = min(best, (time.perf_counter() - t0) / reps)
    return 4.0 * n * d1 * width / best / 1e9


# ------------------------------------------------------------------------------------------- inputs
def fixture_sources():
    """[(name, X (P, n, d) float32, y (P, V, n), variable names)] of the stored trained layers."""
    data = np.load(FIXTURE)
    out = []
    for layer in [k for k in data.files if "__" not in k]:
        X = data[layer].astype(np.float32) * data[f"{layer}__scale"]
        y = np.stack([data[f"{layer}__{v}"].astype(np.int64) for v in ("color", "direction")])
        out.append((layer, X[None], y[None], ["color", "direction"]))
    return out


def run_sources(run_dir, epochs, time_stride):
    """[(name, X (T, n, d), y (T, V, n), names)] of a recorded run's ``hidden`` layer, one per epoch."""
    import decisionnets as dn
    from decisionnets.analyses import label_variables, trial_labels

    ds = dn.open_activations(run_dir)
    rec = [int(e) for e in ds["epoch"].values]
    if not epochs:
        epochs = sorted({rec[i] for i in np.linspace(0, len(rec) - 1, min(4, len(rec))).round().astype(int)})
    names = label_variables(ds)
    labels = trial_labels(ds, names, exclude_catch=True)
    out = []
    for ep in epochs:
        h = ds["hidden"].sel(epoch=ep)
        if "time" in h.dims:
            h = h.isel(time=np.arange(h.sizes["time"] - 1, -1, -time_stride)[::-1]).transpose("time", "trial", ...)
            X = np.asarray(h.values, np.float32)
        else:
            X = np.asarray(h.values, np.float32)[None]
        ys = []
        for name in names:
            lab = labels[name]
            lab = lab.sel(epoch=ep) if "epoch" in lab.dims else lab
            ys.append(np.nan_to_num(np.asarray(lab.values, float), nan=-1).astype(np.int64))
        y = np.broadcast_to(np.stack(ys)[None], (X.shape[0], len(names), X.shape[1]))
        out.append((f"rnn_run_e{ep}", X, y, names))
    return out


# ------------------------------------------------------------------------------------- the baseline
def sklearn_problem(X, y, fold, grid, tol):
    """Information (bits) and lbfgs iterations of its fits (inner CV) of one problem, one fit after another."""
    from sklearn.linear_model import LogisticRegressionCV

    X = np.asarray(X, np.float64)
    ok = fold >= 0
    K = int(fold.max()) + 1
    C = int(y[ok].max()) + 1
    ce_d = ce_p = 0.0
    n_used = 0
    iters = []
    for k in range(K):
        tr, te = ok & (fold != k), fold == k
        mu, sd = X[tr].mean(0), X[tr].std(0)
        sd[sd == 0] = 1.0
        ftr = fold[tr]
        cv = [(np.flatnonzero(ftr != j), np.flatnonzero(ftr == j)) for j in range(K) if j != k]
        clf = LogisticRegressionCV(Cs=1 / np.asarray(grid), cv=cv, scoring="neg_log_loss", max_iter=1000, tol=tol)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit((X[tr] - mu) / sd, y[tr])
        iters.extend(np.asarray(clf.n_iter_).ravel().tolist())
        p = clf.predict_proba((X[te] - mu) / sd)
        cols = np.searchsorted(clf.classes_, y[te])
        ce_d -= np.log(np.clip(p[np.arange(te.sum()), cols], 1e-300, None)).sum()
        prior = np.bincount(y[tr], minlength=C) / tr.sum()
        ce_p -= np.log(prior[y[te]]).sum()
        n_used += te.sum()
    return (ce_p - ce_d) / n_used / np.log(2), iters


# ------------------------------------------------------------------------------------------ the bench
def bench_source(name, X, y, names, args, rates):
    from threadpoolctl import threadpool_limits

    from decisionnets.decoding import DEFAULT_L2_GRID, UsableInformation

    P, n, d = X.shape
    V = y.shape[1]
    K = args.folds
    L = len(DEFAULT_L2_GRID)
    COUNT.n = n
    f0, e0, nf0, h0 = COUNT.data_flops, COUNT.col_evals, COUNT.newton_flops, COUNT.hessian32_flops
    t0, p0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = UsableInformation(folds=K, seed=args.seed).fit(X, y)
    wall, cpu = time.perf_counter() - t0, time.process_time() - p0
    data_fl = COUNT.data_flops - f0
    n_prob = P * V
    cols = K * (K - 1) // 2 * L + K  # pair fits x penalties + outer fits per problem (today's estimator)
    evals = (COUNT.col_evals - e0) / n_prob  # column evaluations per problem (multinomial: C' logits per column)
    r1 = int(round(data_fl / max(COUNT.col_evals - e0, 1) / (4.0 * n)))  # mean basis size r + 1
    key = (n, r1)
    if key not in rates:
        rates[key] = args.floor_gflops or gemm_rate(n, r1, 64, args.threads)
    newton_fl = COUNT.newton_flops - nf0  # float64: counted at half the float32 rate
    hess32_fl = COUNT.hessian32_flops - h0  # the refit's float32 Hessian products: the float32 rate
    floor = (data_fl + hess32_fl + 2 * newton_fl) / n_prob / (rates[key] * 1e9)
    # baseline on a subset
    rng = np.random.default_rng(1)
    pick = rng.choice(n_prob, size=min(args.subset, n_prob), replace=False)
    ref = np.empty(len(pick))
    sk_it = []
    with threadpool_limits(args.sklearn_threads):
        t1, p1 = time.perf_counter(), time.process_time()
        for i, idx in enumerate(pick):
            p, v = divmod(int(idx), V)
            ref[i], its = sklearn_problem(X[p], y[p, v], est.folds_[p, v], DEFAULT_L2_GRID, args.sk_tol)
            sk_it.extend(its)
        sk_wall, sk_cpu = (time.perf_counter() - t1) / len(pick), (time.process_time() - p1) / len(pick)
    ours = est.information_.reshape(-1)
    delta = np.abs(ours[pick] - ref)
    row = dict(source=name, problems=n_prob, n=n, d=d, ms=1e3 * wall / n_prob, cpu_ms=1e3 * cpu / n_prob,
               sk_ms=1e3 * sk_wall, sk_cpu_ms=1e3 * sk_cpu, evals_per_problem=evals, evals_per_column=evals / cols,
               sk_iters_per_fit=float(np.mean(sk_it)), sk_fits=len(sk_it) / len(pick) + K,
               floor_ms=1e3 * floor, gflops=rates[key], max_delta=float(delta.max()),
               newton_share=float((hess32_fl + 2 * newton_fl) / max(data_fl + hess32_fl + 2 * newton_fl, 1)),
               converged=float(est.converged_.mean()), information=ours.tolist(), sk_subset=[int(i) for i in pick])
    return row


def _load():
    try:
        return "%.1f" % os.getloadavg()[0]
    except OSError:
        return "?"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", help="a recorded time-resolved run directory (its `hidden` layer)")
    ap.add_argument("--train", metavar="DIR", help="train the demo RNN (preset color-direction, seed 0) into DIR "
                    "first if it holds no run, and use it as --run")
    ap.add_argument("--run-epochs", type=int, nargs="+", help="epochs of --run (default: 4 spread over training)")
    ap.add_argument("--time-stride", type=int, default=1, help="every k-th recorded step of --run (last kept)")
    ap.add_argument("--no-fixture", action="store_true", help="skip the stored trained layers")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0, help="fold seed")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the batched estimator")
    ap.add_argument("--sklearn-threads", type=int, default=1, help="BLAS threads of the scikit-learn loop")
    ap.add_argument("--subset", type=int, default=4, help="problems per source timed with scikit-learn")
    ap.add_argument("--sk-tol", type=float, default=1e-4, help="scikit-learn's tol")
    ap.add_argument("--json", help="write every estimate and timing here (with the date, the CPUs, the load "
                    "average at start and end and the threads: bench/figures.py draws it)")
    ap.add_argument("--compare", help="a --json file of another run: print the largest |delta| against it")
    ap.add_argument("--floor-gflops", type=float, help="the GEMM rate (GFLOP/s) of the arithmetic floor (default: "
                    "measured in this process; on a shared machine a fixed rate keeps two runs' floors comparable)")
    ap.add_argument("--label", default="", help="a name for this run in the printout (e.g. 'main', 'branch')")
    _benchjson.add_arguments(ap)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    info = _benchjson.start()
    import decisionnets
    import sklearn.linear_model  # noqa: F401  (imported before any clock starts)

    if args.train:
        run = pathlib.Path(args.train)
        if not (run / "activations").is_dir():
            env = dict(os.environ, OMP_NUM_THREADS="1")
            subprocess.run([sys.executable, "-m", "decisionnets.cli", "train", "--task", "color-direction", "--seed",
                            "0", "--run-dir", str(run), "--no-progress"], check=True, env=env)
        args.run = str(run)
    _install_counter()
    sources = [] if args.no_fixture else fixture_sources()
    if args.run:
        sources += run_sources(args.run, args.run_epochs, args.time_stride)
    print(f"decisionnets {pathlib.Path(decisionnets.__file__).parent} {args.label}".rstrip())
    print(f"torch threads={args.threads}, scikit-learn BLAS threads={args.sklearn_threads}; {args.folds} folds; "
          f"cpus={os.cpu_count()}; load average before {_load()}")
    rates = {}
    rows = []
    hdr = (f"{'source':14s} {'probs':>5s} {'n x d':>9s} | {'ours ms':>8s} {'cpu ms':>7s} {'evals/col':>9s} "
           f"{'floor ms':>8s} {'x floor':>7s} | {'sklearn ms':>10s} {'it/fit':>6s} | {'ratio':>6s} {'max|d|':>7s}")
    print(hdr)
    for name, X, y, names in sources:
        row = bench_source(name, X, y, names, args, rates)
        rows.append(row)
        print(f"{name:14s} {row['problems']:5d} {row['n']:4d}x{row['d']:<4d} | {row['ms']:8.1f} {row['cpu_ms']:7.1f} "
              f"{row['evals_per_column']:9.1f} {row['floor_ms']:8.2f} {row['ms'] / row['floor_ms']:7.1f} | "
              f"{row['sk_ms']:10.1f} {row['sk_iters_per_fit']:6.1f} | {row['sk_ms'] / row['ms']:6.1f} "
              f"{row['max_delta']:7.4f}", flush=True)
    tot_p = sum(r["problems"] for r in rows)
    ms = sum(r["ms"] * r["problems"] for r in rows) / tot_p
    sk = sum(r["sk_ms"] * r["problems"] for r in rows) / tot_p
    fl = sum(r["floor_ms"] * r["problems"] for r in rows) / tot_p
    ev = sum(r["evals_per_column"] * r["problems"] for r in rows) / tot_p
    print(f"{'all':14s} {tot_p:5d} {'':9s} | {ms:8.1f} {'':7s} {ev:9.1f} {fl:8.2f} {ms / fl:7.1f} | {sk:10.1f} "
          f"{'':6s} | {sk / ms:6.1f} {max(r['max_delta'] for r in rows):7.4f}")
    print("GEMM rate (torch.bmm float32, n x (r+1) by (r+1) x 64, this process): "
          + ", ".join(f"{n}x{d1}: {g:.1f} GFLOP/s" for (n, d1), g in rates.items()) + f"; load average after {_load()}")
    if args.compare:
        old = {r["source"]: r for r in json.loads(pathlib.Path(args.compare).read_text())["rows"]}
        worst = 0.0
        for r in rows:
            if r["source"] in old:
                dd = np.nanmax(np.abs(np.asarray(r["information"]) - np.asarray(old[r["source"]]["information"])))
                worst = max(worst, float(dd))
                print(f"  {r['source']:14s} vs {args.compare}: max |delta| {dd:.5f} bits, time "
                      f"{old[r['source']]['ms'] / r['ms']:.2f}x, evaluations/column {old[r['source']]['evals_per_column']:.1f} "
                      f"-> {r['evals_per_column']:.1f}")
        print(f"largest |delta| against {args.compare}: {worst:.5f} bits")
    _benchjson.write(args.json, "decode_real_layers", info, args,
                     dict(all=sk / ms, **{r["source"]: r["sk_ms"] / r["ms"] for r in rows}),
                     rows=rows, gemm=[[n, d1, g] for (n, d1), g in rates.items()])


if __name__ == "__main__":
    main()
