"""Color and direction information over reward-based training vs supervised training.

    python analysis/agents_information.py RL_RUN [RL_RUN ...] --supervised DEMO_RUN [...]
        [--out docs/figures/agents_information_vs_epoch.png]

Reads each run's ``information.nc`` (``decisionnets analyze RUN_DIR``) with xarray only and, for
the hidden layer, prints and draws usable information (bits) about ``color`` and ``direction`` vs
training epoch, (a) at the last step of the stimulus period (the step before the decision period of
the fixed-duration task: every probe trial is still running there) and (b) averaged over the
stimulus period; one line per run, RL runs solid, supervised runs dashed. For trials per epoch the
x axis is the run's trials played / seen.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def load(run: Path):
    path = run / "information.nc" if run.is_dir() else run
    if not path.is_file():
        sys.exit(f"error: no information.nc at {path} (run `decisionnets analyze {run}` first)")
    info = xr.load_dataset(path).sel(layer="hidden")
    cfg = json.loads(info.attrs.get("config", "{}"))
    tr = cfg.get("train", {})
    per_epoch = tr.get("n_trials", 0) * (1 - tr.get("val_fraction", 0.0) if "agent" not in cfg else 1)
    return info, cfg, per_epoch


def last_stimulus_step(info):
    per = info["time_period"].values.astype(str)
    idx = np.flatnonzero(per == "stimulus")
    return int(idx[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--supervised", nargs="*", type=Path, default=[])
    ap.add_argument("--out", type=Path, default=Path("agents_information_vs_epoch.png"))
    args = ap.parse_args(argv)
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    axes = fig.subplots(1, 2)
    for kind, runs, ls in (("RL", args.runs, "-"), ("supervised", args.supervised, "--")):
        for run in runs:
            info, cfg, per_epoch = load(run)
            t = last_stimulus_step(info)
            at = info["information"].isel(time=t)
            mean = info["period_information"].sel(period="stimulus")
            trials = info["epoch"].values * per_epoch / 1000
            print(f"{kind:10s} {run.name} (seed {cfg.get('seed')}), hidden layer, bits at the last stimulus step "
                  f"(t = {float(info['time'].values[t]):g} ms) / stimulus-period mean:")
            for e in range(info.sizes["epoch"]):
                acc = float(info["probe_accuracy"].isel(epoch=e)) if "probe_accuracy" in info else np.nan
                print(f"  epoch {int(info['epoch'].values[e]):3d} ({trials[e]:6.1f}k trials)  acc {acc:.3f}  "
                      f"color {float(at.sel(variable='color').isel(epoch=e)):.3f} / "
                      f"{float(mean.sel(variable='color').isel(epoch=e)):.3f}   "
                      f"direction {float(at.sel(variable='direction').isel(epoch=e)):.3f} / "
                      f"{float(mean.sel(variable='direction').isel(epoch=e)):.3f}")
            for ax, var, color in ((axes[0], "color", "tab:red"), (axes[1], "direction", "tab:blue")):
                ax.plot(trials, at.sel(variable=var).values, ls=ls, marker="o", ms=3, color=color, alpha=0.8,
                        label=f"{kind} seed {cfg.get('seed')}")
    for ax, var in zip(axes, ("color", "direction")):
        ax.set_xscale("symlog", linthresh=5)
        ax.set_xlabel("training trials (thousands)")
        ax.set_ylabel(f"usable information about {var} (bits)")
        ax.set_title(f"{var}, hidden layer, last stimulus step")
        ax.axhline(0.676, color="0.5", ls=":", lw=0.8)
        ax.set_ylim(-0.05, 1.0)
        ax.legend(frameon=False, fontsize="x-small")
    fig.suptitle("reward-trained (A2C, solid) vs supervised (dashed) leaky RNNs; dotted: ideal observer")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
