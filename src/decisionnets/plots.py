"""Figures over saved xarray objects: the end of the data flow (analyses -> **figures**).

Two layers: ``plot_*`` functions take a matplotlib ``ax``, draw one thing and return the ax;
``figure_*`` functions and :func:`run_figures` assemble them into the standard figures of an
analysed run and return :class:`matplotlib.figure.Figure` objects (no pyplot, no backend
switching). Nothing here computes information or saves files: compute with
:mod:`decisionnets.analyses`, draw here, save in the caller (:mod:`decisionnets.report`).
A label variable's colour is the one its task declares (dataset attr ``label_colors``), else the
colour of its place in the task's ``decode_labels`` in :data:`LABEL_PALETTE` (:func:`label_colors`);
the network's ``choice`` is always :data:`CHOICE_COLOR`. So a new env's labels need nothing here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

__all__ = [
    "run_title",
    "plot_information_vs_epoch",
    "plot_information_vs_time",
    "plot_learning_curve",
    "plot_psychometric",
    "plot_cross_temporal",
    "plot_area_information",
    "run_figures",
    "demo_figure",
    "label_colors",
    "LABEL_PALETTE",
    "CHOICE_COLOR",
]

#: The colours of a task's labels, in the order it declares them (``decode_labels``), when it
#: declares no ``label_colors`` of its own; labels it does not declare take the colours after them.
LABEL_PALETTE = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:brown", "tab:pink", "tab:olive",
                 "tab:cyan", "tab:gray")
#: The colour of the network's ``choice`` (every task's).
CHOICE_COLOR = "tab:purple"


def _json_attr(attrs: Mapping[str, Any], name: str, kind: type):
    """A JSON attr (a task's declaration) decoded, or ``kind()`` when absent or not of that kind."""
    try:
        value = json.loads(attrs.get(name, ""))
    except (TypeError, ValueError):
        return kind()
    return value if isinstance(value, kind) else kind()


def label_colors(attrs: Mapping[str, Any], names: Sequence[str] = ()) -> dict[str, str]:
    """The colour of each label variable of a run, from what its task declared.

    Parameters
    ----------
    attrs : mapping
        A dataset's attrs (activations or ``information.nc``): ``label_colors`` (JSON
        ``{label: colour}``, the task's own, optional) and ``decode_labels`` (JSON list).
    names : sequence of str
        Further variables to colour (e.g. those of an ``information`` array): each one not
        declared takes the next colour of :data:`LABEL_PALETTE`.

    Returns
    -------
    dict of str to str
        ``{variable: matplotlib colour}``: the declared colours; else the colour of the label's
        place in ``decode_labels``; ``choice``: :data:`CHOICE_COLOR`.
    """
    order = [str(v) for v in _json_attr(attrs, "decode_labels", list)]
    out = {name: LABEL_PALETTE[i % len(LABEL_PALETTE)] for i, name in enumerate(order)}
    out.update({str(k): str(v) for k, v in _json_attr(attrs, "label_colors", dict).items()})
    out.setdefault("choice", CHOICE_COLOR)
    k = len(order)
    for name in map(str, names):
        if name not in out:
            out[name] = LABEL_PALETTE[k % len(LABEL_PALETTE)]
            k += 1
    return out


def _config(attrs: Mapping[str, Any]) -> dict:
    cfg = attrs.get("config", {})
    if isinstance(cfg, (bytes, str)):
        try:
            cfg = json.loads(cfg)
        except (ValueError, TypeError):
            cfg = {}
    return cfg if isinstance(cfg, dict) else {}


def run_title(attrs: Mapping[str, Any]) -> str:
    """One-line title "task | lr=... | batch=..." from a run's attrs (tolerant of missing keys)."""
    cfg = _config(attrs)
    train = cfg.get("train", {}) if isinstance(cfg.get("train", {}), dict) else {}
    parts = [str(attrs.get("task", cfg.get("task", "run")))]
    if "lr" in train:
        parts.append(f"lr={train['lr']:g}" if isinstance(train["lr"], (int, float)) else f"lr={train['lr']}")
    if "batch_size" in train:
        parts.append(f"batch={train['batch_size']}")
    if isinstance(train.get("weight_decay"), (int, float)) and train["weight_decay"] > 0:
        parts.append(f"wd={train['weight_decay']:g}")
    return " | ".join(parts)


def _time_period(info: xr.DataArray):
    """The period name of each time step (coord ``time_period`` or ``period`` on time), or None."""
    for name in ("time_period", "period"):
        if name in info.coords and info[name].dims == ("time",):
            return np.asarray(info[name].values).astype(str)
    return None


def _period_mean(info: xr.DataArray, period: str | None) -> xr.DataArray:
    """Mean over the time steps of ``period`` (or select it on a ``period`` dim); no-op if static."""
    if period is None:
        if "time" in info.dims:
            return info.mean("time")
        return info
    if "period" in info.dims:
        return info.sel(period=period)
    if "time" in info.dims:
        pc = _time_period(info)
        if pc is None:
            raise ValueError("information has no 'period' / 'time_period' coordinate on time; pass period=None")
        sel = info.isel(time=np.flatnonzero(pc == period))
        if sel.sizes.get("time", 0) == 0:
            raise ValueError(f"period {period!r} not found; periods are {sorted(set(pc.tolist()))}")
        return sel.mean("time")
    return info


def _period_any(flags: xr.DataArray, period: str | None) -> xr.DataArray:
    """Whether any time step of ``period`` (all of them if None) is flagged; ``flags`` nonzero = flagged."""
    f = flags != 0
    if "time" not in f.dims:
        return f.sel(period=period) if (period is not None and "period" in f.dims) else f
    if period is not None:
        pc = _time_period(f)
        if pc is not None:
            f = f.isel(time=np.flatnonzero(pc == period))
    return f.any("time")


def _mark_unreliable(ax, x, y, bad, color) -> None:
    """Hollow markers over the flagged points; a hollow ``x`` at 0 where the estimate is NaN."""
    x, y, bad = np.asarray(x), np.asarray(y, dtype=float), np.broadcast_to(np.asarray(bad, bool), np.shape(y))
    hollow = bad & np.isfinite(y)
    if hollow.any():
        ax.plot(x[hollow], y[hollow], ls="none", marker="o", ms=6, mfc="white", mec=color, mew=1.2, zorder=3)
    missing = bad & ~np.isfinite(y)
    if missing.any():
        ax.plot(x[missing], np.zeros(int(missing.sum())), ls="none", marker="x", ms=5, color=color, alpha=0.6,
                zorder=3)


def _information_ylim(ax, values, min_top: float = 1.0) -> None:
    """Y range of an information plot: at least 0..``min_top`` bits (H(Y) of a binary label), so a
    flat ~0 line (e.g. 1e-8 bits of numerical noise before the stimulus) is drawn as flat, not on a
    1e-8 scale; widened to the data (and a little below 0 for negative estimates)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    lo = min(0.0, float(v.min())) if v.size else 0.0
    hi = max(float(min_top), float(v.max())) if v.size else float(min_top)
    pad = 0.05 * (hi - lo)
    ax.set_ylim(lo - pad, hi + pad)



def _epochs_to_draw(all_epochs, epochs=None, n: int = 5):
    """The epochs given, or up to ``n`` spread evenly over the recorded ones (first and last included)."""
    if epochs is not None:
        return list(epochs)
    idx = np.unique(np.linspace(0, len(all_epochs) - 1, min(n, len(all_epochs))).round().astype(int))
    return list(all_epochs[idx])


def _epoch_colors(k: int):
    """``k`` viridis colors from dark (early epochs) to light (late)."""
    from matplotlib import colormaps

    return [colormaps["viridis"](0.9 * i / max(k - 1, 1)) for i in range(k)]

def plot_information_vs_epoch(
    ax,
    info: xr.DataArray,
    *,
    period: str | None = None,
    variables: Sequence[str] | None = None,
    spread: xr.DataArray | None = None,
    title: str | None = None,
    label_prefix: str = "",
    min_top: float = 1.0,
    ceiling=None,
    unreliable: xr.DataArray | None = None,
    colors: Mapping[str, str] | None = None,
    **line_kw,
):
    """Usable information (bits) vs training epoch, one line per variable (the main figure).

    Parameters
    ----------
    ax : matplotlib Axes
    info : DataArray (variable, epoch[, time | period])
        Information in bits; with ``time`` it is averaged over the time steps of ``period``.
    period : str, optional
        Trial period to show ("stimulus", "decision"...); None: mean over all time.
    variables : list of str, optional
    spread : DataArray like ``info``, optional
        Drawn as a +-1 band (e.g. the fold s.d.).
    title : str, optional
    label_prefix : str
        Prefix for the legend entries (to overlay runs).
    min_top : float
        The y axis spans at least 0..min_top bits (default 1 = H of a balanced binary label).
    ceiling : DataArray (variable) or dict or float, optional
        The ideal observer's bits per variable (information.nc's ``ceiling``): a dashed
        horizontal line labelled "ceiling" per distinct value among the variables drawn.
    unreliable : DataArray like ``info`` (before the period mean), optional
        Nonzero where a problem's estimate is not to be trusted (``information.nc``'s
        ``unreliable``): those points are drawn hollow, and a NaN estimate as a hollow ``x`` at 0.
    colors : mapping of str to str, optional
        The colour of each variable (:func:`label_colors` of the run's attrs, as the figures of a
        run pass it); default: :data:`LABEL_PALETTE` in the order of ``info``'s variables
        (``choice``: :data:`CHOICE_COLOR`).
    """
    data = _period_mean(info, period)
    bad = _period_any(unreliable, period) if unreliable is not None else None
    sp = _period_mean(spread, period) if spread is not None else None
    names = list(data["variable"].values) if "variable" in data.dims else [data.name or "information"]
    colors = {**label_colors({}, [str(n) for n in names]), **(colors or {})}
    if variables is not None:
        names = [v for v in names if v in variables]
    shown = [data.sel(variable=v).values if "variable" in data.dims else data.values for v in names]
    _information_ylim(ax, np.concatenate([np.ravel(a) for a in shown]) if shown else [], min_top)
    for name in names:
        y = data.sel(variable=name) if "variable" in data.dims else data
        x = y["epoch"].values
        kw = {"color": colors[str(name)], "marker": "o", "ms": 3} | line_kw
        (line,) = ax.plot(x, y.values, label=f"{label_prefix}{name}", **kw)
        if bad is not None:
            b = bad.sel(variable=name) if "variable" in bad.dims else bad
            _mark_unreliable(ax, x, y.values, np.asarray(b.values, bool), line.get_color())
        if sp is not None:
            s = sp.sel(variable=name) if "variable" in sp.dims else sp
            ax.fill_between(x, y.values - s.values, y.values + s.values, color=line.get_color(), alpha=0.15, lw=0)
    draw_ceiling(ax, ceiling, names)
    ax.axhline(0, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("training epoch")
    ax.set_ylabel("usable information (bits)")
    where = f"{period} period" if period else "whole trial"
    ax.set_title(title if title is not None else f"information vs epoch ({where})")
    if names:
        ax.legend(frameon=False, fontsize="small")
    return ax


def plot_information_vs_time(
    ax,
    info: xr.DataArray,
    *,
    variable: str | None = None,
    epochs: Sequence[int] | None = None,
    title: str | None = None,
    shade_periods: bool = True,
    min_top: float = 1.0,
    ceiling=None,
    unreliable: xr.DataArray | None = None,
):
    """Usable information (bits) vs time within the trial, one line per epoch.

    Parameters
    ----------
    info : DataArray ([variable,] epoch, time), bits, with a ``time_period`` (or ``period``) coord
        on ``time`` for the period shading.
    variable : str, required when ``info`` has a ``variable`` dim.
    epochs : epochs to draw (default: up to 5 spread over the run).
    min_top : the y axis spans at least 0..min_top bits.
    ceiling : float, DataArray (variable) or dict, optional — the ideal observer's bits, drawn as
        a dashed line labelled "ceiling".
    unreliable : DataArray like ``info``, optional — nonzero: drawn hollow (NaN: a hollow ``x`` at 0).
    """
    if "variable" in info.dims:
        if variable is None:
            raise ValueError("pass variable=... (info has a 'variable' dim)")
        info = info.sel(variable=variable)
        if unreliable is not None and "variable" in unreliable.dims:
            unreliable = unreliable.sel(variable=variable)
    epochs = _epochs_to_draw(info["epoch"].values, epochs)
    t = info["time"].values
    for e, color in zip(epochs, _epoch_colors(len(epochs))):
        ax.plot(t, info.sel(epoch=e).values, color=color, label=f"epoch {int(e)}")
        if unreliable is not None:
            _mark_unreliable(ax, t, info.sel(epoch=e).values, unreliable.sel(epoch=e).values != 0, color)
    _information_ylim(ax, info.sel(epoch=list(epochs)).values, min_top)
    if shade_periods and _time_period(info) is not None:
        _shade_periods(ax, t, _time_period(info))
    draw_ceiling(ax, ceiling, [variable or info.name])
    ax.axhline(0, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("time in trial (ms)")
    ax.set_ylabel("usable information (bits)")
    ax.set_title(title if title is not None else f"{variable or info.name}: information vs time")
    ax.legend(frameon=False, fontsize="small")
    return ax


def draw_ceiling(ax, ceiling, variables=None):
    """Dashed horizontal line(s) at the ideal observer's information, labelled "ceiling".

    Parameters
    ----------
    ax : matplotlib Axes
    ceiling : float, dict {variable: bits}, DataArray (variable), or None (nothing drawn)
    variables : list of str, optional
        The variables drawn on ``ax``: one line per distinct finite ceiling among them.

    Returns
    -------
    list of float : the values drawn.
    """
    if ceiling is None:
        return []
    if isinstance(ceiling, xr.DataArray):
        ceiling = ({str(v): float(c) for v, c in zip(ceiling["variable"].values, ceiling.values)}
                   if "variable" in ceiling.dims else float(ceiling))
    if isinstance(ceiling, Mapping):
        by_value: dict = {}
        for v in (variables if variables is not None else list(ceiling)):
            c = ceiling.get(str(v))
            if c is not None and np.isfinite(c):
                by_value.setdefault(round(float(c), 6), []).append(str(v))
    else:
        by_value = {float(ceiling): []} if ceiling is not None and np.isfinite(ceiling) else {}
    for c, names in by_value.items():
        label = "ceiling" if len(by_value) == 1 or not names else f"ceiling ({', '.join(names)})"
        ax.axhline(c, color="0.25", lw=1.0, ls="--", label=label)
    if by_value:
        lo, hi = ax.get_ylim()
        top = max(by_value)
        if top > hi:
            ax.set_ylim(lo, top + 0.05 * (top - lo))
    return list(by_value)


def _shade_periods(ax, t, periods):
    periods = np.asarray(periods).astype(str)
    if len(t) == 0:
        return
    dt = np.diff(t).min() if len(t) > 1 else 1.0
    start = 0
    k = 0
    for i in range(1, len(t) + 1):
        if i == len(t) or periods[i] != periods[start]:
            lo, hi = t[start] - dt / 2, t[i - 1] + dt / 2
            if k % 2:
                ax.axvspan(lo, hi, color="0.93", zorder=0, lw=0)
            ax.text((lo + hi) / 2, 0.98, periods[start], transform=ax.get_xaxis_transform(), ha="center",
                    va="top", fontsize="x-small", color="0.4", rotation=90 if hi - lo < 0.12 * (t[-1] - t[0] + dt) else 0)
            start = i
            k += 1


def plot_learning_curve(ax, loss: xr.DataArray, accuracy: xr.DataArray | None = None, *, title: str | None = None):
    """Probe-set loss (left axis) and accuracy (right axis) vs epoch.

    Parameters
    ----------
    loss : DataArray (epoch)
    accuracy : DataArray (epoch), fraction correct, optional
    Returns the left Axes (the right one is ``ax.right_ax``).
    """
    e = loss["epoch"].values
    (l1,) = ax.plot(e, loss.values, color="k", marker="o", ms=3, label="probe loss")
    ax.set_xlabel("training epoch")
    ax.set_ylabel("probe loss (cross-entropy, nats)")
    handles = [l1]
    if accuracy is not None:
        ax2 = ax.twinx()
        (l2,) = ax2.plot(e, accuracy.values, color="tab:orange", marker="s", ms=3, label="probe accuracy")
        ax2.set_ylabel("probe accuracy (fraction correct)")
        ax2.set_ylim(0, 1.02)
        handles.append(l2)
        ax.right_ax = ax2
    ax.legend(handles=handles, labels=[h.get_label() for h in handles], frameon=False, fontsize="small", loc="center right")
    ax.set_title(title if title is not None else "learning curve")
    return ax


def plot_psychometric(ax, p_right: xr.DataArray, *, epochs: Sequence[int] | None = None, title: str | None = None):
    """P(choose right) vs the signed evidence toward the right choice, one line per epoch.

    Parameters
    ----------
    p_right : DataArray (epoch, evidence), fraction of right choices (e.g. the checkerboard's
        :func:`decisionnets.envs.color_direction_analyses.psychometric`); the x axis is labelled
        with the ``long_name`` of its ``evidence`` coord, which the analysis that made it declares.
    """
    epochs = _epochs_to_draw(p_right["epoch"].values, epochs)
    x = p_right["evidence"].values
    for e, color in zip(epochs, _epoch_colors(len(epochs))):
        ax.plot(x, p_right.sel(epoch=e).values, color=color, marker="o", ms=3, label=f"epoch {int(e)}")
    ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
    ax.axvline(0, color="0.6", lw=0.8, ls=":")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(str(p_right["evidence"].attrs.get("long_name", "evidence toward the right choice")))
    ax.set_ylabel("P(choice = right)")
    ax.set_title(title if title is not None else "psychometric curve")
    ax.legend(frameon=False, fontsize="small")
    return ax


def plot_cross_temporal(ax, matrix: xr.DataArray, *, title: str | None = None, colorbar: bool = True, vmax=None):
    """Cross-temporal generalization: information (bits) of a decoder trained at t, tested at t'.

    Parameters
    ----------
    matrix : DataArray (train_time, test_time), bits.
    """
    tr, te = matrix["train_time"].values, matrix["test_time"].values
    vals = np.asarray(matrix.values, dtype=float)
    # The scale is set by the positive values (at most a few bits). A decoder tested far from the
    # time it was trained at can be confidently wrong, i.e. many bits *below* zero; those cells are
    # clipped at -hi (the colorbar's arrow says so) rather than washing out the whole matrix.
    pos = vals[np.isfinite(vals) & (vals > 0)]
    hi = vmax if vmax is not None else max(float(pos.max()) if pos.size else 1.0, 0.1)

    def edges(v):
        v = np.asarray(v, dtype=float)
        if len(v) == 1:
            return np.array([v[0] - 0.5, v[0] + 0.5])
        mid = (v[1:] + v[:-1]) / 2
        return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])

    im = ax.pcolormesh(edges(te), edges(tr), vals, cmap="RdBu_r", vmin=-hi, vmax=hi, shading="flat")
    ax.set_xlabel("test time (ms)")
    ax.set_ylabel("train time (ms)")
    ax.set_aspect("equal")
    if colorbar:
        clipped = bool(np.nanmin(vals) < -hi) if np.isfinite(vals).any() else False
        ax.figure.colorbar(im, ax=ax, label="usable information (bits)", extend="min" if clipped else "neither")
    ax.set_title(title if title is not None else "cross-temporal generalization")
    return ax


def plot_area_information(ax, info: xr.DataArray, *, dim: str | None = None, ceiling: float | None = None,
                          title: str | None = None, min_top: float = 1.0):
    """Usable information (bits) vs training epoch, one line per area (or recorded layer).

    Parameters
    ----------
    ax : matplotlib Axes
    info : DataArray (area | layer, epoch[, seed])
        Information in bits of one variable, already reduced over time. With a ``seed`` dim the
        line is the mean over seeds and the band +-1 s.d. across seeds.
    dim : str, optional
        The area dim (default: ``area`` if present, else ``layer``).
    ceiling : float, optional
        Ideal-observer information (bits), drawn as a dashed line.
    title : str, optional
    min_top : float
        The y axis spans at least 0..min_top bits.
    """
    dim = dim or ("area" if "area" in info.dims else "layer")
    _information_ylim(ax, info.values, min_top)
    areas = [str(a) for a in info[dim].values]
    colors = _epoch_colors(len(areas))[::-1] if len(areas) > 1 else ["C0"]
    for color, a in zip(colors, areas):
        y = info.sel({dim: a})
        x = y["epoch"].values
        if "seed" in y.dims:
            m, sd = y.mean("seed"), y.std("seed")
            (line,) = ax.plot(x, m.values, marker="o", ms=3, color=color, label=a)
            ax.fill_between(x, (m - sd).values, (m + sd).values, color=line.get_color(), alpha=0.2, lw=0)
        else:
            ax.plot(x, y.values, marker="o", ms=3, color=color, label=a)
    if ceiling is not None:
        ax.axhline(ceiling, color="0.3", lw=0.9, ls="--", label="ideal observer")
    ax.axhline(0, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("training epoch")
    ax.set_ylabel("usable information (bits)")
    ax.set_title(title if title is not None else "information by area")
    ax.legend(frameon=False, fontsize="small")
    return ax


# ------------------------------------------------------------------------- figures of a run
# Figure assembly: each function below lays out one figure of an analysed run (an information.nc
# dataset, :mod:`decisionnets.report`) from the ax-level functions above and returns it unsaved.


def _new_figure(ncols: int = 1, nrows: int = 1, *, width: float = 4.2, height: float = 3.4):
    """A constrained-layout Figure (no pyplot state, no backend switching) and its axes grid (rows, cols)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _periods(info: xr.Dataset) -> list[str | None]:
    """The task periods of ``period_information`` in trial order ([None] without periods)."""
    if "period_information" in info:
        order = []
        for p in info["time_period"].values.astype(str) if "time_period" in info.coords else []:
            if p not in order:
                order.append(p)
        pv = [str(p) for p in info["period_information"]["period"].values]
        return [p for p in order if p in pv] or pv
    return [None]


