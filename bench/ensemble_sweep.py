"""A 20-member FC sweep trained as ensembles vs as solo runs, measured in one process.

The grid has the shape of the ``paper-signatures`` sweep: the FC net 4-100-100-100-2 (ReLU) on the
static checkerboard task, 10,000 samples (90/10 train/validation), learning rate {0.05, 0.005} x
batch size {32, 512} x weight decay {0, 5e-4, 1e-3, 5e-3, 1e-2} = 20 runs, seed 0, a few epochs,
every epoch recorded (probe forward pass + netCDF write, as in the sweep). Both ways write complete
run directories.

- **solo**: :func:`decisionnets.training.train` once per grid point, one after the other (what a
  sweep worker does today);
- **ensemble**: :func:`decisionnets.ensemble.group_configs` groups the 20 configs by batch size
  (2 ensembles of 10) and :func:`decisionnets.ensemble.train_ensemble` trains each group.

``--net rnn`` times the RNN axis of the ``sgd-regimes`` sweep instead: the leaky RNN (32 units,
recurrent noise 0.05) on the time-resolved checkerboard task, 1,000 trials, weight decay 1e-2,
learning rate {0.02, 0.1} x batch size {32, 256} x seeds 0-4 = 20 runs, 2 ensembles of 10.

Prints the wall time of each, per batch-size group and in all, their ratio (target >= 5x for the
FC grid), the training-loop part alone, and the largest difference between a member's recorded
activations and its solo run's.

Usage: ``python bench/ensemble_sweep.py [--net fc|rnn] [--epochs 3] [--threads 1] [--schedule all|last]
[--device cpu|cuda] [--json PATH]``
"""

from __future__ import annotations

import argparse
import csv
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import _benchjson
from decisionnets.config import load_config
from decisionnets.ensemble import group_configs, train_ensemble
from decisionnets.io import open_activations
from decisionnets.training import train


def grid_configs(epochs: int, seed: int = 0, schedule: str = "all", device: str | None = None, net: str = "fc"):
    """The 20 configs: lr x batch size x weight decay (``net="fc"``) or lr x batch size x seed (``net="rnn"``);
    ``schedule``: "all" or "last" (record epochs 0 and last)."""
    sched = '"all"' if schedule == "all" else f"[0, {epochs}]"
    out = []
    if net == "rnn":
        for lr, bs, s in itertools.product((0.02, 0.1), (32, 256), range(5)):
            out.append(load_config("color-direction", seed=seed + s, overrides=[
                f"epochs={epochs}", f"lr={lr}", f"batch_size={bs}", "weight_decay=0.01", "n_trials=1000",
                "model.hidden_size=32", "n_per_condition=6", f"schedule={sched}"], device=device))
        return out
    for lr, bs, wd in itertools.product((0.05, 0.005), (32, 512), (0.0, 5e-4, 1e-3, 5e-3, 1e-2)):
        out.append(load_config("color-direction-static", seed=seed, overrides=[
            f"epochs={epochs}", f"lr={lr}", f"batch_size={bs}", f"weight_decay={wd}", f"schedule={sched}"],
            device=device))
    return out


def _train_seconds(run_dir) -> float:
    with open(Path(run_dir) / "log.csv", newline="") as f:
        return sum(float(r["seconds"]) for r in csv.DictReader(f))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--net", choices=("fc", "rnn"), default="fc",
                   help="fc: the paper-signatures grid (default); rnn: the sgd-regimes RNN axis")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="both ways on this device")
    p.add_argument("--schedule", choices=["all", "last"], default="all",
                   help="recorded epochs: all (the paper-signatures preset) or only 0 and the last (shows what "
                        "the per-member files of every epoch cost)")
    _benchjson.add_arguments(p)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    info = _benchjson.start()
    configs = grid_configs(args.epochs, schedule=args.schedule, device=args.device, net=args.net)
    groups = group_configs(configs)
    what = "every epoch recorded" if args.schedule == "all" else f"epochs 0 and {args.epochs} recorded"
    runs = ("leaky RNN (32 units) on 1,000 time-resolved trials" if args.net == "rnn"
            else "4-100-100-100-2 on 10,000 samples")
    print(f"{len(configs)} runs of {runs}, {args.epochs} epochs, {what}; "
          f"{args.threads} torch thread(s), device {args.device}; ensembles: {[len(g) for g in groups]}")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        # warm up both paths (imports, allocator) on a 2-member ensemble of 1 epoch
        task = "color-direction" if args.net == "rnn" else "color-direction-static"
        warm = [load_config(task, overrides=["epochs=1", "n_trials=200"], seed=s, device=args.device) for s in (0, 1)]
        train_ensemble(warm, [d / "w0", d / "w1"], progress=False)
        train(warm[0], d / "w2", progress=False)

        t_ens, t_solo = [], []
        for g in groups:  # each group as an ensemble, then the same configs as solo runs
            t0 = time.perf_counter()
            train_ensemble([configs[i] for i in g], [d / f"ens{i}" for i in g], progress=False)
            t_ens.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for i in g:
                train(configs[i], d / f"solo{i}", progress=False)
            t_solo.append(time.perf_counter() - t0)

        diff, diff_first = 0.0, 0.0
        for i in range(len(configs)):
            a, b = open_activations(d / f"ens{i}").load(), open_activations(d / f"solo{i}").load()
            err = np.abs(a.hidden.values - b.hidden.values).max(axis=tuple(range(1, a.hidden.ndim)))  # per epoch
            diff, diff_first = max(diff, float(err.max())), max(diff_first, float(err[1]))
            a.close()
            b.close()
        loop_ens = sum(_train_seconds(d / f"ens{i}") for i in range(len(configs)))
        loop_solo = sum(_train_seconds(d / f"solo{i}") for i in range(len(configs)))
    rows = []
    for g, te, ts in zip(groups, t_ens, t_solo):
        print(f"  batch size {configs[g[0]].train.batch_size}: {len(g)} solo runs {ts:.1f} s, ensemble {te:.1f} s, "
              f"ratio {ts / te:.2f}x")
        rows.append(dict(batch_size=configs[g[0]].train.batch_size, runs=len(g), solo_s=ts, ensemble_s=te,
                         ratio=ts / te))
    t_solo, t_ens = sum(t_solo), sum(t_ens)
    print(f"solo runs: {t_solo:.1f} s; ensembles: {t_ens:.1f} s; ratio {t_solo / t_ens:.2f}x (target >= 5x)")
    print(f"epoch loops only (log.csv seconds, incl. validation, recording, checkpoints): solo {loop_solo:.1f} s, "
          f"ensembles {loop_ens:.1f} s, ratio {loop_solo / loop_ens:.2f}x")
    print(f"largest |ensemble - solo| in recorded hidden activity over all members: {diff:.2e} over all "
          f"recorded epochs, {diff_first:.2e} at the first recorded epoch after 0 (rounding differences of "
          f"the batched matmuls, amplified by SGD as training goes on)")
    _benchjson.write(args.json, "ensemble_sweep", info, args,
                     dict(all=t_solo / t_ens, epoch_loops=loop_solo / loop_ens,
                          **{f"batch {r['batch_size']}": r["ratio"] for r in rows}),
                     runs=len(configs), rows=rows, solo_s=t_solo, ensemble_s=t_ens, loop_solo_s=loop_solo,
                     loop_ensemble_s=loop_ens, max_abs_diff=diff, max_abs_diff_first_epoch=diff_first)


if __name__ == "__main__":
    main()
