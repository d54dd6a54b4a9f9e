"""The ICLR 2021 signatures from a `paper-signatures` sweep: tables and figures.

    python analysis/paper_signatures.py SWEEP_DIR [--out DIR] [--wd 0.01] [--figure-wd 0 0.01]

Reads ``SWEEP_DIR/summary.nc`` (written by ``decisionnets sweep paper-signatures``) with xarray
only and writes into ``--out`` (default ``SWEEP_DIR/signatures``):

- ``signatures.md``: one row per signature, one column per decoder family, mean +- s.d. over seeds;
- ``regimes.md``: every (regime, weight decay): color at epoch 0, peak, final, final / peak, the
  SGD step at which color first falls below half its peak, direction final, validation accuracy;
- ``color_vs_epoch.png`` and ``color_vs_step.png``: color and direction information vs epoch and
  vs SGD steps, one panel per weight decay (and decoder), one line per regime.

Per seed, a run's *peak* is its largest color information over the recorded epochs, its *final*
the value at its last recorded epoch, and its *fall step* the first recorded step after the peak
at which color is below half the peak (NaN when it never is, or when the run was decoded at fewer
than 3 epochs, e.g. an expensive decoder family at its first and last epoch only). Means and s.d. are over seeds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

PAPER = "lr0.05-b32"
MIN_PEAK = 0.05  # bits: below it a run carries no color to discard, and final / peak is noise
MIN_EPOCHS_FOR_FALL = 3  # decoded epochs a run needs for its fall step to mean something


def per_seed(info: xr.DataArray, step: xr.DataArray) -> dict[str, np.ndarray]:
    """Per-seed statistics of one regime's color (or any) information.

    Parameters
    ----------
    info : DataArray (seed, epoch)
        Bits; NaN at epochs the run did not record.
    step : DataArray (seed, epoch)
        SGD steps taken by each recorded epoch.

    Returns
    -------
    dict of arrays (seed,)
        ``init``, ``peak``, ``final``, ``ratio`` (final / peak), ``fall_step``.
    """
    v = info.transpose("seed", "epoch").values
    s = step.transpose("seed", "epoch").values
    out = {k: np.full(v.shape[0], np.nan) for k in ("init", "peak", "final", "ratio", "fall_step")}
    for i in range(v.shape[0]):
        ok = np.flatnonzero(np.isfinite(v[i]))
        if not len(ok):
            continue
        row, srow = v[i, ok], s[i, ok]
        p = int(np.argmax(row))
        out["init"][i], out["peak"][i], out["final"][i] = row[0], row[p], row[-1]
        out["ratio"][i] = row[-1] / row[p] if row[p] > MIN_PEAK else np.nan  # no ratio of noise
        below = np.flatnonzero(row[p:] < 0.5 * row[p])
        if len(ok) >= MIN_EPOCHS_FOR_FALL and row[p] > MIN_PEAK:  # a run decoded at its first and last epoch only has no fall step
            out["fall_step"][i] = srow[p + below[0]] if len(below) else np.nan
    return out


def _ms(x: np.ndarray, fmt: str = "{:.3f}") -> str:
    x = np.asarray(x, float)
    n = int(np.isfinite(x).sum())
    if n == 0:
        return "–"
    m, s = np.nanmean(x), (np.nanstd(x, ddof=1) if n > 1 else 0.0)
    txt = f"{fmt.format(m)} ± {fmt.format(s)}"
    return txt if n == len(x) else f"{txt} ({n}/{len(x)})"


def _sel(summary: xr.Dataset, decoder, **coords):
    ds = summary.sel(coords)
    if decoder is not None:
        ds = ds.sel(decoder=decoder)
    return ds


def stats(summary: xr.Dataset, decoder, regime: str, wd: float, variable: str = "color") -> dict:
    ds = _sel(summary, decoder, regime=regime, weight_decay=wd)
    return per_seed(ds["information"].sel(variable=variable), ds["step"])


def signature_rows(summary: xr.Dataset, decoder, wd: float) -> list[tuple[str, str]]:
    """(signature, value) pairs for one decoder family at weight decay ``wd``."""
    ceiling = float(summary["ceiling"].max())
    regs = [str(r) for r in summary["regime"].values]
    paper = stats(summary, decoder, PAPER, wd)
    d = stats(summary, decoder, PAPER, wd, "direction")
    rows = [("direction, final (bits; ceiling %.3f)" % ceiling, _ms(d["final"])),
            ("color: epoch 0 → peak → final (bits)",
             f"{_ms(paper['init'])} → {_ms(paper['peak'])} → {_ms(paper['final'])}"),
            ("color final / peak (≤ 0.25 = discarded)", _ms(paper["ratio"])),
            ("color falls below half its peak at step", _ms(paper["fall_step"], "{:.0f}"))]
    for wd0 in summary["weight_decay"].values:
        if float(wd0) != wd:
            o = stats(summary, decoder, PAPER, float(wd0))
            rows.append((f"… same regime, weight decay {float(wd0):g}: color final / peak", _ms(o["ratio"])))
    for r in ("lr0.005-b32", "lr0.05-b512", "lr0.005-b512"):
        if r in regs:
            o = stats(summary, decoder, r, wd)
            rows.append((f"low lr / large batch {r}: color final (bits)", _ms(o["final"])))
    for r, what in (("lr0.05-b512-steps", "matched steps (b512, 940 epochs)"),
                    ("lr0.8-b512", "matched lr × steps (lr 0.8, b512, 60 epochs)")):
        if r in regs:
            o = stats(summary, decoder, r, wd)
            rows.append((f"{what}: color final (bits)", _ms(o["final"])))
            rows.append((f"{what}: falls below half its peak at step", _ms(o["fall_step"], "{:.0f}")))
    if "color-pretrained" in regs:
        o = stats(summary, decoder, "color-pretrained", wd)
        rows.append(("color-pretrained init: color epoch 0 → final (bits)", f"{_ms(o['init'])} → {_ms(o['final'])}"))
    if "gain0.1" in regs:
        o = stats(summary, decoder, "gain0.1", wd)
        rows.append(("init gain 0.1: color epoch 0 → peak → final (bits)",
                     f"{_ms(o['init'])} → {_ms(o['peak'])} → {_ms(o['final'])}"))
    return rows


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def figure(summary: xr.Dataset, decoders, x: str, path: Path, wds=None) -> Path:
    """Color (solid) and direction (dashed) vs epoch or step; rows: decoders, columns: weight decay.

    A series decoded at fewer than ``MIN_EPOCHS_FOR_FALL`` epochs (an expensive family at its first
    and last epoch) is drawn as markers only: no line is invented between them.
    """
    wds = [float(w) for w in summary["weight_decay"].values] if wds is None else [float(w) for w in wds]
    regs = [str(r) for r in summary["regime"].values]
    fig = Figure(figsize=(4.2 * len(wds), 3.2 * len(decoders)), layout="constrained")
    axes = fig.subplots(len(decoders), len(wds), squeeze=False, sharey=True)
    for i, dec in enumerate(decoders):
        for j, wd in enumerate(wds):
            ax = axes[i, j]
            for k, r in enumerate(regs):
                ds = _sel(summary, dec, regime=r, weight_decay=wd)
                for var, ls in (("color", "-"), ("direction", "--")):
                    y = ds["information"].sel(variable=var)
                    m = y.mean("seed").values
                    xs = ds["step"].mean("seed").values if x == "step" else ds["epoch"].values.astype(float)
                    xs = np.maximum(xs, 1 if x == "step" else 0.5)
                    ok = np.isfinite(m) & np.isfinite(xs)
                    sparse = ok.sum() < MIN_EPOCHS_FOR_FALL
                    ax.plot(xs[ok], m[ok], ls="none" if sparse else ls, color=f"C{k}", lw=1.2,
                            marker=("o" if var == "color" else "x") if sparse else None, ms=4,
                            label=r if var == "color" else None)
            ax.set_xscale("log")
            ax.set_ylim(-0.05, max(0.8, float(summary["ceiling"].max()) + 0.1))
            ax.set_xlabel("SGD steps (0 at 1)" if x == "step" else "epoch (0 at 0.5)")
            ax.set_ylabel("usable information (bits)")
            ax.set_title(f"weight decay {wd:g}" + (f", decoder {dec}" if dec is not None else ""), fontsize=9)
            if j == 0 and dec is not None and (ds["information"].notnull().sum("epoch") < MIN_EPOCHS_FOR_FALL).all():
                ax.text(0.02, 0.02, "first and last epoch only", transform=ax.transAxes, fontsize=7)
    axes[0, -1].legend(fontsize=6, loc="lower left", title="color (solid), direction (dashed)", title_fontsize=6)
    fig.savefig(path, dpi=100)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Signature tables and figures from a paper-signatures sweep.")
    ap.add_argument("sweep_dir", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--wd", type=float, default=0.01, help="weight decay of the signature table (default 0.01)")
    ap.add_argument("--figure-wd", type=float, nargs="+", help="weight decays drawn in the figures (default: all)")
    args = ap.parse_args(argv)
    path = args.sweep_dir / "summary.nc"
    if not path.is_file():
        sys.exit(f"error: no summary.nc in {args.sweep_dir} (run `decisionnets sweep paper-signatures` first)")
    summary = xr.load_dataset(path)
    if "regime" not in summary.dims or "weight_decay" not in summary.dims or "step" not in summary:
        sys.exit(f"error: {path} is not a paper-signatures summary (needs regime, weight_decay dims and step)")
    out = args.out or args.sweep_dir / "signatures"
    out.mkdir(parents=True, exist_ok=True)
    decoders = [str(d) for d in summary["decoder"].values] if "decoder" in summary.dims else [None]
    names = [d or str(summary.attrs.get("decoder", "decoder")) for d in decoders]
    cols = [signature_rows(summary, d, args.wd) for d in decoders]
    rows = [[label] + [c[i][1] for c in cols] for i, (label, _) in enumerate(cols[0])]
    sig = markdown_table([f"signature (weight decay {args.wd:g}, n = {summary.sizes['seed']} seeds)", *names], rows)
    (out / "signatures.md").write_text(sig + "\n")
    reg_rows = []
    for d, name in zip(decoders, names):
        for r in summary["regime"].values:
            for wd in summary["weight_decay"].values:
                c = stats(summary, d, str(r), float(wd))
                dr = stats(summary, d, str(r), float(wd), "direction")
                acc = _sel(summary, d, regime=r, weight_decay=wd)["final_val_accuracy"].values
                reg_rows.append([name, str(r), f"{float(wd):g}", _ms(c["init"]), _ms(c["peak"]), _ms(c["final"]),
                                 _ms(c["ratio"]), _ms(c["fall_step"], "{:.0f}"), _ms(dr["final"]), _ms(acc, "{:.3f}")])
    reg = markdown_table(["decoder", "regime", "wd", "color epoch 0", "color peak", "color final", "final / peak",
                          "fall step", "direction final", "val. accuracy"], reg_rows)
    (out / "regimes.md").write_text(reg + "\n")
    figure(summary, decoders, "epoch", out / "color_vs_epoch.png", args.figure_wd)
    figure(summary, decoders, "step", out / "color_vs_step.png", args.figure_wd)
    print(sig)
    print(f"\nwrote {out}/signatures.md, regimes.md, color_vs_epoch.png, color_vs_step.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