def _first_decoder(li: xr.Dataset) -> xr.Dataset:
    return li.isel(decoder=0) if "decoder" in li["information"].dims else li


def figure_information_vs_epoch(li: xr.Dataset, title: str):
    """One layer's information vs epoch: a panel per task period, a row per decoder family.

    ``li``: an information.nc dataset at one layer (``information`` ([decoder,] variable, epoch[, time])).
    """
    periods = _periods(li)
    decs = [str(x) for x in li["decoder"].values] if "decoder" in li["information"].dims else [None]
    colors = label_colors(li.attrs, [str(v) for v in li["variable"].values])
    fig, grid = _new_figure(len(periods), len(decs))
    for row, dec in zip(grid, decs):
        lid = li.sel(decoder=dec) if dec is not None else li
        for ax, per in zip(row, periods):
            src = lid["period_information"] if per is not None else lid["information"]
            # tasks without time: the band is the s.d. of the information across folds
            spread = lid["information_sd"] if (per is None and "time" not in lid["information"].dims) else None
            what = f"{per} period" if per else "usable information vs epoch"
            flags = lid["unreliable"] if "unreliable" in lid else None
            plot_information_vs_epoch(ax, src, period=per, spread=spread, unreliable=flags, colors=colors,
                                      ceiling=li["ceiling"] if "ceiling" in li else None,
                                      title=f"{dec}: {what}" if dec is not None else what)
            if flags is not None and bool((flags != 0).any()):
                ax.text(0.01, 0.01, "hollow: unreliable; x: no estimate (NaN)", transform=ax.transAxes,
                        fontsize="x-small", color="0.4", va="bottom")
    fig.suptitle(title)
    return fig


