"""Early perturbation in the discard regime: a `perturbation-discard` sweep -> table, CKA, figure.

    python analysis/perturbation_discard.py SWEEP_DIR [--decoders linear-raw:2 linear:4] [--stride 2]
                                            [--no-decode] [--figure PNG] [--table RST]

The sweep (``tasks/perturbation-discard.toml``) trains the paper's FC net with weight decay 1e-2,
batch 32 throughout, under the conditions of its ``start`` axis:

``k0``
    lr 0.05 from the first step (the reference);
``lowK``
    the first K epochs at lr 0.005, then lr 0.05;
``highK``
    the converse: the first K epochs at lr 0.05, then lr 0.005;
``pretrained``
    trained to report the color first (a pretraining run), then lr 0.05 on direction.

Every epoch is the same number of SGD steps in every condition, so runs of the same length have
matched total steps. For every finished run and decoder family this script decodes, from the
recorded last hidden layer (``hidden``) on the shared probe set, color at every ``stride``-th
recorded epoch (and the last) and direction at the first and last epoch, with
:func:`decisionnets.decoding_scores` (5-fold nested CV, fold seed 0). Each (run, decoder) result is
cached as ``SWEEP_DIR/perturbation/RUN__DECODER__sSTRIDE.nc`` (dims (variable, epoch)) and never
decoded again, so an interrupted call resumes where it stopped, and a call made while the sweep
still runs uses the runs finished so far.

Per condition and seed it then measures

- the *half-fall step*: the first SGD step, after the color peak, at which color has fallen to half
  its peak (the decoded curve linearly interpolated between the two decoded epochs that bracket the
  crossing); NaN ("not reached") where color never falls that far;
- color at its peak, color at the last epoch ("final"), final / peak (<= 0.25: discarded), direction
  at the last epoch;
- paired differences against ``k0`` of the same seed (same initial weights, same batch order, same
  probe trials), mean +- s.d. over seeds;
- linear CKA (:func:`decisionnets.representation.similarity.linear_cka`) between the end state of
  the last hidden layer (probe trials x units) and that of ``k0`` with the same seed, and at every
  4th epoch (``cka_vs_epoch``: how far the start moves a run, and when it is forgotten); for scale,
  the CKA between ``k0`` end states of different seeds;
- the half-fall also on the axis of the learning rate summed over SGD steps (from each run's
  ``log.csv``): with weight decay, the total decay applied.

It writes ``SWEEP_DIR/perturbation/table.md`` and ``table.rst`` (one table per decoder family),
``metrics.nc`` (per condition and seed), ``cka.nc`` and ``perturbation_discard.png`` (color vs SGD
step per condition, mean +- s.d. over seeds), and the figure also to ``--figure`` if given.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

REFERENCE = "k0"
DISCARDED = 0.25  #: final / peak color at or below which color counts as discarded


# --------------------------------------------------------------------------------------------------
# conditions and runs
# --------------------------------------------------------------------------------------------------
def condition_order(conditions) -> list[str]:
    """``conditions`` sorted: k0, lowK (K ascending), highK (K ascending), then the rest by name."""
    def key(c):
        m = re.fullmatch(r"(low|high)(\d+)", c)
        if c == REFERENCE:
            return (0, 0, c)
        if m:
            return (1 if m[1] == "low" else 2, int(m[2]), c)
        return (3, 0, c)

    return sorted(set(conditions), key=key)


def describe(condition: str) -> str:
    """A condition's start in words (for tables and legends)."""
    m = re.fullmatch(r"(low|high)(\d+)", condition)
    if condition == REFERENCE:
        return "lr 0.05 throughout"
    if m and m[1] == "low":
        return f"first {m[2]} epochs lr 0.005, then 0.05"
    if m:
        return f"first {m[2]} epochs lr 0.05, then 0.005"
    if condition == "pretrained":
        return "color-pretrained, then lr 0.05"
    return condition


def switch_epoch(condition: str) -> int | None:
    """The epoch after which a lowK / highK condition switches learning rate (None otherwise)."""
    m = re.fullmatch(r"(low|high)(\d+)", condition)
    return int(m[2]) if m else None


