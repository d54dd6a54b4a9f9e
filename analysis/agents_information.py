"""Color and direction information over reward-based training vs supervised training.

    python analysis/agents_information.py RL_RUN [RL_RUN ...] --supervised DEMO_RUN [...]
        [--out docs/figures/agents_information_vs_epoch.png]

Reads each run's ``information.nc`` (``decisionnets analyze RUN_DIR``) with xarray only and, for
the hidden layer, prints and draws usable information (bits) about ``color`` and ``direction``:

- over training, vs training trials (the run's trials played / seen per epoch), (a) at the last step
  of the stimulus period (the step before the decision period of the fixed-duration task: every
  probe trial is still running there) and (b) averaged over the stimulus period;
- time-resolved, vs time from stimulus onset, at the first (untrained) and the last recorded epoch.

Runs of one kind (RL, supervised) are pooled: mean ± s.d. across their seeds (s.d. with ddof 0),
and every seed is printed. RL runs are drawn solid, supervised runs dashed; the dotted line is the
ideal observer's information after the board samples of the whole trial.
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

VARIABLES = ("color", "direction")


def load(run: Path):
    """(information of the hidden layer, config dict, trials per epoch) of one analysed run."""
    path = run / "information.nc" if run.is_dir() else run
    if not path.is_file():
        sys.exit(f"error: no information.nc at {path} (run `decisionnets analyze {run}` first)")
    info = xr.load_dataset(path).sel(layer="hidden")
    cfg = json.loads(info.attrs.get("config", "{}"))
    tr = cfg.get("train", {})
    per_epoch = tr.get("n_trials", 0) * (1 - tr.get("val_fraction", 0.0) if "agent" not in cfg else 1)
    return info, cfg, per_epoch


def onset_time(info, cfg) -> float:
    """Time of stimulus onset (ms) on the dataset's own time axis.

    Rollout-recorded runs (the RL runs) count time from stimulus onset already; supervised runs count
    it from the trial start, and their probe trials have the typical timing, so the onset is the
    fixation period plus the typical target period (the recorded steps, every ``time_stride``-th,
    need not include the onset step itself).
    """
    if "onset" in str(info["time"].attrs.get("long_name", "")):
        return 0.0
    import decisionnets as dn

    timing = dn.build_task(dn.config_from_json(json.dumps(cfg))).probe_timing()  # ms per period, probe set
    return float(timing["fixation"] + timing["targets"])


def last_stimulus_step(info):
    per = info["time_period"].values.astype(str)
    idx = np.flatnonzero(per == "stimulus")
    return int(idx[-1])


def group(runs):
    """Stack a kind's runs: information (seed, variable, epoch, time from onset), and per-run facts."""
    per, facts = [], []
    for run in runs:
        info, cfg, per_epoch = load(run)
        x = info["information"].sel(variable=list(VARIABLES))
        onset = onset_time(info, cfg)
        x = x.assign_coords(time=np.round(x["time"].values - onset, 6))
        t_last = float(info["time"].values[last_stimulus_step(info)] - onset)
        if "onset" in str(info["time"].attrs.get("long_name", "")):
            # closed-loop rollouts: trials end at the reach (mostly at the first decision step), so after
            # the stimulus period few trials remain and the estimate is noise; keep the steps where
            # every probe trial still runs
            x = x.where(x["time"] <= t_last)
        per.append(x.expand_dims(seed=[int(cfg.get("seed", len(per)))]))
        sd = info["information_sd"].sel(variable=list(VARIABLES)).isel(time=last_stimulus_step(info))
        facts.append({"run": run, "seed": cfg.get("seed"), "per_epoch": per_epoch, "t_last": t_last, "sd": sd,
                      "accuracy": info["probe_accuracy"] if "probe_accuracy" in info else None,
                      "stimulus_mean": info["period_information"].sel(period="stimulus",
                                                                      variable=list(VARIABLES))})
    stacked = xr.concat(per, dim="seed", join="inner")
    return stacked, facts


def _pm(x) -> str:
    x = np.asarray(x, float)
    return f"{x.mean():.3f} ± {x.std():.3f}"


