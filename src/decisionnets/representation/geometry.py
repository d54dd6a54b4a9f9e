"""Population geometry over training: trajectories, dimensionality and demixed variance.

For every recorded layer and epoch, from the activity averaged over the trials of each *condition*
(a combination of values of the chosen labels; every combination must occur):

* **trajectories** on principal components *fixed across epochs*: the PCs of the condition-averaged
  activity (conditions x time steps, centered) of the **last** recorded epoch, the trained
  representation. Every epoch's condition averages (centered on that epoch's own mean) are
  projected on them, so epochs are comparable; ``pc_variance_explained`` says how much of each
  epoch's condition-averaged variance lies along each of these fixed PCs (low at early epochs
  when the final subspace has not formed yet);
* **participation ratio** ``PR = (sum_i l_i)^2 / sum_i l_i^2`` of the eigenvalues ``l_i`` of the
  covariance of the activity, per epoch and task period: ``dimensionality`` on the condition
  averages (conditions x the period's time steps as samples: the task-driven dimensionality, at
  most conditions x steps - 1) and ``dimensionality_trials`` on single trials (trials x the
  period's time steps, noise included);
* **marginalized variance** (the marginalization of demixed PCA, Kobak et al. 2016): the
  condition-averaged activity ``X[labels..., time, unit]`` is split into the sum of its ANOVA
  terms, one per non-empty subset of the parameters {labels..., time} (each term: the average over
  the other parameters minus the terms of the subset's own subsets). The terms are grouped as
  dPCA's ``join`` usually does: ``time`` (the condition-independent part), each label (its main
  effect plus its interaction with time) and each label x label interaction (``color:direction``,
  plus its interactions with time). ``noise`` is the mean within-condition variance of single
  trials (each condition weighted equally, divided by the number of trials, not trials - 1).
  Every condition counts equally (as in dPCA), so ``variance_fraction`` over the marginalizations
  and noise sums to 1. All recorded time steps are used.

Default conditions: the task's declared labels in declared order, each kept only when the grid
stays complete, so a label that the others determine is left out (on the checkerboard,
``target_config`` is the XOR of ``color`` and ``direction``: conditions are color x direction and
the ``color:direction`` interaction *is* the target configuration).
"""

from __future__ import annotations

import itertools
import json
from typing import Sequence

import numpy as np
import xarray as xr

from decisionnets.errors import UserError
from decisionnets.representation._data import (ALL_PERIOD, default_labels, label_matrix, layer_array,
                                               layer_names, period_groups, with_epoch)

__all__ = ["geometry", "plot_geometry", "participation_ratio", "marginalize", "condition_grid"]

NOISE = "noise"
TIME = "time"


