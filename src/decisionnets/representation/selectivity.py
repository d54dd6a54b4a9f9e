"""Unit selectivity over training: which task labels explain each unit's activity beyond chance.

For every recorded layer, epoch, task period and unit, the unit's mean activity over the period's
time steps on each probe trial is fitted by an additive linear model with one one-hot block per
label (intercept + ``k - 1`` columns for a label with ``k`` values). Each label's contribution is
the partial F statistic of dropping its block from the full model. Its p-value comes from a
Freedman-Lane permutation test: the residuals of the model without the label are permuted across
trials and added back to that model's fit, so the other labels' effects are kept under the null.
One set of permutations (drawn from the seed with :class:`numpy.random.SeedSequence`) is shared by
every unit, epoch and period, and the test is vectorized over them.

The p-values are corrected for multiple comparisons by Benjamini-Hochberg (false discovery rate
``alpha``) across all units x labels of one layer, epoch and period. Each unit is then classed:

* ``silent``: its period-mean activity does not vary across trials (standard deviation <= ``silent_tol``);
  it is not tested and not counted in the corrections;
* ``pure``: exactly one label significant;
* ``mixed``: two or more labels significant;
* ``none``: it varies, but no label is significant.

The permutation p-value is never below ``1 / (n_permutations + 1)`` (0.005 with the default 200), so
Benjamini-Hochberg can reject only when at least ``m / (alpha * (n_permutations + 1))`` of the ``m``
tests reach that floor (about 20 of 192 tests for 64 units x 3 labels): a layer with a handful of
selective units needs more permutations (``n_permutations=2000``) to show them.

Labels must be categorical (each distinct value is a level). A label that another one determines
(e.g. ``choice`` equal to ``direction`` on every trial) has no variance of its own: its F is NaN
and it is never significant. That is why ``choice`` is not among the default labels.
"""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np
import xarray as xr

from decisionnets.representation._data import (default_labels, label_matrix, layer_array, layer_names,
                                               period_groups, with_epoch)

__all__ = ["selectivity", "plot_selectivity", "benjamini_hochberg", "CLASSES"]

#: Unit classes, in the order of the ``class`` dim.
CLASSES = ("pure", "mixed", "none", "silent")

_CLASS_COLORS = {"pure": "tab:blue", "mixed": "tab:purple", "none": "tab:gray", "silent": "black"}


