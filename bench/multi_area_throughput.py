"""Training throughput of the 3-area E/I model vs ``torch.nn.RNN`` of the same total size, in one run.

For the ``color-direction-3area`` preset (3 areas x 100 units, the authors' long trials: 75 steps
of 20 ms on the probe timing) this prints trials/second of one training step (forward, masked
loss, backward, optimizer step) on the same batch for

- **multi-area**: :class:`decisionnets.models.multi_area.MultiAreaRNN` as the preset builds it
  (Dale's law: ``|W| * mask * sign`` recomputed every step, Python loop over time, ReLU);
- **torch.nn.RNN**: ``torch.nn.RNN(5, 300, nonlinearity="relu")`` with a linear readout
  (cuDNN-style fused recurrence on CPU, no leak, no masks, no E/I structure);

and their ratio (multi-area / nn.RNN). A third column, the package's unstructured
:class:`~decisionnets.models.rnn.LeakyRNN` of 300 ReLU units (same Euler loop, no masks, no signs),
separates the cost of the E/I structure from that of the leaky loop itself. Both use the preset's optimizer (Adam). Timings are
interleaved (A, B, A, B, ...) and the median is taken, so load on a shared machine hits both alike.

Usage: ``python bench/multi_area_throughput.py [--reps N] [--threads T]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from decisionnets.build import build_model, build_task
from decisionnets.config import load_config
from decisionnets.models.rnn import LeakyRNN
from decisionnets.metrics import masked_cross_entropy as masked_loss


class TorchRNN(torch.nn.Module):
    """``torch.nn.RNN`` of ``hidden`` ReLU units with a linear readout: the baseline."""

    def __init__(self, n_in, hidden, n_out):
        super().__init__()
        self.rnn = torch.nn.RNN(n_in, hidden, nonlinearity="relu")
        self.readout = torch.nn.Linear(hidden, n_out)

    def forward(self, x, layers=None):
        h, _ = self.rnn(x)
        return self.readout(h), {}


def step_seconds(model, opt, x, y, m) -> float:
    t0 = time.perf_counter()
    logits, _ = model(x, layers=())
    loss = masked_loss(logits, y, m)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=15, help="timed steps per model and batch size")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = load_config("color-direction-3area")
    task = build_task(cfg)
    ours = build_model(cfg, task).train()
    n_units = ours.hidden_size
    ref = TorchRNN(task.n_inputs, n_units, task.n_outputs).train()
    leaky = LeakyRNN(task.n_inputs, task.n_outputs, hidden_size=n_units, tau=50.0, dt=task.dt, activation="relu",
                     noise=0.05).train()
    models = {"multi-area": ours, "torch.nn.RNN": ref, "LeakyRNN": leaky}
    opts = {k: torch.optim.Adam(v.parameters(), lr=1e-4) for k, v in models.items()}
    probe = task.probe_set(np.random.default_rng(0))
    print(f"color-direction-3area: {ours.n_areas} areas x {ours.area_size} units = {n_units} units, "
          f"{probe.n_time} time steps per trial, Adam, {args.threads} torch thread(s)")
    print(f"{'batch':>6} {'multi-area (trials/s)':>22} {'torch.nn.RNN (trials/s)':>24} {'ratio':>6} "
          f"{'LeakyRNN (trials/s)':>20} {'ratio':>6}")
    for bs in (32, 256):
        sub = probe.subset(np.arange(bs) % probe.n_trials)
        x, y, m = (torch.from_numpy(a) for a in (sub.inputs, sub.targets, sub.mask))
        times = {k: [] for k in models}
        for name in models:  # warm-up
            step_seconds(models[name], opts[name], x, y, m)
        for _ in range(args.reps):
            for name in models:
                times[name].append(step_seconds(models[name], opts[name], x, y, m))
        rate = {k: bs / float(np.median(v)) for k, v in times.items()}
        print(f"{bs:>6} {rate['multi-area']:>22.0f} {rate['torch.nn.RNN']:>24.0f} "
              f"{rate['multi-area'] / rate['torch.nn.RNN']:>6.2f}x {rate['LeakyRNN']:>20.0f} "
              f"{rate['multi-area'] / rate['LeakyRNN']:>6.2f}x")


if __name__ == "__main__":
    main()
