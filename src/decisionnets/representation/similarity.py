"""Representational similarity: condition x condition dissimilarity matrices and linear CKA.

Data flow: activation dataset (:func:`decisionnets.open_activations`) -> **similarity** (here)
-> ``similarity.nc`` and the figure of :func:`plot_similarity`.

Two questions, answered for every recorded epoch and layer:

* **How are the task's conditions laid out?** A representational dissimilarity matrix (RDM,
  Kriegeskorte et al. 2008) between the condition-mean activity patterns. A *condition* is one
  observed combination of the task's declared labels (:func:`decisionnets.analyses.label_variables`
  without ``choice``, which changes with the epoch; for the checkerboard: color x direction x
  target configuration, of which 4 combinations occur since direction follows from the other two).
  Distances: ``"correlation"`` (the default: 1 - Pearson correlation between two patterns across
  units, blind to the overall scale of activity, which training changes) or ``"euclidean"`` (the
  plain Euclidean distance between the mean patterns, in units of activity; rsatoolbox's
  "euclidean" is this distance squared and divided by the number of units).
* **When does the representation stop changing, and which layer changes last?** Linear centered
  kernel alignment (CKA, Kornblith et al. 2019) between the trial x unit activity matrices of
  every pair of epochs (per layer) and every pair of layers (per epoch). With column-centered
  ``X`` (trial, p) and ``Y`` (trial, q)::

      CKA(X, Y) = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)

  1 for identical representations; invariant to orthogonal transforms and isotropic scaling of
  either matrix (not to arbitrary invertible linear maps); 0 when the two are orthogonal.

Time-resolved layers are summarized by each trial's mean activity over the time steps of one
task period (by default the *response period*, the one holding the last recorded step: "decision"
for the checkerboard), so the RDMs and the CKA compare one pattern per trial. Catch trials and
trials with a missing label (-1) are left out. Datasets without an ``epoch`` dim (recorded
neurons) give the RDMs and the layer x layer CKA without the epoch dims.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from decisionnets.analyses import activity_layers, label_variables, trial_labels, unit_dim
from decisionnets.errors import UserError

__all__ = ["METRICS", "linear_cka", "rdm", "similarity", "plot_similarity"]

#: The dissimilarity measures of :func:`rdm`; the first is the default.
METRICS = ("correlation", "euclidean")


# ------------------------------------------------------------------------------------ the measures
def _center(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x - x.mean(axis=0, keepdims=True)


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA between two representations of the same trials (Kornblith et al. 2019, eq. 5).

    Parameters
    ----------
    x : ndarray, shape (trial, p)
    y : ndarray, shape (trial, q)
        Rows are the same trials; both are column-centered here.

    Returns
    -------
    float
        In [0, 1]; NaN when either matrix is constant across trials.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise UserError(f"linear_cka needs two (trial, unit) matrices with the same trials; "
                        f"got shapes {x.shape} and {y.shape}")
    return float(_cka_from(_cka_parts(x), _cka_parts(y)))


def _cka_parts(x: np.ndarray):
    """What CKA needs of one matrix: the centered matrix (few units) or its Gram matrix (many units)."""
    x = _center(x)
    if x.shape[1] > x.shape[0]:
        k = x @ x.T
        return ("gram", k, np.sqrt(np.sum(k * k)))
    c = x.T @ x
    return ("feat", x, np.sqrt(np.sum(c * c)))


def _cka_from(a, b) -> float:
    (ka, ma, na), (kb, mb, nb) = a, b
    if na == 0 or nb == 0:
        return float("nan")
    if ka == "gram" and kb == "gram":
        hsic = np.sum(ma * mb)
    elif ka == "feat" and kb == "feat":
        c = mb.T @ ma
        hsic = np.sum(c * c)
    else:  # one Gram K (n, n), one centered Y (n, q): <K, Y Y^T>_F = trace(Y^T K Y)
        k, y = (ma, mb) if ka == "gram" else (mb, ma)
        hsic = np.sum(y * (k @ y))
    return float(hsic / (na * nb))


def rdm(means: np.ndarray, metric: str = "correlation") -> np.ndarray:
    """Dissimilarity matrix between patterns (rows of ``means``).

    Parameters
    ----------
    means : ndarray, shape (condition, unit)
        One activity pattern per condition (e.g. condition means).
    metric : {"correlation", "euclidean"}
        ``"correlation"``: 1 - Pearson correlation across units (NaN for a constant pattern);
        ``"euclidean"``: Euclidean distance (not squared, not divided by the number of units).

    Returns
    -------
    ndarray, shape (condition, condition)
        Symmetric, zero on the diagonal.
    """
    m = np.asarray(means, dtype=np.float64)
    if metric == "correlation":
        c = m - m.mean(axis=1, keepdims=True)
        norm = np.sqrt(np.sum(c * c, axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            z = c / norm[:, None]
        d = 1.0 - z @ z.T
    elif metric == "euclidean":
        sq = np.sum(m * m, axis=1)
        d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * (m @ m.T), 0.0))
    else:
        raise UserError(f"similarity metric must be one of {', '.join(METRICS)}; got {metric!r}")
    d = 0.5 * (d + d.T)
    ok = np.isfinite(np.diag(d))
    d[np.arange(len(d))[ok], np.arange(len(d))[ok]] = 0.0
    return d


# --------------------------------------------------------------------------------- the dataset
def _response_period(ds: xr.Dataset) -> str | None:
    if "time" not in ds.dims or "period" not in ds.coords:
        return None
    return str(np.asarray(ds["period"].values)[-1])


def _time_steps(ds: xr.Dataset, period: str | None) -> np.ndarray | None:
    """Indices of the time steps averaged (None: the dataset has no time)."""
    if "time" not in ds.dims:
        return None
    if "period" not in ds.coords or period == "all":
        return np.arange(ds.sizes["time"])
    p = np.asarray(ds["period"].values).astype(str)
    idx = np.flatnonzero(p == period)
    if idx.size == 0:
        raise UserError(f"similarity period {period!r} is not a period of this dataset; "
                        f"periods: {', '.join(dict.fromkeys(p))} (or 'all')")
    return idx


def _patterns(act: xr.DataArray, steps) -> np.ndarray:
    """(trial, unit) float64: ``act`` (trial[, time], unit) averaged over ``steps``."""
    act = act.transpose("trial", *(["time"] if "time" in act.dims else []), unit_dim(act))
    a = np.asarray(act.values, dtype=np.float64)
    if a.ndim == 3:
        a = a[:, steps].mean(axis=1)
    return a


def _conditions(ds: xr.Dataset, labels) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Trial -> condition index; the label values of each condition; the names; the trials kept."""
    labs = trial_labels(ds, labels, exclude_catch=True)
    for name, da in labs.items():
        if "epoch" in da.dims:
            raise UserError(f"similarity label {name!r} changes with the epoch (dims {da.dims}); conditions must be "
                            "the same trials at every epoch: use trial labels such as the task's declared ones")
    vals = np.stack([np.asarray(labs[n].values, dtype=float) for n in labels], axis=1)  # (trial, label)
    keep = np.all(vals >= 0, axis=1) & np.all(np.isfinite(vals), axis=1)
    combos, index = np.unique(vals[keep], axis=0, return_inverse=True)
    return index.reshape(-1), combos, list(labels), keep