def selectivity(ds: xr.Dataset, *, run_dir=None, seed: int = 0, progress: bool = False,
                variables: Sequence[str] | None = None, layers: Sequence[str] | None = None,
                n_permutations: int = 200, alpha: float = 0.05, silent_tol: float = 1e-6,
                exclude_catch: bool = True) -> xr.Dataset:
    """Per-unit selectivity to the task's labels at every recorded epoch and task period.

    Parameters
    ----------
    ds : xr.Dataset
        Activation dataset: layers (epoch, trial[, time], unit); labels as (trial) or (epoch,
        trial) variables. Without an ``epoch`` dim it is one epoch (0); without ``time`` (images,
        static nets) or without a ``period`` coord, one period ``"all"``.
    run_dir : path, optional
        Unused (the registry's contract).
    seed : int
        Seed of the permutations.
    progress : bool
        Unused (fast enough without a bar).
    variables : list of str, optional
        Labels tested; default: the task's declared labels (attr ``decode_labels``), without
        ``choice``. An (epoch, trial) label such as ``choice`` is taken per epoch.
    layers : list of str, optional
        Layers analysed (default: every recorded layer).
    n_permutations : int
        Permutations of the test; the smallest p-value is ``1 / (n_permutations + 1)``.
    alpha : float
        False discovery rate of the Benjamini-Hochberg correction.
    silent_tol : float
        A unit whose period-mean activity has a standard deviation across trials at most this
        (in activity units) is silent.
    exclude_catch : bool
        Leave out catch trials (coord ``catch`` == 1). Trials with a negative label are always left out.

    Returns
    -------
    xr.Dataset
        * ``f_statistic``, ``p_value``, ``p_adjusted`` (BH), ``significant`` (int8):
          (epoch, period, unit, variable); NaN (0) for silent units and untestable labels;
        * ``unit_class`` (epoch, period, unit): one of :data:`CLASSES`;
        * ``class_count``, ``class_fraction`` (layer, epoch, period, class);
        * ``selective_fraction`` (layer, epoch, period, variable): fraction of a layer's units
          significant for each label (silent units count in the denominator);
        * coords ``unit_layer`` (unit) and ``layer_unit`` (unit): the layer of each unit and its
          index in that layer (the layers' units are concatenated along ``unit``).

        attrs: the method, correction, ``n_permutations``, ``alpha``, ``silent_tol``, ``seed``.
    """
    if not (isinstance(n_permutations, (int, np.integer)) and n_permutations >= 1):
        from decisionnets.errors import UserError
        raise UserError(f"n_permutations must be an integer >= 1; got {n_permutations!r}")
    if not 0 < alpha < 1:
        from decisionnets.errors import UserError
        raise UserError(f"alpha must be in (0, 1); got {alpha!r}")
    ds = with_epoch(ds)
    names = list(variables) if variables else default_labels(ds)
    labels = label_matrix(ds, names, exclude_catch=exclude_catch)  # (E, N, V)
    periods = period_groups(ds)
    epochs = ds["epoch"].values
    E, V, Pn = len(epochs), len(names), len(periods)
    designs = _designs(labels, n_permutations, seed)

    per_unit, per_layer = [], []
    for layer in layer_names(ds, layers):
        act = layer_array(ds, layer)  # (E, N, T, U)
        U = act.shape[-1]
        # period means (E, P, N, U)
        means = np.stack([act[:, :, idx if idx is not None else slice(None), :].mean(axis=2) for _, idx in periods],
                         axis=1)
        F = np.full((E, Pn, U, V), np.nan)
        p = np.full((E, Pn, U, V), np.nan)
        silent = np.zeros((E, Pn, U), bool)
        for design, e_idx in designs:
            Y = means[e_idx][:, :, design.valid, :]  # (G, P, n, U)
            sd = Y.std(axis=2)
            silent[e_idx] = sd <= silent_tol
            Ymat = np.moveaxis(Y, 2, 0).reshape(design.n, -1)  # (n, G*P*U)
            f, pv = design.test(Ymat)  # (V, G*P*U)
            f = f.reshape(V, len(e_idx), Pn, U).transpose(1, 2, 3, 0)
            pv = pv.reshape(V, len(e_idx), Pn, U).transpose(1, 2, 3, 0)
            F[e_idx], p[e_idx] = f, pv
        F[silent], p[silent] = np.nan, np.nan
        p_adj = np.full_like(p, np.nan)
        for e in range(E):
            for k in range(Pn):
                p_adj[e, k] = benjamini_hochberg(p[e, k])
        sig = np.nan_to_num(p_adj, nan=1.0) <= alpha
        n_sig = sig.sum(-1)
        cls = np.where(silent, "silent", np.where(n_sig == 0, "none", np.where(n_sig == 1, "pure", "mixed")))
        counts = np.stack([(cls == c).sum(-1) for c in CLASSES], axis=-1)  # (E, P, C)
        dims = ("epoch", "period", "unit", "variable")
        per_unit.append(xr.Dataset(
            {"f_statistic": (dims, F), "p_value": (dims, p), "p_adjusted": (dims, p_adj),
             "significant": (dims, sig.astype(np.int8)), "unit_class": (dims[:3], cls.astype(str))},
            coords={"unit_layer": ("unit", np.full(U, layer)), "layer_unit": ("unit", np.arange(U))}))
        per_layer.append(xr.Dataset(
            {"class_count": (("epoch", "period", "class"), counts),
             "class_fraction": (("epoch", "period", "class"), counts / U),
             "selective_fraction": (("epoch", "period", "variable"), sig.sum(2) / U)}).expand_dims(layer=[layer]))
    coords = {"epoch": epochs, "period": [n for n, _ in periods], "variable": names, "class": list(CLASSES)}
    units = xr.concat(per_unit, dim="unit", data_vars="all") if len(per_unit) > 1 else per_unit[0]
    out = xr.merge([units.assign_coords(unit=np.arange(units.sizes["unit"])), xr.concat(per_layer, dim="layer")])
    out = out.assign_coords(coords)
    out["f_statistic"].attrs["long_name"] = "partial F statistic of the label's one-hot block"
    out["p_value"].attrs["long_name"] = "Freedman-Lane permutation p-value, (1 + #{F* >= F}) / (1 + n_permutations)"
    out["p_adjusted"].attrs["long_name"] = "Benjamini-Hochberg adjusted p-value (units x labels of one layer, epoch, period)"
    out.attrs.update(
        method="per-unit additive linear model on period-mean activity (one-hot per label), partial F per label, "
               "Freedman-Lane permutation test (permutations shared across units, epochs and periods)",
        correction="Benjamini-Hochberg FDR across units x labels within each layer, epoch and period; "
                   "silent units and untestable labels left out",
        classes="pure: one label significant; mixed: >= 2; none: 0; silent: std across trials <= silent_tol",
        n_permutations=int(n_permutations), alpha=float(alpha), silent_tol=float(silent_tol), seed=int(seed),
        variables=json.dumps(names), exclude_catch=int(exclude_catch))
    return out


