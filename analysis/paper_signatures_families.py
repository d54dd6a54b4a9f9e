"""Decode a `paper-signatures` sweep with several decoder families, each at the epochs it can afford.

    python analysis/paper_signatures_families.py SWEEP_DIR [--plan core|timecourse|mlp|rest ...]
                                                 [--merge] [--device cpu|cuda]

The SGD-trained families (``sgd-linear``, ``sgd-mlp``: 3,000 full-batch iterations per fit) and
``mlp`` cost 10-100x more per decoding problem than ``linear`` on a CPU, so decoding every family
at every recorded epoch of the 120 runs (the sweep preset's own analysis) is hours of a GPU or
days of a 2-core machine. This script decodes *the problems the signature table needs* instead,
in plans that can be run (and resumed) one after another:

``core``
    ``linear``, ``linear-raw``, ``sgd-linear``, ``sgd-mlp`` at the first and last recorded epoch of
    every run of the signature rows (weight decay 1e-2, every regime; weight decay 0, the paper's
    regime and the matched-steps control): color, and direction where a row reports it.
``timecourse``
    ``linear`` and ``linear-raw``: color at every 3rd recorded epoch of the paper's regime and the
    matched-steps control at weight decay 1e-2: when the fall happens.
``mlp``
    ``mlp`` (one hidden layer, nested CV): the ``core`` problems of the paper's regime (weight decay 1e-2 and 0)
    and the color-pretrained start.
``rest``
    ``linear`` and ``linear-raw`` at the first and last epoch of the other runs (weight decay 0 and
    5e-4), color and direction.

Each (run, decoder, plan) result is cached as ``SWEEP_DIR/families/RUN__DECODER__PLAN.nc`` (the
output of :func:`decisionnets.decoding.decoding_scores`, dims (variable, epoch)); a cached problem
is not decoded again. ``--merge`` writes every run's ``information.nc`` with a ``decoder`` dim
(NaN where a family was not decoded at that epoch or variable; the sweep's own analysis file is
kept as ``information_sweep.nc``), rebuilds ``summary.nc`` with :func:`decisionnets.sweep.gather`,
and ``analysis/paper_signatures.py SWEEP_DIR`` then draws the signature table per family.

The SGD families use the authors' split (``split="holdout"``: one stratified 25 % train / 75 %
test split, one fit per problem), the logistic and ``mlp`` families the package's 5-fold nested CV.
All families see the same probe trials (the sweep's shared ``record.probe_seed``) and fold seed 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

SIG_WD = 0.01
SGD = ("sgd-linear", "sgd-mlp")


def _runs(sweep_dir: Path) -> list[dict]:
    meta = json.loads((sweep_dir / "sweep.json").read_text())
    return meta["runs"]


def _is_sig(c: dict) -> bool:
    wd = float(c["weight_decay"])
    return wd == SIG_WD or (wd == 0.0 and c["regime"] in ("lr0.05-b32", "lr0.05-b512-steps"))


def tasks(sweep_dir: Path, plan: str) -> list[tuple[str, str, str, str, list[str]]]:
    """(run_id, decoder, plan, epochs ("ends" or "everyK": every K-th recorded), variables) for one plan."""
    out = []
    for r in _runs(sweep_dir):
        c, rid = r["coords"], r["run_id"]
        sig = _is_sig(c)
        direction = c["regime"] in ("lr0.05-b32", "lr0.05-b512-steps", "gain0.1")
        vars_ = ["color", "direction"] if direction else ["color"]
        if plan == "core" and sig:
            out += [(rid, d, plan, "ends", vars_) for d in ("linear", "linear-raw", *SGD)]
        elif plan == "timecourse" and float(c["weight_decay"]) == SIG_WD and c["regime"] in ("lr0.05-b32",
                                                                                              "lr0.05-b512-steps"):
            out += [(rid, d, plan, "every3", ["color"]) for d in ("linear", "linear-raw")]
        elif plan == "mlp" and sig and c["regime"] in ("lr0.05-b32", "color-pretrained"):
            out.append((rid, "mlp", plan, "ends", vars_))
        elif plan == "rest" and not sig:
            out += [(rid, d, plan, "ends", ["color", "direction"]) for d in ("linear", "linear-raw")]
    return out


def decode(sweep_dir: Path, run_id: str, decoder: str, epochs: str, variables: list[str], device: str) -> xr.Dataset:
    """``decoding_scores`` of the run's recorded ``hidden`` layer, dims (variable, epoch)."""
    import decisionnets as dn

    ds = dn.open_activations(sweep_dir / "runs" / run_id)
    act = ds["hidden"]
    n = act.sizes["epoch"]
    idx = [0, n - 1] if epochs == "ends" else sorted({*range(0, n, int(epochs[len("every"):])), n - 1})
    act = act.isel(epoch=idx).load()
    labels = {v: ds[v].load() for v in variables}
    kw = {"split": "holdout", "train_fraction": 0.25} if decoder in SGD else {}
    out = dn.decoding_scores(act, labels, feature_dim="unit", decoder=decoder, folds=5, seed=0, device=device,
                          dtype="float32" if decoder in SGD or decoder == "mlp" else "float64", **kw)
    ds.close()
    out = out.drop_vars([c for c in out.coords if c not in out.dims], errors="ignore")
    keep = [v for v in ("information", "information_sd", "decoding_accuracy", "converged") if v in out]
    out = out[keep]
    out["converged"] = out["converged"].astype("int8")
    if "variable" not in out.dims:
        out = out.expand_dims(variable=variables)
    return out