def finished_runs(sweep_dir: Path) -> list[dict]:
    """The sweep's runs whose training completed: dicts with run_id, run_dir, condition, seed."""
    meta = json.loads((sweep_dir / "sweep.json").read_text())
    out = []
    for r in meta["runs"]:
        run_dir = sweep_dir / "runs" / r["run_id"]
        status = run_dir / "status.json"
        if not status.is_file() or json.loads(status.read_text()).get("status") != "completed":
            continue
        out.append({"run_id": r["run_id"], "run_dir": run_dir, "condition": str(r["coords"]["start"]),
                    "seed": int(r["coords"]["seed"])})
    return out


# --------------------------------------------------------------------------------------------------
# decoding (cached)
# --------------------------------------------------------------------------------------------------
def decode_run(run_dir: Path, decoder: str, stride: int, folds: int = 5) -> xr.Dataset:
    """Color at every ``stride``-th recorded epoch (and the last), direction at the first and last.

    Returns
    -------
    Dataset with dims (variable, epoch): ``information`` (bits; NaN where not decoded),
    ``information_sd`` (bits, s.d. over folds), ``converged`` (int8; 1 where not decoded); coordinate
    ``step`` (epoch): SGD steps of the run at that epoch.
    """
    import decisionnets as dn

    ds = dn.open_activations(run_dir)
    n = ds.sizes["epoch"]
    color_idx = sorted({*range(0, n, stride), n - 1})
    parts = []
    for var, idx in (("color", color_idx), ("direction", [0, n - 1])):
        act = ds["hidden"].isel(epoch=idx).load()
        out = dn.decoding_scores(act, ds[var].load(), feature_dim="unit", decoder=decoder, folds=folds,
                                 seed=0, dtype="float64")
        out = out[["information", "information_sd", "converged"]]
        out = out.drop_vars([c for c in out.coords if c not in out.dims and c != "epoch"], errors="ignore")
        parts.append(out.expand_dims(variable=[var]))
    res = xr.concat(parts, dim="variable", join="outer")
    res["converged"] = res["converged"].fillna(1).astype("int8")
    epochs = ds["epoch"].values[color_idx]
    res = res.reindex(epoch=epochs).assign_coords(step=("epoch", ds["step"].values[color_idx].astype("int64")))
    res.attrs.update(decoder=decoder, stride=stride, folds=folds, layer="hidden",
                     ceiling=str(ds.attrs.get("ceiling", "{}")))
    ds.close()
    return res


def parse_decoders(specs, stride: int) -> list[tuple[str, int]]:
    """``["linear-raw:2", "linear"]`` -> ``[("linear-raw", 2), ("linear", stride)]`` (DECODER[:STRIDE])."""
    out = []
    for s in specs:
        dec, _, k = str(s).partition(":")
        if k and (not k.isdigit() or int(k) < 1):
            raise ValueError(f"a decoder is DECODER[:STRIDE] with STRIDE an integer >= 1; got {s!r}")
        out.append((dec, int(k) if k else int(stride)))
    return out


def decode_all(sweep_dir: Path, decoders, folds: int = 5, log=print) -> None:
    """Decode every finished run not yet cached, for each (decoder, stride) in order."""
    import decisionnets as dn

    cache = sweep_dir / "perturbation"
    cache.mkdir(exist_ok=True)
    for dec, stride in decoders:
        for r in finished_runs(sweep_dir):
            path = cache / f"{r['run_id']}__{dec}__s{stride}.nc"
            if path.is_file():
                continue
            t0 = time.time()
            res = decode_run(r["run_dir"], dec, stride, folds)
            res.attrs["seconds"] = time.time() - t0
            with dn.atomic_path(path) as tmp:
                res.to_netcdf(tmp, engine="netcdf4")
            c = res["information"].sel(variable="color").values
            log(f"{r['run_id']} {dec}: color {c[0]:.3f} -> {np.nanmin(c):.3f} (min) -> {c[-1]:.3f}, "
                f"{time.time() - t0:.0f} s")


def cumulative_lr(run_dir: Path) -> dict[int, float]:
    """Epoch -> the sum of the learning rate over the run's SGD steps so far (from its ``log.csv``; epoch 0: 0).

    With weight decay ``wd``, ``wd`` times this sum is the exponent of the total shrinkage the decay
    has applied, ``prod(1 - lr * wd)`` ~ ``exp(-wd * sum(lr))``.
    """
    out, prev_step, total = {0: 0.0}, 0, 0.0
    with open(Path(run_dir) / "log.csv", newline="") as f:
        for row in csv.DictReader(f):
            step = int(row["step"])
            total += float(row["lr"]) * (step - prev_step)
            prev_step = step
            out[int(row["epoch"])] = total
    return out


