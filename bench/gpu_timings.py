"""The GPU path, timed by one short prepared script (run it where a CUDA GPU is available).

Each step runs in its own subprocess with its own time limit, so a failure or a timeout in one
does not lose the others; every step prints its output's tail and its wall time, and the summary
(with the card's name) is written as JSON to ``--out``:

1. ``cifar10``: one epoch of the ``cifar10-coarse`` preset (ResNet-18, width 64, batch 128,
   momentum 0.9) on a fake CIFAR-10 folder of ``--cifar-train`` images written by
   ``write_fake_cifar`` of ``tests/fake_images.py`` (the real images cost the same; the fake
   ones need no download). The epoch's seconds come from the run's ``log.csv``.
2. ``demo-<device>`` and ``demo-cpu``: the demo's training (``decisionnets train --task
   color-direction``, ``--demo-epochs`` epochs) on the device and, for the ratio, on the CPU with
   the CLI's thread choice.
3. ``decode``: ``bench/decode_speed.py --device <device>`` (the batched decoder on the device vs
   scikit-learn on the CPU on a subset of problems).
4. ``ensemble``: ``bench/ensemble_sweep.py --device <device>`` (20 FC runs as 2 ensembles vs 20
   solo runs, both on the device).

Usage::

    python bench/gpu_timings.py --out gpu_timings.json          # on the GPU machine, ~5-8 min
    python bench/gpu_timings.py --device cpu --quick            # check the script itself on a CPU

``--quick`` shrinks every step (a 500-image fake CIFAR with a width-4 ResNet, 1 demo epoch on
500 trials, a small decode bench, a 1-epoch ensemble bench) so the script runs in a few minutes
on a CPU; its timings mean nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _card(device: str) -> str:
    import torch

    if device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: torch.cuda.is_available() is False on this machine "
                             f"(torch {torch.__version__}, built with CUDA {torch.version.cuda})")
        return f"{torch.cuda.get_device_name(0)} (torch {torch.__version__}, CUDA {torch.version.cuda})"
    return f"CPU, {os.cpu_count()} cores (torch {torch.__version__})"


def _epoch_seconds(run_dir: Path) -> list[float]:
    with open(run_dir / "log.csv", newline="") as f:
        return [float(r["seconds"]) for r in csv.DictReader(f)]


def _step(name: str, cmd: list[str], timeout: float, env=None) -> dict:
    """Run one step; returns {name, cmd, wall_s, rc, tail} (rc None: timed out)."""
    print(f"\n=== {name}: {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        rc, out = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        rc = None
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        out += f"\n[timed out after {timeout:.0f} s]"
    wall = time.perf_counter() - t0
    tail = "\n".join(out.strip().splitlines()[-12:])
    print(tail)
    print(f"--- {name}: rc {rc}, {wall:.1f} s", flush=True)
    return {"name": name, "cmd": cmd, "wall_s": round(wall, 2), "rc": rc, "tail": tail}


def _train_cmd(task, run_dir, device, sets):
    cmd = [sys.executable, "-m", "decisionnets.cli", "train", "--task", task,
           "--run-dir", str(run_dir), "--device", device, "--no-progress"]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the script, times nothing useful")
    ap.add_argument("--out", default="gpu_timings.json", help="JSON summary (default: gpu_timings.json)")
    ap.add_argument("--cifar-train", type=int, default=50000, help="fake CIFAR-10 training images (default 50,000)")
    ap.add_argument("--demo-epochs", type=int, default=3, help="epochs of the demo's training (default 3)")
    ap.add_argument("--steps", nargs="+", default=["cifar10", "demo", "decode", "ensemble"],
                    choices=["cifar10", "demo", "decode", "ensemble"])
    ap.add_argument("--timeout", type=float, default=240, help="seconds per step (default 240)")
    args = ap.parse_args(argv)
    card = _card(args.device)
    print(f"device: {card}")
    dev = args.device
    results = {"device": dev, "card": card, "quick": args.quick, "steps": []}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if "cifar10" in args.steps:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test-data writer
            from fake_images import write_fake_cifar

            n_train = 500 if args.quick else args.cifar_train
            t0 = time.perf_counter()
            write_fake_cifar(tmp / "cifar", "cifar10", n_train=n_train, n_test=500 if args.quick else 2000)
            print(f"fake CIFAR-10: {n_train} training images written in {time.perf_counter() - t0:.1f} s")
            sets = ["epochs=1", f"env.root={json.dumps(str(tmp / 'cifar'))}", f"n_trials={n_train}"]
            if args.quick:
                sets += ["width=4", "env.n_probe=100"]
            r = _step("cifar10", _train_cmd("cifar10-coarse", tmp / "cifar_run", dev, sets), args.timeout)
            if r["rc"] == 0:
                r["epoch_s"] = _epoch_seconds(tmp / "cifar_run")[-1]
                r["images_per_s"] = round(n_train / r["epoch_s"], 1)
                print(f"cifar10-coarse: one epoch {r['epoch_s']:.1f} s ({r['images_per_s']:.0f} training images/s)")
            results["steps"].append(r)

        if "demo" in args.steps:
            sets = [f"epochs={1 if args.quick else args.demo_epochs}"] + (["n_trials=500"] if args.quick else [])
            for d in dict.fromkeys([dev, "cpu"]):
                r = _step(f"demo-{d}", _train_cmd("color-direction", tmp / f"demo_{d}", d, sets), args.timeout)
                if r["rc"] == 0:
                    r["epoch_s"] = _epoch_seconds(tmp / f"demo_{d}")
                    print(f"demo on {d}: seconds per epoch {r['epoch_s']}")
                results["steps"].append(r)

        if "decode" in args.steps:
            extra = ["--epochs", "4", "--times", "5", "--subset", "4"] if args.quick else []
            results["steps"].append(_step("decode", [sys.executable, str(HERE / "decode_speed.py"), "--device", dev,
                                                     *extra], args.timeout))

        if "ensemble" in args.steps:
            extra = ["--epochs", "1", "--schedule", "last"] if args.quick else ["--epochs", "3"]
            results["steps"].append(_step("ensemble", [sys.executable, str(HERE / "ensemble_sweep.py"), "--device", dev,
                                                       *extra], args.timeout))

    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"\n{card}")
    for r in results["steps"]:
        more = f", epoch {r['epoch_s']}" if "epoch_s" in r else ""
        print(f"  {r['name']:<12} rc {r['rc']}  {r['wall_s']:7.1f} s{more}")
    print(f"summary written to {args.out}")
    failed = [r["name"] for r in results["steps"] if r["rc"] != 0]
    if failed:
        print(f"steps that failed or timed out: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
