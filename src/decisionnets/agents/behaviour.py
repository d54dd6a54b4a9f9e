"""Behaviour of an agent measured as a lab measures a monkey: psychometric and chronometric curves.

Functions here take a rollout dataset (:func:`decisionnets.agents.rollout`, dims (trial, ...)),
return small DataArrays, and draw them on a given ``ax``. The curves are drawn against a trial
variable of signed evidence that the task declares (its ``behaviour_evidence``: the variable and
its axis label, e.g. the checkerboard's signed ``coherence``); the results keep that variable's
name as their dim and its axis label as the coord's ``long_name``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["chronometric", "accuracy_by_evidence", "behaviour_summary", "plot_chronometric", "plot_accuracy"]


def _trial_var(ds: xr.Dataset, name: str) -> np.ndarray:
    v = ds[name]
    if "epoch" in v.dims:
        v = v.isel(epoch=-1)
    return np.asarray(v.values)


def _levels(ds: xr.Dataset, evidence: str, long_name: str | None):
    """The rounded evidence of each trial, its distinct levels, and their coord (with ``long_name``)."""
    ev = np.round(np.asarray(ds[evidence].values, float), 6)
    levels = np.unique(ev)
    attrs = {**ds[evidence].attrs, **({"long_name": long_name} if long_name else {})}
    return ev, levels, xr.Variable(evidence, levels, attrs=attrs)


def chronometric(ds: xr.Dataset, evidence: str, *, long_name: str | None = None) -> xr.DataArray:
    """Mean reaction time per level of signed evidence, split by outcome.

    Parameters
    ----------
    ds : rollout dataset with ``reaction_time`` (trial) ms, ``correct`` (trial), and the coord
        ``evidence`` (trial); with an ``epoch`` dim, its last epoch.
    evidence : str
        The trial variable of signed evidence (e.g. the checkerboard's ``coherence``).
    long_name : str, optional
        The axis label of ``evidence`` (kept as its coord's ``long_name``).

    Returns
    -------
    DataArray (outcome, <evidence>), ms: outcome ``correct`` / ``error``; trials without a reach
    are left out; NaN where a cell has no trial. Coord ``n_trials`` (outcome, <evidence>).
    """
    rt = _trial_var(ds, "reaction_time").astype(float)
    ok = _trial_var(ds, "correct").astype(bool)
    ev, levels, coord = _levels(ds, evidence, long_name)
    out = np.full((2, len(levels)), np.nan)
    n = np.zeros((2, len(levels)), int)
    for j, c in enumerate(levels):
        for i, sel in enumerate((ok, ~ok)):
            m = (ev == c) & sel & np.isfinite(rt)
            n[i, j] = m.sum()
            if m.any():
                out[i, j] = rt[m].mean()
    return xr.DataArray(out, dims=("outcome", evidence),
                        coords={"outcome": ["correct", "error"], evidence: coord,
                                "n_trials": (("outcome", evidence), n)},
                        name="reaction_time", attrs={"units": "ms", "long_name": "mean reaction time from onset"})


def accuracy_by_evidence(ds: xr.Dataset, evidence: str, *, long_name: str | None = None) -> xr.DataArray:
    """Fraction correct per level of signed evidence (no reach counts as wrong), DataArray (<evidence>).

    ``evidence`` and ``long_name`` as in :func:`chronometric`.
    """
    ok = _trial_var(ds, "correct").astype(float)
    ev, levels, coord = _levels(ds, evidence, long_name)
    acc = np.array([ok[ev == c].mean() for c in levels])
    return xr.DataArray(acc, dims=evidence, coords={evidence: coord}, name="accuracy",
                        attrs={"units": "fraction correct"})


def behaviour_summary(ds: xr.Dataset, evidence: str | None = None) -> dict:
    """Accuracy, reach rate, mean reaction time (ms) and, given ``evidence``, the correlation of the
    reaction time with ``|evidence|`` (key ``corr_abs_<evidence>_rt_correct``; Pearson on the
    per-trial values of correct trials)."""
    rt = _trial_var(ds, "reaction_time").astype(float)
    ok = _trial_var(ds, "correct").astype(bool)
    out = {"accuracy": float(ok.mean()), "reach_rate": float(_trial_var(ds, "responded").mean()),
           "mean_reaction_time_ms": float(np.nanmean(rt)) if np.isfinite(rt).any() else float("nan")}
    if evidence is not None:
        ev = np.abs(np.asarray(ds[evidence].values, float))
        m = ok & np.isfinite(rt)
        r = float(np.corrcoef(ev[m], rt[m])[0, 1]) if m.sum() > 2 and rt[m].std() > 0 else float("nan")
        out[f"corr_abs_{evidence}_rt_correct"] = r
    return {**out, "n_trials": int(ok.size)}


def _axis_label(da: xr.DataArray, dim: str) -> str:
    return str(da[dim].attrs.get("long_name", f"signed {dim}"))


def plot_chronometric(ax, rt: xr.DataArray, *, title: str | None = None):
    """Mean reaction time vs signed evidence, correct and error trials (DataArray from :func:`chronometric`)."""
    dim = next(d for d in rt.dims if d != "outcome")
    x = rt[dim].values
    for outcome, color, marker in (("correct", "k", "o"), ("error", "tab:red", "x")):
        ax.plot(x, rt.sel(outcome=outcome).values, color=color, marker=marker, ms=4, lw=1, label=outcome)
    ax.axvline(0, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel(_axis_label(rt, dim))
    ax.set_ylabel("reaction time from onset (ms)")
    ax.set_title(title if title is not None else "chronometric curve")
    ax.legend(frameon=False, fontsize="small")
    return ax


def plot_accuracy(ax, acc: xr.DataArray, *, title: str | None = None, ceiling: dict | None = None,
                  ceiling_label: str = "ideal observer"):
    """Fraction correct vs signed evidence (from :func:`accuracy_by_evidence`); ``ceiling`` (evidence
    level -> fraction) drawn dashed if given, labelled ``ceiling_label``."""
    dim = acc.dims[0]
    x = acc[dim].values
    ax.plot(x, acc.values, color="k", marker="o", ms=4, lw=1, label="agent")
    if ceiling:
        cx = np.array(sorted(ceiling))
        ax.plot(cx, [ceiling[c] for c in cx], color="0.5", ls="--", lw=1, label=ceiling_label)
    ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(_axis_label(acc, dim))
    ax.set_ylabel("fraction correct")
    ax.set_title(title if title is not None else "accuracy")
    ax.legend(frameon=False, fontsize="small")
    return ax