def merge(sweep_dir: Path) -> None:
    """Every run's cached results -> its information.nc (decoder dim), then summary.nc."""
    import decisionnets as dn
    from decisionnets.sweep import gather

    cache = sweep_dir / "families"
    order = ["linear", "linear-raw", "mlp", "sgd-linear", "sgd-mlp"]
    for r in _runs(sweep_dir):
        rid = r["run_id"]
        files = sorted(cache.glob(f"{rid}__*.nc"))
        if not files:
            continue
        by_dec: dict[str, list[xr.Dataset]] = {}
        plans = ["core", "mlp", "timecourse", "rest"]
        for f in sorted(files, key=lambda f: plans.index(f.stem.split("__")[2])):
            by_dec.setdefault(f.name.split("__")[1], []).append(xr.load_dataset(f))
        parts, names = [], []
        for d in [d for d in order if d in by_dec]:
            merged = by_dec[d][0]
            for more in by_dec[d][1:]:  # an epoch decoded by two plans: the earlier plan's number is kept
                a, b = xr.align(merged["information"], more["information"], join="inner")
                gap = float(np.nanmax(np.abs(a.values - b.values), initial=0.0))
                if gap > 1e-3:
                    print(f"warning: {rid} {d}: plans differ by {gap:.4f} bits at a shared epoch", file=sys.stderr)
                merged = merged.combine_first(more)
            parts.append(merged)
            names.append(d)
        info = xr.concat(parts, dim="decoder", join="outer").assign_coords(decoder=names)
        info.attrs.update(layer="hidden", analysis="analysis/paper_signatures_families.py",
                          note="NaN where a decoder family was not decoded at that epoch or variable; "
                               "sgd-* families: one 25 % train / 75 % test split")
        run_dir = sweep_dir / "runs" / rid
        old, keep = run_dir / "information.nc", run_dir / "information_sweep.nc"
        if old.is_file() and not keep.is_file():
            old.rename(keep)
        with dn.atomic_path(old) as tmp:
            info.to_netcdf(tmp, engine="netcdf4")
    summary = gather(sweep_dir)
    with dn.atomic_path(sweep_dir / "summary.nc") as tmp:
        summary.to_netcdf(tmp, engine="netcdf4")
    print(f"wrote {sweep_dir}/runs/*/information.nc and {sweep_dir}/summary.nc "
          f"(decoders {list(summary['decoder'].values) if 'decoder' in summary.dims else '-'})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sweep_dir", type=Path)
    ap.add_argument("--plan", nargs="*", default=[], choices=("core", "timecourse", "mlp", "rest"))
    ap.add_argument("--merge", action="store_true", help="write information.nc per run and summary.nc")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = ap.parse_args(argv)
    import torch
    from tqdm import tqdm

    torch.set_num_threads(1)
    cache = args.sweep_dir / "families"
    cache.mkdir(exist_ok=True)
    for plan in args.plan:
        todo = [t for t in tasks(args.sweep_dir, plan) if not (cache / f"{t[0]}__{t[1]}__{t[2]}.nc").is_file()]
        rank = ["linear", "linear-raw", "mlp", "sgd-linear", "sgd-mlp"]
        todo.sort(key=lambda t: rank.index(t[1]))  # the cheap families first: a cut-short plan is still usable
        for rid, dec, pl, ep, vars_ in tqdm(todo, desc=f"plan {plan}", mininterval=10):
            t0 = time.time()
            out = decode(args.sweep_dir, rid, dec, ep, vars_, args.device)
            out.attrs["seconds"] = time.time() - t0
            tmp = cache / f".{rid}__{dec}__{pl}.nc.tmp"
            out.to_netcdf(tmp, engine="netcdf4")
            tmp.rename(cache / f"{rid}__{dec}__{pl}.nc")
            tqdm.write(f"{rid} {dec} {ep}: {np.round(out['information'].values, 3).tolist()} "
                       f"({time.time() - t0:.0f} s)")
    if args.merge:
        merge(args.sweep_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
