"""The reaction-time version of the checkerboard task: the agent reaches whenever it has decided.

The real checkerboard experiment (Chandrasekaran et al. 2017) is a reaction-time task: the
monkey holds a central point, the two colored targets appear, then the checkerboard appears and
the monkey may reach at any moment; the reach ends the trial. :class:`ColorDirectionRT` is that
task as a :class:`neurogym.TrialEnv`, with the trial variables and the vectorized, seeded sampling
of :class:`~decisionnets.envs.ColorDirection` (:func:`sample_color_direction_rt`).
"""

from __future__ import annotations

import numpy as np
from neurogym.utils import spaces

from decisionnets.envs.color_direction import (
    COHERENCES,
    CheckerboardTask,
    _check_params,
    _check_report,
    _period_steps,
    _SeededTrialEnv,
    sample_color_direction,
)
from decisionnets.errors import ConfigError
from decisionnets.trials import SampledTrials

PERIODS_RT = ("fixation", "targets", "stimulus")
DEFAULT_TIMING_RT = {
    "fixation": 100,
    "targets": ("uniform", (100, 300)),
    "stimulus": 1000,  # the maximum decision time: no reach by then is a miss
}


def sample_color_direction_rt(
    n: int,
    rng: np.random.Generator,
    *,
    dt: float = 20.0,
    timing: dict | None = None,
    coherences=COHERENCES,
    sigma: float = 4.0,
    fixed_timing: bool = False,
    report: str = "direction",
    **fixed,
) -> SampledTrials:
    """Draw ``n`` reaction-time trials at once (vectorized), each as long as its maximum decision time.

    The trial variables, the input channels and their noise are those of
    :func:`~decisionnets.envs.color_direction.sample_color_direction`; the differences are the
    periods (``fixation``, ``targets``, ``stimulus``: no separate decision period) and the fixation
    cue, which goes off at checkerboard onset (the go signal). ``targets`` is the correct answer
    (direction + 1) over the whole stimulus period and ``mask`` is 1 there. Trials are padded at
    the start, as in the fixed-duration task. ``fixed`` may fix ``coherence`` and ``target_config``.

    Returns
    -------
    SampledTrials
        ``inputs`` (time, trial, 5), ``targets``/``mask``/``period`` (time, trial), ``labels``.
    """
    if "catch" in fixed and np.any(np.asarray(fixed["catch"]) != 0):
        raise ConfigError("the reaction-time task has no catch trials; got catch != 0")
    fixed.pop("catch", None)
    timing = {**DEFAULT_TIMING_RT, **(timing or {})}
    for p in timing:
        if p not in PERIODS_RT:
            raise ConfigError(f"timing has unknown period {p!r}; valid: {', '.join(PERIODS_RT)}")
    b = sample_color_direction(
        n, rng, dt=dt, timing={**timing, "decision": 0}, coherences=coherences, sigma=sigma,
        catch_prob=0.0, fixed_timing=fixed_timing, report=report, **fixed,
    )
    stim = b.period == "stimulus"
    x = b.inputs.copy()
    x[..., 0] = (b.period == "fixation") | (b.period == "targets")
    answer = b.labels["direction"] if report == "direction" else b.labels["color"]
    targets = np.where(stim, answer[None, :] + 1, 0).astype(np.int64)
    return SampledTrials(x, targets, stim.astype(np.float32), b.period, b.labels)