def collect(sweep_dir: Path, decoder: str, stride: int) -> xr.Dataset | None:
    """The cached curves of one decoder as a Dataset with dims (condition, seed, epoch).

    Variables ``color``, ``direction`` (bits; NaN where not decoded or the run is missing),
    ``step`` (condition, epoch): SGD steps at each epoch (the same for every seed of a condition), and
    ``lr_steps`` (condition, epoch): the learning rate summed over those steps (:func:`cumulative_lr`).
    None if nothing is cached.
    """
    runs = finished_runs(sweep_dir)
    got, lrs = {}, {}
    for r in runs:
        path = sweep_dir / "perturbation" / f"{r['run_id']}__{decoder}__s{stride}.nc"
        if path.is_file():
            got[(r["condition"], r["seed"])] = xr.load_dataset(path)
            lrs[(r["condition"], r["seed"])] = cumulative_lr(r["run_dir"])
    if not got:
        return None
    conds = condition_order(c for c, _ in got)
    seeds = sorted({s for _, s in got})
    epochs = sorted({int(e) for d in got.values() for e in d["epoch"].values})
    color = np.full((len(conds), len(seeds), len(epochs)), np.nan)
    direction = np.full_like(color, np.nan)
    step = np.full((len(conds), len(epochs)), np.nan)
    lr_steps = np.full_like(step, np.nan)
    pos = {e: i for i, e in enumerate(epochs)}
    for (c, s), d in got.items():
        ci, si = conds.index(c), seeds.index(s)
        ei = [pos[int(e)] for e in d["epoch"].values]
        color[ci, si, ei] = d["information"].sel(variable="color").values
        direction[ci, si, ei] = d["information"].sel(variable="direction").values
        step[ci, ei] = d["step"].values
        lr_steps[ci, ei] = [lrs[(c, s)].get(int(e), np.nan) for e in d["epoch"].values]
    ceiling = json.loads(next(iter(got.values())).attrs.get("ceiling", "{}") or "{}")
    return xr.Dataset(
        {"color": (("condition", "seed", "epoch"), color), "direction": (("condition", "seed", "epoch"), direction),
         "step": (("condition", "epoch"), step), "lr_steps": (("condition", "epoch"), lr_steps)},
        coords={"condition": conds, "seed": seeds, "epoch": epochs},
        attrs={"decoder": decoder, "stride": stride, "ceiling_color": float(ceiling.get("color", np.nan)),
               "ceiling_direction": float(ceiling.get("direction", np.nan))})


# --------------------------------------------------------------------------------------------------
# measures
# --------------------------------------------------------------------------------------------------
def half_fall_step(step, color) -> float:
    """The SGD step at which ``color`` first falls to half its peak after the peak, interpolated.

    Parameters
    ----------
    step, color : array, shape (n,)
        Decoded points in training order (NaN points are dropped).

    Returns
    -------
    float
        ``s[i-1] + (c[i-1] - h) / (c[i-1] - c[i]) * (s[i] - s[i-1])`` with ``h = max(c) / 2`` and ``i``
        the first point after the peak with ``c[i] <= h``; NaN if there is none (not reached).
    """
    step, color = np.asarray(step, float), np.asarray(color, float)
    ok = ~(np.isnan(step) | np.isnan(color))
    step, color = step[ok], color[ok]
    if color.size < 2:
        return float("nan")
    p = int(np.argmax(color))
    h = color[p] / 2
    below = np.flatnonzero(color[p + 1:] <= h)
    if below.size == 0:
        return float("nan")
    i = p + 1 + int(below[0])
    c0, c1, s0, s1 = color[i - 1], color[i], step[i - 1], step[i]
    return float(s0 + (c0 - h) / (c0 - c1) * (s1 - s0))


