"""Behaviour of an agent measured as a lab measures a monkey: psychometric and chronometric curves.

Functions here take a rollout dataset (:func:`decisionnets.agents.rollout`, dims (trial, ...)),
return small DataArrays, and draw them on a given ``ax``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["chronometric", "accuracy_by_coherence", "behaviour_summary", "plot_chronometric", "plot_accuracy"]


def _trial_var(ds: xr.Dataset, name: str) -> np.ndarray:
    v = ds[name]
    if "epoch" in v.dims:
        v = v.isel(epoch=-1)
    return np.asarray(v.values)


def chronometric(ds: xr.Dataset) -> xr.DataArray:
    """Mean reaction time per signed coherence, split by outcome.

    Parameters
    ----------
    ds : rollout dataset with ``reaction_time`` (trial) ms, ``correct`` (trial), coord ``coherence``
        (trial); with an ``epoch`` dim, its last epoch.

    Returns
    -------
    DataArray (outcome, coherence), ms: outcome ``correct`` / ``error``; trials without a reach are
    left out; NaN where a cell has no trial. Coord ``n_trials`` (outcome, coherence).
    """
    rt = _trial_var(ds, "reaction_time").astype(float)
    ok = _trial_var(ds, "correct").astype(bool)
    coh = np.round(np.asarray(ds["coherence"].values, float), 6)
    levels = np.unique(coh)
    out = np.full((2, len(levels)), np.nan)
    n = np.zeros((2, len(levels)), int)
    for j, c in enumerate(levels):
        for i, sel in enumerate((ok, ~ok)):
            m = (coh == c) & sel & np.isfinite(rt)
            n[i, j] = m.sum()
            if m.any():
                out[i, j] = rt[m].mean()
    return xr.DataArray(out, dims=("outcome", "coherence"),
                        coords={"outcome": ["correct", "error"], "coherence": levels,
                                "n_trials": (("outcome", "coherence"), n)},
                        name="reaction_time", attrs={"units": "ms", "long_name": "mean reaction time from onset"})


def accuracy_by_coherence(ds: xr.Dataset) -> xr.DataArray:
    """Fraction correct per signed coherence (no reach counts as wrong), DataArray (coherence)."""
    ok = _trial_var(ds, "correct").astype(float)
    coh = np.round(np.asarray(ds["coherence"].values, float), 6)
    levels = np.unique(coh)
    acc = np.array([ok[coh == c].mean() for c in levels])
    return xr.DataArray(acc, dims="coherence", coords={"coherence": levels}, name="accuracy",
                        attrs={"units": "fraction correct"})


def behaviour_summary(ds: xr.Dataset) -> dict:
    """Accuracy, reach rate, mean reaction time (ms) and its correlation with |coherence| (Spearman-free:
    Pearson on the per-trial values of correct trials)."""
    rt = _trial_var(ds, "reaction_time").astype(float)
    ok = _trial_var(ds, "correct").astype(bool)
    coh = np.abs(np.asarray(ds["coherence"].values, float))
    m = ok & np.isfinite(rt)
    r = float(np.corrcoef(coh[m], rt[m])[0, 1]) if m.sum() > 2 and rt[m].std() > 0 else float("nan")
    return {"accuracy": float(ok.mean()), "reach_rate": float(_trial_var(ds, "responded").mean()),
            "mean_reaction_time_ms": float(np.nanmean(rt)) if np.isfinite(rt).any() else float("nan"),
            "corr_abs_coherence_rt_correct": r, "n_trials": int(ok.size)}


def plot_chronometric(ax, rt: xr.DataArray, *, title: str | None = None):
    """Mean reaction time vs signed coherence, correct and error trials (DataArray from :func:`chronometric`)."""
    x = rt["coherence"].values
    for outcome, color, marker in (("correct", "k", "o"), ("error", "tab:red", "x")):
        ax.plot(x, rt.sel(outcome=outcome).values, color=color, marker=marker, ms=4, lw=1, label=outcome)
    ax.axvline(0, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("signed coherence (red - green) / squares")
    ax.set_ylabel("reaction time from onset (ms)")
    ax.set_title(title if title is not None else "chronometric curve")
    ax.legend(frameon=False, fontsize="small")
    return ax


def plot_accuracy(ax, acc: xr.DataArray, *, title: str | None = None, ceiling: dict | None = None):
    """Fraction correct vs signed coherence; ``ceiling`` (coherence -> fraction) drawn dashed if given."""
    x = acc["coherence"].values
    ax.plot(x, acc.values, color="k", marker="o", ms=4, lw=1, label="agent")
    if ceiling:
        cx = np.array(sorted(ceiling))
        ax.plot(cx, [ceiling[c] for c in cx], color="0.5", ls="--", lw=1, label="ideal observer (fixed 400 ms)")
    ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("signed coherence (red - green) / squares")
    ax.set_ylabel("fraction correct")
    ax.set_title(title if title is not None else "accuracy")
    ax.legend(frameon=False, fontsize="small")
    return ax