class ColorDirectionRT(_SeededTrialEnv):
    """Reaction-time checkerboard task (Chandrasekaran et al. 2017): reach whenever decided.

    Fixation and targets as in :class:`~decisionnets.envs.ColorDirection`: the agent holds
    fixation (action 0) while the fixation cue is on; the targets (one red, one green, random
    sides) appear after ``fixation``. At checkerboard onset the fixation cue goes off and from then
    on the agent may respond at any step: a reach (action 1 left, 2 right) ends the trial, with
    reward ``correct`` if it is toward the target of the dominant color and ``fail`` otherwise.
    Breaking fixation before onset aborts the trial with the small penalty ``abort``; no reach
    within the maximum decision time (the ``stimulus`` duration) is a ``miss``.

    Periods: ``fixation``, ``targets`` (random duration = onset delay), ``stimulus`` (board on,
    response window). Observation channels: ``fixation``, ``left_target``, ``right_target``,
    ``red``, ``green`` (as the fixed-duration task). Actions: 0 fixate/wait, 1 left, 2 right.
    The trial variables (``color``, ``target_config``, ``direction``, ``coherence``) and their
    seeded, vectorized sampling are those of the fixed-duration task; ``reset(seed=...)``
    reseeds the trial stream.

    Parameters
    ----------
    dt : float
        Time step in ms.
    timing : dict, optional
        ``fixation``, ``targets``, ``stimulus`` (maximum decision time) in ms, or
        ``("uniform", (lo, hi))`` / ``("choice", [...])``.
    coherences : sequence of float, optional
        Signed coherences (default: the 14 reference boards).
    sigma : float
        Noise on each coherence channel, ``sigma / sqrt(dt)`` per step.
    rewards : dict, optional
        ``correct`` (1), ``fail`` (0), ``abort`` (-0.1), ``miss`` (0).
    report : {"direction", "color"}
        What the reach reports.
    """

    metadata = {  # noqa: RUF012
        "render_modes": [],
        "paper_link": "https://doi.org/10.1038/ncomms16177",
        "paper_name": "Laminar differences in decision-related neural activity in dorsal premotor cortex",
        "tags": ["perceptual", "two-alternative", "reaction time", "context"],
    }
    has_time = True
    periods = PERIODS_RT
    task_class = CheckerboardTask  #: the task protocol of this env (labels, probe conditions, ceiling)

    def __init__(self, dt: float = 20, timing: dict | None = None, coherences=COHERENCES, sigma: float = 4.0,
                 rewards: dict | None = None, report: str = "direction") -> None:
        rewards = {"abort": -0.1, "correct": 1.0, "fail": 0.0, "miss": 0.0, **(rewards or {})}
        bad = sorted(set(rewards) - {"abort", "correct", "fail", "miss"})
        if bad:
            raise ConfigError(f"rewards has unknown key {bad[0]!r}; valid: abort, correct, fail, miss")
        super().__init__(dt=dt, r_tmax=rewards["miss"])
        self.rewards = rewards
        _check_params(dt=dt, sigma=sigma, catch_prob=0.0, coherences=coherences)
        self.timing = {**DEFAULT_TIMING_RT, **(timing or {})}
        for p in self.timing:
            if p not in PERIODS_RT:
                raise ConfigError(f"timing has unknown period {p!r}; valid: {', '.join(PERIODS_RT)}")
            _period_steps(self.timing[p], dt, None, 1, p)
        if _period_steps(self.timing["stimulus"], dt, None, 1, "stimulus")[0] < 1:
            raise ConfigError(f"timing['stimulus'] (the maximum decision time) must be >= dt = {dt} ms; "
                              f"got {self.timing['stimulus']!r}")
        self.coherences = tuple(float(c) for c in coherences)
        self.sigma = float(sigma)
        self.catch_prob = 0.0
        self.report = _check_report(report)
        self.observation_space = spaces.Box(
            -np.inf, np.inf, shape=(5,), dtype=np.float32,
            name={"fixation": 0, "left_target": 1, "right_target": 2, "red": 3, "green": 4},
        )
        self.action_space = spaces.Discrete(3, name={"fixation": 0, "choice": [1, 2]})
        self._gen = np.random.default_rng()

    # --- trials -----------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator, fixed_timing: bool = False, **fixed):
        """Draw ``n`` trials at once with this env's parameters; see :func:`sample_color_direction_rt`."""
        return sample_color_direction_rt(
            n, rng, dt=self.dt, timing=self.timing, coherences=self.coherences, sigma=self.sigma,
            fixed_timing=fixed_timing, report=self.report, **fixed,
        )

    def _new_trial(self, **kwargs):
        b = self.sample(1, self._gen, **kwargs)
        self.ob = b.inputs[:, 0, :]
        self.gt = b.targets[:, 0]
        self._ob_built = self._gt_built = True
        periods = b.period[:, 0]
        self._tmax = len(periods)
        self.tmax = self._tmax * self.dt
        for p in PERIODS_RT:
            idx = np.flatnonzero(periods == p)
            lo, hi = (int(idx[0]), int(idx[-1]) + 1) if idx.size else (0, 0)
            self.start_ind[p], self.end_ind[p] = lo, hi
            self.start_t[p], self.end_t[p] = lo * self.dt, hi * self.dt
        return {k: v[0].item() for k, v in b.labels.items()}

    def reset(self, seed=None, options=None):
        """Start a new trial; ``seed`` makes the trial sequence reproducible.

        neurogym's reset takes one step with a random action to produce the first observation;
        here that step holds fixation, so a reset never aborts its own first trial.
        """
        options = {"step_fn": lambda _action: self._top.step(0), **(options or {})}
        return super().reset(seed=seed, options=options)

    def _step(self, action):
        new_trial, reward = False, 0.0
        gt = self.gt_now
        if self.in_period("stimulus"):
            if action != 0:
                new_trial = True
                if action == gt:
                    reward = self.rewards["correct"]
                    self.performance = 1
                else:
                    reward = self.rewards["fail"]
        elif action != 0:  # fixation broken before checkerboard onset: the trial is aborted
            new_trial = True
            reward = self.rewards["abort"]
        return self.ob_now, reward, False, False, {"new_trial": new_trial, "gt": gt}

    # --- many trials at once ----------------------------------------------
    def batch_step(self, period: np.ndarray, gt: np.ndarray, action: np.ndarray, last: np.ndarray):
        """One step of many trials at once, by the rules of :meth:`_step` (for vectorized rollouts).

        Parameters
        ----------
        period : np.ndarray of str, shape (trial,)
            Period of the current step of each trial.
        gt : np.ndarray, shape (trial,)
            Correct action now.
        action : np.ndarray, shape (trial,)
        last : np.ndarray of bool, shape (trial,)
            Whether this is the trial's last step (no reach by then: a miss).

        Returns
        -------
        reward : np.ndarray, shape (trial,), float
        done : np.ndarray of bool, shape (trial,) — the trial ends with this step
        responded : np.ndarray of bool, shape (trial,) — ended by a reach after onset
        """
        act = action != 0
        responded = (period == "stimulus") & act
        abort = ((period == "fixation") | (period == "targets")) & act
        reward = np.where(responded, np.where(action == gt, self.rewards["correct"], self.rewards["fail"]), 0.0)
        reward = np.where(abort, self.rewards["abort"], reward)
        done = responded | abort
        reward = np.where(last & ~done, self.rewards["miss"], reward)
        return reward, done | last, responded


    def ideal_observer_evidence(self) -> tuple:
        """What the ideal observer sees: ``(coherences, noise s.d. per step, steps)``, the whole probe
        stimulus period, the longest a subject may wait
        (:func:`decisionnets.envs.color_direction_ideal.ceiling_for_env`)."""
        steps = int(_period_steps(self.timing["stimulus"], self.dt, None, 1, "stimulus")[0])
        return self.coherences, self.sigma / np.sqrt(self.dt), steps