# ------------------------------------------------------------------------------------------ the test
class _Design:
    """The additive one-hot model of one set of labelled trials, its reduced models and permutations."""

    def __init__(self, L: np.ndarray, valid: np.ndarray, perms: np.ndarray):
        self.valid = valid
        L = L[valid]
        self.n = n = L.shape[0]
        blocks = []
        for j in range(L.shape[1]):
            levels = np.unique(L[:, j])
            blocks.append((L[:, j][:, None] == levels[1:][None, :]).astype(float))
        ones = np.ones((n, 1))
        self.Q_full = _basis(np.hstack([ones, *blocks]))
        self.Q_red = [_basis(np.hstack([ones, *[b for i, b in enumerate(blocks) if i != j]])) for j in range(len(blocks))]
        r_full = self.Q_full.shape[1]
        self.df = np.array([r_full - q.shape[1] for q in self.Q_red])
        self.df_res = n - r_full
        # inverse permutations: (Q^T Z[pi]) = (Q[pi^-1])^T Z
        self.inv = np.argsort(perms, axis=1) if perms.size else perms

    def test(self, Y: np.ndarray, chunk: int = 100) -> tuple[np.ndarray, np.ndarray]:
        """Partial F and permutation p-value of each label for every column of ``Y`` (n, M); (V, M) each."""
        V, M = len(self.Q_red), Y.shape[1]
        F = np.full((V, M), np.nan)
        p = np.full((V, M), np.nan)
        if self.df_res <= 0:
            return F, p
        rss_full = _rss(self.Q_full, Y)
        P = self.inv.shape[0]
        for j, Qr in enumerate(self.Q_red):
            df = self.df[j]
            if df == 0:
                continue
            Z = Y - Qr @ (Qr.T @ Y)  # residuals of the reduced model
            rss_red = (Z ** 2).sum(0)
            with np.errstate(divide="ignore", invalid="ignore"):
                F[j] = ((rss_red - rss_full) / df) / (rss_full / self.df_res)
            zz = rss_red
            exceed = np.zeros(M)
            for start in range(0, P, chunk):
                inv = self.inv[start:start + chunk]
                pf = _proj_sq(self.Q_full, inv, Z)  # (c, M)
                pr = _proj_sq(Qr, inv, Z)
                with np.errstate(divide="ignore", invalid="ignore"):
                    Fp = ((pf - pr) / df) / ((zz - pf) / self.df_res)
                exceed += (Fp >= F[j] * (1 - 1e-9)).sum(0)
            p[j] = (1 + exceed) / (1 + P)
        p[np.isnan(F)] = np.nan
        return F, p