def figure_information_vs_time(li: xr.Dataset, title: str):
    """One layer's information vs time in the trial, a panel per variable (first decoder)."""
    li = _first_decoder(li)
    names = [str(v) for v in li["variable"].values]
    fig, axes = _new_figure(len(names))
    for ax, name in zip(axes[0], names):
        plot_information_vs_time(ax, li["information"], variable=name, title=name,
                                 ceiling=li["ceiling"] if "ceiling" in li else None,
                                 unreliable=li["unreliable"] if "unreliable" in li else None)
    fig.suptitle(f"{title}: information vs time in trial")
    return fig


def figure_cross_temporal(li: xr.Dataset, title: str):
    """One layer's cross-temporal matrices, a panel per variable, on one color scale."""
    ct = _first_decoder(li)["cross_temporal"]
    names = [str(v) for v in ct["variable"].values]
    fig, axes = _new_figure(len(names), width=4.0, height=3.6)
    axes = axes[0]
    # one scale for all panels, set by the positive values; confidently wrong cells (many bits
    # below 0 far from the training time) are clipped, as plot_cross_temporal explains
    vals = ct.values
    vmax = float(np.nanmax(vals)) if np.isfinite(vals).any() else 1.0
    for ax, name in zip(axes, names):
        plot_cross_temporal(ax, ct.sel(variable=name), title=name, vmax=max(vmax, 0.1), colorbar=ax is axes[-1])
    fig.suptitle(f"{title}: cross-temporal generalization, epoch {ct.attrs.get('epoch', '')}")
    return fig


