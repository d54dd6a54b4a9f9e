"""Training throughput of decisionnets' loop vs a neurogym-style reference loop, measured in one run.

For the color-direction RNN (the ``color-direction`` preset's sizes) at batch
32 and 512 this prints trials/second of

- **ours**: :func:`decisionnets.training.train` (vectorized trial generation
  once per run, the leaky RNN, masked loss, SGD), timed from its per-epoch log
  on epochs that record nothing;
- **reference**: the usual research loop: every batch generated trial by trial
  with ``env.new_trial()`` (neurogym's API, on the same env), padded, then a
  ``torch.nn.RNN`` of the same size with a linear readout, masked loss, SGD;

and their ratio (target >= 2x at batch 32). It also prints the recording
overhead: the time to run the probe set and write one epoch's netCDF as a
fraction of one training epoch, and over a whole default run with the "log"
schedule (target <= 10 %).

Usage: ``python bench/train_throughput.py [--trials N] [--threads T] [--json PATH]``
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import _benchjson
from decisionnets.build import build_model, build_task
from decisionnets.config import load_config
from decisionnets.io import write_epoch
from decisionnets.recording import Recorder, record_epochs
from decisionnets.metrics import masked_cross_entropy as masked_loss
from decisionnets.training import train


def ours(batch_size: int, n_trials: int) -> float:
    """Trials/s of decisionnets.training.train on epochs 1-2 (nothing recorded there)."""
    cfg = load_config("color-direction", overrides=[f"batch_size={batch_size}", f"n_trials={n_trials}",
                                                    "val_fraction=0", "epochs=3", "schedule=[0]"])
    with tempfile.TemporaryDirectory() as d:
        train(cfg, d, progress=False)
        rows = list(csv.DictReader(open(Path(d) / "log.csv")))
    seconds = [float(r["seconds"]) for r in rows[:2]]
    return n_trials / float(np.mean(seconds))


def reference(batch_size: int, n_trials: int, hidden: int, seed: int = 0) -> float:
    """Trials/s of a per-trial-generation loop with torch.nn.RNN (same sizes, same env)."""
    task = build_task(load_config("color-direction"))
    env = task.env
    env.seed(seed)
    rnn = torch.nn.RNN(task.n_inputs, hidden, nonlinearity="tanh")
    readout = torch.nn.Linear(hidden, task.n_outputs)
    opt = torch.optim.SGD([*rnn.parameters(), *readout.parameters()], lr=0.1)
    t0 = time.perf_counter()
    done = 0
    while done < n_trials:
        obs, gts = [], []
        for _ in range(batch_size):
            env.new_trial()
            obs.append(env.ob)
            gts.append(env.gt)
        T = max(len(o) for o in obs)
        x = np.zeros((T, batch_size, task.n_inputs), np.float32)
        y = np.zeros((T, batch_size), np.int64)
        m = np.zeros((T, batch_size), np.float32)
        for i, (o, g) in enumerate(zip(obs, gts)):
            x[T - len(o):, i], y[T - len(o):, i] = o, g
            m[T - len(o):, i] = g > 0
        h, _ = rnn(torch.from_numpy(x))
        loss = masked_loss(readout(h), torch.from_numpy(y), torch.from_numpy(m))
        opt.zero_grad()
        loss.backward()
        opt.step()
        done += batch_size
    return done / (time.perf_counter() - t0)


def recording_overhead(n_trials: int, batch_size: int = 32) -> tuple[float, float, float]:
    """Seconds to record one epoch, that as a fraction of a training epoch, and over a default run."""
    cfg = load_config("color-direction")
    task = build_task(cfg)
    probe = task.probe_set(np.random.default_rng(0))
    model = build_model(cfg, task)
    rec = Recorder(probe, task, model.default_layers, attrs={"config": cfg.to_json()})
    with tempfile.TemporaryDirectory() as d:
        times = []
        for e in range(3):
            t0 = time.perf_counter()
            write_epoch(rec.dataset(model, e, 0), d, e)
            times.append(time.perf_counter() - t0)
    rec_s = float(np.median(times))
    epoch_s = cfg.train.n_trials * (1 - cfg.train.val_fraction) / ours(batch_size, n_trials)
    n_rec = len(record_epochs(cfg.record.schedule, cfg.train.epochs))
    run_fraction = n_rec * rec_s / (cfg.train.epochs * epoch_s)
    return rec_s, rec_s / epoch_s, run_fraction


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=3000, help="training trials per measured epoch")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    _benchjson.add_arguments(p)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    info = _benchjson.start()
    hidden = int(load_config("color-direction").model["hidden_size"])
    print(f"color-direction leaky RNN, {hidden} units, {args.trials} trials/epoch, {args.threads} torch thread(s)")
    print(f"{'batch':>6} {'ours (trials/s)':>16} {'reference (trials/s)':>21} {'ratio':>6}")
    rows = []
    for bs in (32, 512):
        a = ours(bs, args.trials)
        b = reference(bs, args.trials, hidden)
        print(f"{bs:>6} {a:>16.0f} {b:>21.0f} {a / b:>6.2f}x")
        rows.append(dict(batch_size=bs, ours_trials_per_s=a, reference_trials_per_s=b, ratio=a / b))
    rec_s, frac_epoch, frac_run = recording_overhead(args.trials)
    print(f"recording one epoch (probe set forward + netCDF write): {rec_s:.3f} s = "
          f"{100 * frac_epoch:.1f} % of a training epoch at batch 32; "
          f"{100 * frac_run:.1f} % of a default run (log schedule)")
    _benchjson.write(args.json, "train_throughput", info, args,
                     {f"batch {r['batch_size']}": r["ratio"] for r in rows}, hidden=hidden, rows=rows,
                     recording=dict(seconds=rec_s, fraction_of_epoch=frac_epoch, fraction_of_run=frac_run))


if __name__ == "__main__":
    main()
