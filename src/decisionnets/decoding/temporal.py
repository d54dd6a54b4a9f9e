"""Temporal generalization: decoders trained at one time and tested at every other.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from decisionnets.decoding.estimator import LN2
from decisionnets.decoding.folds import clean_labels
from decisionnets.decoding.frontend import as_label_dict, prepare_problems, decoding_scores
from decisionnets.errors import UserError

__all__ = ["cross_temporal_information"]


def cross_temporal_information(
    activity: xr.DataArray,
    labels,
    *,
    time_dim: str = "time",
    sample_dim: str = "trial",
    feature_dim: str = "unit",
    folds: int = 5,
    seed: int = 0,
    decoders: xr.Dataset | None = None,
    **kwargs: Any,
) -> xr.DataArray:
    """Temporal generalization: information of a linear decoder trained at t and tested at t'.

    For each training time t the decoder of every outer fold (penalty chosen by nested CV at t) is
    fitted once and applied to that fold's held-out trials at every test time t'; the held-out
    cross-entropy is compared with the training-fold prior's. The diagonal (t' = t) is the usable
    information at t (:func:`usable_information` with the same folds, seed and decoder). Every
    other dim of ``activity`` (e.g. ``epoch``) indexes separate matrices, fitted in one batch.

    Parameters
    ----------
    activity : DataArray (..., time_dim, sample_dim, feature_dim)
        Other dims (e.g. ``epoch``) give one matrix each.
    labels : DataArray (sample_dim[, other dims of activity]) or a Dataset / mapping of them
        Integer class indices, missing < 0 / NaN; must not vary over ``time_dim``. A mapping gives
        the result a ``variable`` dim.
    time_dim, sample_dim, feature_dim : str
    folds, seed : int
    decoders : Dataset, optional
        The fitted decoders of this very activity and these labels (``coef``, ``intercept``,
        ``fold_assignment`` from :func:`decoding_scores` with ``return_decoders=True``, with the
        same folds, seed and the ``linear`` decoder): they are reused, nothing is fitted.
    **kwargs
        Passed to :class:`UsableInformation` (``device``, ``dtype``, ``l2_grid``...).

    Returns
    -------
    DataArray ([variable,] ..., train_time, test_time), bits.
    """
    if not isinstance(activity, xr.DataArray) or not {time_dim, sample_dim, feature_dim} <= set(activity.dims):
        dims = getattr(activity, "dims", None)
        raise UserError(
            f"activity must be a DataArray with dims ({time_dim!r}, {sample_dim!r}, {feature_dim!r}) (and any "
            f"others, e.g. epoch); got {dims}"
        )
    lab_dict, multi = as_label_dict(labels)
    for name, da in lab_dict.items():
        if isinstance(da, xr.DataArray) and time_dim in da.dims:
            raise UserError(f"cross-temporal labels must not vary over time; label {name!r} has dims {da.dims}")
    others = [dd for dd in activity.dims if dd not in (time_dim, sample_dim, feature_dim)]
    act = activity.transpose(*others, time_dim, sample_dim, feature_dim)
    T = act.sizes[time_dim]
    if decoders is None:
        decoders = decoding_scores(act, lab_dict, sample_dim=sample_dim, feature_dim=feature_dim, decoder="linear",
                                   folds=folds, seed=seed, return_decoders=True, **kwargs)
    X, y, extra, shape_extra, names, _, coords, _ = prepare_problems(act, lab_dict, sample_dim, feature_dim)
    E = int(np.prod(shape_extra[:-1])) if len(shape_extra) > 1 else 1
    V, n, d = len(names), X.shape[1], X.shape[2]
    dv = decoders if "variable" in decoders.dims else decoders.expand_dims(variable=[names[0]])
    order = ["variable", *others, time_dim]
    coef = np.asarray(dv["coef"].transpose(*order, "fold", feature_dim, "logit").values, np.float64)
    icpt = np.asarray(dv["intercept"].transpose(*order, "fold", "logit").values, np.float64)
    fold = np.asarray(dv["fold_assignment"].transpose(*order, sample_dim).values)
    K = coef.shape[-3]
    coef = coef.reshape(V, E, T, K, d, -1)
    icpt = icpt.reshape(V, E, T, K, -1)
    fold = fold.reshape(V, E, T, n)
    labs, _ = clean_labels(y, K)  # (P, V, n), classes too small for K folds dropped, as the fits did
    labs = labs.reshape(E, T, V, n)
    C = max(int(labs.max()) + 1, 2)
    X = np.nan_to_num(X.reshape(E, T, n, d).astype(np.float64))
    out = np.full((V, E, T, T), np.nan)
    for e in range(E):
        for v in range(V):
            out[v, e] = _generalization(X[e], labs[e, :, v], fold[v, e], coef[v, e], icpt[v, e], C)
    tcoord = act.coords[time_dim].values if time_dim in act.coords else np.arange(T)
    out = out.reshape((V,) + tuple(shape_extra[:-1]) + (T, T))
    dims = ["variable", *others, "train_time", "test_time"]
    cc = {dd: coords[dd] for dd in others if dd in coords}
    cc.update(train_time=tcoord, test_time=tcoord)
    if multi:
        cc["variable"] = names
    else:
        out, dims = out[0], dims[1:]
    return xr.DataArray(out, dims=dims, coords=cc, name="cross_temporal_information",
                        attrs={"units": "bits", "folds": int(folds), "seed": int(seed)})


def _generalization(X, lab, fold, coef, icpt, C) -> np.ndarray:
    """One temporal-generalization matrix (T, T), bits.

    X (T, n, d) float64; lab (T, n) class of each trial at each time (-1 missing); fold (T, n) the
    outer fold of each trial in the fits at each training time (-1 unused); coef (T, K, d, C'),
    icpt (T, K, C'): the decoder of each training time and fold in raw feature units. Entry
    (t, t'): sum over folds k of (prior - decoder) held-out cross-entropy of the trials in fold k
    at t (held out by decoder (t, k)) whose label is valid at t', per such trial.
    """
    T, n, d = X.shape
    K, Cp = coef.shape[1], coef.shape[-1]
    out = np.full((T, T), np.nan)
    if not np.isfinite(coef).all():
        ok_t = np.isfinite(coef).all(axis=(1, 2, 3)) & np.isfinite(icpt).all(axis=(1, 2))
    else:
        ok_t = np.ones(T, bool)
    W = np.nan_to_num(coef).transpose(2, 0, 1, 3).reshape(d, T * K * Cp)
    lg = (X.reshape(T * n, d) @ W).reshape(T, n, T, K, Cp) + np.nan_to_num(icpt)[None, None]  # (t', i, t, k, c)
    labc = np.clip(lab, 0, None)  # (t', n)
    if C == 2 and Cp == 1:
        z = lg[..., 0]
        ce = np.logaddexp(0.0, z) - (labc == 1)[:, :, None, None] * z  # (t', i, t, k)
    else:
        mx = lg.max(-1, keepdims=True)
        lse = np.log(np.exp(lg - mx).sum(-1)) + mx[..., 0]
        ce = lse - np.take_along_axis(lg, labc[:, :, None, None, None].repeat(T, 2).repeat(K, 3), -1)[..., 0]
    for t in range(T):
        if not ok_t[t] or not (fold[t] >= 0).any():
            continue
        used = fold[t] >= 0
        classes = np.bincount(lab[t][used], minlength=C)
        if (classes > 0).sum() < 2:
            continue  # one class: no estimate (NaN; the time-resolved fit warned and flagged it)
        num = np.zeros(T)
        den = np.zeros(T)
        for k in range(K):
            te = fold[t] == k
            tr = used & ~te
            cnt = np.bincount(lab[t][tr], minlength=C).astype(float)
            logprior = np.log(np.maximum(cnt / max(cnt.sum(), 1), 1e-300))
            m = te[None, :] & (lab >= 0)  # (t', n): held out at t, labelled at t'
            num += ((-logprior[labc] - ce[:, :, t, k]) * m).sum(1)
            den += m.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[t] = num / den / LN2
    return out