def report(kind: str, info: xr.DataArray, facts: list) -> None:
    t_last = facts[0]["t_last"]
    at = info.sel(time=t_last)
    smean = xr.concat([f["stimulus_mean"] for f in facts], dim="seed")
    acc = np.array([f["accuracy"].values for f in facts]) if facts[0]["accuracy"] is not None else None
    trials = info["epoch"].values * facts[0]["per_epoch"] / 1000
    print(f"\n{kind}: {len(facts)} runs (seeds {', '.join(str(f['seed']) for f in facts)}), hidden layer; bits at the "
          f"last stimulus step (t = {t_last:g} ms from onset) / stimulus-period mean; mean ± s.d. across seeds")
    for e in range(info.sizes["epoch"]):
        a = f"acc {_pm(acc[:, e])}  " if acc is not None else ""
        print(f"  epoch {int(info['epoch'].values[e]):3d} ({trials[e]:6.1f}k trials)  {a}"
              + "  ".join(f"{v} {_pm(at.sel(variable=v).isel(epoch=e))} / "
                          f"{_pm(smean.sel(variable=v).isel(epoch=e))}" for v in VARIABLES))
    last, first = info["epoch"].values[-1], info["epoch"].values[0]
    sd = xr.concat([f["sd"] for f in facts], dim="seed")
    print("  estimator s.d. across folds at that step (mean over epochs and seeds): "
          + ", ".join(f"{v} {float(sd.sel(variable=v).mean()):.3f}" for v in VARIABLES))
    for v in VARIABLES:
        d = at.sel(variable=v, epoch=last) - at.sel(variable=v, epoch=first)
        print(f"  {v}: per seed at epoch {int(last)}: "
              + ", ".join(f"{float(x):.3f}" for x in at.sel(variable=v, epoch=last).values)
              + f"; change from epoch {int(first)}: " + ", ".join(f"{float(x):+.3f}" for x in d.values)
              + f" (mean {_pm(d.values)})")
        tr = info.sel(variable=v, epoch=last).mean("seed")
        print(f"  {v} vs time (ms from onset) at epoch {int(last)}, mean over seeds: "
              + " ".join(f"{float(t):g}:{float(y):.2f}" for t, y in zip(tr["time"].values, tr.values)
                         if np.isfinite(y)))


def band(ax, x, y, **kw):
    m, sd = y.mean("seed").values, y.std("seed").values
    (line,) = ax.plot(x, m, **kw)
    if y.sizes["seed"] > 1:
        ax.fill_between(x, m - sd, m + sd, color=line.get_color(), alpha=0.18, lw=0)
    return line


def main(argv=None) -> int:
    import decisionnets as dn

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--supervised", nargs="*", type=Path, default=[])
    ap.add_argument("--out", type=Path, default=Path("agents_information_vs_epoch.png"))
    args = ap.parse_args(argv)
    kinds = [("RL (A2C)", args.runs, "-")] + ([("supervised", args.supervised, "--")] if args.supervised else [])
    first_info, first_cfg, _ = load(args.runs[0])
    ceil = dn.ceiling_for_env(dn.build_task(dn.config_from_json(first_info.attrs["config"])).env)["information"]
    fig = Figure(figsize=(10, 7), layout="constrained")
    axes = fig.subplots(2, 2)
    colors = {"color": "tab:red", "direction": "tab:blue"}
    for kind, runs, ls in kinds:
        info, facts = group(runs)
        report(kind, info, facts)
        trials = info["epoch"].values * facts[0]["per_epoch"] / 1000
        at = info.sel(time=facts[0]["t_last"])
        n = info.sizes["seed"]
        for j, v in enumerate(VARIABLES):
            band(axes[0, j], trials, at.sel(variable=v), ls=ls, marker="o", ms=3, color=colors[v],
                 label=f"{kind} ({n} seeds)")
            for e, alpha in ((info["epoch"].values[0], 0.45), (info["epoch"].values[-1], 1.0)):
                y = info.sel(variable=v, epoch=e)
                keep = np.isfinite(y.mean("seed").values)
                band(axes[1, j], y["time"].values[keep], y.isel(time=np.flatnonzero(keep)), ls=ls, marker=".",
                     color=colors[v], alpha=alpha, label=f"{kind}, epoch {int(e)}")
    for j, v in enumerate(VARIABLES):
        ax = axes[0, j]
        ax.set_xscale("symlog", linthresh=5)
        ax.set_xlabel("training trials (thousands)")
        ax.set_title(f"{v}, hidden layer, last stimulus step")
        ax = axes[1, j]
        ax.axvline(0, color="0.6", lw=0.8)
        ax.set_xlabel("time from stimulus onset (ms)")
        ax.set_title(f"{v} vs time (first and last recorded epoch)")
        for ax in axes[:, j]:
            ax.set_ylabel(f"usable information about {v} (bits)")
            ax.axhline(ceil, color="0.5", ls=":", lw=0.8)
            ax.set_ylim(-0.05, 1.0)
            ax.legend(frameon=False, fontsize="x-small")
    fig.suptitle("reward-trained (A2C, solid) vs supervised (dashed) leaky RNNs, mean ± s.d. across seeds; "
                 "dotted: ideal observer (whole trial)", fontsize="medium")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
