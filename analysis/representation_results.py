"""Tables of the representation analyses of one or more runs, over training.

    decisionnets analyze RUN --analyses selectivity geometry similarity [fixed-points] [information]
    python analysis/representation_results.py RUN [RUN ...] [--layer hidden] [--period decision]
        [--epochs 0 10 20] [--figure summary.png]

Reads each run's ``analyses/selectivity.nc``, ``analyses/geometry.nc``, ``analyses/similarity.nc``
and, where present, ``analyses/fixed-points.nc`` and ``information.nc`` (xarray only), and prints,
per run:

* the selectivity class fractions (pure / mixed / none / silent) and the fraction of units
  selective to each label, at the first, middle and last recorded epochs, in the response period
  (the last task period; ``all`` for networks without time);
* the participation ratio of the condition averages per epoch and period;
* the linear CKA of every recorded epoch with the last one, per layer, and the first epoch from
  which every later epoch has CKA >= 0.95 (and >= 0.99) with the last ("settled");
* the fixed points at each recorded epoch (counts, leading eigenvalue, projection on the color and
  direction decoding axes next to the trials' class means);
* the usable information (bits) about each label, when ``information.nc`` exists;
* with ``--fixed-point-inputs``, the fixed points at the first and last epochs under other constant
  inputs (none, the stimulus-period mean, one target configuration, positive or negative
  coherence), computed with :func:`decisionnets.representation.fixed_points.fixed_points`.

With two or more runs of the same task, the per-epoch tables also give the mean and the spread
(min-max) across seeds. ``--figure`` draws, for all the runs given, the fraction of units selective
to each label vs epoch (with the usable information about color and direction where
``information.nc`` exists) and the CKA of each layer with its last epoch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import xarray as xr

SETTLED = 0.99


def _open(run: Path, name: str) -> xr.Dataset | None:
    path = run / "analyses" / f"{name}.nc" if name != "information" else run / "information.nc"
    return xr.load_dataset(path) if path.is_file() else None


def _period(ds: xr.Dataset, period: str | None) -> str:
    periods = [str(p) for p in ds["period"].values]
    if period is not None and period in periods:
        return period
    return periods[-1]  # the response period (decision) or "all"


def _table(header: list[str], rows: list[list]) -> str:
    """A reStructuredText simple table."""
    cells = [[str(h) for h in header]] + [[c if isinstance(c, str) else f"{c:.3g}" if isinstance(c, float)
                                           else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)
    lines = [rule, "  ".join(c.ljust(w) for c, w in zip(cells[0], widths)), rule]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells[1:]]
    return "\n".join(lines + [rule])


def _marks(epochs) -> list[int]:
    e = [int(x) for x in epochs]
    return sorted({e[0], e[len(e) // 2], e[-1]})


def selectivity_rows(sel: xr.Dataset, layer: str, period: str, epochs=None):
    p = _period(sel, period)
    cf = sel["class_fraction"].sel(layer=layer, period=p)
    sf = sel["selective_fraction"].sel(layer=layer, period=p)
    f = sel["f_statistic"].sel(period=p).where(sel["unit_layer"] == layer, drop=True)
    rows = []
    for e in epochs if epochs is not None else _marks(sel["epoch"].values):
        rows.append([e, *[float(cf.sel(epoch=e, **{"class": c})) for c in cf["class"].values],
                     *[float(sf.sel(epoch=e, variable=v)) for v in sf["variable"].values],
                     *[float(f.sel(epoch=e, variable=v).median(skipna=True)) for v in sf["variable"].values]])
    header = ["epoch", *[str(c) for c in cf["class"].values], *[f"sel. {v}" for v in sf["variable"].values],
              *[f"median F {v}" for v in sf["variable"].values]]
    return p, header, rows


def cka_to_last(sim: xr.Dataset) -> xr.DataArray:
    """CKA of every epoch with the last, (layer, epoch)."""
    last = sim["epoch"].values[-1]
    return sim["cka_epochs"].sel(epoch2=last)


def settled_epoch(c: np.ndarray, epochs: np.ndarray, thr: float = SETTLED) -> int:
    """First epoch from which every later epoch has CKA >= thr with the last."""
    ok = np.asarray(c) >= thr
    for i in range(len(ok)):
        if ok[i:].all():
            return int(epochs[i])
    return int(epochs[-1])


def fixed_point_rows(fp: xr.Dataset):
    rows = []
    var = [str(v) for v in fp["variable"].values]
    for e in fp["epoch"].values:
        f = fp.sel(epoch=e)
        n = int(f["n_points"])
        mod = np.hypot(f["eigenvalue_real"].values[:n], f["eigenvalue_imag"].values[:n])
        re_, im_ = f["eigenvalue_real"].values[:n, 0], f["eigenvalue_imag"].values[:n, 0]
        lead = ", ".join(f"{m:.3f}" + (f" ({r:.3f}{i:+.3f}i)" if abs(i) > 1e-9 else " (real)")
                         for m, r, i in zip(mod[:, 0], re_, im_)) if n else "-"
        proj = "; ".join(", ".join(f"{f['projection'].values[k, var.index(v)]:+.2f}" for v in ("color", "direction")
                                   if v in var) for k in range(n)) or "-"
        cls = ", ".join(f"{v} {f['class_projection'].sel(variable=v).values[0]:+.2f}/"
                        f"{f['class_projection'].sel(variable=v).values[-1]:+.2f}" for v in ("color", "direction")
                        if v in var)
        rows.append([int(e), n, int(f["n_stable"]), int(f["n_unstable"]), int(f["n_slow"]), int(f["line_attractor"]),
                     lead, proj, cls])
    header = ["epoch", "points", "stable", "unstable", "slow", "line attr.", "leading |eig|",
              "point on color, direction axes", "class means (0/1)"]
    return header, rows


def information_rows(info: xr.Dataset, layer: str, period: str | None, epochs):
    li = info.sel(layer=layer)
    if "period_information" in li and period is not None and period in li["period"].values:
        src, what = li["period_information"].sel(period=period), period
    elif "time" in li["information"].dims:
        src, what = li["information"].isel(time=-1), "last step"
    else:
        src, what = li["information"], "all"
    if "decoder" in src.dims:
        src = src.isel(decoder=0)
    var = [str(v) for v in src["variable"].values]
    rows = [[int(e), *[float(src.sel(epoch=e, variable=v)) for v in var]] for e in epochs
            if e in src["epoch"].values]
    return what, ["epoch", *[f"{v} (bits)" for v in var]], rows


def summary_figure(runs, layer: str, period: str | None, variables=("color", "direction")):
    """Two panels: fraction of units selective to each of ``variables`` (thin) and their usable
    information in bits (thick, where ``information.nc`` exists) vs epoch; CKA of each layer with
    the last epoch. Line styles tell the runs apart (solid: the first)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax_sel, ax_cka = fig.subplots(1, 2)
    ax_info = None
    styles = ["-", "--", ":", "-."]
    p = None
    for i, run in enumerate(runs):
        sel, sim, info = _open(run, "selectivity"), _open(run, "similarity"), _open(run, "information")
        ls = styles[i % len(styles)]
        p = _period(sel, period)
        sf = sel["selective_fraction"].sel(layer=layer, period=p)
        for j, v in enumerate(variables):
            if v in sf["variable"].values:
                ax_sel.plot(sf["epoch"], sf.sel(variable=v), ls, color=f"C{j}", lw=1,
                            label=f"{v}: fraction of units selective" if i == 0 else None)
        if info is not None:
            ax_info = ax_info or ax_sel.twinx()
            _, header, rows = information_rows(info, layer, "decision" if p == "decision" else None,
                                               [int(e) for e in sel["epoch"].values])
            rows = np.asarray(rows, dtype=float)
            for j, v in enumerate(variables):
                if f"{v} (bits)" in header:
                    k = header.index(f"{v} (bits)")
                    ax_info.plot(rows[:, 0], rows[:, k], ls, color=f"C{j}", lw=3, alpha=0.45,
                                 label=f"{v}: usable information (bits)" if i == 0 else None)
        c = cka_to_last(sim)
        for j, lay in enumerate(c["layer"].values):
            ax_cka.plot(c["epoch"], c.sel(layer=lay), ls, color=f"C{j + 3}", lw=1, label=str(lay) if i == 0 else None)
    ax_sel.set(xlabel="epoch", ylabel="fraction of units selective (thin)", ylim=(-0.02, 1.02),
               title=f"{layer}, {p}: selectivity and information")
    handles, labels = ax_sel.get_legend_handles_labels()
    if ax_info is not None:
        ax_info.set(ylabel="usable information, bits (thick)", ylim=(-0.02, 1.02))
        h2, l2 = ax_info.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax_sel.legend(handles, labels, loc="upper right", fontsize="x-small", framealpha=0.9)
    ax_cka.set(xlabel="epoch", ylabel="linear CKA with the last epoch", ylim=(-0.02, 1.02),
               title="representation change per layer")
    ax_cka.legend(fontsize="small", frameon=False, loc="lower right")
    names = ", ".join(f"{styles[i % 4]} {r.name}" for i, r in enumerate(runs))
    fig.suptitle(f"{len(runs)} run(s); line style: {names}",
                 fontsize="small")
    return fig