def similarity(ds: xr.Dataset, *, run_dir=None, seed: int = 0, progress: bool = False, labels=None,
               metric: str = "correlation", period: str | None = None, layers=None) -> xr.Dataset:
    """RDMs per layer and epoch, and linear CKA between epochs and between layers.

    Deterministic (``seed`` and ``run_dir`` are unused; taken for the registry's signature).

    Parameters
    ----------
    ds : xr.Dataset
        An activation dataset: layers (epoch, trial[, time], unit) (the ``epoch`` dim optional).
    labels : list of str, optional
        Trial labels whose observed combinations are the conditions; default: the task's declared
        labels (:func:`decisionnets.analyses.label_variables` without ``choice``). An empty list
        (or a dataset without labels) gives the CKA only.
    metric : {"correlation", "euclidean"}
        The RDM's dissimilarity (see :func:`rdm`); default ``"correlation"``.
    period : str, optional
        The task period whose time steps are averaged per trial; default: the response period
        (the one holding the last recorded step); ``"all"``: every step.
    layers : list of str, optional
        Default: every recorded layer (:func:`decisionnets.analyses.activity_layers`).
    progress : bool
        Show a tqdm bar over layers x epochs.

    Returns
    -------
    xr.Dataset
        ``rdm`` (layer, epoch, condition, condition2); ``condition_trials`` (condition): trials
        per condition; one coordinate per label on ``condition`` (its value in each condition) and
        a string ``condition`` / ``condition2`` naming it ("color=0, direction=1, ...");
        ``cka_epochs`` (layer, epoch, epoch2) and ``cka_layers`` (epoch, layer, layer2).
        Without an ``epoch`` dim in ``ds``: ``rdm`` (layer, condition, condition2) and
        ``cka_layers`` (layer, layer2). Attributes: ``metric``, ``period``, ``n_trials``.
    """
    from tqdm.auto import tqdm

    layers = list(layers) if layers is not None else activity_layers(ds)
    if not layers:
        raise UserError("similarity needs a recorded layer (a variable with a 'unit' or '<layer>_unit' dim); "
                        f"the dataset has {sorted(map(str, ds.data_vars))}")
    bad = [n for n in layers if n not in activity_layers(ds)]
    if bad:
        raise UserError(f"similarity layers {bad} are not recorded layers; recorded: {activity_layers(ds)}")
    if metric not in METRICS:
        raise UserError(f"similarity metric must be one of {', '.join(METRICS)}; got {metric!r}")
    if labels is None:
        labels = [n for n in label_variables(ds) if n != "choice" and "epoch" not in ds[n].dims]
    labels = list(labels)
    period = _response_period(ds) if period is None else period
    steps = _time_steps(ds, period)
    has_epoch = "epoch" in ds.dims
    epochs = [int(e) for e in ds["epoch"].values] if has_epoch else [None]

    valid = ~ds["catch"].values.astype(bool) if "catch" in ds.variables else np.ones(ds.sizes["trial"], bool)
    if labels:
        cond, combos, names, keep = _conditions(ds, labels)
        cond_of_trial = np.full(ds.sizes["trial"], -1)
        cond_of_trial[keep] = cond
        n_cond = len(combos)
        counts = np.bincount(cond, minlength=n_cond)
    trials = np.flatnonzero(valid)

    rdms = np.full((len(layers), len(epochs), n_cond, n_cond), np.nan) if labels else None
    parts = {}  # (layer, epoch index) -> CKA parts
    bar = tqdm(total=len(layers) * len(epochs), desc="similarity", disable=not progress, dynamic_ncols=True)
    for li, name in enumerate(layers):
        for ei, e in enumerate(epochs):
            act = ds[name].sel(epoch=e) if has_epoch else ds[name]
            pat = _patterns(act, steps)
            parts[li, ei] = _cka_parts(pat[trials])
            if labels:
                means = np.zeros((n_cond, pat.shape[1]))
                np.add.at(means, cond, pat[keep])
                means /= counts[:, None]
                rdms[li, ei] = rdm(means, metric)
            bar.update()
    bar.close()

    cka_ep = np.array([[[_cka_from(parts[li, a], parts[li, b]) for b in range(len(epochs))]
                        for a in range(len(epochs))] for li in range(len(layers))])
    cka_ly = np.array([[[_cka_from(parts[a, ei], parts[b, ei]) for b in range(len(layers))]
                        for a in range(len(layers))] for ei in range(len(epochs))])

    coords = {"layer": layers, "layer2": layers}
    data = {}
    if has_epoch:
        coords.update(epoch=epochs, epoch2=epochs)
        data["cka_epochs"] = (("layer", "epoch", "epoch2"), cka_ep)
        data["cka_layers"] = (("epoch", "layer", "layer2"), cka_ly)
    else:
        data["cka_layers"] = (("layer", "layer2"), cka_ly[0])
    if labels:
        cnames = [", ".join(f"{n}={_fmt(v)}" for n, v in zip(names, row)) for row in combos]
        coords.update(condition=cnames, condition2=cnames)
        for j, n in enumerate(names):
            col = combos[:, j]
            coords[n] = ("condition", col.astype(np.int64) if np.all(col == np.round(col)) else col)
        data["rdm"] = ((("layer", "epoch") if has_epoch else ("layer",)) + ("condition", "condition2"),
                       rdms if has_epoch else rdms[:, 0])
        data["condition_trials"] = (("condition",), counts.astype(np.int64))
    out = xr.Dataset(data, coords=coords, attrs={
        "metric": metric, "period": "" if period is None else str(period), "n_trials": int(len(trials)),
        "labels": ", ".join(labels),
        "description": "rdm: dissimilarity between condition-mean patterns (1 - Pearson r for 'correlation', "
                       "Euclidean distance for 'euclidean'); cka_*: linear CKA (Kornblith et al. 2019) on "
                       "column-centered trial x unit matrices; time-resolved layers averaged over the period",
    })
    if labels:
        out["rdm"].attrs["units"] = "1 - Pearson r" if metric == "correlation" else "activity (Euclidean distance)"
    return out