def _error_stimulus(li: xr.Dataset) -> list[str]:
    """The labels ``error_information`` holds besides ``choice`` (the stimulus the choice should report)."""
    return [str(v) for v in li["error_information"]["error_variable"].values if str(v) != "choice"]


def figure_choice_vs_stimulus(li: xr.Dataset, title: str):
    """One layer's choice vs stimulus information on error + matched correct trials (at the response).

    The stimulus is the label ``error_information`` holds besides ``choice`` (e.g. the
    checkerboard's ``direction``); :func:`run_figures` names the file ``choice_vs_<stimulus>.png``.
    """
    ei = _first_decoder(li)["error_information"].rename(error_variable="variable")
    stimulus = " / ".join(_error_stimulus(li))
    where = "whole trial"
    if "error_time" in ei.dims:  # the response: last recorded step
        ei = ei.isel(error_time=-1)
        where = "response step"
    ei = ei.drop_vars([c for c in ei.coords if c not in ("variable", "epoch")])
    fig, ax = _new_figure(width=4.8)
    plot_information_vs_epoch(ax[0, 0], ei, title=f"error + matched correct trials ({where})",
                              colors=label_colors(li.attrs, [str(v) for v in ei["variable"].values]))
    fig.suptitle(f"{title}: choice vs {stimulus}")
    return fig