def fixed_point_inputs(run: Path, seed: int = 0):
    """Fixed points at the first and last recorded epochs under several constant inputs (computed).

    Inputs: the default (mean decision-period input), none, the stimulus-period mean, the
    decision-period input of each target configuration, and the stimulus-period input of target
    configuration 0 with positive / negative coherence. Returns the rows of a table.
    """
    import decisionnets as dn
    from decisionnets.representation.fixed_points import fixed_points, period_input

    ds = dn.open_activations(run)
    epochs = [int(ds["epoch"].values[0]), int(ds["epoch"].values[-1])]
    tc, coh = ds["target_config"].values, ds["coherence"].values
    inputs = {"decision mean (default)": "auto", "zero": "zero", "stimulus mean": "stimulus",
              "decision, target_config 0": period_input(run, "decision", tc == 0),
              "decision, target_config 1": period_input(run, "decision", tc == 1),
              "stimulus, target_config 0, coherence > 0": period_input(run, "stimulus", (tc == 0) & (coh > 0)),
              "stimulus, target_config 0, coherence < 0": period_input(run, "stimulus", (tc == 0) & (coh < 0))}
    rows = []
    for name, u in inputs.items():
        fp = fixed_points(ds, run_dir=run, epochs=epochs, input=u, seed=seed)
        for e in epochs:
            f = fp.sel(epoch=e)
            n = int(f["n_points"])
            mod = np.hypot(f["eigenvalue_real"].values[:n, 0], f["eigenvalue_imag"].values[:n, 0])
            var = [str(v) for v in f["variable"].values]
            pr = f["projection"].values
            proj = "; ".join(", ".join(f"{pr[k, var.index(v)]:+.2f}" for v in ("color", "direction"))
                             for k in range(n)) or "-"
            rows.append([name, e, n, int(f["n_stable"]), int(f["n_unstable"]), int(f["n_slow"]),
                         ", ".join(f"{m:.3f}" for m in mod) or "-", proj])
    return ["input", "epoch", "points", "stable", "unstable", "slow", "leading modulus", "color, direction"], rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Tables of the representation analyses of runs.")
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--layer", default="hidden", help="layer of the selectivity and information tables")
    ap.add_argument("--period", default=None, help="period of the selectivity table (default: the last)")
    ap.add_argument("--epochs", nargs="*", type=int, default=None, help="epochs of the selectivity/information tables")
    ap.add_argument("--figure", type=Path, default=None,
                    help="also draw, for all runs, the fraction of units selective to each label (with the "
                         "usable information where information.nc exists) and the CKA with the last epoch per layer")
    ap.add_argument("--fixed-point-inputs", action="store_true",
                    help="also compute the fixed points of each recurrent run at its first and last epochs "
                         "under several constant inputs (takes about a minute per run)")
    args = ap.parse_args(argv)
    if args.figure is not None:
        summary_figure(args.runs, args.layer, args.period).savefig(args.figure, dpi=100, bbox_inches="tight")
        print(args.figure)

    by_task: dict[str, list] = {}
    for run in args.runs:
        sel, geo, sim = (_open(run, n) for n in ("selectivity", "geometry", "similarity"))
        if sel is None or geo is None or sim is None:
            sys.exit(f"error: {run} lacks analyses/selectivity.nc, geometry.nc or similarity.nc "
                     f"(run `decisionnets analyze {run} --analyses selectivity geometry similarity`)")
        task = str(sel.attrs.get("task", "?"))
        config = run / "config.json"
        seed = json.loads(config.read_text()).get("seed", "?") if config.is_file() else "?"
        print(f"\n### {run.name} (task {task}, seed {seed})\n")
        p, header, rows = selectivity_rows(sel, args.layer, args.period, args.epochs)
        print(f"selectivity, layer {args.layer}, period {p}:\n{_table(header, rows)}\n")

        dim = geo["dimensionality"].sel(layer=args.layer)
        print("participation ratio (condition averages):")
        print(_table(["epoch", *[str(x) for x in dim["period"].values]],
                     [[int(e), *[float(v) for v in dim.sel(epoch=e).values]] for e in dim["epoch"].values]) + "\n")
        vf = geo["variance_fraction"].sel(layer=args.layer)
        print("variance fractions (dPCA marginalization):")
        print(_table(["epoch", *[str(x) for x in vf["marginalization"].values]],
                     [[int(e), *[float(v) for v in vf.sel(epoch=e).values]]
                      for e in _marks(vf["epoch"].values)]) + "\n")

        c = cka_to_last(sim)
        print(f"CKA with the last epoch (period {sim.attrs.get('period') or 'all'}):")
        print(_table(["epoch", *[str(x) for x in c["layer"].values]],
                     [[int(e), *[float(v) for v in c.sel(epoch=e).values]] for e in c["epoch"].values]))
        for thr in (0.95, SETTLED):
            settled = {str(lay): settled_epoch(c.sel(layer=lay).values, c["epoch"].values, thr)
                       for lay in c["layer"].values}
            print(f"settled (CKA >= {thr} with the last from this epoch on): {settled}")
        print()
        if sim.sizes.get("layer", 1) > 1:
            cl = sim["cka_layers"]
            names = [str(x) for x in cl["layer"].values]
            pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
            print("CKA between layers:")
            print(_table(["epoch", *[f"{a}-{b}" for a, b in pairs]],
                         [[int(e), *[float(cl.sel(epoch=e, layer=a, layer2=b)) for a, b in pairs]]
                          for e in _marks(cl["epoch"].values)]) + "\n")

        fp = _open(run, "fixed-points")
        if fp is not None:
            header, rows = fixed_point_rows(fp)
            print(f"fixed points (input: {fp.attrs.get('input_kind')}):\n{_table(header, rows)}\n")
            if args.fixed_point_inputs:
                header, rows = fixed_point_inputs(run)
                print(f"fixed points under other constant inputs:\n{_table(header, rows)}\n")
        info = _open(run, "information")
        if info is not None:
            eps = args.epochs or [int(e) for e in sel["epoch"].values]
            what, header, rows = information_rows(info, args.layer, "decision" if p == "decision" else None, eps)
            print(f"usable information, layer {args.layer} ({what}):\n{_table(header, rows)}\n")
        by_task.setdefault(task, []).append((sel, geo, sim, p))

    for task, items in by_task.items():
        if len(items) < 2:
            continue
        print(f"\n### {task}: {len(items)} seeds, mean [min, max]\n")
        epochs = sorted(set.intersection(*[set(int(e) for e in it[0]["epoch"].values) for it in items]))
        marks = args.epochs or sorted({epochs[0], epochs[len(epochs) // 2], epochs[-1]})
        sels = [it[0]["class_fraction"].sel(layer=args.layer, period=it[3]) for it in items]
        sfs = [it[0]["selective_fraction"].sel(layer=args.layer, period=it[3]) for it in items]
        classes = [str(c) for c in sels[0]["class"].values]
        var = [str(v) for v in sfs[0]["variable"].values]

        def agg(arrs):
            a = np.asarray(arrs, dtype=float)
            return f"{a.mean():.2f} [{a.min():.2f}, {a.max():.2f}]"

        rows = [[e, *[agg([s.sel(epoch=e, **{"class": c}) for s in sels]) for c in classes],
                 *[agg([s.sel(epoch=e, variable=v) for s in sfs]) for v in var]] for e in marks]
        print(_table(["epoch", *classes, *[f"sel. {v}" for v in var]], rows) + "\n")
        dims = [it[1]["dimensionality"].sel(layer=args.layer) for it in items]
        periods = [str(x) for x in dims[0]["period"].values]
        print("participation ratio:")
        print(_table(["epoch", *periods], [[e, *[agg([d.sel(epoch=e, period=q) for d in dims]) for q in periods]]
                                           for e in epochs]) + "\n")
        ckas = [cka_to_last(it[2]).sel(layer=args.layer) for it in items]
        print(f"CKA with the last epoch ({args.layer}):")
        print(_table(["epoch", "CKA"], [[e, agg([c.sel(epoch=e) for c in ckas])] for e in epochs]))
        for thr in (0.95, SETTLED):
            print(f"settled epochs (CKA >= {thr}):", [settled_epoch(c.values, c["epoch"].values, thr) for c in ckas])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
