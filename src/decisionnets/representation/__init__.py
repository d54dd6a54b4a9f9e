"""Representation analyses: how a recorded population is organized, epoch by epoch.

The decoding (:mod:`decisionnets.analyses`) says *how much* usable information a layer holds
about each label. The analyses here say *how* it is held, on the same probe trials at every
recorded epoch:

* ``selectivity`` (:func:`decisionnets.representation.selectivity.selectivity`): which declared
  labels explain each unit's activity beyond chance (a per-unit linear model, permutation test,
  Benjamini-Hochberg correction); units classed pure / mixed / none / silent;
* ``geometry`` (:func:`decisionnets.representation.geometry.geometry`): condition-averaged
  trajectories on principal components fixed across epochs, participation-ratio dimensionality,
  and the variance of each task variable and their interactions (the marginalization of demixed PCA);
* ``similarity``: condition x condition dissimilarity matrices and linear CKA between epochs and layers;
* ``fixed-points``: slow points of the trained recurrent dynamics per recorded epoch.

:data:`REPRESENTATION_ANALYSES` maps each name to ``(module, compute function, plot function)``,
imported only when used. The contract of every entry:

* compute: ``fn(ds, *, run_dir=None, seed=0, progress=False, **options) -> xr.Dataset`` with
  named dims, where ``ds`` is an activation dataset (DESIGN.md section 3; a dataset without an
  ``epoch`` dim, such as recorded neurons, counts as one epoch);
* plot: ``plot(result, ax=None, **kw)`` returning the matplotlib Axes it drew on (or an array of
  Axes when the figure has several panels; its docstring says so); with ``ax=None`` it draws on a
  new :class:`matplotlib.figure.Figure` (no pyplot state).

:func:`run_representation` computes one of them on a run and writes ``RUN/analyses/NAME.nc`` and
``RUN/figures/NAME.png``; ``decisionnets analyze RUN --analyses NAME ...`` calls it.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Callable

import xarray as xr

from decisionnets.errors import UserError

__all__ = ["REPRESENTATION_ANALYSES", "representation_names", "get_analysis", "run_representation",
           "DECODING_NAME"]

#: name -> (module path, compute function name, plot function name).
REPRESENTATION_ANALYSES: dict[str, tuple[str, str, str]] = {
    "selectivity": ("decisionnets.representation.selectivity", "selectivity", "plot_selectivity"),
    "geometry": ("decisionnets.representation.geometry", "geometry", "plot_geometry"),
    "similarity": ("decisionnets.representation.similarity", "similarity", "plot_similarity"),
    "fixed-points": ("decisionnets.representation.fixed_points", "fixed_points", "plot_fixed_points"),
}

#: The name that ``--analyses`` gives the default analysis, the decoding (usable information).
DECODING_NAME = "information"


def representation_names() -> list[str]:
    """The registered representation analyses, in registry order."""
    return list(REPRESENTATION_ANALYSES)


def get_analysis(name: str) -> tuple[Callable, Callable]:
    """The ``(compute, plot)`` functions of a registered analysis (imported now).

    Raises
    ------
    UserError
        When ``name`` is not registered (the message lists the known names), or its module
        cannot be imported (a missing optional dependency).
    """
    if name not in REPRESENTATION_ANALYSES:
        raise UserError(f"unknown analysis {name!r}; known: {', '.join([DECODING_NAME, *REPRESENTATION_ANALYSES])}")
    module, compute, plot = REPRESENTATION_ANALYSES[name]
    try:
        mod = importlib.import_module(module)
    except ImportError as e:  # e.g. an optional dependency of that analysis is not installed
        raise UserError(f"analysis {name!r} cannot be loaded ({module}): {e}") from e
    return getattr(mod, compute), getattr(mod, plot)


def _accepted(fn: Callable, options: dict) -> dict:
    """The ``options`` that ``fn`` takes (all of them when it takes ``**kwargs``)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(options)
    return {k: v for k, v in options.items() if k in params}


def run_representation(name: str, ds: xr.Dataset | None = None, *, run_dir=None, out_dir=None, seed: int = 0,
                       progress: bool = False, figure: bool = True, **options) -> list[Path]:
    """Compute one representation analysis on a run and write its result and figure.

    Parameters
    ----------
    name : str
        A key of :data:`REPRESENTATION_ANALYSES`.
    ds : xr.Dataset, optional
        The activation dataset; default: :func:`decisionnets.open_activations` of ``run_dir``.
    run_dir : path, optional
        The run directory (analyses that need more than activations, e.g. saved weights, read it).
    out_dir : path, optional
        Where ``analyses/NAME.nc`` and ``figures/NAME.png`` go; default: ``run_dir``.
    seed : int
        The analysis' seed (split inside with :class:`numpy.random.SeedSequence`).
    progress : bool
        Show a progress bar where the analysis has one.
    figure : bool
        Also draw and save ``figures/NAME.png``.
    **options
        Passed to the compute function; options it does not take (e.g. ``layers`` to an analysis
        without that option) are dropped.

    Returns
    -------
    list of Path
        ``OUT/analyses/NAME.nc`` (written atomically), then the figure.
    """
    from decisionnets.io import open_activations
    from decisionnets.io import write_netcdf

    compute, plot = get_analysis(name)
    if ds is None:
        if run_dir is None:
            raise UserError("run_representation needs a dataset or a run_dir")
        ds = open_activations(run_dir)
    out_dir = Path(out_dir if out_dir is not None else run_dir if run_dir is not None else ".")
    run_path = Path(run_dir) if run_dir is not None else None
    result = compute(ds, run_dir=run_path, seed=seed, progress=progress, **_accepted(compute, options))
    result.attrs.setdefault("analysis", name)
    result.attrs.setdefault("analysis_seed", int(seed))
    for k in ("task", "env", "model", "seed", "run_identity"):
        if k in ds.attrs and isinstance(ds.attrs[k], (str, int, float)):
            result.attrs.setdefault(f"run_{k}" if k == "seed" else k, ds.attrs[k])
    path = out_dir / "analyses" / f"{name}.nc"
    write_netcdf(result, path)
    paths = [path]
    if figure:
        import numpy as np

        axes = plot(result)
        fig = (np.asarray(axes).flat[0] if isinstance(axes, np.ndarray) else axes).figure
        fig_path = out_dir / "figures" / f"{name}.png"
        fig_path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(fig_path, dpi=110, bbox_inches="tight")
        paths.append(fig_path)
    return paths
