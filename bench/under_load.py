"""The demo's training alone and beside two busy processes: the slowdown ratio under load.

Runs ``decisionnets train --task color-direction`` (the demo's training; ``--epochs`` shortens it)
as a fresh process, as a user would, with the threads the CLI chooses (1 for this RNN):

1. **idle**: nothing else started by this bench (the machine may still be shared: the load average
   is printed with each measurement);
2. **loaded**: beside two busy processes this bench starts itself (pure-Python loops, each with a
   hard time limit, killed at the end by their process ids).

It prints both wall times and the ratio loaded / idle (target <= 2.5x; a fair share of 2 cores
among 3 processes is 1.5x). With ``--default-threads`` it also times the loaded run with torch's
default threads (``--threads`` = the available CPUs: what the CLI did before it chose threads),
which is what made training collapse under load.

``OMP_NUM_THREADS`` and ``DECISIONNETS_THREADS`` are removed from the child's environment, so the
CLI's own choice is what is measured.

Usage: ``python bench/under_load.py [--epochs 12] [--trials 10000] [--busy 2] [--default-threads] [--json PATH]``
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _benchjson
from decisionnets.threads import available_cpus

# a busy loop that stops at its time limit, or when the bench that started it is gone
BUSY = ("import os, time\nparent, end, x = os.getppid(), time.time() + {limit}, 0\n"
        "while time.time() < end and os.getppid() == parent:\n    for _ in range(100000):\n        x += 1\n")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def start_busy(n: int, limit_s: float) -> list[subprocess.Popen]:
    """``n`` pure-Python busy loops that end by themselves after ``limit_s`` seconds."""
    return [subprocess.Popen([sys.executable, "-c", BUSY.format(limit=limit_s)], start_new_session=True)
            for _ in range(n)]


def stop(procs) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def train_once(epochs: int | None, threads: int | None, out: Path, trials: int | None = None) -> tuple[float, float, int]:
    """Wall seconds of one ``decisionnets train`` process, its log.csv training seconds, and its threads."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "DECISIONNETS_THREADS")}
    cmd = [sys.executable, "-m", "decisionnets.cli", "train", "--task", "color-direction", "--no-progress",
           "--out", str(out)]
    if epochs is not None:
        cmd += ["--set", f"epochs={epochs}"]
    if trials is not None:
        cmd += ["--set", f"n_trials={trials}"]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"training failed: {r.stderr[-2000:]}")
    run_dir = Path(r.stdout.strip().splitlines()[-1])
    with open(run_dir / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return wall, sum(float(row["seconds"]) for row in rows), int(rows[-1]["threads"])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, help="training epochs (default: the demo's 12)")
    p.add_argument("--trials", type=int, help="training + validation trials (default: the demo's 10,000)")
    p.add_argument("--busy", type=int, default=2, help="busy processes started beside the loaded run")
    p.add_argument("--limit", type=float, default=600, help="hard time limit of each busy process (s)")
    p.add_argument("--default-threads", action="store_true",
                   help="also time the loaded run with torch's default threads (the available CPUs)")
    _benchjson.add_arguments(p)
    args = p.parse_args()
    cpus = available_cpus()
    info = _benchjson.start()  # torch_threads: this process's; each training's own is stored in `runs`
    print(f"demo training (color-direction, {args.epochs or 'preset'} epochs, {args.trials or 'preset'} trials); "
          f"{cpus} CPUs available; {args.busy} busy processes for the loaded runs", flush=True)
    with tempfile.TemporaryDirectory() as d:
        print(f"load average before idle run: {_load()}", flush=True)
        idle, idle_loop, idle_thr = train_once(args.epochs, None, Path(d), args.trials)
        print(f"idle:   {idle:6.1f} s wall ({idle_loop:.1f} s in epochs), {idle_thr} thread(s); load after: {_load()}",
              flush=True)
        busy = start_busy(args.busy, args.limit)
        try:
            time.sleep(1.0)
            loaded, loaded_loop, loaded_thr = train_once(args.epochs, None, Path(d), args.trials)
            print(f"loaded: {loaded:6.1f} s wall ({loaded_loop:.1f} s in epochs), {loaded_thr} thread(s); "
                  f"load after: {_load()}")
            default = None
            if args.default_threads:
                default, default_loop, n_def = train_once(args.epochs, cpus, Path(d), args.trials)
                print(f"loaded, torch's default threads: {default:6.1f} s wall ({default_loop:.1f} s in epochs), "
                      f"{n_def} thread(s); load after: {_load()}", flush=True)
        finally:
            stop(busy)
    runs = [dict(run="alone", wall_s=idle, epochs_s=idle_loop, threads=idle_thr),
            dict(run="beside busy", wall_s=loaded, epochs_s=loaded_loop, threads=loaded_thr)]
    ratios = {"beside busy / alone": loaded / idle}
    if default is not None:
        runs.append(dict(run="beside busy, torch default threads", wall_s=default, epochs_s=default_loop, threads=n_def))
        ratios["default threads beside busy / alone"] = default / idle
    _benchjson.write(args.json, "under_load", info, args, ratios, busy=args.busy, available_cpus=cpus,
                     fair_share=(args.busy + 1) / cpus, runs=runs)
    print(f"slowdown under load (chosen threads): {loaded / idle:.2f}x wall, {loaded_loop / idle_loop:.2f}x in epochs "
          f"(target <= 2.5x; fair share {(args.busy + 1) / cpus:.2f}x)")
    if default is not None:
        print(f"slowdown under load (torch's default threads): {default / idle:.2f}x wall, "
              f"{default_loop / idle_loop:.2f}x in epochs")


if __name__ == "__main__":
    main()