def _fmt(v) -> str:
    return str(int(v)) if float(v) == int(v) else f"{v:g}"


# ---------------------------------------------------------------------------------------- figure
def plot_similarity(result: xr.Dataset, ax=None, *, kind: str = "both", layer: str | None = None,
                    epoch: int | None = None):
    """The epoch x epoch CKA matrix of one layer and the RDM of one layer at one epoch.

    Parameters
    ----------
    result : xr.Dataset
        From :func:`similarity`.
    ax : Axes or sequence of two Axes, optional
        ``kind="both"``: two Axes (CKA, RDM); otherwise one. New ones when None.
    kind : {"both", "cka", "rdm"}
    layer : str, optional
        Default: the last layer.
    epoch : int, optional
        The RDM's epoch; default the last recorded one.

    Returns
    -------
    Axes, or ndarray of two Axes for ``kind="both"``.
        Without an ``epoch`` dim the CKA panel is the layer x layer matrix.
    """
    import matplotlib.pyplot as plt

    if kind not in ("both", "cka", "rdm"):
        raise UserError(f"plot_similarity kind must be 'both', 'cka' or 'rdm'; got {kind!r}")
    if kind != "cka" and "rdm" not in result:
        raise UserError("plot_similarity: this result has no RDM (computed without labels); use kind='cka'")
    n = 2 if kind == "both" else 1
    if ax is None:
        _, ax = plt.subplots(1, n, figsize=(5.0 * n, 4.4), squeeze=False, layout="constrained")
        ax = ax[0]
    axes = np.atleast_1d(np.asarray(ax, dtype=object))
    if len(axes) != n:
        raise UserError(f"plot_similarity kind={kind!r} needs {n} Axes; got {len(axes)}")
    layer = str(result["layer"].values[-1]) if layer is None else layer
    has_epoch = "epoch" in result.dims
    panels = ["cka", "rdm"] if kind == "both" else [kind]
    for a, what in zip(axes, panels):
        if what == "cka":
            if has_epoch:
                m, lab = result["cka_epochs"].sel(layer=layer), [str(int(e)) for e in result["epoch"].values]
                a.set_title(f"linear CKA between epochs ({layer})")
                a.set_xlabel("epoch")
                a.set_ylabel("epoch")
            else:
                m, lab = result["cka_layers"], [str(v) for v in result["layer"].values]
                a.set_title("linear CKA between layers")
            im = a.imshow(np.asarray(m.values), vmin=0, vmax=1, cmap="viridis", origin="lower")
            a.set_xticks(range(len(lab)), lab, rotation=90 if len(lab) > 8 else 0)
            a.set_yticks(range(len(lab)), lab)
            a.figure.colorbar(im, ax=a, label="CKA")
        else:
            r = result["rdm"].sel(layer=layer)
            e = None
            if has_epoch:
                e = int(result["epoch"].values[-1]) if epoch is None else int(epoch)
                r = r.sel(epoch=e)
            im = a.imshow(np.asarray(r.values), cmap="magma", origin="upper")
            labs = [n for n in str(result.attrs.get("labels", "")).split(", ") if n in result.coords]
            if labs:  # short ticks: the label values joined by "/", the label names on the axes
                names = ["/".join(_fmt(result[n].values[i]) for n in labs) for i in range(result.sizes["condition"])]
                a.set_xlabel("/".join(labs))
                a.set_ylabel("/".join(labs))
            else:
                names = [str(c) for c in result["condition"].values]
            small = 7 if len(names) > 12 else None
            a.set_xticks(range(len(names)), names, rotation=90, fontsize=small)
            a.set_yticks(range(len(names)), names, fontsize=small)
            a.set_title(f"RDM ({result.attrs.get('metric', '')}, {layer}" + (f", epoch {e})" if e is not None else ")"))
            a.figure.colorbar(im, ax=a, label=result["rdm"].attrs.get("units", "dissimilarity"))
    return axes if kind == "both" else axes[0]