def run_metrics(curves: xr.Dataset) -> xr.Dataset:
    """Per condition and seed: half-fall step, color peak and its step, final color, final / peak, final direction.

    Parameters
    ----------
    curves : Dataset (condition, seed, epoch)
        As :func:`collect` returns.

    Returns
    -------
    Dataset (condition, seed): ``half_fall_step``, ``half_fall_lr_steps`` (the half-fall on the
    cumulative-lr axis ``lr_steps`` instead of steps), ``peak_color``, ``peak_step``, ``final_color``,
    ``final_over_peak``, ``final_direction``; NaN where the run is missing.
    """
    nc, ns = curves.sizes["condition"], curves.sizes["seed"]
    out = {k: np.full((nc, ns), np.nan) for k in ("half_fall_step", "half_fall_lr_steps", "peak_color", "peak_step",
                                                    "final_color", "final_over_peak", "final_direction")}
    for ci in range(nc):
        step = curves["step"].values[ci]
        lr_steps = curves["lr_steps"].values[ci] if "lr_steps" in curves else np.full_like(step, np.nan)
        for si in range(ns):
            c = curves["color"].values[ci, si]
            ok = ~np.isnan(c)
            if not ok.any():
                continue
            p = int(np.nanargmax(c))
            last = np.flatnonzero(ok)[-1]
            out["half_fall_step"][ci, si] = half_fall_step(step, c)
            out["half_fall_lr_steps"][ci, si] = half_fall_step(lr_steps, c)
            out["peak_color"][ci, si] = c[p]
            out["peak_step"][ci, si] = step[p]
            out["final_color"][ci, si] = c[last]
            out["final_over_peak"][ci, si] = c[last] / c[p] if c[p] > 0 else np.nan
            d = curves["direction"].values[ci, si]
            out["final_direction"][ci, si] = d[np.flatnonzero(~np.isnan(d))[-1]] if (~np.isnan(d)).any() else np.nan
    return xr.Dataset({k: (("condition", "seed"), v) for k, v in out.items()},
                      coords={"condition": curves["condition"].values, "seed": curves["seed"].values})


def paired_differences(values: xr.DataArray, reference: str = REFERENCE) -> xr.DataArray:
    """``values`` minus the reference condition's value of the same seed.

    Parameters
    ----------
    values : DataArray (condition, seed)

    Returns
    -------
    DataArray (condition, seed); NaN where either is NaN (the reference row is 0 where defined).
    """
    if reference not in values["condition"].values:
        raise ValueError(f"paired differences need the reference condition {reference!r}; "
                         f"got conditions {list(values['condition'].values)}")
    return values - values.sel(condition=reference, drop=True)


def mean_sd(values) -> tuple[float, float, int]:
    """Mean, s.d. (ddof 1; NaN for one value) and count of the non-NaN values."""
    v = np.asarray(values, float)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else float("nan"), int(v.size)


def end_states(sweep_dir: Path) -> dict:
    """(condition, seed) -> the last recorded ``hidden`` (probe trials x units) of every finished run."""
    import decisionnets as dn

    out = {}
    for r in finished_runs(sweep_dir):
        ds = dn.open_activations(epoch_files(r["run_dir"])[-1])  # one epoch's file: no need to open them all
        out[(r["condition"], r["seed"])] = np.asarray(ds["hidden"].squeeze("epoch", drop=True)
                                                      .transpose("trial", "unit").values, dtype=np.float64)
        ds.close()
    return out


def epoch_files(run_dir: Path) -> list[Path]:
    """The run's activation files (one per recorded epoch), in epoch order."""
    return sorted((Path(run_dir) / "activations").glob("epoch_*.nc"))


def cka_table(states: dict, reference: str = REFERENCE) -> tuple[xr.DataArray, np.ndarray]:
    """Linear CKA of every end state to the reference condition's end state with the same seed.

    Parameters
    ----------
    states : dict
        (condition, seed) -> array (trial, unit), as :func:`end_states` returns.

    Returns
    -------
    cka : DataArray (condition, seed)
        NaN where a run or its reference is missing.
    across_seeds : ndarray, shape (n_pairs,)
        CKA between reference end states of two different seeds (the scale of seed-to-seed change).
    """
    from decisionnets.representation.similarity import linear_cka

    conds = condition_order(c for c, _ in states)
    seeds = sorted({s for _, s in states})
    cka = np.full((len(conds), len(seeds)), np.nan)
    for ci, c in enumerate(conds):
        for si, s in enumerate(seeds):
            if (c, s) in states and (reference, s) in states:
                cka[ci, si] = linear_cka(states[(c, s)], states[(reference, s)])
    ref = [s for s in seeds if (reference, s) in states]
    across = np.array([linear_cka(states[(reference, a)], states[(reference, b)])
                       for i, a in enumerate(ref) for b in ref[i + 1:]])
    return xr.DataArray(cka, dims=("condition", "seed"), coords={"condition": conds, "seed": seeds}), across


