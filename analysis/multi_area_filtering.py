"""Is color filtered from area 1 to area 3 of a multi-area E/I network? Train, decode, summarize.

    python analysis/multi_area_filtering.py run OUT [--seeds 0 1 2 3 4] [--part 0/2] [--set key=value ...]
    python analysis/multi_area_filtering.py authors OUT [--per-condition 72] [--groups G ...]
    python analysis/multi_area_filtering.py summarize OUT [--figure F] [--ff-figure F]

``run`` trains the ``color-direction-3area`` preset for every seed in three groups, each run in
``OUT/<group>_seed<N>/`` (finished runs are skipped, interrupted ones resumed):

- ``dale``: Dale's law, ``ff = 0.1`` (the preset);
- ``nodale``: the control, ``model.dale = false`` (same connectivity, free signs);
- ``dale_ff0.5``, ``dale_ff1.0``: Dale's law with denser feedforward projections (first
  ``--ff-seeds`` seeds only);
- ``nodale_ff0.5``, ``nodale_ff1.0``: the control at ``ff = 0.5`` and ``1.0`` (only when named with
  ``--groups``).

``--groups G [G ...]`` runs exactly these groups for every seed in ``--seeds`` instead.

and decodes color and direction from every area at every recorded epoch, at the time steps of the
decision period, with the package's default ``linear`` decoder (5-fold, standardized units) and the
same decoder on raw rates (``linear-raw``: a fixed L2 penalty on raw weights, so units whose
rates are tiny count for less; ``--decoders`` picks them), into ``RUN/areas_information.nc`` (dims decoder, area, variable,
epoch, time; bits). ``--part k/n``
takes every n-th run starting at k, so n processes can share the list.

``authors`` re-records every trained network (final weights) on a larger probe set
(``--per-condition`` trials per condition, a new probe seed) and decodes each area at the response
step with the authors' SGD-trained decoders (``sgd-linear``, ``sgd-mlp``: one 25 % train / 75 % test
split, so they need the extra trials) and ``linear-raw`` on the same trials, into
``RUN/areas_information_final.nc`` (dims decoder, area, variable; bits); ``--weights init`` does
the same for the untrained network (``RUN/areas_information_init.nc``).

``summarize`` prints the per-area table at the last epoch (mean ± s.d. over seeds, in bits and as
fractions of the ideal observer's ceiling) at the response step, draws information vs epoch
per area (``--figure``: one panel per variable and group, one line per area) and information at
the last epoch against ``ff`` (``--ff-figure``: one panel per variable and area, Dale vs no Dale).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import xarray as xr

PRESET = "color-direction-3area"
GROUPS = {
    "dale": [],
    "nodale": ["model.dale=false"],
    "dale_ff0.5": ["model.ff=0.5"],
    "dale_ff1.0": ["model.ff=1.0"],
    "nodale_ff0.5": ["model.dale=false", "model.ff=0.5"],
    "nodale_ff1.0": ["model.dale=false", "model.ff=1.0"],
}


#: group -> (connectivity law, feedforward fraction), for the figure against ``ff``
FF_OF_GROUP = {
    "dale": ("Dale", 0.1), "dale_ff0.5": ("Dale", 0.5), "dale_ff1.0": ("Dale", 1.0),
    "nodale": ("no Dale", 0.1), "nodale_ff0.5": ("no Dale", 0.5), "nodale_ff1.0": ("no Dale", 1.0),
}


def plot_ff(ax, resp, area, variable, ceiling, decoder="linear-raw"):
    """Information at the last epoch against the feedforward fraction ``ff``, Dale vs no Dale.

    Parameters
    ----------
    ax : matplotlib Axes
    resp : xr.DataArray, dims (group, seed, decoder, area, variable, epoch)
        Information (bits) at one time step (e.g. the response step); NaN for missing seeds.
    area, variable, decoder : str
    ceiling : float
        The ideal observer's information (bits), drawn as a dashed line.

    Returns
    -------
    ax : the axes, with one mean ± s.d. line per law, each seed as a dot (offset sideways per law).
    """
    last = int(resp.epoch.max())
    for law, colour, dx in (("Dale", "C0", -0.015), ("no Dale", "C3", 0.015)):
        ffs, mean, sd = [], [], []
        for g, (lw, ff) in FF_OF_GROUP.items():
            if lw != law or g not in resp.group.values:
                continue
            v = resp.sel(group=g, decoder=decoder, area=area, variable=variable, epoch=last).values
            v = v[np.isfinite(v)]
            if not v.size:
                continue
            ax.plot(np.full(v.size, ff + dx), v, ".", color=colour, alpha=0.45, ms=5)
            ffs.append(ff + dx)
            mean.append(v.mean())
            sd.append(v.std())
        if ffs:
            ax.errorbar(ffs, mean, yerr=sd, color=colour, marker="o", capsize=3, label=f"{law} (mean ± s.d.)")
    ax.axhline(ceiling, ls="--", lw=1, color="0.5", label="ideal observer")
    ax.set_xticks([0.1, 0.5, 1.0])
    ax.set_xlabel("feedforward connection fraction ff")
    ax.set_ylabel(f"{variable} information (bits)")
    ax.set_title(f"{area}: {variable}, epoch {last}")
    return ax


def ff_figure(resp, ceiling, decoder="linear-raw"):
    """Figure: rows color / direction, one column per area, :func:`plot_ff` in each panel."""
    from matplotlib.figure import Figure

    areas = [str(a) for a in resp.area.values]
    fig = Figure(figsize=(3.6 * len(areas), 6.2), layout="constrained")
    axes = fig.subplots(2, len(areas), squeeze=False, sharey=True)
    for i, var in enumerate(("color", "direction")):
        for j, a in enumerate(areas):
            plot_ff(axes[i, j], resp, a, var, ceiling, decoder)
    axes[0, 0].legend(fontsize=8, loc="lower left")
    fig.suptitle(f"{PRESET}: information at the response step vs ff ({decoder} decoder; dots: seeds)")
    return fig


def run_list(seeds, ff_seeds, groups=None):
    if groups:
        return [(g, s) for g in groups for s in seeds]
    out = []
    for s in seeds:
        for g in ("dale", "nodale"):
            out.append((g, s))
    for s in seeds[:ff_seeds]:
        for g in ("dale_ff0.5", "dale_ff1.0"):
            out.append((g, s))
    return out


def decode_areas(run_dir: Path, variables=("color", "direction"), folds=5,
                 decoders=("linear", "linear-raw")) -> Path:
    """Usable information (bits) of each area about ``variables`` at every epoch, decision period."""
    import decisionnets as dn

    ds = dn.open_activations(run_dir)
    keep = np.flatnonzero(ds["period"].values == "decision")
    areas = sorted(str(v) for v in ds.data_vars if str(v).startswith("area"))
    labels = {v: ds[v].load() for v in variables}
    per = []
    for a in areas:
        act = ds[a].isel(time=keep).load()
        for decoder in decoders:
            sc = dn.decoding_scores(act, labels, feature_dim=f"{a}_unit", folds=folds, seed=0, dtype="float64",
                                    decoder=decoder)
            sc = sc[["information", "information_sd", "decoding_accuracy"]]
            sc = sc.drop_vars([c for c in sc.coords if c not in sc.dims], errors="ignore")
            per.append(sc.expand_dims(area=[a], decoder=[decoder]))
    out = xr.combine_by_coords(per, combine_attrs="drop")
    out["probe_accuracy"] = ds["accuracy"].load()
    out.attrs.update(config=ds.attrs["config"], period="decision",
                     decoders="linear: decisionnets default (standardized units, 5-fold, nested L2); "
                              "linear-raw: the same on raw rates (scale-sensitive)")
    path = run_dir / "areas_information.nc"
    out.to_netcdf(path)
    ds.close()
    return path


#: the authors' decoders (SGD-trained, one 25 % / 75 % split) and the package's raw-rate decoder
AUTHORS_DECODERS = ("sgd-linear", "sgd-mlp", "linear-raw")


def final_activity(run_dir: Path, n_per_condition: int, probe_seed: int, weights: str = "final") -> xr.Dataset:
    """A run's network on a new, larger probe set (recorder as in training).

    ``weights``: "final" (the trained network, ``checkpoints/final.pt``) or "init" (the network as
    initialized before training, rebuilt from the run's seed streams). Returns the activation
    dataset (one epoch: the last, or 0 for "init"; dims as in ``activations/``) of
    ``n_per_condition`` trials per probe condition drawn from ``probe_seed``'s probe stream.
    """
    import decisionnets as dn

    if weights not in ("final", "init"):
        raise ValueError(f"weights must be 'final' or 'init'; got {weights!r}")
    # the trained network (epoch None) or the one rebuilt from the run's seed (epoch 0), on the new probe set
    return dn.open_run(run_dir).rerecord(epoch=None if weights == "final" else 0, n_per_condition=n_per_condition,
                                         probe_seed=probe_seed)


def decode_final(run_dir: Path, n_per_condition=72, probe_seed=1, decoders=AUTHORS_DECODERS,
                 variables=("color", "direction"), weights="final") -> Path:
    """Information of each area at the response step of the trained network, by the authors' decoders.

    ``sgd-linear`` and ``sgd-mlp`` (SGD-trained on raw rates with a fixed budget, the authors'
    recipe) fit one stratified 25 % split and are scored on the other 75 %, so they need many
    trials: the activity is re-recorded from the final weights on ``n_per_condition`` trials per
    condition (72: 2,016 trials, 504 to train on); ``linear-raw`` (5-fold) on the same trials is the
    reference. Written to ``RUN/areas_information_final.nc`` (dims decoder, area, variable; bits),
    or ``RUN/areas_information_init.nc`` for ``weights="init"`` (the untrained network).
    """
    import decisionnets as dn

    ds = final_activity(run_dir, n_per_condition, probe_seed, weights)
    areas = sorted(str(v) for v in ds.data_vars if str(v).startswith("area"))
    labels = {v: ds[v] for v in variables}
    per = []
    for a in areas:
        act = ds[a].isel(epoch=0, time=-1)  # the response step
        for dec in decoders:
            kw = {"split": "holdout", "train_fraction": 0.25} if dec.startswith("sgd") else {"folds": 5}
            sc = dn.decoding_scores(act, labels, feature_dim=f"{a}_unit", decoder=dec, seed=0, **kw)
            sc = sc[["information", "decoding_accuracy"]]
            sc = sc.drop_vars([c for c in sc.coords if c not in sc.dims], errors="ignore")
            per.append(sc.expand_dims(area=[a], decoder=[dec]))
    out = xr.combine_by_coords(per, combine_attrs="drop").transpose("decoder", "area", "variable")
    out["probe_accuracy"] = ds["accuracy"].isel(epoch=0)
    out.attrs.update(config=ds.attrs["config"], n_trials=int(ds.sizes["trial"]), probe_seed=probe_seed,
                     step="response (last step of the trial)",
                     decoders="sgd-*: the authors' recipe, one 25 % train / 75 % test split; "
                              "linear-raw: L2 logistic regression on raw rates, 5-fold")
    out.attrs["weights"] = weights
    path = run_dir / f"areas_information_{weights}.nc"
    out.to_netcdf(path)
    return path


def cmd_authors(args):
    runs = sorted(p.parent.parent for p in args.out.glob("*_seed*/checkpoints/final.pt"))
    if args.groups:
        runs = [r for r in runs if r.name.rpartition("_seed")[0] in args.groups]
    k, n = (int(x) for x in args.part.split("/"))
    for run_dir in runs[k::n]:
        if not (run_dir / f"areas_information_{args.weights}.nc").is_file():
            decode_final(run_dir, args.per_condition, args.probe_seed, decoders=args.decoders, weights=args.weights)
        print(f"{run_dir} done", flush=True)


def summarize_final(out: Path) -> None:
    """Print the authors'-decoder tables (``decode_final``'s files: trained and untrained networks), if any."""
    for weights in ("final", "init"):
        rows = {}
        for p in sorted(out.glob(f"*_seed*/areas_information_{weights}.nc")):
            group, _, seed = p.parent.name.rpartition("_seed")
            rows.setdefault(group, []).append(xr.load_dataset(p))
        if not rows:
            continue
        first = next(iter(rows.values()))[0]
        print(f"\n{weights} weights ({'trained' if weights == 'final' else 'untrained'}), {first.attrs['n_trials']} new "
              "probe trials, response step: information (bits), mean ± s.d. over seeds")
        decs = [str(d) for d in first.decoder.values]
        print(f"{'group':<12} {'n':>2} {'area':<6} " + " ".join(f"{d + ' color':>18} {d + ' dir':>16}" for d in decs))
        for g in [g for g in GROUPS if g in rows]:
            both = xr.concat(rows[g], dim="seed", join="outer")
            for a in both.area.values:
                cells = []
                for d in decs:
                    x = both["information"].sel(area=a, decoder=d)
                    cells.append(f"{_pm(x.sel(variable='color')):>18} {_pm(x.sel(variable='direction')):>16}")
                print(f"{g:<12} {both.sizes['seed']:>2} {str(a):<6} " + " ".join(cells))


def cmd_run(args):
    import decisionnets as dn

    todo = run_list(args.seeds, args.ff_seeds, args.groups)
    k, n = (int(x) for x in args.part.split("/"))
    for group, seed in todo[k::n]:
        run_dir = args.out / f"{group}_seed{seed}"
        cfg = dn.load_config(PRESET, overrides=[*GROUPS[group], *args.set], seed=seed)
        done = (run_dir / "status.json").is_file() and dn.open_run(run_dir).status.get("status") == "completed"
        if not done:
            dn.train(cfg, run_dir, progress=False, resume=(run_dir / "config.json").is_file())
        if not (run_dir / "areas_information.nc").is_file():
            decode_areas(run_dir, decoders=args.decoders)
        print(f"{run_dir} done", flush=True)


def gather(out: Path) -> xr.Dataset:
    """(group, seed, area, variable, epoch, time) information from every finished run under ``out``."""
    rows = {}
    for p in sorted(out.glob("*_seed*/areas_information.nc")):
        group, _, seed = p.parent.name.rpartition("_seed")
        rows.setdefault(group, {})[int(seed)] = xr.load_dataset(p)
    groups = [g for g in GROUPS if g in rows]
    per_group = []
    for g in groups:
        seeds = sorted(rows[g])
        per_group.append(xr.concat([rows[g][s] for s in seeds], dim="seed", join="outer")
                         .assign_coords(seed=seeds).expand_dims(group=[g]))
    return xr.concat(per_group, dim="group", join="outer")


def ceiling(config_json: str) -> float:
    import decisionnets as dn

    return float(dn.ceiling_for_env(dn.build_task(dn.config_from_json(config_json)).env)["information"])


def _pm(x) -> str:
    return f"{float(x.mean()):.3f} ± {float(x.std()):.3f}"


def cmd_summarize(args):
    from matplotlib.figure import Figure

    ds = gather(args.out)
    first = next(iter(args.out.glob("dale_seed*/areas_information.nc")))
    cfg_json = xr.open_dataset(first).attrs["config"]
    ceil = ceiling(cfg_json)
    cfg = json.loads(cfg_json)
    last = int(ds.epoch.max())
    resp = ds["information"].isel(time=-1)  # the response step (last step of the trial)
    print(f"{PRESET}: {cfg['train']['epochs']} epochs of {cfg['train']['n_trials']} trials, "
          f"{cfg['train']['optimizer']} lr {cfg['train']['lr']}; ideal-observer ceiling {ceil:.3f} bits; "
          f"information at the response step, epoch {last}; mean ± s.d. over seeds (n)")
    for dec in ds.decoder.values:
        print(f"\ndecoder {dec}")
        print(f"{'group':<12} {'n':>2} {'area':<6} {'color (bits)':>15} {'direction (bits)':>16} "
              f"{'color/ceil':>10} {'dir/ceil':>8} {'probe accuracy':>15}")
        for g in ds.group.values:
            r = resp.sel(group=g, epoch=last, decoder=dec)
            ok = np.isfinite(r.sel(area="area1", variable="color")).values
            r = r.isel(seed=np.flatnonzero(ok))
            acc = ds["probe_accuracy"].sel(group=g, epoch=last).isel(seed=np.flatnonzero(ok))
            for a in ds.area.values:
                c, d = r.sel(area=a, variable="color"), r.sel(area=a, variable="direction")
                print(f"{g:<12} {int(ok.sum()):>2} {a:<6} {_pm(c):>15} {_pm(d):>16} {float(c.mean()) / ceil:>10.2f} "
                      f"{float(d.mean()) / ceil:>8.2f} {_pm(acc):>15}")
        print("per seed, epoch last: area-3 color at the response step / averaged over the decision period (bits)")
        for g in ds.group.values:
            full = ds["information"].sel(group=g, decoder=dec, area="area3", variable="color", epoch=last)
            ok = np.flatnonzero(np.isfinite(full.isel(time=-1)).values)
            full = full.isel(seed=ok)
            per_mean = full.mean("time")
            print(f"  {g:<12} " + ", ".join(f"{int(sd)}: {float(a):.2f} / {float(m):.2f}" for sd, a, m in
                                            zip(full.seed.values, full.isel(time=-1).values, per_mean.values))
                  + f"   decision-period mean {_pm(per_mean)}")
        print("area-3 color over training (mean over seeds, bits) epoch:value; peak = max over epochs >= 1 per seed")
        for g in ds.group.values:
            a3 = resp.sel(group=g, decoder=dec, area="area3", variable="color")
            a3 = a3.isel(seed=np.flatnonzero(np.isfinite(a3.isel(epoch=-1)).values))
            m = a3.mean("seed")
            peak = a3.sel(epoch=a3.epoch[a3.epoch >= 1]).max("epoch")
            print(f"  {g:<12} " + " ".join(f"{int(e)}:{float(v):.2f}" for e, v in zip(a3.epoch.values, m.values))
                  + f"   peak {_pm(peak)}, final - peak {_pm(a3.sel(epoch=last) - peak)}")
    if args.figure:
        from decisionnets.plots import plot_area_information

        # rows: (variable, law); columns: ff; an empty panel where a group was not run
        present = {g: FF_OF_GROUP[g] for g in FF_OF_GROUP if g in ds.group.values}
        ffs = sorted({ff for _, ff in present.values()})
        rows = [(var, law) for var in ("color", "direction") for law in ("Dale", "no Dale")]
        lin = resp.sel(decoder=args.figure_decoder)
        fig = Figure(figsize=(4.0 * len(ffs), 2.7 * len(rows)), layout="constrained")
        axes = fig.subplots(len(rows), len(ffs), squeeze=False, sharey=True, sharex=True)
        for i, (var, law) in enumerate(rows):
            for j, ff in enumerate(ffs):
                g = next((g for g, v in present.items() if v == (law, ff)), None)
                if g is None:
                    axes[i, j].set_title(f"{law}, ff {ff}: {var} (not run)")
                    continue
                x = lin.sel(group=g, variable=var)
                x = x.isel(seed=np.flatnonzero(np.isfinite(x.sel(area="area1").isel(epoch=-1)).values))
                plot_area_information(axes[i, j], x, ceiling=ceil,
                                      title=f"{law}, ff {ff}: {var} ({x.sizes['seed']} seeds)")
        fig.suptitle(f"{PRESET}: information at the response step per area (mean ± s.d. over seeds; "
                     f"{args.figure_decoder} decoder)")
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.figure, dpi=110, bbox_inches="tight")
        print(f"figure: {args.figure}")
    summarize_final(args.out)
    if args.ff_figure:
        fig = ff_figure(resp, ceil, args.figure_decoder)
        args.ff_figure.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.ff_figure, dpi=110, bbox_inches="tight")
        print(f"figure: {args.ff_figure}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("out", type=Path)
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    r.add_argument("--ff-seeds", type=int, default=3, help="seeds (the first k) of the ff comparison")
    r.add_argument("--groups", nargs="+", choices=list(GROUPS), default=None,
                   help="run exactly these groups for every seed (default: dale, nodale, then the ff groups)")
    r.add_argument("--decoders", nargs="+", choices=["linear", "linear-raw"], default=["linear", "linear-raw"],
                   help="decoders of areas_information.nc (linear only halves the decoding time)")
    r.add_argument("--part", default="0/1")
    r.add_argument("--set", action="append", default=[], help="config override for every run")
    f = sub.add_parser("authors", help="decode the final weights' activity on a larger probe set with the "
                                        "authors' SGD decoders (and linear-raw)")
    f.add_argument("out", type=Path)
    f.add_argument("--per-condition", type=int, default=72, help="probe trials per condition (28 conditions)")
    f.add_argument("--probe-seed", type=int, default=1, help="probe stream of the new probe set (training used 0)")
    f.add_argument("--groups", nargs="+", choices=list(GROUPS), default=None)
    f.add_argument("--decoders", nargs="+", choices=list(AUTHORS_DECODERS), default=list(AUTHORS_DECODERS))
    f.add_argument("--weights", choices=["final", "init"], default="final",
                   help="the trained network (final) or the same network before training (init)")
    f.add_argument("--part", default="0/1")
    s = sub.add_parser("summarize")
    s.add_argument("out", type=Path)
    s.add_argument("--figure", type=Path, default=None, help="information vs epoch per area and group")
    s.add_argument("--ff-figure", type=Path, default=None, help="information at the last epoch vs ff, Dale vs no Dale")
    s.add_argument("--figure-decoder", choices=["linear", "linear-raw"], default="linear-raw",
                   help="decoder of both figures (linear-raw: the standardized linear decoder fails on "
                        "near-silent units of some ff 1.0 networks)")
    args = ap.parse_args(argv)
    return {"run": cmd_run, "authors": cmd_authors, "summarize": cmd_summarize}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
