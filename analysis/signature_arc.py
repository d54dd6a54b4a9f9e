"""The whole arc (color rises after epoch 0, then is discarded) vs init gain and width: table and figure.

    python analysis/signature_arc.py SWEEP_DIR [SWEEP_DIR ...] [--out DIR] [--decode FAMILY ...]

Reads the runs of one or more sweeps of the static checkerboard FC net (``decisionnets sweep
explore-arc``, ``decisionnets sweep signature-arc``) from their ``sweep.json`` and each run's
``information.nc`` (xarray only) and writes into ``--out`` (default: the first ``SWEEP_DIR/arc``):

- ``arc.rst``: one row per (init gain, width, decoder family): color at epoch 0, at its peak (and
  the epoch of the peak), at the last epoch, final / peak, direction at the last epoch (and the
  ceiling), final validation accuracy, the number of seeds, and the verdict of the three tests
  below; mean ± s.d. over seeds;
- ``arc.png``: per family (rows): the rise (peak − epoch 0), the fall (final / peak) and the final
  direction vs init gain, one line per width, mean ± s.d. over seeds, each seed a dot; and color
  vs epoch per setting.

``--decode FAMILY`` adds a decoder family that the sweep's own analysis did not run (e.g. the
authors' ``sgd-linear``: 10-100x the cost of ``linear`` per problem) for the runs that learned the
task (final validation accuracy >= ``TRAINED_ACCURACY``): color at every recorded epoch, direction at
the last, from the recorded ``hidden`` layer with :func:`decisionnets.decoding_scores` (the SGD
families with the authors' single stratified 25 % train / 75 % test split, fold seed 0). Each
(run, family) is cached as ``SWEEP_DIR/arc_families/RUN__FAMILY.nc`` and not decoded again, so an
interrupted call resumes.

Per seed, a run's *peak* is its largest color information over the decoded epochs, its *final* the
value at its last decoded epoch. The tests, per (setting, family):

- **rise**: mean(peak − epoch 0) > 2 × its standard error over seeds (s.d. / √n, n ≥ 2) and
  > ``MIN_RISE`` bits (a rise of a few thousandths of a bit over a value already at the ceiling is
  the decoder's noise: with 2 seeds, 2 standard errors can be smaller than that);
- **discard**: mean(final / peak) ≤ 0.25 (the peak must be ≥ ``MIN_PEAK`` bits);
- **direction**: mean final direction ≥ ``DIRECTION_FRACTION`` × the ceiling (the ideal observer's
  information, stored in information.nc).

A setting shows *the arc* under a family when all three hold. Runs of several sweep directories
with the same (init_gain, width, seed) are counted once (the first directory wins).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

MIN_RISE = 0.02  # bits: 4x the largest "rise" of the paper's net at its ceiling (+0.005)
MIN_PEAK = 0.05  # bits: below it there is no color to discard and final / peak is noise
DISCARD_RATIO = 0.25
DIRECTION_FRACTION = 0.95
LAYER = "hidden"  # the last hidden layer
TRAINED_ACCURACY = 0.8  # --decode decodes only runs whose final validation accuracy reaches this
SGD = ("sgd-linear", "sgd-mlp")


def load_runs(sweep_dirs: list[Path]) -> list[dict]:
    """Per-run, per-family statistics of every finished run of the sweeps.

    Returns a list of dicts with keys init_gain, width, seed, decoder, epochs (1-D array),
    color and direction (1-D arrays over those epochs, bits), ceiling (direction's, bits) and
    val_accuracy (last epoch of log.csv).
    """
    seen, out = set(), []
    for sd in sweep_dirs:
        meta = json.loads((sd / "sweep.json").read_text())
        for r in meta["runs"]:
            c = r["coords"]
            key = (float(c.get("init_gain", 1.0)), int(c.get("width", 100)), int(c["seed"]))
            path = sd / "runs" / r["run_id"] / "information.nc"
            if key in seen or not path.is_file():
                continue
            seen.add(key)
            with xr.open_dataset(path) as ds:
                info = ds["information"].sel(layer=LAYER) if "layer" in ds["information"].dims else ds["information"]
                ceiling = float(ds["ceiling"].sel(variable="direction")) if "ceiling" in ds else np.nan
                decoders = [str(d) for d in info["decoder"].values] if "decoder" in info.dims else [
                    str(ds.attrs.get("decoder", "linear"))]
                for dec in decoders:
                    x = info.sel(decoder=dec) if "decoder" in info.dims else info
                    x = x.dropna("epoch", how="all")
                    out.append({"init_gain": key[0], "width": key[1], "seed": key[2], "decoder": dec,
                                "epochs": x["epoch"].values.astype(int),
                                "color": x.sel(variable="color").values.astype(float),
                                "direction": x.sel(variable="direction").values.astype(float),
                                "ceiling": ceiling, "val_accuracy": _val_accuracy(path.parent / "log.csv")})
            for f in sorted((sd / "arc_families").glob(f"{r['run_id']}__*.nc")):
                with xr.load_dataset(f) as extra:
                    x = extra["information"]
                    out.append({**out[-1], "decoder": f.stem.split("__")[1], "epochs": x["epoch"].values.astype(int),
                                "color": x.sel(variable="color").values.astype(float),
                                "direction": x.sel(variable="direction").values.astype(float)})
    return out


def decode_family(sweep_dir: Path, run_id: str, decoder: str) -> Path:
    """Decode one run with ``decoder`` (color at every recorded epoch, direction at the last); cached.

    Returns the cache file, an :class:`xarray.Dataset` with ``information`` (variable, epoch) in bits.
    """
    import decisionnets as dn

    path = sweep_dir / "arc_families" / f"{run_id}__{decoder}.nc"
    if path.is_file():
        return path
    ds = dn.open_activations(sweep_dir / "runs" / run_id)
    act = ds["hidden"].load()
    kw = {"split": "holdout", "train_fraction": 0.25} if decoder in SGD else {}
    opts = dict(feature_dim="unit", decoder=decoder, folds=5, seed=0,
                dtype="float32" if decoder in SGD or decoder == "mlp" else "float64", **kw)
    color = dn.decoding_scores(act, {"color": ds["color"].load()}, **opts)["information"]
    last = act.isel(epoch=[-1])
    direction = dn.decoding_scores(last, {"direction": ds["direction"].load()}, **opts)["information"]
    ds.close()
    color = color.squeeze(drop=True) if "variable" in color.dims else color
    direction = direction.squeeze(drop=True) if "variable" in direction.dims else direction.squeeze("epoch", drop=True)
    info = xr.concat([color.drop_vars([c for c in color.coords if c != "epoch"]),
                      color.drop_vars([c for c in color.coords if c != "epoch"]) * np.nan], dim="variable")
    info = info.assign_coords(variable=["color", "direction"])
    info.loc[{"variable": "direction", "epoch": int(act["epoch"].values[-1])}] = float(direction)
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_name("." + path.name + ".tmp")
    xr.Dataset({"information": info}, attrs={"decoder": decoder}).to_netcdf(tmp, engine="netcdf4")
    tmp.rename(path)
    return path


def _val_accuracy(log: Path) -> float:
    if not log.is_file():
        return np.nan
    with log.open() as f:
        rows = list(csv.DictReader(f))
    return float(rows[-1]["val_accuracy"]) if rows else np.nan


def per_seed(run: dict) -> dict:
    """Epoch-0, peak (and its epoch), final color, final / peak, and final direction of one run."""
    c = run["color"]
    k = int(np.nanargmax(c))
    peak = float(c[k])
    return {"init": float(c[0]), "peak": peak, "peak_epoch": int(run["epochs"][k]), "final": float(c[-1]),
            "rise": peak - float(c[0]), "ratio": float(c[-1]) / peak if peak >= MIN_PEAK else np.nan,
            "direction": float(run["direction"][-1]), "ceiling": run["ceiling"], "acc": run["val_accuracy"]}


def settings(runs: list[dict]) -> dict:
    """(init_gain, width, decoder) -> {stat name: array over seeds} (seeds sorted)."""
    groups: dict = {}
    for r in sorted(runs, key=lambda r: r["seed"]):
        groups.setdefault((r["init_gain"], r["width"], r["decoder"]), []).append(per_seed(r))
    return {k: {s: np.array([v[s] for v in vs], float) for s in vs[0]} for k, vs in groups.items()}


def verdict(st: dict) -> dict:
    """The three tests of the module docstring on one setting's per-seed statistics."""
    n = len(st["rise"])
    se = np.std(st["rise"], ddof=1) / np.sqrt(n) if n > 1 else np.nan
    rise = bool(n > 1 and np.mean(st["rise"]) > max(2 * se, MIN_RISE))
    ratio = np.nanmean(st["ratio"]) if np.isfinite(st["ratio"]).any() else np.nan
    discard = bool(np.isfinite(ratio) and ratio <= DISCARD_RATIO)
    direction = bool(np.mean(st["direction"]) >= DIRECTION_FRACTION * np.nanmean(st["ceiling"]))
    return {"rise": rise, "rise_se": se, "discard": discard, "direction": direction,
            "arc": rise and discard and direction}


def _ms(x: np.ndarray, fmt: str = "{:.3f}") -> str:
    x = np.asarray(x, float)
    if not np.isfinite(x).any():
        return "–"
    m = fmt.format(np.nanmean(x))
    return m if np.isfinite(x).sum() < 2 else f"{m} ± {fmt.format(np.nanstd(x, ddof=1))}"


def table(groups: dict) -> str:
    """The arc table as a reStructuredText grid ("simple table")."""
    header = ["gain", "width", "family", "n", "color epoch 0", "color peak (epoch)", "color final",
              "final / peak", "rise > 2 SE, 0.02", "direction final (ceiling)", "val. acc.", "arc"]
    rows = []
    for (g, w, dec), st in sorted(groups.items()):
        v = verdict(st)
        ep = np.median(st["peak_epoch"])
        rows.append([f"{g:g}", str(w), f"``{dec}``", str(len(st["rise"])), _ms(st["init"]),
                     f"{_ms(st['peak'])} ({ep:.0f})", _ms(st["final"]), _ms(st["ratio"], "{:.2f}"),
                     f"{'yes' if v['rise'] else 'no'} ({np.mean(st['rise']):+.3f}, SE {v['rise_se']:.3f})",
                     f"{_ms(st['direction'])} ({np.nanmean(st['ceiling']):.3f})", _ms(st["acc"]),
                     "**yes**" if v["arc"] else "no"])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    sep = " ".join("=" * n for n in widths)
    fmt = lambda r: " ".join(c.ljust(n) for c, n in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([sep, fmt(header), sep, *map(fmt, rows), sep])


def figure(runs: list[dict], groups: dict, path: Path) -> Path:
    """Rows: decoder families; columns: rise, final / peak, final direction vs gain, color vs epoch."""
    decs = sorted({k[2] for k in groups})
    widths = sorted({k[1] for k in groups})
    gains = sorted({k[0] for k in groups})
    fig = Figure(figsize=(15, 3.1 * len(decs)), layout="constrained")
    axes = fig.subplots(len(decs), 4, squeeze=False)
    for i, dec in enumerate(decs):
        for j, w in enumerate(widths):
            gs = [g for g in gains if (g, w, dec) in groups]
            for col, (stat, ylabel) in enumerate((("rise", "rise: peak − epoch 0 (bits)"),
                                                  ("ratio", "fall: final / peak"),
                                                  ("direction", "direction, final (bits)"))):
                ax = axes[i, col]
                vals = [groups[(g, w, dec)][stat] for g in gs]
                m = [np.nanmean(v) if np.isfinite(v).any() else np.nan for v in vals]
                s = [np.nanstd(v, ddof=1) if np.isfinite(v).sum() > 1 else 0.0 for v in vals]
                ax.errorbar(np.array(gs) * (1 + 0.03 * j), m, yerr=s, color=f"C{j}", marker="o", capsize=3,
                            label=f"width {w}")
                for g, v in zip(gs, vals):
                    ax.plot(np.full(len(v), g * (1 + 0.03 * j)), v, ".", color=f"C{j}", alpha=0.4, ms=4)
                ax.set_xscale("log")
                ax.set_xlim(min(gains) / 1.15, max(gains) * 1.15)
                ax.set_xticks(gains, [f"{g:g}" for g in gains])
                ax.minorticks_off()
                ax.set_xlabel("init gain")
                ax.set_ylabel(ylabel, fontsize=8)
                ax.set_title(f"{dec}", fontsize=9)
        axes[i, 0].axhline(0, color="0.6", lw=0.8, ls=":")
        axes[i, 0].axhline(MIN_RISE, color="0.8", lw=0.8, ls=":")
        axes[i, 1].axhline(DISCARD_RATIO, color="0.6", lw=0.8, ls=":")
        axes[i, 1].set_ylim(-0.05, 1.1)
        ceiling = np.nanmean([st["ceiling"].mean() for k, st in groups.items() if k[2] == dec])
        axes[i, 2].axhline(ceiling, color="0.6", lw=0.8, ls=":")
        axes[i, 2].axhline(DIRECTION_FRACTION * ceiling, color="0.8", lw=0.8, ls=":")
        axes[i, 2].set_ylim(-0.05, 0.8)
        ax = axes[i, 3]
        for j, w in enumerate(widths):
            for k, g in enumerate(gains):
                rs = [r for r in runs if r["decoder"] == dec and r["width"] == w and r["init_gain"] == g]
                if not rs:
                    continue
                e = rs[0]["epochs"]
                c = np.nanmean([r["color"] for r in rs if len(r["color"]) == len(e)], axis=0)
                ax.plot(np.maximum(e, 0.5), c, color=f"C{j}", ls=("-", "--", ":", "-.")[k % 4], lw=1.2,
                        label=f"w {w}, gain {g:g}")
        ax.set_xscale("log")
        ax.set_xlabel("epoch (0 at 0.5)")
        ax.set_ylabel("color (bits), mean over seeds", fontsize=8)
        ax.set_title(f"{dec}: color vs epoch", fontsize=9)
    axes[0, 0].legend(fontsize=7)
    axes[0, 3].legend(fontsize=6, ncol=2)
    fig.savefig(path, dpi=100)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Arc table and figure from explore-arc / signature-arc sweeps.")
    ap.add_argument("sweep_dirs", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--decode", nargs="*", default=[], help="decoder families to add (cached per run)")
    args = ap.parse_args(argv)
    for sd in args.sweep_dirs:
        if not (sd / "sweep.json").is_file():
            sys.exit(f"error: no sweep.json in {sd} (run `decisionnets sweep explore-arc` first)")
    for dec in args.decode:
        import time

        import torch

        torch.set_num_threads(1)
        for sd in args.sweep_dirs:
            for r in json.loads((sd / "sweep.json").read_text())["runs"]:
                run_dir = sd / "runs" / r["run_id"]
                if (run_dir / "information.nc").is_file() and _val_accuracy(run_dir / "log.csv") >= TRAINED_ACCURACY:
                    t0 = time.time()
                    decode_family(sd, r["run_id"], dec)
                    print(f"{r['run_id']} {dec}: {time.time() - t0:.0f} s", flush=True)
    runs = load_runs(args.sweep_dirs)
    if not runs:
        sys.exit("error: no analysed runs (information.nc) in " + ", ".join(map(str, args.sweep_dirs)))
    out = args.out or args.sweep_dirs[0] / "arc"
    out.mkdir(parents=True, exist_ok=True)
    groups = settings(runs)
    text = table(groups)
    (out / "arc.rst").write_text(text + "\n")
    print(text)
    print(f"figure: {figure(runs, groups, out / 'arc.png')}")
    arcs = [k for k, st in groups.items() if verdict(st)["arc"]]
    print("arc under: " + (", ".join(f"gain {g:g} width {w} {d}" for g, w, d in arcs) if arcs else "no setting"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
