"""Color and direction per recurrent stage (and in the reward-trained agent), first vs last epoch.

    python analysis/two_stage.py DIR [DIR ...] [--out docs/figures/two_stage.png] [--decoder linear]

Each ``DIR`` is a sweep directory (``two-stage-rnn-wd``, ``two-stage-mlp-wd``, ``agent-wd``; it holds
``sweep.json``) or one run directory. For every finished run, every recorded layer (``stage1`` and
``stage2`` of the two-stage model, ``hidden`` of a single leaky RNN or agent) and every recorded
epoch, usable information (bits; cross-validated decoder, 5 folds, fold seed 0) about ``color`` and
``direction`` is decoded at **the last recorded step of the stimulus period**: every probe trial
still runs there (in the agent's closed-loop rollouts, trials end at the reach), and it is the step
the supervised and agent results elsewhere in the docs are read at.

Each run's result is cached as ``SWEEP_DIR/two_stage/RUN_ID__DECODER.nc`` (a run directory:
``RUN_DIR/two_stage__DECODER.nc``) with dims (layer, variable, epoch) and is not decoded again, so
the script can be stopped and rerun while a sweep is still training; runs that have not finished
are skipped and named.

Prints, per model, weight decay and layer: color and direction at the first and the last recorded
epoch, mean ± s.d. over seeds (s.d. with ddof 1), the per-seed change of color, and the probe
accuracy at the last epoch, and the Frobenius norm of every weight matrix at the first and last
epoch (evidence that weight decay acted); ``--rst FILE`` writes the same table as a reStructuredText grid. The
figure shows color and direction vs epoch per layer (one column per model), mean ± s.d. over seeds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

VARIABLES = ("color", "direction")
LAYER_ORDER = ("stage1", "stage2", "hidden")


# ------------------------------------------------------------------ which runs ---------------------------


def runs_in(path: Path) -> list[tuple[Path, Path, str]]:
    """(run directory, cache folder, cache name prefix) for every run under ``path`` (a sweep or a run)."""
    path = Path(path)
    if (path / "sweep.json").is_file():
        meta = json.loads((path / "sweep.json").read_text())
        return [(path / "runs" / r["run_id"], path / "two_stage", f"{r['run_id']}__") for r in meta["runs"]]
    if (path / "activations").is_dir():
        return [(path, path, "two_stage__")]
    raise SystemExit(f"error: {path} is neither a sweep directory (sweep.json) nor a run directory (activations/)")


def finished(run_dir: Path) -> bool:
    """Whether the run's status.json says it completed."""
    status = run_dir / "status.json"
    return status.is_file() and json.loads(status.read_text()).get("status") == "completed"


# ------------------------------------------------------------------ decoding -----------------------------


def decode_step(ds: xr.Dataset) -> int:
    """Index on ``time`` of the last recorded step of the stimulus period."""
    per = ds["period"].values.astype(str)
    idx = np.flatnonzero(per == "stimulus")
    if not len(idx):
        raise ValueError(f"no recorded step of the stimulus period (periods: {sorted(set(per))})")
    return int(idx[-1])


def decode_run(run_dir: Path, decoder: str = "linear", folds: int = 5) -> xr.Dataset:
    """Information about color and direction in every recorded layer at every recorded epoch.

    Returns
    -------
    Dataset
        ``information``, ``information_sd`` (bits; dims (layer, variable, epoch)), ``accuracy`` (probe
        accuracy, (epoch,)), ``step`` (SGD / policy updates so far, (epoch,)); attrs ``time`` (ms, the
        decoded step on the run's time axis), ``seed``, ``weight_decay``, ``model`` (a label), ``decoder``,
        ``task``.
    """
    import decisionnets as dn

    ds = dn.open_activations(run_dir)
    cfg = json.loads(ds.attrs["config"])
    ti = decode_step(ds)
    layers = [v for v in LAYER_ORDER if v in ds.data_vars]
    labels = {v: ds[v].load() for v in VARIABLES}
    parts = []
    for layer in layers:
        act = ds[layer].isel(time=ti).load()
        if not np.isfinite(act.values).all():
            raise ValueError(f"{run_dir}: layer {layer} has NaN at the decoded step t = {float(ds['time'][ti])} ms "
                             "(a probe trial had ended)")
        out = dn.decoding_scores(act, labels, feature_dim=act.dims[-1], decoder=decoder, folds=folds, seed=0,
                                 dtype="float64")
        parts.append(out[["information", "information_sd"]].drop_vars(
            [c for c in out.coords if c not in out.dims], errors="ignore"))
    res = xr.concat(parts, dim="layer").assign_coords(layer=layers)
    res["accuracy"] = ds["accuracy"].load()
    res["step"] = ds["step"].load()
    res = res.drop_vars([c for c in res.coords if c not in res.dims], errors="ignore")
    res.attrs.update(time=float(ds["time"][ti]), seed=int(cfg["seed"]),
                     weight_decay=float(cfg["train"].get("weight_decay", 0.0)), model=model_label(cfg),
                     decoder=decoder, task=str(ds.attrs.get("task", "")), period="stimulus (last recorded step)")
    if "ceiling" in ds.attrs:  # the ideal observer's information after the whole trial (bits)
        res.attrs["ceiling_color"] = float(json.loads(ds.attrs["ceiling"])["color"])
    ds.close()
    return res


