"""Figures of a sweep summary (:func:`decisionnets.sweep.summary.gather`).

Plot functions take an ``ax`` and return it; :func:`plot_summary` assembles them into figures
with matplotlib's object API (:class:`matplotlib.figure.Figure`, no pyplot, no backend switch)
and saves them. Nothing here knows the task: panels follow the summary's dims and variables.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from decisionnets.sweep.summary import ceiling as ceiling_of
from decisionnets.sweep.summary import first_variable, information, label, peak_final, regimes


def plot_information_vs_epoch(ax, summary, variable=None, regs=None, ceiling=True, x="epoch"):
    """Mean information over seeds vs epoch (or SGD step), one line per regime, band = +- s.d. over seeds.

    Parameters
    ----------
    ax : matplotlib Axes
    summary : xr.Dataset
        From :func:`~decisionnets.sweep.summary.gather`: ``information`` (*grid dims, seed,
        [layer,] [decoder,] variable, epoch; the first layer and decoder are drawn), ``step``.
    variable : str, optional
        Default: the first label the task declares among the summary's variables
        (:func:`~decisionnets.sweep.summary.first_variable`).
    regs : list of dict, optional
        Regimes to draw (default: every one).
    ceiling : bool
        Draw the ideal observer's information about ``variable`` as a dashed line (when the task
        declares it: the summary's ``ceiling``).
    x : {"epoch", "step"}
        Horizontal axis: training epoch or SGD steps taken (mean over seeds), both on a log scale.

    Returns
    -------
    ax
    """
    if x not in ("epoch", "step"):
        raise ValueError(f"x must be 'epoch' or 'step'; got {x!r}")
    if x == "step" and "step" not in summary:
        raise ValueError("this summary has no 'step' variable (gathered before steps were recorded)")
    variable = variable or first_variable(summary)
    info = information(summary, variable)
    regs = regimes(summary) if regs is None else regs
    epochs = summary["epoch"].values
    for reg in regs:
        y = info.sel(reg)
        m, s = y.mean("seed").values, y.std("seed").values
        xs = np.maximum(epochs, 0.5) if x == "epoch" else np.maximum(summary["step"].sel(reg).mean("seed").values, 1)
        ok = np.isfinite(m) & np.isfinite(xs)  # epochs recorded by these runs (others may record other epochs)
        line, = ax.plot(xs[ok], m[ok], marker=".", label=label(reg))
        ax.fill_between(xs[ok], (m - s)[ok], (m + s)[ok], color=line.get_color(), alpha=0.2, lw=0)
    if ceiling and regs:
        c = ceiling_of(summary, regs[0], variable)
        if np.isfinite(c):
            ax.axhline(c, color="k", ls="--", lw=0.8, label="Bayes ceiling")
    ax.set_xscale("log")
    ax.set_xlabel("epoch (0 plotted at 0.5)" if x == "epoch" else "SGD steps (0 plotted at 1)")
    ax.set_ylabel(f"{variable} information (bits)")
    return ax


def plot_final_vs(ax, summary, x_dim, line_dim=None, variable=None, which="final", fixed=None):
    """Final (or peak) information about ``variable`` vs ``x_dim``, one line per ``line_dim`` value.

    Error bars: s.d. over seeds. ``fixed``: {dim: value} restricting the regimes drawn.
    ``variable``: default the summary's first (:func:`~decisionnets.sweep.summary.first_variable`).
    """
    variable = variable or first_variable(summary)
    stats = peak_final(summary, variable)
    fixed = fixed or {}
    lines = summary[line_dim].values.tolist() if line_dim else [None]
    for lv in lines:
        xs, ms, ss = [], [], []
        for st in stats:
            reg = st["regime"]
            if st["n"] == 0 or (line_dim and reg[line_dim] != lv) or any(reg.get(k) != v for k, v in fixed.items()):
                continue
            xs.append(reg[x_dim])
            ms.append(st[f"{which}_mean"])
            ss.append(st[f"{which}_sd"])
        if xs:
            o = np.argsort(xs)
            ax.errorbar(np.asarray(xs)[o], np.asarray(ms)[o], yerr=np.asarray(ss)[o], marker="o", capsize=3,
                        label=f"{line_dim}={lv}" if line_dim else None)
    ax.set_xlabel(x_dim)
    ax.set_ylabel(f"{which} {variable} information (bits)")
    return ax


def _save(fig, path: Path) -> Path:
    from decisionnets.io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    return path


def plot_summary(summary, fig_dir, max_variables: int = 3) -> list[Path]:
    """The sweep's figures into ``fig_dir``; returns their paths.

    - ``information_vs_epoch.png`` and ``information_vs_step.png``: one column per variable (the
      first ``max_variables``), one row per value of the first text-valued dim (e.g. ``net``),
      one line per regime;
    - ``<variable>_vs_<dim>.png`` for each numeric parameter dim (e.g. ``lr``, ``batch_size``,
      ``k``): peak and final information about the first variable
      (:func:`~decisionnets.sweep.summary.first_variable`: the task's first declared label) vs that dim, one line per
      value of the next numeric dim, one row per value of the text-valued dim.
    """
    from matplotlib.figure import Figure

    if "information" not in summary:
        return []
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    dims = [d for d in summary["status"].dims if d != "seed"]
    first = first_variable(summary)  # the task's first declared label leads
    variables = [first] + [str(v) for v in summary["variable"].values if str(v) != first][:max_variables - 1]
    row_dim = next((d for d in dims if summary[d].dtype.kind in "OUS"), None)
    numeric = [d for d in dims if summary[d].dtype.kind in "iuf"]
    rows = summary[row_dim].values.tolist() if row_dim else [None]

    def where(rv):
        return f" ({row_dim}={rv})" if row_dim else ""

    for x in ("epoch", "step"):
        if x == "step" and "step" not in summary:
            continue
        fig = Figure(figsize=(5 * len(variables), 3.6 * len(rows)), layout="constrained")
        axes = fig.subplots(len(rows), len(variables), squeeze=False)
        for i, rv in enumerate(rows):
            sub = summary.sel({row_dim: rv}) if row_dim else summary
            for j, v in enumerate(variables):
                plot_information_vs_epoch(axes[i, j], sub, v, ceiling=True, x=x)
                axes[i, j].set_title(f"{v}{where(rv)}")
        axes[0, -1].legend(fontsize=7, loc="best")
        paths.append(_save(fig, fig_dir / f"information_vs_{x}.png"))
    for k, x_dim in enumerate(numeric):
        line_dim = next((d for d in numeric if d != x_dim), None)
        fig = Figure(figsize=(10, 3.4 * len(rows)), layout="constrained")
        axes = fig.subplots(len(rows), 2, squeeze=False)
        for i, rv in enumerate(rows):
            for j, which in enumerate(("peak", "final")):
                ax = plot_final_vs(axes[i, j], summary, x_dim, line_dim, variables[0], which,
                                   fixed={row_dim: rv} if row_dim else None)
                values = np.asarray(summary[x_dim].values, float)
                if (values > 0).all() and values.max() / values.min() >= 10:
                    ax.set_xscale("log")
                ax.set_title(f"{which} {variables[0]} information{where(rv)}")
        if line_dim:
            axes[0, 0].legend(fontsize=8)
        paths.append(_save(fig, fig_dir / f"{variables[0]}_vs_{x_dim}.png"))
    return paths