def cka_curves(sweep_dir: Path, every: int = 4, reference: str = REFERENCE) -> xr.DataArray | None:
    """Linear CKA of each run's last hidden layer to the reference run of the same seed, at every ``every``-th epoch.

    Returns
    -------
    DataArray (condition, seed, epoch) or None (no reference run finished); the reference row is 1.
    Epochs are counted within each run (a pretrained run's epoch 0 is its pretrained start).
    """
    import decisionnets as dn
    from decisionnets.representation.similarity import linear_cka

    runs = finished_runs(sweep_dir)
    refs = {r["seed"]: r for r in runs if r["condition"] == reference}
    if not refs:
        return None
    conds = condition_order(r["condition"] for r in runs)
    seeds = sorted({r["seed"] for r in runs})
    n = len(epoch_files(next(iter(refs.values()))["run_dir"]))
    epochs = sorted({*range(0, n, every), n - 1})
    epoch_values = []
    out = np.full((len(conds), len(seeds), len(epochs)), np.nan)

    def load(run_dir):
        files, hs = epoch_files(run_dir), []
        for i in epochs:  # one file per epoch read (opening every epoch's file is the slow part)
            ds = dn.open_activations(files[i])
            hs.append(np.asarray(ds["hidden"].squeeze("epoch", drop=True).transpose("trial", "unit").values,
                                 np.float64))
            if len(epoch_values) < len(epochs):
                epoch_values.append(int(ds["epoch"].values[0]))
            ds.close()
        return np.stack(hs)

    for s, ref in refs.items():
        h_ref = load(ref["run_dir"])
        for r in (r for r in runs if r["seed"] == s):
            h = h_ref if r is ref else load(r["run_dir"])
            out[conds.index(r["condition"]), seeds.index(s)] = [linear_cka(h[i], h_ref[i]) for i in range(len(epochs))]
    return xr.DataArray(out, dims=("condition", "seed", "epoch"),
                        coords={"condition": conds, "seed": seeds, "epoch": epoch_values})


# --------------------------------------------------------------------------------------------------
# table and figure
# --------------------------------------------------------------------------------------------------
def _fmt(m: float, sd: float, n: int, n_all: int, digits: int = 3, thousands: bool = False) -> str:
    if n == 0:
        return "–"
    f = (lambda x: f"{x:,.0f}") if thousands else (lambda x: f"{x:.{digits}f}")
    s = f(m) if np.isnan(sd) else f"{f(m)} ± {f(sd)}"
    return s if n == n_all else f"{s} (n={n})"


COLUMNS = ["condition", "start", "half-fall step", "Δ half-fall", "half-fall Σlr", "Δ half-fall Σlr", "final color",
           "Δ final color", "final / peak", "final direction", "Δ direction", "CKA to k0"]


def table_rows(metrics: xr.Dataset, cka: xr.DataArray | None = None) -> list[list[str]]:
    """One row per condition (cells as :data:`COLUMNS`): mean ± s.d. over seeds, paired Δ vs k0 of the same seed.

    The half-fall cell says how many seeds never reached half the peak ("not reached k/n").
    """
    rows = []
    diffs = {k: paired_differences(metrics[k]) for k in ("half_fall_step", "half_fall_lr_steps", "final_color",
                                                         "final_direction")}
    for c in metrics["condition"].values:
        m = metrics.sel(condition=c)
        n_all = int((~np.isnan(m["final_color"].values)).sum())
        hf = m["half_fall_step"].values
        n_not = int((np.isnan(hf) & ~np.isnan(m["final_color"].values)).sum())
        hf_cell = _fmt(*mean_sd(hf), n_all, thousands=True)
        if n_not:
            hf_cell = f"not reached {n_not}/{n_all}" if n_not == n_all else f"{hf_cell}; not reached {n_not}/{n_all}"
        row = [str(c), describe(str(c)), hf_cell]
        row.append("–" if c == REFERENCE else _fmt(*mean_sd(diffs["half_fall_step"].sel(condition=c).values), n_all,
                                                   thousands=True))
        row.append(_fmt(*mean_sd(m["half_fall_lr_steps"].values), n_all, digits=1))
        row.append("–" if c == REFERENCE else _fmt(*mean_sd(diffs["half_fall_lr_steps"].sel(condition=c).values),
                                                   n_all, digits=1))
        row.append(_fmt(*mean_sd(m["final_color"].values), n_all))
        row.append("–" if c == REFERENCE else _fmt(*mean_sd(diffs["final_color"].sel(condition=c).values), n_all))
        row += [_fmt(*mean_sd(m["final_over_peak"].values), n_all), _fmt(*mean_sd(m["final_direction"].values), n_all)]
        row.append("–" if c == REFERENCE else _fmt(*mean_sd(diffs["final_direction"].sel(condition=c).values), n_all))
        if cka is not None and c in cka["condition"].values:
            row.append("1 (itself)" if c == REFERENCE else _fmt(*mean_sd(cka.sel(condition=c).values), n_all))
        else:
            row.append("–")
        rows.append(row)
    return rows


