"""The Bayes-optimal (ideal) observer of the checkerboard task: the ceiling for accuracy and information.

The checkerboard envs declare it as their task's ceiling
(:meth:`decisionnets.envs.color_direction.CheckerboardTask.ceiling`), which the recorder writes
into every activation dataset (attr ``ceiling``) and ``analyze`` into ``information.nc``.

On a non-catch trial the two coherence channels are ``x_red = c + n1`` and
``x_green = -c + n2`` with independent Gaussian noise of standard deviation
``s`` per step. The likelihood depends on the data only through the mean
``m`` of ``(x_red - x_green) / 2`` over the ``K`` steps the board was seen,
and ``m ~ N(c, s^2 / (2K))``. With ``c`` drawn uniformly from the coherence
set, the posterior of "red dominates" is

    P(red | m) = sum_{c > 0} phi((m - c) / v) / sum_c phi((m - c) / v),   v = s / sqrt(2K)

The target configuration is seen without noise, so the direction posterior is
the same number. The ideal observer's accuracy is E[max(P, 1 - P)] and the
information the inputs hold about color (and direction) is
``1 - E[H2(P)]`` bits; both expectations are computed by numerical
integration over ``m`` (a fine grid, per coherence), not by sampling.
"""

from __future__ import annotations

import numpy as np


def _posterior_grid(coherences, v, n_grid=20001):
    c = np.asarray(coherences, dtype=float)
    lo, hi = c.min() - 8 * v, c.max() + 8 * v
    m = np.linspace(lo, hi, n_grid)
    dens = np.exp(-0.5 * ((m[None, :] - c[:, None]) / v) ** 2) / (v * np.sqrt(2 * np.pi))  # (coh, grid)
    p_red = dens[c > 0].sum(0) / np.maximum(dens.sum(0), 1e-300)
    return m, dens, p_red


def color_direction_ceiling(coherences, sigma_step: float, n_steps: int) -> dict:
    """Ideal-observer accuracy and information for the color-direction task.

    Parameters
    ----------
    coherences : sequence of float
        Signed coherences, drawn uniformly.
    sigma_step : float
        Noise standard deviation per step on each coherence channel
        (``sigma / sqrt(dt)`` for :class:`~decisionnets.envs.ColorDirection`,
        ``sigma`` for the static task).
    n_steps : int
        Number of board samples seen before the response.

    Returns
    -------
    dict
        ``accuracy`` (fraction), ``information`` (bits about color, equal to
        that about direction), ``accuracy_by_coherence`` (dict coherence -> fraction).
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1; got {n_steps}")
    c = np.asarray(coherences, dtype=float)
    v = sigma_step / np.sqrt(2 * n_steps)
    if v == 0:
        return {"accuracy": 1.0, "information": 1.0, "accuracy_by_coherence": {float(x): 1.0 for x in c}}
    m, dens, p_red = _posterior_grid(c, v)
    dm = m[1] - m[0]
    p_red = np.clip(p_red, 1e-15, 1 - 1e-15)
    h2 = -(p_red * np.log2(p_red) + (1 - p_red) * np.log2(1 - p_red))
    correct = np.where(c[:, None] > 0, p_red >= 0.5, p_red < 0.5)  # (coh, grid): the MAP answer is right
    acc_c = (dens * correct).sum(1) * dm
    info = 1.0 - float((dens.mean(0) * h2).sum() * dm)
    return {"accuracy": float(acc_c.mean()), "information": info,
            "accuracy_by_coherence": {float(x): float(a) for x, a in zip(c, acc_c)}}


def ceiling_for_env(env) -> dict:
    """The ceiling for a checkerboard env instance, wrapped (``gymnasium.make``) or not.

    ``ColorDirection``: the board seen during the probe timing's stimulus and decision periods;
    ``ColorDirectionRT``: the whole probe stimulus period (the longest a subject may wait);
    ``ColorDirectionStatic``: one sample.

    Each checkerboard env says what its ideal observer sees through ``ideal_observer_evidence()``:
    ``(coherences, noise s.d. per sample, number of samples)``.

    Raises
    ------
    TypeError
        For an env without ``ideal_observer_evidence``.
    """
    env = getattr(env, "unwrapped", env)  # gymnasium.make wraps the env (order enforcing, checker)
    evidence = getattr(env, "ideal_observer_evidence", None)
    if evidence is None:
        raise TypeError(f"no ideal observer is known for env {type(env).__name__}; known: envs with an "
                        "ideal_observer_evidence() method (ColorDirection, ColorDirectionRT, ColorDirectionStatic)")
    coherences, sigma_step, n_steps = evidence()
    return color_direction_ceiling(coherences, sigma_step, n_steps)


def label_ceilings(env) -> dict:
    """The ideal observer's information (bits) about each label it is known for; {} for other envs.

    Checkerboard envs: ``color`` and ``direction`` (the target configuration is seen without
    noise, so both carry the same information) and ``target_config`` (1 bit: balanced and seen
    exactly). Every decoded problem of a trained network is bounded by these numbers.
    """
    try:
        c = ceiling_for_env(env)
    except TypeError:
        return {}
    return {"color": c["information"], "direction": c["information"], "target_config": 1.0}