def figure_information_by_layer(info: xr.Dataset, title: str):
    """Information vs epoch of every layer, a panel per variable (runs without time, e.g. CNNs)."""
    layers = [str(x) for x in info["layer"].values]
    names = [str(v) for v in info["variable"].values]
    fig, axes = _new_figure(len(names))
    first = _first_decoder(info)
    for ax, name in zip(axes[0], names):
        for i, layer in enumerate(layers):
            li = first.sel(layer=layer, variable=[name])
            plot_information_vs_epoch(ax, li["information"], spread=li["information_sd"], color=f"C{i}",
                                      label_prefix=f"{layer}: ", title=name)
        ax.legend(frameon=False, fontsize="small")
    fig.suptitle(f"{title} — information by layer (band: s.d. across folds)")
    return fig


def figure_area_information(info: xr.Dataset, title: str):
    """Each layer's information in the last period (the response) vs epoch, a panel per variable
    (multi-area RNNs)."""
    per = _periods(info)[-1]
    names = [str(v) for v in info["variable"].values]
    fig, axes = _new_figure(len(names))
    for ax, name in zip(axes[0], names):
        plot_area_information(ax, info["period_information"].sel(variable=name, period=per), dim="layer",
                              title=f"{name}, {per} period")
    fig.suptitle(f"{title} — information by layer")
    return fig