def model_label(cfg: dict) -> str:
    """A short name of the network and how it was trained, from a run's config."""
    m = cfg["model"]
    if m["kind"] == "two_stage_rnn":
        name = f"two-stage ({m.get('stage2', 'rnn')} stage 2)"
    else:
        name = m["kind"].replace("_", " ")
    return f"{name}, A2C" if "agent" in cfg else name


def results(dirs, decoder: str = "linear", folds: int = 5, log=print) -> list[xr.Dataset]:
    """Every finished run's cached (or newly decoded) result."""
    out = []
    for d in dirs:
        for run_dir, folder, prefix in runs_in(d):
            cache = folder / f"{prefix}{decoder}.nc"
            if cache.is_file():
                out.append(xr.load_dataset(cache))
                continue
            if not finished(run_dir):
                log(f"skipped (not finished): {run_dir}")
                continue
            t0 = time.time()
            res = decode_run(run_dir, decoder, folds)
            res.attrs["seconds"] = round(time.time() - t0, 1)
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f".{cache.name}.tmp")
            res.to_netcdf(tmp, engine="netcdf4")
            tmp.rename(cache)
            log(f"decoded {run_dir.name} ({res.attrs['seconds']} s)")
            out.append(res)
    return out


# ------------------------------------------------------------------ tables -------------------------------


def stack(res: list[xr.Dataset]) -> dict[tuple[str, float], xr.Dataset]:
    """(model, weight decay) -> the runs' results stacked on a ``seed`` dim (recorded epochs in common)."""
    groups: dict[tuple[str, float], list[xr.Dataset]] = {}
    for r in res:
        groups.setdefault((r.attrs["model"], r.attrs["weight_decay"]), []).append(r)
    out = {}
    for key in sorted(groups, key=lambda k: (k[0], k[1])):
        rs = sorted(groups[key], key=lambda r: r.attrs["seed"])
        s = xr.concat([r.expand_dims(seed=[r.attrs["seed"]]) for r in rs], dim="seed", join="inner",
                      combine_attrs="drop_conflicts")
        out[key] = s
    return out


def _pm(x) -> str:
    x = np.asarray(x, float)
    sd = x.std(ddof=1) if x.size > 1 else float("nan")
    return f"{x.mean():.3f} ± {sd:.3f}"


def table_rows(groups: dict) -> list[list[str]]:
    """One row per (model, weight decay, layer): seeds, color first/last, direction first/last, accuracy last."""
    rows = []
    for (model, wd), s in groups.items():
        first, last = s["epoch"].values[0], s["epoch"].values[-1]
        for layer in s["layer"].values:
            x = s["information"].sel(layer=layer)
            rows.append([model, f"{wd:g}", str(layer), f"{s.sizes['seed']} ({', '.join(map(str, s['seed'].values))})",
                         f"{int(first)} → {int(last)}",
                         _pm(x.sel(variable="color", epoch=first)), _pm(x.sel(variable="color", epoch=last)),
                         _pm(x.sel(variable="direction", epoch=first)), _pm(x.sel(variable="direction", epoch=last)),
                         _pm(s["accuracy"].sel(epoch=last))])
    return rows


HEADER = ["model", "weight decay", "layer", "seeds", "epochs", "color first (bits)", "color last (bits)",
          "direction first (bits)", "direction last (bits)", "probe accuracy last"]