def geometry(ds: xr.Dataset, *, run_dir=None, seed: int = 0, progress: bool = False,
             variables: Sequence[str] | None = None, layers: Sequence[str] | None = None,
             n_components: int = 3, exclude_catch: bool = True) -> xr.Dataset:
    """Condition-averaged trajectories, dimensionality and marginalized variance at every recorded epoch.

    Parameters
    ----------
    ds : xr.Dataset
        Activation dataset: layers (epoch, trial[, time], unit), trial labels. Without an
        ``epoch`` dim it is one epoch (0); without ``time`` (images, static nets) there is no time
        marginalization and one period ``"all"``.
    run_dir : path, optional
        Unused (the registry's contract).
    seed : int
        Unused: the analysis is deterministic.
    progress : bool
        Unused.
    variables : list of str, optional
        Labels whose combinations are the conditions, (trial) variables; every combination must
        occur. Default: the declared labels that keep the grid complete (see the module doc).
    layers : list of str, optional
        Layers analysed (default: every recorded one).
    n_components : int
        Fixed principal components kept for the trajectories.
    exclude_catch : bool
        Leave out catch trials (coord ``catch`` == 1).

    Returns
    -------
    xr.Dataset
        * ``trajectory`` (layer, epoch, condition[, time], pc): condition averages on the fixed PCs;
        * ``pc_variance_explained`` (layer, epoch, pc): fraction of each epoch's condition-averaged
          variance along each fixed PC;
        * ``dimensionality``, ``dimensionality_trials`` (layer, epoch, period): participation ratios;
        * ``marginal_variance`` (layer, epoch, marginalization): variance (summed over units) of each
          marginalization and of ``noise``; ``variance_fraction``: the same over their sum;
        * coords on ``condition``: one per label (its value) and ``condition_trials`` (trials per condition).
    """
    if not (isinstance(n_components, (int, np.integer)) and n_components >= 1):
        raise UserError(f"n_components must be an integer >= 1; got {n_components!r}")
    ds = with_epoch(ds)
    names, cells, levels = condition_grid(ds, variables, exclude_catch=exclude_catch)
    has_time = "time" in ds.dims and ds.sizes["time"] > 1
    periods = period_groups(ds)
    epochs = ds["epoch"].values
    valid = cells >= 0
    shape = tuple(len(lv) for lv in levels)
    C = int(np.prod(shape))
    onehot = (cells[valid][:, None] == np.arange(C)[None, :]).astype(float)  # (n, C)
    counts = onehot.sum(0)
    marg_names = _marginalization_names(names, has_time)

    parts = []
    for layer in layer_names(ds, layers):
        act = layer_array(ds, layer)[:, valid]  # (E, n, T, U)
        E, n, T, U = act.shape
        act -= act.mean(axis=(1, 2), keepdims=True)  # per epoch and unit: changes no variance below
        avg = (onehot / counts).T  # (C, n)
        M = (avg @ act.reshape(E, n, T * U)).reshape(E, C, T, U)  # condition averages
        # marginalized variances
        mv = marginalize(M.reshape((E, *shape, T, U)) if has_time else M.reshape((E, *shape, U)), len(names),
                         has_time)
        # within-condition variance: mean square minus squared mean, per condition (time-averaged, unit-summed)
        sq = np.einsum("entu,entu->en", act, act) / T  # (E, n)
        noise_cell = np.clip(sq @ avg.T - np.einsum("ectu,ectu->ec", M, M) / T, 0.0, None)  # (E, C)
        var = np.stack([_group(mv, names, g, has_time) for g in marg_names] + [noise_cell.mean(1)], axis=1)
        total = var.sum(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(total > 0, var / total, np.nan)
        # fixed PCs (last epoch) and trajectories
        k = int(min(n_components, U))
        last = M[-1].reshape(C * T, U)
        last = last - last.mean(0)
        _, s, vt = np.linalg.svd(last, full_matrices=False)
        W = vt[:k].T  # (U, k)
        Mc = M - M.mean(axis=(1, 2), keepdims=True)
        traj = np.full((E, C, T, n_components), np.nan)
        traj[..., :k] = Mc @ W
        tot_e = (Mc ** 2).sum(axis=(1, 2, 3))
        pcv = np.full((E, n_components), np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            pcv[:, :k] = (traj[..., :k] ** 2).sum(axis=(1, 2)) / tot_e[:, None]
        # participation ratios per period
        pr = np.full((E, len(periods)), np.nan)
        pr_trials = np.full((E, len(periods)), np.nan)
        for j, (_, idx) in enumerate(periods):
            sl = idx if idx is not None else slice(None)
            for e in range(E):
                pr[e, j] = participation_ratio(M[e][:, sl].reshape(-1, U))
                pr_trials[e, j] = participation_ratio(act[e][:, sl].reshape(-1, U))
        tdims = ("epoch", "condition", "time", "pc") if has_time else ("epoch", "condition", "pc")
        parts.append(xr.Dataset({
            "trajectory": (tdims, traj if has_time else traj[:, :, 0]),
            "pc_variance_explained": (("epoch", "pc"), pcv),
            "dimensionality": (("epoch", "period"), pr),
            "dimensionality_trials": (("epoch", "period"), pr_trials),
            "marginal_variance": (("epoch", "marginalization"), var),
            "variance_fraction": (("epoch", "marginalization"), frac),
        }).expand_dims(layer=[layer]))
    out = xr.concat(parts, dim="layer") if len(parts) > 1 else parts[0]
    grid = list(itertools.product(*levels))
    coords = {"epoch": epochs, "pc": np.arange(1, n_components + 1), "period": [p for p, _ in periods],
              "marginalization": [*marg_names, NOISE],
              "condition": [", ".join(f"{nm}={_fmt(v)}" for nm, v in zip(names, combo)) for combo in grid],
              "condition_trials": ("condition", counts.astype(int))}
    for i, nm in enumerate(names):
        coords[nm] = ("condition", np.array([combo[i] for combo in grid]))
    if has_time:
        coords["time"] = ds["time"].values
        if "period" in ds.coords and ds["period"].dims == ("time",):
            coords["time_period"] = ("time", np.asarray(ds["period"].values).astype(str))
    out = out.assign_coords(coords)
    out["dimensionality"].attrs["long_name"] = "participation ratio of the condition-averaged activity"
    out["dimensionality_trials"].attrs["long_name"] = "participation ratio of single-trial activity"
    out.attrs.update(
        variables=json.dumps(names), pcs="fitted on the condition averages of the last recorded epoch",
        marginalization="ANOVA terms of the condition averages, label terms joined with their time "
                        "interactions (dPCA); noise = mean within-condition variance (ddof 0); conditions weighted equally",
        exclude_catch=int(exclude_catch), n_components=int(n_components))
    return out


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, (float, np.floating)) else str(v)


# ------------------------------------------------------------------------------------------ conditions
def condition_grid(ds: xr.Dataset, variables: Sequence[str] | None = None, *, exclude_catch: bool = True):
    """The labels defining the conditions, each trial's condition and each label's levels.

    Parameters
    ----------
    ds : xr.Dataset
        Activation dataset with an ``epoch`` dim.
    variables : list of str, optional
        The labels; default: the declared labels, each kept when the grid stays complete.

    Returns
    -------
    names : list of str
    cells : ndarray (trial,) of int
        Flat condition index (C order over the labels' levels); -1 for a trial left out.
    levels : list of ndarray
        The sorted values of each label.

    Raises
    ------
    UserError
        When a label changes with the epoch, or (for ``variables``) a combination has no trial.
    """
    candidates = list(variables) if variables else default_labels(ds)
    for name in candidates:
        if name in ds.variables and ds[name].dims != ("trial",):
            raise UserError(f"geometry conditions need trial labels, the same at every epoch; {name!r} has dims "
                            f"{ds[name].dims}")
    L = label_matrix(ds, candidates, exclude_catch=exclude_catch)[0]  # (N, V)
    if variables:
        names, cells, levels, missing = _grid(L, candidates)
        if missing:
            raise UserError(f"geometry needs every combination of {candidates} to occur; missing "
                            f"{dict(zip(candidates, missing))} (use fewer variables)")
        return names, cells, levels
    chosen: list[int] = []
    for j in range(len(candidates)):
        names, cells, levels, missing = _grid(L[:, [*chosen, j]], [candidates[i] for i in [*chosen, j]])
        if missing is None and len(levels[-1]) >= 2:
            chosen.append(j)
    if not chosen:
        raise UserError(f"no declared label ({candidates}) has two values on the probe trials; pass variables=[...]")
    names, cells, levels, _ = _grid(L[:, chosen], [candidates[i] for i in chosen])
    return names, cells, levels


def _grid(L: np.ndarray, names: list[str]):
    """Condition index of each trial over the labels' columns of ``L``; ``missing``: an absent combination or None."""
    valid = np.isfinite(L).all(1)
    levels = [np.unique(L[valid, j]) for j in range(L.shape[1])]
    levels = [lv.astype(int) if np.all(lv == np.round(lv)) else lv for lv in levels]
    shape = tuple(len(lv) for lv in levels)
    cells = np.full(L.shape[0], -1)
    if valid.any():
        idx = [np.searchsorted(lv, L[valid, j]) for j, lv in enumerate(levels)]
        cells[valid] = np.ravel_multi_index(idx, shape)
    present = np.bincount(cells[valid], minlength=int(np.prod(shape)))
    missing = None
    if (present == 0).any():
        missing = [lv[i] for lv, i in zip(levels, np.unravel_index(int(np.argmin(present)), shape))]
    return names, cells, levels, missing


# ------------------------------------------------------------------------------------------ measures
def participation_ratio(X: np.ndarray) -> float:
    """Participation ratio of the samples ``X`` (samples, features): ``tr(C)^2 / tr(C^2)``, C their covariance.

    Equal to ``(sum_i l_i)^2 / sum_i l_i^2`` over the covariance eigenvalues; 1 for one dimension,
    ``d`` for ``d`` equal ones. NaN when the samples do not vary.
    """
    X = np.asarray(X, dtype=float)
    X = X - X.mean(0)
    G = X.T @ X if X.shape[0] >= X.shape[1] else X @ X.T
    tr = np.trace(G)
    fro2 = float((G ** 2).sum())
    return float(tr ** 2 / fro2) if fro2 > 0 else float("nan")


def marginalize(X: np.ndarray, n_labels: int, has_time: bool) -> dict[tuple[int, ...], np.ndarray]:
    """Variance of every ANOVA term of condition-averaged activity.

    Parameters
    ----------
    X : ndarray (epoch, level_1, ..., level_L[, time], unit)
        Condition averages on a complete grid.
    n_labels : int
        L, the number of label axes.
    has_time : bool
        Whether the axis before ``unit`` is time (a parameter too).

    Returns
    -------
    dict
        Parameter subset (indices into labels..., time = L) -> (epoch,) variance of its term:
        the mean over grid cells of the squared term summed over units. The terms add up to the
        centered ``X``, and (the terms being orthogonal) their variances to its variance.
    """
    n_par = n_labels + int(has_time)
    par_axes = list(range(1, 1 + n_par))
    Xc = X - X.mean(axis=tuple(par_axes), keepdims=True)
    terms: dict[tuple[int, ...], np.ndarray] = {}
    out = {}
    for r in range(1, n_par + 1):
        for S in itertools.combinations(range(n_par), r):
            others = tuple(1 + i for i in range(n_par) if i not in S)
            m = Xc.mean(axis=others, keepdims=True) if others else Xc.copy()
            for sub, t in terms.items():
                if set(sub) < set(S):
                    m = m - t
            terms[S] = m
            out[S] = (m ** 2).sum(-1).mean(axis=tuple(par_axes))
    return out


def _marginalization_names(names: list[str], has_time: bool) -> list[str]:
    groups = [TIME] if has_time else []
    for r in range(1, len(names) + 1):
        groups += [":".join(c) for c in itertools.combinations(names, r)]
    return groups


def _group(mv: dict, names: list[str], group: str, has_time: bool) -> np.ndarray:
    """The variance of a named marginalization: its label term plus that term x time."""
    L = len(names)
    if group == TIME:
        return mv[(L,)]
    idx = tuple(names.index(nm) for nm in group.split(":"))
    v = mv[idx]
    if has_time:
        v = v + mv[(*idx, L)]
    return v


# ------------------------------------------------------------------------------------------ figure
def plot_geometry(result: xr.Dataset, ax=None, *, layer: str | None = None):
    """Three panels: trajectories on the fixed PCs, dimensionality vs epoch, variance fractions vs epoch.

    Parameters
    ----------
    result : xr.Dataset
        The output of :func:`geometry`.
    ax : sequence of 3 matplotlib Axes, optional
        Drawn on a new figure (1 x 3) when None.
    layer : str, optional
        Layer drawn (default: the last recorded, the one nearest the output).

    Returns
    -------
    ndarray of 3 matplotlib Axes
        (trajectories at the first and last epoch on PC1-PC2; participation ratio of the
        condition averages per period vs epoch; fraction of variance of each marginalization vs epoch.)
    """
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        from matplotlib.figure import Figure

        ax = Figure(figsize=(13, 3.6), layout="constrained").subplots(1, 3)
    axes = np.asarray(ax).ravel()
    if axes.size != 3:
        raise UserError(f"plot_geometry draws 3 panels; got {axes.size} Axes")
    layer = layer or str(result["layer"].values[-1])
    r = result.sel(layer=layer)
    epochs = r["epoch"].values
    # trajectories
    a = axes[0]
    tr = r["trajectory"]
    colors = [f"C{i % 10}" for i in range(r.sizes["condition"])]
    for e, style, alpha in ((epochs[0], "--", 0.45), (epochs[-1], "-", 1.0)):
        for i, c in enumerate(r["condition"].values):
            xy = tr.sel(epoch=e).isel(condition=i)
            x, y = (xy.sel(pc=1).values, xy.sel(pc=2).values) if r.sizes["pc"] >= 2 else (xy.sel(pc=1).values, 0 * xy.sel(pc=1).values)
            x, y = np.atleast_1d(x), np.atleast_1d(y)
            a.plot(x, y, style, color=colors[i], alpha=alpha, marker="o" if x.size == 1 else None, ms=4,
                   label=str(c) if e == epochs[-1] else None)
            if x.size > 1:
                a.plot(x[-1], y[-1], "o", color=colors[i], alpha=alpha, ms=3)
    a.set_xlabel("PC1 (fixed: last epoch)")
    a.set_ylabel("PC2")
    a.set_title(f"{layer}: epoch {epochs[0]} (dashed), {epochs[-1]} (solid)", fontsize=9)
    if r.sizes["condition"] <= 8:
        a.legend(fontsize=7, frameon=False)
    # dimensionality
    a = axes[1]
    for j, p in enumerate(r["period"].values):
        a.plot(epochs, r["dimensionality"].sel(period=p).values, marker="o", ms=3, label=str(p), color=f"C{j}")
    a.set_xlabel("epoch")
    a.xaxis.set_major_locator(MaxNLocator(integer=True))
    a.set_ylabel("participation ratio")
    a.set_title("dimensionality (condition averages)", fontsize=9)
    if r.sizes["period"] > 1 or str(r["period"].values[0]) != ALL_PERIOD:
        a.legend(fontsize=7, frameon=False)
    # variance fractions
    a = axes[2]
    frac = r["variance_fraction"]
    margs = [str(m) for m in r["marginalization"].values]
    vals = np.nan_to_num(frac.transpose("marginalization", "epoch").values)
    if epochs.size > 1:
        a.stackplot(epochs, vals, labels=margs, colors=[f"C{i}" if m != NOISE else "lightgray" for i, m in enumerate(margs)])
    else:
        bottom = 0.0
        for i, m in enumerate(margs):
            a.bar(epochs, vals[i], bottom=bottom, label=m, color=f"C{i}" if m != NOISE else "lightgray")
            bottom = bottom + vals[i]
    a.set_xlabel("epoch")
    a.xaxis.set_major_locator(MaxNLocator(integer=True))
    a.set_ylabel("fraction of variance")
    a.set_ylim(0, 1)
    a.set_title("marginalized variance (dPCA)", fontsize=9)
    a.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return axes