def run_figures(info: xr.Dataset) -> list[tuple[str, Any]]:
    """The standard figures of an analysed run, as (file name, Figure) pairs, in drawing order.

    Parameters
    ----------
    info : xr.Dataset
        An ``information.nc`` dataset (:func:`decisionnets.report.analyze_run`): ``information``
        (layer, [decoder,] variable, epoch[, time]) and whichever of ``period_information``,
        ``cross_temporal``, ``error_information``, ``probe_loss``, ``p_right`` the analysis wrote.
    """
    title = run_title(info.attrs)
    out = []
    layers = [str(x) for x in info["layer"].values]
    for layer in layers:
        sfx = "" if len(layers) == 1 else f"_{layer}"
        li = info.sel(layer=layer)
        out.append((f"information_vs_epoch{sfx}.png", figure_information_vs_epoch(li, f"{title} — {layer}")))
        if "time" in li["information"].dims:
            out.append((f"information_vs_time{sfx}.png", figure_information_vs_time(li, f"{title} — {layer}")))
        if "cross_temporal" in li:
            out.append((f"cross_temporal{sfx}.png", figure_cross_temporal(li, f"{title} — {layer}")))
        if "error_information" in li:
            name = f"choice_vs_{'_'.join(_error_stimulus(li)) or 'stimulus'}{sfx}.png"
            out.append((name, figure_choice_vs_stimulus(li, f"{title} — {layer}")))
    if len(layers) > 1 and "time" not in info["information"].dims:  # per-layer comparison (e.g. CNNs)
        out.append(("information_by_layer.png", figure_information_by_layer(info, title)))
    if len(layers) > 1 and "period_information" in info:  # per-area comparison (multi-area RNNs)
        out.append(("information_by_layer.png", figure_area_information(info, title)))
    if "probe_loss" in info:
        fig, ax = _new_figure(width=4.8)
        plot_learning_curve(ax[0, 0], info["probe_loss"], info.get("probe_accuracy"))
        fig.suptitle(title)
        out.append(("learning_curve.png", fig))
    if "p_right" in info:
        fig, ax = _new_figure(width=4.8)
        plot_psychometric(ax[0, 0], info["p_right"])
        fig.suptitle(title)
        out.append(("psychometric.png", fig))
    return out


