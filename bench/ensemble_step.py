"""One training step of an ensemble of MLPs: the MLP's fast path vs the generic vmap + autograd path.

An :class:`decisionnets.ensemble.Ensemble` batches any model whose training forward
:func:`torch.func.vmap` can run (:func:`decisionnets.ensemble.vmap_forward`); the MLP registers a
fast path instead (batched matmuls with a hand-written backward). This times one step of the
training loop's work (forward, masked cross-entropy, backward, divergence check, per-member SGD)
for K members of the paper's 4-100-100-100-2 net at batch 32 and 512, both paths interleaved in
one process, and prints ms per step (process CPU time, the least of ``--repeats``) and the ratio.

Usage: ``python bench/ensemble_step.py [--members 10] [--repeats 5] [--json PATH]``
"""

from __future__ import annotations

import argparse
import time

import torch

import _benchjson
from decisionnets.ensemble import Ensemble, MemberSGD, vmap_forward
from decisionnets.metrics import masked_cross_entropy
from decisionnets.models.mlp import MLP
from decisionnets.optimization import apply_settings


def step_ms(K: int, batch: int, n: int, forward=None) -> float:
    """CPU ms per training step of K MLPs through ``forward`` (None: the registered fast path)."""
    torch.manual_seed(0)
    ens = Ensemble([MLP(4, 2, hidden_sizes=(100, 100, 100)) for _ in range(K)], forward=forward)
    opt = MemberSGD(ens.parameters())
    apply_settings(opt, {"lr": torch.full((K,), 0.05), "momentum": torch.zeros(K),
                         "weight_decay": torch.linspace(0, 1e-2, K)})
    x, y, m = torch.randn(K, 1, batch, 4), torch.randint(0, 2, (K, 1, batch)), torch.ones(K, 1, batch)
    t0 = time.process_time()
    for _ in range(n):
        logits, _ = ens(x)
        losses = masked_cross_entropy(logits, y, m)
        opt.zero_grad()
        losses.sum().backward()
        bool((~torch.isfinite(losses) | (losses > 1e4)).any())
        opt.step()
    return (time.process_time() - t0) / n * 1e3


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    _benchjson.add_arguments(p)
    args = p.parse_args()
    torch.set_num_threads(1)
    info = _benchjson.start()
    rows = []
    for batch, n in ((32, 300), (512, 40)):
        fast, generic = [], []
        for _ in range(args.repeats):
            fast.append(step_ms(args.members, batch, n))
            generic.append(step_ms(args.members, batch, n, vmap_forward))
        f, g = min(fast), min(generic)
        print(f"{args.members} MLPs, batch {batch}: fast path {f:.3f} ms/step, vmap + autograd {g:.3f} ms/step, "
              f"ratio {g / f:.2f}x")
        rows.append(dict(batch_size=batch, fast_ms=f, vmap_ms=g, ratio=g / f))
    _benchjson.write(args.json, "ensemble_step", info, args, {f"batch {r['batch_size']}": r["ratio"] for r in rows},
                     members=args.members, rows=rows)


if __name__ == "__main__":
    main()