def _basis(X: np.ndarray) -> np.ndarray:
    """An orthonormal basis (n, rank) of the column space of ``X``."""
    u, s, _ = np.linalg.svd(X, full_matrices=False)
    return u[:, s > s[0] * max(X.shape) * np.finfo(float).eps * 10]


def _rss(Q: np.ndarray, Y: np.ndarray) -> np.ndarray:
    R = Y - Q @ (Q.T @ Y)
    return (R ** 2).sum(0)


def _proj_sq(Q: np.ndarray, inv: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """``||Q^T Z[pi]||^2`` per column of Z, for each permutation (its inverse in ``inv`` (c, n)); (c, M)."""
    c, k = inv.shape[0], Q.shape[1]
    Qp = Q[inv]  # (c, n, k)
    A = np.transpose(Qp, (0, 2, 1)).reshape(c * k, -1) @ Z  # (c*k, M)
    return (A.reshape(c, k, -1) ** 2).sum(1)


def _designs(labels: np.ndarray, n_permutations: int, seed: int) -> list[tuple[_Design, np.ndarray]]:
    """One :class:`_Design` per distinct (valid trials, labels) among the epochs, with the epochs it serves."""
    groups: dict[bytes, list[int]] = {}
    for e in range(labels.shape[0]):
        valid = np.isfinite(labels[e]).all(1)
        key = valid.tobytes() + labels[e][valid].tobytes()
        groups.setdefault(key, []).append(e)
    children = np.random.SeedSequence(seed).spawn(len(groups))
    out = []
    for child, e_idx in zip(children, groups.values()):
        valid = np.isfinite(labels[e_idx[0]]).all(1)
        rng = np.random.default_rng(child)
        n = int(valid.sum())
        perms = np.array([rng.permutation(n) for _ in range(n_permutations)]).reshape(n_permutations, n)
        out.append((_Design(labels[e_idx[0]], valid, perms), np.array(e_idx)))
    return out


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values of ``p`` (any shape); NaN entries are left out and stay NaN.

    ``p_adjusted <= alpha`` rejects the hypotheses of the BH step-up procedure at false discovery rate ``alpha``.
    """
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    x = p[ok]
    m = x.size
    if m == 0:
        return out
    order = np.argsort(x)
    ranked = x[order] * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(ranked[::-1])[::-1]
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


# ------------------------------------------------------------------------------------------ figure
def plot_selectivity(result: xr.Dataset, ax=None, *, layer: str | None = None, period: str | None = None):
    """Fraction of units in each class (pure, mixed, none, silent) vs training epoch.

    Parameters
    ----------
    result : xr.Dataset
        The output of :func:`selectivity`.
    ax : matplotlib Axes, optional
        Drawn on a new figure when None.
    layer : str, optional
        Layer drawn (default: the last recorded, the one nearest the output).
    period : str, optional
        Task period drawn (default: the last, e.g. the decision period).

    Returns
    -------
    matplotlib Axes
    """
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        from matplotlib.figure import Figure

        ax = Figure(figsize=(4.6, 3.4), layout="constrained").subplots()
    layer = layer or str(result["layer"].values[-1])
    period = period or str(result["period"].values[-1])
    frac = result["class_fraction"].sel(layer=layer, period=period)
    epochs = frac["epoch"].values
    for c in CLASSES:
        ax.plot(epochs, frac.sel({"class": c}).values, marker="o", ms=3, label=c, color=_CLASS_COLORS[c])
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("fraction of units")
    ax.set_ylim(-0.02, 1.02)
    variables = ", ".join(map(str, result["variable"].values))
    ax.set_title(f"selectivity: {layer}, {period}\n(labels: {variables}; BH q={result.attrs.get('alpha', '')})",
                 fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    return ax
