"""Draw the benchmark figures of ``docs/benchmarks.rst`` from the JSON files that ``make bench`` writes.

    python bench/figures.py [--results bench/results] [--out docs/figures]

Each benchmark run with ``--json bench/results/<name>.json`` gets one figure,
``docs/figures/bench_<name>.png``: ours against the baseline measured in the same run, as time per
unit of work (lower is faster), with the ratio written on it, and a caption with the date, the
CPUs, whether the machine was idle, and the torch threads. A missing JSON file skips that
figure with a message. Each figure function takes a matplotlib ``ax`` and returns it.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import textwrap

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
OURS, BASE = "#1f77b4", "#bbbbbb"


def _pairs(ax, groups, ours, base, ours_label, base_label, ylabel, ratios, xlabel, log=None):
    """Grouped bars ours vs baseline per group, the ratio (baseline / ours) written above each pair.

    ``log=None``: a log scale only where the bars span more than a factor 100 (e.g. every decoder family).
    """
    x = np.arange(len(groups))
    vals = np.asarray([*ours, *base], float)
    if log is None:
        log = bool(np.nanmax(vals) > 100 * np.nanmin(vals[vals > 0]))
    w = 0.38
    ax.bar(x - w / 2, ours, w, color=OURS, label=ours_label)
    ax.bar(x + w / 2, base, w, color=BASE, label=base_label)
    if log:
        ax.set_yscale("log")
    top = np.maximum(np.asarray(ours, float), np.asarray(base, float))
    for xi, t, r in zip(x, top, ratios):
        ax.annotate(f"{r:.0f}×" if r >= 100 else f"{r:.2f}×", (xi, t), xytext=(0, 3), textcoords="offset points", ha="center", va="bottom",
                    fontsize=9, fontweight="bold")
    ax.set_xticks(x, groups)
    ax.set_xlim(-0.75, len(groups) - 0.25)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi * (8 if log else 1.35))  # room for the ratios and the legend above the bars
    ax.legend(fontsize=8, frameon=False, loc="upper center", ncol=2)
    return ax


def train_throughput(ax, data):
    """Training time per 1,000 trials, ours vs the neurogym-style loop, per batch size."""
    rows = data["rows"]
    _pairs(ax, [str(r["batch_size"]) for r in rows], [1e3 / r["ours_trials_per_s"] for r in rows],
           [1e3 / r["reference_trials_per_s"] for r in rows], "decisionnets training loop",
           "per-trial generation + torch.nn.RNN", "seconds per 1,000 training trials",
           [r["ratio"] for r in rows], "batch size")
    title = f"Training throughput, leaky RNN of {data.get('hidden', '?')} units (ratio = speed-up)"
    if data.get("recording"):
        title += f"\nrecording one epoch: {100 * data['recording']['fraction_of_epoch']:.1f} % of a training epoch"
    ax.set_title(title, fontsize=10)
    return ax


def decode_speed(ax, data):
    """Decoding time per problem, batched vs the per-problem reference loop, per decoder family."""
    rows = data["rows"]
    _pairs(ax, [r["family"] for r in rows], [r["ours_ms"] for r in rows], [r["reference_ms"] for r in rows],
           "batched estimator", "per-problem reference loop", "wall ms per decoding problem",
           [r["ratio_wall"] for r in rows], "decoder family")
    ax.set_title(f"Decoding, synthetic population ({data.get('trials', '?')} trials × {data.get('units', '?')} units)",
                 fontsize=10)
    return ax


def decode_real_layers(ax, data):
    """Decoding time per problem on recorded trained layers, ``linear`` vs scikit-learn, per layer."""
    rows = data["rows"]
    _pairs(ax, [r["source"].replace("_", "\n", 1) for r in rows], [r["ms"] for r in rows],
           [r["sk_ms"] for r in rows], "batched linear estimator", "scikit-learn LogisticRegressionCV loop",
           "wall ms per decoding problem", [r["sk_ms"] / r["ms"] for r in rows], "recorded layer")
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(f"Decoding trained layers (all: {data['ratios']['all']:.2f}× faster)", fontsize=10)
    return ax


def ensemble_sweep(ax, data):
    """Wall time of a 20-run sweep trained as ensembles vs as solo runs, per batch-size group and in all."""
    rows = data["rows"]
    groups = [f"batch {r['batch_size']}\n({r['runs']} runs)" for r in rows] + ["all"]
    _pairs(ax, groups, [r["ensemble_s"] for r in rows] + [data["ensemble_s"]],
           [r["solo_s"] for r in rows] + [data["solo_s"]], "ensembles", "solo runs, one after another",
           "wall seconds", [r["ratio"] for r in rows] + [data["ratios"]["all"]], "batch-size group")
    net = data.get("args", {}).get("net", "fc")
    ax.set_title(f"Sweep of {data.get('runs', 20)} {net.upper()} runs, {data.get('args', {}).get('epochs', '?')} "
                 "epoch(s), trained as ensembles vs solo", fontsize=10)
    return ax


def under_load(ax, data):
    """Wall time of the demo's training alone and beside busy processes (the ratio to alone on each bar)."""
    runs = data["runs"]
    alone = runs[0]["wall_s"]
    x = np.arange(len(runs))
    ax.bar(x, [r["wall_s"] for r in runs], 0.6, color=[OURS] + [BASE] * (len(runs) - 1))
    for xi, r in zip(x, runs):
        ax.annotate(f"{r['wall_s'] / alone:.2f}×", (xi, r["wall_s"]), xytext=(0, 3), textcoords="offset points",
                    ha="center", va="bottom", fontsize=9, fontweight="bold")
    ax.set_xticks(x, [f"{r['run']}\n({r['threads']} thread{'s' if r['threads'] != 1 else ''})"
                      .replace(", torch default threads", ",\ntorch default") for r in runs])
    ax.tick_params(axis="x", labelsize=8)
    ax.set_xlabel(f"training run ({data.get('busy', 2)} busy processes started by the bench; "
                  f"fair share {data.get('fair_share', float('nan')):.2f}×)")
    ax.set_ylabel("wall seconds of one training")
    ax.set_ylim(0, max(r["wall_s"] for r in runs) * 1.2)
    ax.set_title("The demo's training alone vs under load (ratio to alone)", fontsize=10)
    return ax


