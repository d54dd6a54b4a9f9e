"""Labels and folds of the decoding problems: missing samples, rare classes, stratified K-fold.

Array-level (numpy) helpers of :class:`decisionnets.decoding.UsableInformation`: labels are
ndarrays (P, V, n) of P problems, V label variables and n samples, -1 (or NaN) for missing.
"""

from __future__ import annotations

import numpy as np

from decisionnets.errors import UserError

__all__ = ["clean_labels", "class_counts", "missing_samples", "check_folds_fit", "class_warnings", "stratified_folds"]


def clean_labels(y: np.ndarray, folds: int) -> tuple[np.ndarray, int]:
    """Integer labels with -1 for missing, rare classes (< ``folds`` samples) set to -1.

    Parameters
    ----------
    y : ndarray (P, V, n) of float or int
    folds : int

    Returns
    -------
    labels : ndarray (P, V, n) int64, -1 where missing
    n_classes : int, max label + 1 (at least 1)
    """
    y = np.asarray(y)
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y)
        yi = np.where(bad, -1, y).astype(np.int64)
        if np.any((yi != np.where(bad, -1, y))):
            raise UserError("labels must be whole numbers (class indices); got non-integer values")
    elif y.dtype.kind in "iub":
        yi = y.astype(np.int64)
    else:
        raise UserError(f"labels must be integer class indices (-1/NaN = missing); got dtype {y.dtype}")
    yi = np.where(yi < 0, -1, yi)
    n_classes = int(yi.max()) + 1 if yi.size and yi.max() >= 0 else 1
    n_classes = max(n_classes, 1)
    counts = class_counts(yi, n_classes)  # (P, V, C)
    rare = counts < folds
    if rare.any():
        idx = np.clip(yi, 0, None)
        is_rare = np.take_along_axis(rare, idx, axis=-1) & (yi >= 0)
        yi = np.where(is_rare, -1, yi)
    return yi, n_classes


def class_counts(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts per class, ndarray (..., C), of integer labels (..., n) with -1 missing."""
    out = np.zeros(y.shape[:-1] + (n_classes,), dtype=np.int64)
    for c in range(n_classes):
        out[..., c] = (y == c).sum(-1)
    return out


def missing_samples(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``y`` (P, V, n) with the samples whose features are all NaN set missing; any other
    non-finite feature is a :class:`UserError` that counts the samples and features holding one."""
    finite = np.isfinite(X)
    if finite.all():
        return y
    empty = np.isnan(X).all(-1)  # (P, n): no features at all (e.g. a trial that had ended)
    bad = ~finite & ~empty[..., None]
    if bad.any():
        n_inf = int(np.isinf(X).sum())
        n_nan = int((np.isnan(X) & ~empty[..., None]).sum())
        samples = np.flatnonzero(bad.any(-1).any(0))
        units = np.flatnonzero(bad.any(1).any(0))
        raise UserError(
            f"features must be finite: {n_nan} NaN and {n_inf} inf values in {samples.size} of {X.shape[1]} "
            f"samples (trials, e.g. {samples[:5].tolist()}) and {units.size} of {X.shape[2]} features (units, "
            f"e.g. {units[:5].tolist()}); a sample whose features are all NaN counts as missing, any other "
            "must be dropped or imputed before decoding")
    y = np.array(y, dtype=np.float64)
    y[np.broadcast_to(empty[:, None, :], y.shape)] = np.nan
    return y


def check_folds_fit(raw: np.ndarray, folds: int) -> None:
    """Refuse ``folds`` when no problem can keep two classes with >= ``folds`` samples each (all
    would be NaN, after K(K-1)/2 fits): the bound is the second-largest class of the problems."""
    if raw.size == 0 or raw.max() < 0:
        return
    counts = np.sort(class_counts(raw, int(raw.max()) + 1), axis=-1)  # (P, V, C) ascending
    if counts.shape[-1] < 2:
        return
    second = counts[..., -2]
    has_two = second > 0
    if has_two.any() and (second[has_two] < folds).all():
        best = int(second[has_two].max())
        raise UserError(f"folds={folds} is larger than the second-largest class of every decoding problem (at most "
                        f"{best} samples): no problem keeps two classes to decode; "
                        + (f"use folds <= {best}" if best >= 3 else
                           "record more trials per class (e.g. record.n_per_condition) or merge classes (bins)"))


def class_warnings(few, dropped, raw, labels, folds, where) -> list[str]:
    """Messages for the problems with fewer than 2 usable classes and those that lost classes,
    one per variable and kind, naming the problems (``where(p, v)``) and the class counts."""
    P, V = few.shape
    out = []
    for v in range(V):
        for mask, what in ((few[:, v], "is NaN: fewer than 2 classes have >= folds={K} samples"),
                           (dropped[:, v], "leaves out classes with fewer than folds={K} samples")):
            idx = np.flatnonzero(mask)
            if idx.size == 0:
                continue
            p = int(idx[0])
            vals, cnt = np.unique(raw[p, v][raw[p, v] >= 0], return_counts=True)
            counts = ", ".join(f"{int(a)}: {int(c)}" for a, c in zip(vals, cnt)) or "none"
            name = where(p, v) if where is not None else f"problem {p}, variable {v}"
            more = f" (and {idx.size - 1} more of {P} problems)" if idx.size > 1 else ""
            out.append(f"information about {name}{more} {what.format(K=folds)} (samples per class: {counts}); "
                       "the problem is flagged in `unreliable`")
    return out


def stratified_folds(y: np.ndarray, folds: int, n_classes: int, seed: int) -> np.ndarray:
    """Stratified fold index per sample, ndarray (P, V, n) int64, -1 for missing samples.

    One random key per sample position and one random starting fold per class are drawn from
    ``seed``; they are shared by all rows, so rows with equal labels get equal folds.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED]))
    n = y.shape[-1]
    key = rng.random(n)
    start = rng.integers(0, folds, size=n_classes)
    flat = y.reshape(-1, n)
    sort_key = np.where(flat >= 0, flat, n_classes) + key[None, :]
    order = np.argsort(sort_key, axis=-1, kind="stable")
    sorted_y = np.take_along_axis(flat, order, axis=-1)
    # rank of each sorted sample within its class
    pos = np.arange(n)[None, :]
    new_block = np.ones_like(sorted_y, dtype=bool)
    new_block[:, 1:] = sorted_y[:, 1:] != sorted_y[:, :-1]
    block_start = np.maximum.accumulate(np.where(new_block, pos, 0), axis=-1)
    rank = pos - block_start
    offs = start[np.clip(sorted_y, 0, None)]
    f_sorted = np.where(sorted_y >= 0, (rank + offs) % folds, -1)
    f = np.empty_like(f_sorted)
    np.put_along_axis(f, order, f_sorted, axis=-1)
    return f.reshape(y.shape)