def markdown_table(rows, columns=COLUMNS) -> str:
    """A pipe table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def rst_table(rows, columns=COLUMNS) -> str:
    """A reStructuredText simple table."""
    w = [max(len(str(x)) for x in [c, *[r[i] for r in rows]]) for i, c in enumerate(columns)]
    rule = " ".join("=" * n for n in w)
    line = lambda cells: " ".join(str(x).ljust(n) for x, n in zip(cells, w)).rstrip()  # noqa: E731
    return "\n".join([rule, line(columns), rule, *[line(r) for r in rows], rule]) + "\n"


PANELS = {"low": "first k epochs at lr 0.005", "high": "first k epochs at lr 0.05, then 0.005",
          "other": "color-pretrained start"}


def _panel(condition: str) -> str:
    m = re.fullmatch(r"(low|high)\d+", condition)
    return m[1] if m else "other"


def plot_color_curves(curves: xr.Dataset, conditions, ax, variable: str = "color", x: str = "step"):
    """Color (bits) vs SGD step (``x="step"``) or vs the summed learning rate (``x="lr_steps"``) for
    ``conditions``: mean over seeds with a ± s.d. band; returns ``ax``.

    On the step axis a dotted vertical line marks each lowK / highK condition's switch of learning rate.
    """
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("viridis")
    for i, c in enumerate(conditions):
        v = curves[variable].sel(condition=c)
        ok = ~np.isnan(v).all("seed").values
        if not ok.any():
            continue
        step = curves[x].sel(condition=c).values[ok] / (1000 if x == "step" else 1)
        m, sd = v.mean("seed").values[ok], v.std("seed", ddof=1).values[ok] if v.sizes["seed"] > 1 else 0 * step
        color = "k" if c == REFERENCE else cmap(0.15 + 0.7 * i / max(len(conditions) - 1, 1))
        n = int((~np.isnan(v.values[:, ok])).any(axis=1).sum())
        ax.plot(step, m, color=color, lw=1.5, label=f"{c} (n={n})")
        ax.fill_between(step, m - sd, m + sd, color=color, alpha=0.2, lw=0)
        k = switch_epoch(c) if x == "step" else None
        if k is not None:
            e, st = curves["epoch"].values, curves["step"].sel(condition=c).values
            ok_e = np.isfinite(st)
            ax.axvline(np.interp(k, e[ok_e], st[ok_e]) / 1000, color=color, ls=":", lw=1)
    ceil = curves.attrs.get(f"ceiling_{variable}", np.nan)
    if np.isfinite(ceil):
        ax.axhline(ceil, color="0.6", ls="--", lw=0.8)
    ax.set_xlabel("SGD steps (thousands; batch 32, 282 per epoch)" if x == "step"
                  else "Σ lr over SGD steps (× weight decay = decay exponent)")
    ax.set_ylabel(f"{variable} information (bits)")
    ax.legend(fontsize=7, frameon=False)
    return ax


def figure(by_decoder: dict, path: Path) -> None:
    """One row per decoder family; columns: each kind of start (lowK, highK, pretrained; each with k0) vs
    SGD step, then every condition vs the summed learning rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    decs = list(by_decoder)
    fig, axes = plt.subplots(len(decs), 4, figsize=(17, 3.6 * len(decs)), squeeze=False, sharey=True)
    for r, dec in enumerate(decs):
        curves = by_decoder[dec]
        conds = list(curves["condition"].values)
        for col, panel in enumerate(PANELS):
            sel = [REFERENCE] * (REFERENCE in conds) + [c for c in conds if c != REFERENCE and _panel(c) == panel]
            ax = plot_color_curves(curves, sel, axes[r, col])
            ax.set_title(f"{PANELS[panel]} ({dec})", fontsize=9)
        ax = plot_color_curves(curves, conds, axes[r, 3], x="lr_steps")
        ax.set_title(f"all starts vs summed learning rate ({dec})", fontsize=9)
    fig.suptitle("Color in the last hidden layer, weight decay 1e-2 (mean ± s.d. over seeds; dotted: lr switch)",
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=70)
    plt.close(fig)