FIGURES = {"train_throughput": train_throughput, "decode_speed": decode_speed,
           "decode_real_layers": decode_real_layers, "ensemble_sweep": ensemble_sweep, "under_load": under_load}


def caption(data) -> str:
    """One line: date, CPUs, whether the machine was idle, torch threads, the note.

    Idle: the 1-minute load average at start and at end, which counts the bench itself, stayed
    below 1.5 (about one busy process on two cores)."""
    loads = [la[0] for la in (data.get("load_start"), data.get("load_end")) if la]
    state = "idle?" if not loads else ("machine idle" if max(loads) < 1.5 else "machine not idle")
    line = (f"{data.get('date', '?')[:16].replace('T', ' ')} UTC · {data.get('cpu_count', '?')} CPUs · {state} · "
            + ("torch threads: each training's, under its bar" if isinstance(data.get("runs"), list)  # under_load: child processes
               else f"torch threads {data.get('torch_threads', '?')}"))
    return line + ("\n" + "\n".join(textwrap.wrap(data["note"], 120)) if data.get("note") else "")


def draw(name, data, out_dir):
    """Draw one benchmark's figure into ``out_dir/bench_<name>.png``; return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.9))
    FIGURES[name](ax, data)
    fig.text(0.01, 0.01, caption(data), fontsize=7, color="0.3", va="bottom")
    fig.tight_layout(rect=(0, 0.04 + 0.03 * caption(data).count("\n"), 1, 1))
    out = pathlib.Path(out_dir) / f"bench_{name}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv=None) -> list[pathlib.Path]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=str(ROOT / "bench" / "results"), help="folder of <name>.json files")
    ap.add_argument("--out", default=str(ROOT / "docs" / "figures"), help="folder of the bench_<name>.png files")
    args = ap.parse_args(argv)
    written = []
    for name in FIGURES:
        path = pathlib.Path(args.results) / f"{name}.json"
        if not path.is_file():
            print(f"skipped bench_{name}.png: no {path} (run bench/{name}.py --json {path})", file=sys.stderr)
            continue
        out = draw(name, json.loads(path.read_text()), args.out)
        print(f"wrote {out}")
        written.append(out)
    return written


if __name__ == "__main__":
    main()