def rst_table(rows: list[list[str]], header=HEADER) -> str:
    """A reStructuredText simple table."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    rule = " ".join("=" * w for w in widths)
    fmt = lambda r: " ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([rule, fmt(header), rule, *map(fmt, rows), rule])


def per_seed_lines(groups: dict) -> list[str]:
    """Per seed: color at the last epoch and its change from the first, per layer."""
    out = []
    for (model, wd), s in groups.items():
        first, last = s["epoch"].values[0], s["epoch"].values[-1]
        for layer in s["layer"].values:
            c = s["information"].sel(layer=layer, variable="color")
            d = c.sel(epoch=last) - c.sel(epoch=first)
            out.append(f"{model}, wd {wd:g}, {layer}: color at epoch {int(last)} per seed "
                       + ", ".join(f"{float(v):.3f}" for v in c.sel(epoch=last).values)
                       + "; change " + ", ".join(f"{float(v):+.3f}" for v in d.values)
                       + f"; fold s.d. (mean) {float(s['information_sd'].sel(layer=layer, variable='color').mean()):.3f}")
    return out


def weight_norms(dirs) -> dict[tuple[str, float], dict[str, list[tuple[float, float]]]]:
    """(model, weight decay) -> weight matrix name -> [(Frobenius norm at the first, at the last epoch)] per run.

    Read from the weights each finished run keeps per recorded epoch: evidence that weight decay acted.
    """
    from decisionnets.weights import load_weights, weight_epochs

    out: dict = {}
    for d in dirs:
        for run_dir, _, _ in runs_in(d):
            if not finished(run_dir) or not weight_epochs(run_dir):
                continue
            cfg = json.loads((run_dir / "config.json").read_text())
            epochs = weight_epochs(run_dir)
            first, last = load_weights(run_dir, epochs[0]), load_weights(run_dir, epochs[-1])
            per = out.setdefault((model_label(cfg), float(cfg["train"].get("weight_decay", 0.0))), {})
            for k in first:
                if k.endswith("weight") and first[k].dim() == 2:
                    per.setdefault(k[: -len(".weight")], []).append((float(first[k].norm()), float(last[k].norm())))
    return out


def norm_lines(norms: dict) -> list[str]:
    """One line per (model, weight decay): each matrix's norm, first -> last epoch, mean over runs."""
    lines = []
    for (model, wd), per in sorted(norms.items()):
        parts = [f"{k} {np.mean([a for a, _ in v]):.2f} -> {np.mean([b for _, b in v]):.2f}" for k, v in per.items()]
        lines.append(f"{model}, wd {wd:g} (runs: {len(next(iter(per.values())))}): " + ", ".join(parts))
    return lines


# ------------------------------------------------------------------ figure -------------------------------


def plot_group(ax, s: xr.Dataset, variable: str, wd: float, ls: str = "-"):
    """Information about ``variable`` vs epoch, one line per layer x weight decay, mean ± s.d. over seeds."""
    colors = {"stage1": "tab:green", "stage2": "tab:purple", "hidden": "tab:gray"}
    for layer in s["layer"].values:
        y = s["information"].sel(layer=layer, variable=variable)
        m = y.mean("seed").values
        sd = y.std("seed", ddof=1).values if s.sizes["seed"] > 1 else np.zeros_like(m)
        x = s["epoch"].values
        (line,) = ax.plot(x, m, ls=ls, marker="o", ms=3, color=colors.get(str(layer), "k"),
                          label=f"{layer}, wd {wd:g} (seeds: {s.sizes['seed']})")
        ax.fill_between(x, m - sd, m + sd, color=line.get_color(), alpha=0.15, lw=0)
    return ax


def figure(groups: dict, ceiling: float | None = None) -> Figure:
    """Color (top) and direction (bottom) vs epoch, one column per model."""
    models = list(dict.fromkeys(m for m, _ in groups))
    fig = Figure(figsize=(4.6 * len(models), 7), layout="constrained")
    axes = np.atleast_2d(fig.subplots(2, len(models), squeeze=False))
    for j, model in enumerate(models):
        wds = sorted(wd for m, wd in groups if m == model)
        # the control (wd 0) dashed, the largest weight decay solid, others dash-dotted / dotted
        styles = {0.0: "--", **dict(zip(sorted((w for w in wds if w != 0), reverse=True), ["-", "-.", ":", "-"]))}
        for i, v in enumerate(VARIABLES):
            ax = axes[i, j]
            for wd in wds:
                plot_group(ax, groups[(model, wd)], v, wd, styles[wd])
            if ceiling is not None:
                ax.axhline(ceiling, color="0.5", ls=":", lw=0.8, label="ideal observer (whole trial)")
            ax.set_xlabel("training epoch")
            ax.set_ylabel(f"usable information about {v} (bits)")
            ax.set_title(f"{model}: {v}", fontsize="medium")
            ax.set_ylim(-0.05, 0.8)
            ax.legend(frameon=False, fontsize="x-small", handlelength=4)  # long enough to tell -- from -
    fig.suptitle("last step of the stimulus period; mean ± s.d. over seeds", fontsize="medium")
    return fig


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--decoder", default="linear")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("two_stage.png"))
    ap.add_argument("--rst", type=Path, help="also write the table here (reStructuredText)")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    res = results(args.dirs, args.decoder, args.folds)
    if not res:
        print("no finished runs yet")
        return 1
    groups = stack(res)
    rows = table_rows(groups)
    table = rst_table(rows)
    print(f"\ndecoder {args.decoder}, {args.folds} folds; bits at the last recorded stimulus step; mean ± s.d. "
          "(ddof 1) over seeds")
    print(table)
    print("\n".join(per_seed_lines(groups)))
    print("weight matrices, Frobenius norm at the first -> last recorded epoch, mean over runs:")
    print("\n".join(norm_lines(weight_norms(args.dirs))))
    if args.rst:
        args.rst.write_text(table + "\n")
    ceilings = [r.attrs["ceiling_color"] for r in res if "ceiling_color" in r.attrs]
    fig = figure(groups, max(ceilings) if ceilings else None)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