def demo_figure(infos: Sequence[xr.Dataset], *, variables: Sequence[str] | None = None,
                layer: str = "hidden", period: str = "decision"):
    """One panel per analysed run (information.nc datasets): information vs epoch, side by side.

    Time-resolved runs show the mean over ``period``; runs without time the fold s.d. as a band.
    ``variables``: those drawn (default: each run's task-declared ``decode_labels``, attr of
    information.nc; every variable of a run that declares none), in the colours the task declares
    (:func:`label_colors`).
    """
    fig, axes = _new_figure(len(infos), width=4.6, height=3.6)
    for ax, info in zip(axes[0], infos):
        li = info.sel(layer=layer) if "layer" in info.dims else info
        timed = "time" in li["information"].dims
        src = li["period_information"] if timed and "period_information" in li else li["information"]
        spread = None if timed else li.get("information_sd")
        names = [str(v) for v in li["variable"].values]
        shown = list(variables) if variables is not None else \
            [v for v in _json_attr(info.attrs, "decode_labels", list) if v in names] or names
        plot_information_vs_epoch(ax, src, period=period if timed else None, variables=shown,
                                  colors=label_colors(info.attrs, names),
                                  spread=spread, title=run_title(info.attrs)
                                  + (f"\n{layer}, {period} period" if timed else f"\n{layer}"))
    return fig
