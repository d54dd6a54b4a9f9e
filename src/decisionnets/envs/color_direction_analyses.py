"""The checkerboard task's own analyses, declared by :class:`~decisionnets.envs.color_direction.CheckerboardTask`.

Data flow: netCDF (activations) -> decoding -> analyses (the generic ones of
:mod:`decisionnets.analyses`, and **these**, which only a checkerboard run declares) -> figures.

Each is an :class:`~decisionnets.analyses.Analysis` (name -> function, with the decoding problems
it fits) registered when this module is imported (the checkerboard env file imports it, and
:func:`decisionnets.analyses.analyses_for` imports the env files of the registry), so
``decisionnets analyze`` finds them by the names a dataset's ``analyses`` attr holds:

* ``choice_vs_direction`` (:data:`CHOICE_VS_DIRECTION`): the network's choice vs the correct
  reach ``direction``, decoded on error trials and as many matched correct trials
  (:func:`decisionnets.analyses.choice_vs_stimulus`) -> ``error_information`` (error_variable,
  epoch[, error_time]);
* ``psychometric`` (:data:`PSYCHOMETRIC`): the fraction of "right" choices vs the signed coherence
  toward the right target (:func:`psychometric_curve`) -> ``p_right`` (epoch, evidence), the
  axis label :data:`EVIDENCE_LABEL` the ``long_name`` of ``evidence``.

It also holds what the task declares for closed-loop behaviour (:data:`BEHAVIOUR_EVIDENCE`: accuracy
and reaction time are drawn against the signed coherence) and its labels' figure colours are in
:class:`~decisionnets.envs.color_direction.CheckerboardTask`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from decisionnets.analyses import Analysis, choice_vs_stimulus, choice_vs_stimulus_analysis, register_analysis

__all__ = ["CHOICE_VS_DIRECTION", "PSYCHOMETRIC", "ANALYSES", "psychometric", "psychometric_curve",
           "choice_vs_direction", "EVIDENCE_LABEL", "BEHAVIOUR_EVIDENCE"]


#: The evidence axis of the psychometric curve (the ``long_name`` of ``p_right``'s ``evidence`` coord,
#: the x label of :func:`decisionnets.plots.plot_psychometric`).
EVIDENCE_LABEL = "signed coherence toward the right target"
#: What a closed-loop rollout's accuracy and chronometric curves are drawn against
#: (:mod:`decisionnets.agents.behaviour`): the trial variable of signed evidence and its axis label.
BEHAVIOUR_EVIDENCE = ("coherence", "signed coherence (red - green) / squares")


def choice_vs_direction(act: xr.DataArray, ds: xr.Dataset, **kwargs) -> xr.Dataset:
    """:func:`~decisionnets.analyses.choice_vs_stimulus` with the stimulus ``direction`` (the correct reach).

    Parameters
    ----------
    act : DataArray (epoch, trial[, time], unit)
    ds : xr.Dataset
        The activation dataset (``choice`` (epoch, trial), ``direction`` (trial)).
    **kwargs
        As :func:`~decisionnets.analyses.choice_vs_stimulus`.

    Returns
    -------
    xr.Dataset
        ``error_information``, ``error_information_sd`` ([decoder,] error_variable, epoch[, error_time]).
    """
    return choice_vs_stimulus(act, ds, stimulus="direction", **kwargs)


def psychometric(choice: xr.DataArray, coherence: xr.DataArray, target_config: xr.DataArray | None = None,
                 valid: np.ndarray | None = None) -> xr.DataArray:
    """Fraction of "right" choices (choice == 1) per epoch and signed evidence toward the right.

    Evidence toward the right target = coherence (> 0: red dominant) if the red target is on the
    right (``target_config`` == 1), minus coherence otherwise; ``coherence`` itself when
    ``target_config`` is None.

    Parameters
    ----------
    choice : DataArray (epoch, trial) of int
    coherence : DataArray (trial) of float
    target_config : DataArray (trial) of int, optional
    valid : bool ndarray (trial), optional
        Trials counted (e.g. not catch).

    Returns
    -------
    DataArray (epoch, evidence), fraction in [0, 1]; the ``evidence`` coord's ``long_name`` is
    :data:`EVIDENCE_LABEL`.
    """
    coh = np.asarray(coherence.values, dtype=float)
    ev = coh * (2 * np.asarray(target_config.values) - 1) if target_config is not None else coh
    ev = np.round(ev, 6)
    ok = np.isfinite(ev) if valid is None else (np.isfinite(ev) & np.asarray(valid, bool))
    levels = np.unique(ev[ok])
    ch = np.asarray(choice.transpose("epoch", "trial").values)
    out = np.full((ch.shape[0], len(levels)), np.nan)
    for i, lv in enumerate(levels):
        m = ok & (ev == lv)
        out[:, i] = (ch[:, m] == 1).mean(-1)
    evidence = xr.Variable("evidence", levels, attrs={"long_name": EVIDENCE_LABEL})
    return xr.DataArray(out, dims=("epoch", "evidence"), coords={"epoch": choice["epoch"].values, "evidence": evidence},
                        name="p_right", attrs={"units": "fraction of right choices"})


def psychometric_curve(ds: xr.Dataset, *, valid: np.ndarray | None = None) -> xr.Dataset:
    """``p_right`` (epoch, evidence) of a checkerboard run: :func:`psychometric` of its choices.

    Parameters
    ----------
    ds : xr.Dataset
        ``choice`` (epoch, trial), ``coherence`` (trial) and, when present, ``target_config`` (trial).
    valid : bool ndarray (trial), optional
    """
    tc = ds["target_config"] if "target_config" in ds.variables else None
    return xr.Dataset({"p_right": psychometric(ds["choice"].load(), ds["coherence"].load(), tc, valid=valid)})


#: Choice vs direction on error trials (per layer; 2 labels x epochs x period ends x decoders problems).
CHOICE_VS_DIRECTION = choice_vs_stimulus_analysis("choice_vs_direction", "direction")
#: The psychometric curve (per run; fits no decoder).
PSYCHOMETRIC = Analysis("psychometric", lambda job: psychometric_curve(job.ds, valid=job.valid), lambda job: 0,
                        needs=("choice", "coherence"), per_layer=False, declared=True)
#: The checkerboard's analyses, in the order they run (what :class:`CheckerboardTask` declares).
ANALYSES = (CHOICE_VS_DIRECTION, PSYCHOMETRIC)

for _analysis in ANALYSES:
    register_analysis(_analysis, overwrite=True)  # a reload of this module replaces its own entries