# --------------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sweep_dir", type=Path)
    ap.add_argument("--decoders", nargs="+", default=["linear-raw:2", "linear:4"],
                    help="decoder families as DECODER[:STRIDE], decoded in this order (default: linear-raw:2 linear:4)")
    ap.add_argument("--stride", type=int, default=2,
                    help="decode color at every k-th recorded epoch (and the last) where a decoder names no stride")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--no-decode", action="store_true", help="use only what is cached (no decoding)")
    ap.add_argument("--figure", type=Path, help="also save the figure here")
    ap.add_argument("--table", type=Path, help="also write the rst tables here")
    args = ap.parse_args(argv)
    if args.stride < 1:
        ap.error(f"--stride must be >= 1; got {args.stride}")
    try:
        decoders = parse_decoders(args.decoders, args.stride)
    except ValueError as e:
        ap.error(str(e))
    import torch

    torch.set_num_threads(1)
    sweep_dir = args.sweep_dir.resolve()
    out = sweep_dir / "perturbation"
    out.mkdir(exist_ok=True)
    if not args.no_decode:
        decode_all(sweep_dir, decoders, args.folds)
    states = end_states(sweep_dir)
    cka, across = cka_table(states) if states else (None, np.array([]))
    by_dec, md, rst, metrics_all = {}, [], [], []
    for dec, stride in decoders:
        curves = collect(sweep_dir, dec, stride)
        if curves is None:
            continue
        by_dec[dec] = curves
        metrics = run_metrics(curves)
        metrics_all.append(metrics.expand_dims(decoder=[dec]))
        rows = table_rows(metrics, cka)
        head = (f"Decoder ``{dec}``, color every {stride} epochs; seeds "
                f"{', '.join(map(str, curves['seed'].values))}; mean ± s.d. over seeds; Δ = paired difference "
                f"to k0 of the same seed.")
        md += [head.replace("``", "`"), "", markdown_table(rows)]
        rst += [head, "", rst_table(rows)]
    m_across = mean_sd(across)
    note = (f"CKA between k0 end states of different seeds: {m_across[0]:.3f} ± {m_across[1]:.3f} "
            f"({m_across[2]} pairs)." if m_across[2] else "")
    if cka is not None:
        curves_cka = cka_curves(sweep_dir)
        res = xr.Dataset({"cka": cka, "cka_across_seeds": ("pair", across)})
        if curves_cka is not None:
            res["cka_vs_epoch"] = curves_cka.rename(epoch="cka_epoch")
            mean = curves_cka.mean("seed")  # NaN where no seed of a condition has its reference yet
            shown = [c for c in mean["condition"].values if c != REFERENCE and np.isfinite(mean.sel(condition=c)).any()]
            note += " Lowest CKA to k0 over epochs (every 4th; mean over seeds): " + ", ".join(
                f"{c} {float(mean.sel(condition=c).min()):.3f} (epoch {int(mean.sel(condition=c).idxmin('epoch'))})"
                for c in shown) + "."
        res.to_netcdf(out / "cka.nc")
    (out / "table.md").write_text("\n".join(md + [note]) + "\n")
    (out / "table.rst").write_text("\n".join(rst + [note]) + "\n")
    if args.table:
        args.table.write_text("\n".join(rst + [note]) + "\n")
    if metrics_all:
        xr.concat(metrics_all, dim="decoder", join="outer").to_netcdf(out / "metrics.nc")
    if by_dec:
        figure(by_dec, out / "perturbation_discard.png")
        if args.figure:
            figure(by_dec, args.figure)
    print("\n".join(md + [note]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
