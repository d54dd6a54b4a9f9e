"""The xarray front end: decoding problems from labelled arrays, in the style of MNE's search light.

Every dim of the activity other than the sample and feature dims (epoch, time, layer...) indexes
a separate decoding problem; all of them are fitted in one batch by
:class:`decisionnets.decoding.UsableInformation`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from decisionnets.decoding.estimator import UNRELIABLE_FLAGS, UsableInformation
from decisionnets.errors import UserError

__all__ = ["decoding_scores", "usable_information", "as_label_dict", "prepare_problems"]


def as_label_dict(labels) -> tuple[dict[str, xr.DataArray], bool]:
    """Labels as {name: DataArray}, and whether a `variable` dim is wanted."""
    if isinstance(labels, xr.DataArray):
        return {labels.name if labels.name is not None else "label": labels}, False
    if isinstance(labels, xr.Dataset):
        return {str(k): v for k, v in labels.data_vars.items()}, True
    if isinstance(labels, Mapping):
        return {str(k): v for k, v in labels.items()}, True
    if isinstance(labels, Sequence) and all(isinstance(v, xr.DataArray) for v in labels):
        return {str(v.name): v for v in labels}, True
    raise UserError(f"labels must be a DataArray, a Dataset or a mapping of DataArrays; got {type(labels).__name__}")


def prepare_problems(activity: xr.DataArray, labels, sample_dim: str, feature_dim: str):
    if not isinstance(activity, xr.DataArray):
        raise UserError(f"activity must be an xarray.DataArray; got {type(activity).__name__}")
    for dim, what in ((sample_dim, "sample_dim"), (feature_dim, "feature_dim")):
        if dim not in activity.dims:
            raise UserError(f"{what} {dim!r} is not a dimension of activity {activity.dims}")
    lab, multi = as_label_dict(labels)
    extra = [dd for dd in activity.dims if dd not in (sample_dim, feature_dim)]
    act = activity.transpose(*extra, sample_dim, feature_dim)
    shape_extra = tuple(act.sizes[dd] for dd in extra)
    P = int(np.prod(shape_extra)) if extra else 1
    n = act.sizes[sample_dim]
    X = np.asarray(act.values, dtype=np.float32).reshape(P, n, act.sizes[feature_dim])
    ys = []
    for name, da in lab.items():
        if not isinstance(da, xr.DataArray):
            raise UserError(f"label {name!r} must be an xarray.DataArray; got {type(da).__name__}")
        if sample_dim not in da.dims:
            raise UserError(f"label {name!r} must have the sample dim {sample_dim!r}; its dims are {da.dims}")
        bad = [dd for dd in da.dims if dd not in extra and dd != sample_dim]
        if bad:
            raise UserError(f"label {name!r} has dims {bad} that activity does not have (besides {feature_dim!r})")
        if da.sizes[sample_dim] != n:
            raise UserError(f"label {name!r} has {da.sizes[sample_dim]} samples along {sample_dim!r}; activity has {n}")
        da = da.drop_vars([c for c in da.coords if c not in da.dims], errors="ignore")
        for dd in extra:
            if dd not in da.dims:
                da = da.expand_dims({dd: act.sizes[dd]})
        vals = np.asarray(da.transpose(*extra, sample_dim).values)
        if vals.dtype.kind not in "iufb":
            raise UserError(f"label {name!r} must hold integer class indices; got dtype {vals.dtype}")
        if vals.dtype.kind == "f":
            frac = np.isfinite(vals) & (np.mod(np.where(np.isfinite(vals), vals, 0), 1) != 0)
            if frac.any():
                raise UserError(f"label {name!r} is continuous (e.g. {vals[frac].flat[0]:.4g}), not class indices; "
                                f"decode it through bins (decisionnets analyze --bins {name}=K, or "
                                f"bin_label(...) / analyze_run(bins={{{name!r}: K}}))")
        ys.append(vals.astype(np.float64).reshape(P, n))
    y = np.stack(ys, axis=1)  # (P, V, n)
    # a sample whose activity is all NaN in a problem (e.g. a trial that had ended by that time
    # step in a closed-loop rollout) is missing for that problem; other NaN/inf: an error (the fit)
    coords = {dd: act.coords[dd] for dd in extra if dd in act.coords}
    return X, y, extra, shape_extra, list(lab), multi, coords, act


def decoding_scores(
    activity: xr.DataArray,
    labels,
    *,
    sample_dim: str = "trial",
    feature_dim: str = "unit",
    decoder="linear",
    folds: int = 5,
    seed: int = 0,
    l2_grid: Sequence[float] | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    max_iter: int | None = None,
    progress=None,
    standardize: bool | None = None,
    split: str = "kfold",
    train_fraction: float = 0.25,
    return_decoders: bool = False,
) -> xr.Dataset:
    """Cross-validated usable information, its fold spread, decoding accuracy and convergence.

    Parameters
    ----------
    activity : DataArray (..., sample_dim, ..., feature_dim)
        Any other dims (epoch, time, layer...) index separate decoding problems.
    labels : DataArray (sample_dim[, some of activity's other dims]) or Dataset / mapping of them
        Integer class indices; < 0 or NaN = missing (dropped for that problem). A mapping gives
        the result a ``variable`` dim.
    sample_dim, feature_dim : str
    decoder : str, Decoder, or a list of them
        Decoder family (see :mod:`decisionnets.decoding.registry`); a list gives the result a ``decoder``
        dim (first), one family after another.
    folds : int
    seed : int
    device, dtype, split, train_fraction
        See :class:`UsableInformation`.
    l2_grid, max_iter, standardize
        Parameters of a named decoder family, given to :func:`decisionnets.decoding.get_decoder`
        when not None (it refuses one the family does not take; None: the family's default).
    progress : callable, optional
        Called with the number of activity problems finished after each chunk (e.g. a tqdm's
        ``update``); the total is the product of activity's dims other than sample/feature (times
        the number of decoders).
    return_decoders : bool
        One linear decoder family only: also return the fitted outer-fold decoders in raw feature
        units, ``coef`` (..., fold, feature_dim, logit), ``intercept`` (..., fold, logit) (logit:
        1 for two classes, the logit of class 1; else one per class) and ``fold_assignment``
        (..., sample_dim; -1 = unused), e.g. for :func:`cross_temporal_information`.

    Returns
    -------
    Dataset with dims ([decoder,] [variable,] other dims of activity...) [+ fold]:
        ``information`` (bits), ``information_sd`` (bits, s.d. over folds), ``decoding_accuracy``
        (held-out; named apart from a run's probe-set ``accuracy``),
        ``ce_prior``, ``ce_decoder`` (bits), ``n_samples``, ``converged`` (bool: False where a fit
        of the problem did not converge; such a number is not to be trusted), ``l2`` (fold;
        NaN for decoders without a penalty).
    """
    if isinstance(decoder, (list, tuple)):
        if not decoder:
            raise UserError("decoder list is empty; give at least one decoder name")
        if return_decoders:
            raise UserError(f"return_decoders=True takes one decoder family; got {list(decoder)}")
        parts = [
            decoding_scores(activity, labels, sample_dim=sample_dim, feature_dim=feature_dim, decoder=dd, folds=folds,
                            seed=seed, l2_grid=l2_grid, device=device, dtype=dtype, max_iter=max_iter,
                            progress=progress, standardize=standardize, split=split, train_fraction=train_fraction)
            for dd in decoder
        ]
        names = [p.attrs["decoder"] for p in parts]
        if len(set(names)) != len(names):
            raise UserError(f"decoder names must be unique; got {names}")
        descr = [p.attrs.get("decoder_description", "") for p in parts]
        out = xr.concat(parts, dim="decoder", join="outer", combine_attrs="drop_conflicts")
        out = out.assign_coords(decoder=names)
        out["decoder_description"] = ("decoder", descr)
        out.attrs["decoder"] = ",".join(names)
        out.attrs.pop("decoder_description", None)
        return out
    X, y, extra, shape_extra, names, multi, coords, act = prepare_problems(activity, labels, sample_dim, feature_dim)

    def where(p: int, v: int) -> str:  # problem p, variable v -> "'choice' at epoch=0, time=300"
        idx = np.unravel_index(p, shape_extra) if extra else ()
        at = ", ".join(f"{dd}={act[dd].values[i].item() if dd in act.coords else i}" for dd, i in zip(extra, idx))
        return f"{names[v]!r}" + (f" at {at}" if at else "")

    est = UsableInformation(
        decoder=decoder, folds=folds, l2_grid=l2_grid, seed=seed, device=device, dtype=dtype, max_iter=max_iter,
        standardize=standardize, split=split, train_fraction=train_fraction,
    )._fit(X, y, progress=progress, where=where)
    V = len(names)
    KO = est.l2_.shape[-1]

    def shaped(a, more=()):
        a = np.asarray(a).reshape(shape_extra + (V,) + more)
        a = np.moveaxis(a, len(shape_extra), 0)
        return a if multi else a[0]

    dims = (["variable"] if multi else []) + list(extra)
    out = xr.Dataset(
        {
            "information": (dims, shaped(est.information_)),
            "information_sd": (dims, shaped(est.information_sd_)),
            "decoding_accuracy": (dims, shaped(est.accuracy_)),
            "ce_prior": (dims, shaped(est.ce_prior_)),
            "ce_decoder": (dims, shaped(est.ce_decoder_)),
            "n_samples": (dims, shaped(est.n_samples_)),
            "converged": (dims, shaped(est.converged_)),
            "unreliable": (dims, shaped(est.unreliable_)),
            "l2": (dims + ["fold"], shaped(est.l2_, (KO,))),
        },
        coords=coords,
    )
    if multi:
        out = out.assign_coords(variable=names)
    for v in ("information", "information_sd", "ce_prior", "ce_decoder"):
        out[v].attrs["units"] = "bits"
    out["decoding_accuracy"].attrs["units"] = "fraction correct (held-out)"
    out["converged"].attrs["long_name"] = "every fit of the problem converged (False: do not trust the number)"
    out["unreliable"].attrs.update(
        long_name="why the problem's estimate is not to be trusted (a bit mask; 0: none)",
        flag_masks=np.array(list(UNRELIABLE_FLAGS), dtype=np.int8),
        flag_meanings=" ".join(m.split(" (")[0].replace(" ", "_") for m in UNRELIABLE_FLAGS.values()))
    dec = est.decoder_
    if return_decoders:
        if est.coef_ is None:
            raise UserError(f"return_decoders=True needs a linear decoder family; {dec.name!r} has no coefficients")
        fdim = feature_dim
        out["coef"] = (dims + ["fold", fdim, "logit"], shaped(est.coef_, est.coef_.shape[2:]))
        out["intercept"] = (dims + ["fold", "logit"], shaped(est.intercept_, est.intercept_.shape[2:]))
        out["fold_assignment"] = (dims + [sample_dim], shaped(est.folds_, (est.folds_.shape[-1],)))
        if fdim in act.coords:
            out = out.assign_coords({fdim: act.coords[fdim].values})
    out.attrs.update(decoder=dec.name, decoder_description=dec.describe(), folds=int(folds), seed=int(seed),
                     scale_invariant=int(bool(dec.scale_invariant)), split=str(split),
                     estimator="usable information, nested CV" if dec.penalties is not None and split == "kfold"
                     else f"usable information, {split} split")
    if est.warnings_:
        out.attrs["warnings"] = json.dumps(est.warnings_)
    return out


def usable_information(
    activity: xr.DataArray,
    labels,
    *,
    sample_dim: str = "trial",
    feature_dim: str = "unit",
    decoder="linear",
    folds: int = 5,
    seed: int = 0,
    **kwargs: Any,
) -> xr.DataArray:
    """Usable information (bits) of ``activity`` about ``labels`` over every remaining dimension.

    A thin wrapper around :func:`decoding_scores` (which also returns the fold spread, the
    accuracy and the ``converged`` flag): returns its ``information`` variable, dims
    ([decoder,] [variable,] other dims of activity...). ``decoder``: a registered name
    (:func:`decisionnets.decoding.decoder_names`), a Decoder object, or a list of them. Where a fit
    did not converge a RuntimeWarning is raised (see ``decoding_scores(...)["converged"]``).

    Examples
    --------
    >>> info = usable_information(ds.hidden, ds.color)           # doctest: +SKIP
    >>> info.dims                                                 # doctest: +SKIP
    ('epoch', 'time')
    >>> usable_information(ds.hidden, ds.color, decoder=["linear", "sgd-mlp"])  # doctest: +SKIP
    """
    ds = decoding_scores(
        activity, labels, sample_dim=sample_dim, feature_dim=feature_dim, decoder=decoder, folds=folds, seed=seed, **kwargs
    )
    da = ds["information"]
    da.name = "information"
    return da
