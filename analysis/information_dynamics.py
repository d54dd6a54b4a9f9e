"""Overlay the information dynamics of several runs (e.g. high vs low learning rate).

    python analysis/information_dynamics.py RUN_DIR [RUN_DIR ...] [--out FILE.png]
        [--period stimulus] [--variables color direction] [--layer hidden]

Reads each run's saved ``information.nc`` (written by ``decisionnets analyze RUN_DIR``) with
xarray only, and draws one panel per variable: usable information (bits) vs training epoch in the
chosen period, one line per run, labelled by the run's task / lr / batch size.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import decisionnets as dn  # noqa: E402


def load(run_dir: Path) -> xr.Dataset:
    path = run_dir / "information.nc" if run_dir.is_dir() else run_dir
    if not path.is_file():
        sys.exit(f"error: no information.nc at {path} (run `decisionnets analyze {run_dir}` first)")
    return xr.load_dataset(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Overlay usable information vs epoch across runs.")
    ap.add_argument("runs", nargs="+", type=Path, help="run directories (or information.nc files)")
    ap.add_argument("--out", type=Path, default=Path("information_dynamics.png"))
    ap.add_argument("--period", default=None, help="trial period (default: decision if present, else whole trial)")
    ap.add_argument("--variables", nargs="*", default=None)
    ap.add_argument("--layer", default=None, help="recorded layer (default: the first)")
    args = ap.parse_args(argv)

    infos = [load(r) for r in args.runs]
    first = infos[0]
    variables = args.variables or [str(v) for v in first["variable"].values]
    fig = Figure(figsize=(4.2 * len(variables), 3.5), layout="constrained")
    axes = fig.subplots(1, len(variables), squeeze=False)[0]
    for i, (run, info) in enumerate(zip(args.runs, infos)):
        layer = args.layer or str(info["layer"].values[0])
        li = info.sel(layer=layer)
        period = args.period
        if period is None and "period_information" in li and "decision" in li["period"].values:
            period = "decision"
        src = li["period_information"] if (period is not None and "period_information" in li) else li["information"]
        label = dn.run_title(info.attrs)
        if sum(dn.run_title(o.attrs) == label for o in infos) > 1:
            label = f"{label} ({run.name})"
        for ax, var in zip(axes, variables):
            if var not in li["variable"].values:
                continue
            dn.plot_information_vs_epoch(ax, src.sel(variable=[var]), period=period, title=f"{var} ({period or 'whole trial'})",
                                      label_prefix=f"{label}: ", color=f"C{i}")
            ax.set_ylabel(f"{var} information (bits)")
    for ax in axes:  # one legend for the figure: a line per run
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    handles, labels = axes[0].get_legend_handles_labels()
    labels = [lab.rsplit(": ", 1)[0] for lab in labels]
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 2), frameon=False, fontsize="small")
    fig.suptitle("usable information during training")
    fig.savefig(args.out, dpi=110, bbox_inches="tight")
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
