"""The checkerboard (color-direction) task of Chandrasekaran et al.

One file, one task, in neurogym's style: a :class:`neurogym.TrialEnv` subclass
whose class docstring states the task, named observation channels, a
``timing`` dict overridable per instance, and trial variables that the caller
may fix (``new_trial(color=0, target_config=1)`` gives condition grids).

Unlike neurogym's own envs, trials are drawn by one vectorized function,
:func:`sample_color_direction`, used both by the Gymnasium interface (one trial
at a time) and by :mod:`decisionnets.trials` (whole batches, no Python loop over
trials), and ``reset(seed=...)`` reseeds the trial stream as Gymnasium's
contract says.
"""

from __future__ import annotations

import itertools

import numpy as np
from neurogym.core import TrialEnv
from neurogym.utils import spaces

from decisionnets.envs.color_direction_analyses import ANALYSES as CHECKERBOARD_ANALYSES
from decisionnets.envs.color_direction_analyses import BEHAVIOUR_EVIDENCE
from decisionnets.envs.timing import draw_ms
from decisionnets.errors import ConfigError
from decisionnets.task import EnvTask
from decisionnets.trials import SampledTrials

#: Red-square counts R on the 15x15 board (225 squares) of the reference task.
RED_SQUARES = (11, 45, 67, 78, 90, 101, 108, 117, 124, 135, 147, 158, 180, 214)
#: Signed coherence 2R/225 - 1 for each board (> 0: red dominates). Never 0.
COHERENCES = tuple(2 * r / 225 - 1 for r in RED_SQUARES)

#: Names of the label values (coordinates on ``trial`` hold the integers).
LABEL_NAMES = {
    "color": ("red", "green"),
    "target_config": ("red-left", "red-right"),
    "direction": ("left", "right"),
}

PERIODS = ("fixation", "targets", "stimulus", "decision")
#: What the network may be trained to report.
REPORTS = ("direction", "color")
#: When a reach in the decision period counts (``ColorDirection(response=...)``).
RESPONSE_RULES = ("first", "last")
DEFAULT_TIMING = {
    "fixation": 100,
    "targets": ("uniform", (100, 300)),
    "stimulus": 300,
    "decision": 100,
}


def _period_steps(value, dt: float, rng: np.random.Generator | None, n: int, name: str):
    """Number of time steps of one period for ``n`` trials, shape (n,).

    ``value`` is a period duration in any form of :mod:`decisionnets.envs.timing` (ms,
    ``("uniform", (lo, hi))``, ``("choice", [a, b, ...])``, ...). With ``rng=None`` the period is
    fixed at its typical value (mean of a uniform, median of a choice), as the probe set needs.
    """
    steps = np.floor(draw_ms(value, rng, n, name) / dt).astype(np.int64)
    if np.any(steps < 0):
        raise ConfigError(f"timing[{name!r}] must be >= 0 ms; got {value!r}")
    return steps


def sample_color_direction(
    n: int,
    rng: np.random.Generator,
    *,
    dt: float = 20.0,
    timing: dict | None = None,
    coherences=COHERENCES,
    sigma: float = 4.0,
    catch_prob: float = 0.0,
    fixed_timing: bool = False,
    report: str = "direction",
    **fixed,
) -> SampledTrials:
    """Draw ``n`` checkerboard trials at once (vectorized, no loop over trials).

    Parameters
    ----------
    n : int
        Number of trials.
    rng : np.random.Generator
        The only source of randomness.
    dt : float
        Time step in ms.
    timing : dict, optional
        Period durations in ms (see :data:`DEFAULT_TIMING`), merged over the defaults.
    coherences : sequence of float
        Signed coherences to draw from (uniformly); > 0 means red dominates.
    sigma : float
        Input noise: each coherence channel gets independent Gaussian noise of
        standard deviation ``sigma / sqrt(dt)`` per step (neurogym's convention,
        dt in ms), so the evidence per second does not depend on ``dt``.
    catch_prob : float
        Fraction of catch trials: no checkerboard, the correct action is to
        keep fixating through the decision period.
    fixed_timing : bool
        If True every period has its mean duration (the probe set).
    report : {"direction", "color"}
        What the correct action reports: the reach ``direction`` (the task), or the dominant
        ``color`` (action 1 red, 2 green; e.g. to pretrain on color before training on direction).
    **fixed : array_like
        Fix trial variables instead of drawing them: ``coherence`` (signed),
        ``target_config`` (0/1), ``catch`` (0/1); scalars or arrays of shape (n,).

    Returns
    -------
    SampledTrials
        ``inputs`` (time, trial, 5), channels fixation, left target color, right target color, red
        coherence, green coherence (trials shorter than the batch padded at the *start* with zeros,
        so every trial ends at the last step and the decision periods line up); ``targets`` (time,
        trial) the correct action (0 fixate, 1 left, 2 right); ``mask`` (time, trial) 1 in the
        decision period; ``period`` (time, trial) ("" for padding); ``labels`` ``color``,
        ``target_config``, ``direction``, ``coherence``, ``catch``, each (trial,).
    """
    unknown = set(fixed) - {"coherence", "target_config", "catch"}
    if unknown:
        raise ConfigError(
            f"can fix only coherence, target_config, catch; got {sorted(unknown)}"
        )
    timing = {**DEFAULT_TIMING, **(timing or {})}
    coherences = np.asarray(coherences, dtype=float)
    # Draw the trial variables.
    coh = np.broadcast_to(
        fixed["coherence"] if "coherence" in fixed else rng.choice(coherences, size=n), (n,)
    ).astype(float)
    tconf = np.broadcast_to(
        fixed["target_config"] if "target_config" in fixed else rng.integers(0, 2, size=n), (n,)
    ).astype(np.int64)
    catch = np.broadcast_to(
        fixed["catch"] if "catch" in fixed else rng.random(n) < catch_prob, (n,)
    ).astype(np.int8)
    if np.any(coh[catch == 0] == 0):
        raise ConfigError("coherence must be non-zero on non-catch trials (0 has no dominant color)")
    coh = np.where(catch == 1, 0.0, coh)
    steps = {
        p: _period_steps(timing[p], dt, None if fixed_timing else rng, n, p) for p in PERIODS
    }
    length = sum(steps.values())
    T = int(length.max())
    color = (coh < 0).astype(np.int64)  # 0 red, 1 green
    direction = color ^ tconf  # red right & red dominant -> right; see LABEL_NAMES

    # Step index of each period boundary, counted from the end of the batch.
    t = np.arange(T)[:, None]  # (time, 1)
    start = T - length  # (trial,) first step of each trial
    bounds = {}
    s = start
    for p in PERIODS:
        bounds[p] = (s, s + steps[p])
        s = s + steps[p]
    within = {p: (t >= lo) & (t < hi) for p, (lo, hi) in bounds.items()}  # each (time, trial)
    on_trial = t >= start
    targets_on = within["targets"] | within["stimulus"] | within["decision"]
    board_on = (within["stimulus"] | within["decision"]) & (catch == 0)

    x = np.zeros((T, n, 5), dtype=np.float32)
    x[..., 0] = within["fixation"] | within["targets"] | within["stimulus"]
    left = np.where(tconf == 0, 1.0, -1.0)  # +1: the left target is red
    x[..., 1] = targets_on * left
    x[..., 2] = targets_on * -left
    noise = rng.standard_normal((T, n, 2)) * (sigma / np.sqrt(dt))
    x[..., 3] = board_on * (coh + noise[..., 0])
    x[..., 4] = board_on * (-coh + noise[..., 1])

    if report not in REPORTS:
        raise ConfigError(f"report must be one of {', '.join(REPORTS)}; got {report!r}")
    answer = direction if report == "direction" else color
    targets = np.zeros((T, n), dtype=np.int64)
    targets[within["decision"]] = np.broadcast_to(answer + 1, (T, n))[within["decision"]]
    targets[within["decision"] & (catch == 1)] = 0
    mask = within["decision"].astype(np.float32)
    period = np.full((T, n), "", dtype=object)
    for p in PERIODS:
        period[within[p]] = p
    period[~on_trial] = ""
    labels = {
        "color": color,
        "target_config": tconf,
        "direction": direction,
        "coherence": coh,
        "catch": catch,
    }
    return SampledTrials(x, targets, mask, period.astype(str), labels)


class _SeededTrialEnv(TrialEnv):
    """A neurogym TrialEnv whose trials come from one ``np.random.Generator``, reseeded by
    ``reset(seed=...)`` as Gymnasium's contract says (neurogym's envs reseed only via ``seed``)."""

    def seed(self, seed=None):
        """Reseed the trial stream (and neurogym's legacy ``rng``)."""
        super().seed(seed)
        self._gen = np.random.default_rng(seed)
        return [seed]

    def reset(self, seed=None, options=None):
        """Start a new trial; ``seed`` makes the trial sequence reproducible."""
        if seed is not None:
            self.seed(seed)
        return super().reset(seed=seed, options=options)

    def step(self, action):
        """One time step; an action outside ``action_space`` (e.g. -1, ``n``, 1.5) raises ValueError.

        Gymnasium envs are expected to refuse actions their space does not contain rather than
        read them as some other action.
        """
        if not self.action_space.contains(action):
            raise ValueError(f"{type(self).__name__}: action {action!r} is not in the action space "
                             f"{self.action_space} (an integer 0..{self.action_space.n - 1})")
        return super().step(action)


class CheckerboardTask(EnvTask):
    """The task protocol (:class:`decisionnets.task.Task`) of the checkerboard envs, declared once for all three.

    Serves :class:`ColorDirection`, :class:`ColorDirectionStatic` and
    :class:`~decisionnets.envs.ColorDirectionRT` (each names it as its ``task_class``; the env
    gives its ``has_time`` and ``periods`` and draws the trials with its ``sample``).

    Probe conditions: every signed coherence x target configuration, plus (with ``catch_prob`` > 0)
    one catch condition per target configuration. Labels: ``color``, ``direction``,
    ``target_config`` (decoded by default, ``color`` first: the variable the network may discard),
    ``coherence`` and ``catch``. Target: what the env ``report``s (``direction`` by default).
    Task-specific analyses (declared here, defined in
    :mod:`decisionnets.envs.color_direction_analyses`): ``choice_vs_direction``, the network's
    choice vs the correct direction on error trials, and ``psychometric``, the psychometric curve
    over signed coherence. Ceiling: the Bayes-optimal observer of the board
    (:mod:`decisionnets.envs.color_direction_ideal`).
    """

    label_names = ("color", "direction", "target_config", "coherence", "catch")
    decode_labels = ("color", "direction", "target_config")
    #: the figures' colour of each label
    label_colors = {"color": "tab:red", "direction": "tab:blue", "target_config": "tab:green"}  # noqa: RUF012
    analyses = CHECKERBOARD_ANALYSES  #: (choice_vs_direction, psychometric), as Analysis objects
    #: closed-loop accuracy and chronometric curves are drawn against the signed coherence
    behaviour_evidence = BEHAVIOUR_EVIDENCE

    @property
    def has_time(self) -> bool:
        """Whether the env's trials have time steps (False for the static task)."""
        return bool(self.env.has_time)

    @property
    def periods(self) -> tuple:
        """The env's periods."""
        return tuple(self.env.periods)

    @property
    def target_label(self) -> str:
        """The label the network is trained on: the env's ``report`` (``direction`` or ``color``)."""
        return self.env.report

    def probe_conditions(self) -> list[dict]:
        """The conditions of the probe set (each repeated ``n_per_condition`` times)."""
        env = self.env
        conds = [{"coherence": c, "target_config": t, "catch": 0}
                 for c, t in itertools.product(env.coherences, (0, 1))]
        if getattr(env, "catch_prob", 0) > 0:
            # catch trials: the coherence is irrelevant (no board); any non-zero value
            conds += [{"coherence": env.coherences[0], "target_config": t, "catch": 1} for t in (0, 1)]
        return conds

    def ceiling(self) -> dict:
        """The ideal observer's bits: ``color`` and ``direction`` (equal), ``target_config`` (1 bit)."""
        from decisionnets.envs.color_direction_ideal import label_ceilings

        return label_ceilings(self.env)

    def ceiling_accuracy(self) -> float:
        """The ideal observer's fraction correct."""
        from decisionnets.envs.color_direction_ideal import ceiling_for_env

        return float(ceiling_for_env(self.env)["accuracy"])


class ColorDirection(_SeededTrialEnv):
    """Checkerboard color-direction task (Chandrasekaran et al. 2017; Kleinman et al. 2021).

    Two targets, one red and one green, appear left and right (which side is
    red is random: the *target configuration*). After a random delay a
    checkerboard of red and green squares appears and stays on; the agent must
    choose the target whose color dominates the board. The correct
    ``direction`` is the XOR of the dominant ``color`` and the
    ``target_config``, so color and configuration each carry no information
    about direction on their own.

    Periods: ``fixation`` (nothing but the fixation cue), ``targets`` (target
    colors on; random duration = checkerboard onset delay), ``stimulus``
    (checkerboard on), ``decision`` (fixation cue off, board still on: respond).

    Observation channels (neurogym convention, fixation first): ``fixation``,
    ``left_target`` (+1 red, -1 green), ``right_target`` (its negative),
    ``red`` (signed coherence + noise), ``green`` (its negative + independent noise).
    Actions: 0 fixate, 1 left, 2 right.

    Parameters
    ----------
    dt : float
        Time step in ms.
    timing : dict, optional
        Durations in ms per period, ``("uniform", (lo, hi))`` or ``("choice", [...])``.
    coherences : sequence of float, optional
        Signed coherences (default: the 14 boards of the reference task, 2R/225 - 1).
    sigma : float
        Noise on each coherence channel, ``sigma / sqrt(dt)`` per step.
    catch_prob : float
        Fraction of catch trials (no board; keep fixating).
    rewards : dict, optional
        ``correct``, ``fail``, ``abort`` (fixation break) rewards.
    report : {"direction", "color"}
        Train on the reach direction (the task) or on the dominant color (action 1 red, 2 green).
    response : {"first", "last"}
        When a reach counts. ``"first"`` (default, neurogym's rule): the first reach in the decision
        period is the choice and ends the trial. ``"last"``: the target the agent is reaching to at
        the last step of the decision period is the choice (the response window closes then); reaches
        before it in the window neither end the trial nor count, so the agent may change its choice
        within the window, as subjects who moved a handle to a target and changed their minds during
        the movement (Resulaj, Kiani, Wolpert & Shadlen 2009, Nature 461:263), the target reached at
        the end counting. Fixating at the last step is no choice. The trials are the same under both
        rules; a reach before the decision period is a fixation break (``abort``) under both.
    """

    metadata = {  # noqa: RUF012
        "render_modes": [],
        "paper_link": "https://doi.org/10.1038/ncomms16177",
        "paper_name": "Laminar differences in decision-related neural activity in dorsal premotor cortex",
        "tags": ["perceptual", "two-alternative", "supervised", "context"],
    }
    has_time = True
    periods = PERIODS
    task_class = CheckerboardTask  #: the task protocol of this env

    def __init__(
        self,
        dt: float = 20,
        timing: dict | None = None,
        coherences=COHERENCES,
        sigma: float = 4.0,
        catch_prob: float = 0.0,
        rewards: dict | None = None,
        report: str = "direction",
        response: str = "first",
    ) -> None:
        super().__init__(dt=dt)
        _check_params(dt=dt, sigma=sigma, catch_prob=catch_prob, coherences=coherences)
        if response not in RESPONSE_RULES:
            raise ConfigError(f"response must be one of {', '.join(RESPONSE_RULES)}; got {response!r}")
        self.response = response
        self.timing = {**DEFAULT_TIMING, **(timing or {})}
        for p in self.timing:
            if p not in PERIODS:
                raise ConfigError(f"timing has unknown period {p!r}; valid: {', '.join(PERIODS)}")
            _period_steps(self.timing[p], dt, None, 1, p)
        self.coherences = tuple(float(c) for c in coherences)
        self.sigma = float(sigma)
        self.catch_prob = float(catch_prob)
        self.report = _check_report(report)
        self.rewards = {"abort": -0.1, "correct": 1.0, "fail": 0.0, **(rewards or {})}
        self.observation_space = spaces.Box(
            -np.inf, np.inf, shape=(5,), dtype=np.float32,
            name={"fixation": 0, "left_target": 1, "right_target": 2, "red": 3, "green": 4},
        )
        self.action_space = spaces.Discrete(3, name={"fixation": 0, "choice": [1, 2]})
        self._gen = np.random.default_rng()

    # --- trials -----------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator, fixed_timing: bool = False, **fixed):
        """Draw ``n`` trials at once with this env's parameters; see :func:`sample_color_direction`."""
        return sample_color_direction(
            n, rng, dt=self.dt, timing=self.timing, coherences=self.coherences,
            sigma=self.sigma, catch_prob=self.catch_prob, fixed_timing=fixed_timing, report=self.report, **fixed,
        )

    def _new_trial(self, **kwargs):
        b = self.sample(1, self._gen, **kwargs)
        self.ob = b.inputs[:, 0, :]
        self.gt = b.targets[:, 0]
        self._ob_built = self._gt_built = True
        periods = b.period[:, 0]
        self._tmax = len(periods)
        self.tmax = self._tmax * self.dt
        for p in PERIODS:
            idx = np.flatnonzero(periods == p)
            lo, hi = (int(idx[0]), int(idx[-1]) + 1) if idx.size else (0, 0)
            self.start_ind[p], self.end_ind[p] = lo, hi
            self.start_t[p], self.end_t[p] = lo * self.dt, hi * self.dt
        return {k: v[0].item() for k, v in b.labels.items()}

    def _step(self, action):
        new_trial, reward = False, 0.0
        gt = self.gt_now
        if self.in_period("fixation") or self.in_period("targets") or self.in_period("stimulus"):
            if action != 0:
                reward += self.rewards["abort"]
        elif (self.in_period("decision") and action != 0
              and (self.response == "first" or self.t_ind == self.end_ind["decision"] - 1)):
            new_trial = True
            if action == gt:
                reward += self.rewards["correct"]
                self.performance = 1
            else:
                reward += self.rewards["fail"]
        return self.ob_now, reward, False, False, {"new_trial": new_trial, "gt": gt}

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
            Whether this is the trial's last step (no response by then: the trial ends, reward 0); with
            ``response="last"`` the only step at which a reach counts.

        Returns
        -------
        reward : np.ndarray, shape (trial,), float
        done : np.ndarray of bool, shape (trial,) — the trial ends with this step
        responded : np.ndarray of bool, shape (trial,) — ended by a response in the decision period
        """
        act = action != 0
        early = ((period == "fixation") | (period == "targets") | (period == "stimulus")) & act
        responded = (period == "decision") & act
        if self.response == "last":
            responded = responded & last
        reward = np.where(early, self.rewards["abort"], 0.0)
        reward = reward + np.where(responded, np.where(action == gt, self.rewards["correct"], self.rewards["fail"]), 0.0)
        return reward, responded | last, responded

    def ideal_observer_evidence(self) -> tuple:
        """What the ideal observer sees on the probe timing: ``(coherences, noise s.d. per step,
        steps)``, the board during the stimulus and decision periods
        (:func:`decisionnets.envs.color_direction_ideal.ceiling_for_env`)."""
        steps = sum(int(_period_steps(self.timing[p], self.dt, None, 1, p)[0]) for p in ("stimulus", "decision"))
        return self.coherences, self.sigma / np.sqrt(self.dt), steps


class ColorDirectionStatic(_SeededTrialEnv):
    """Static checkerboard task: one sample per trial, no time (the ICLR 2021 FC setting).

    Each trial is a single observation of four channels: ``left_target``
    (+1 red, -1 green), ``right_target`` (its negative), ``red`` (signed
    coherence + noise) and ``green`` (its negative + independent noise). The
    agent answers at once: action 0 left, 1 right. The trial variables are
    those of :class:`ColorDirection`.

    Parameters
    ----------
    coherences : sequence of float, optional
        Signed coherences (default: the 14 reference boards).
    sigma : float
        Standard deviation of the Gaussian noise on each coherence channel.
    dt : float
        Nominal duration of the single step (ms), for neurogym's bookkeeping.
    report : {"direction", "color"}
        Train on the direction (0 left, 1 right) or on the dominant color (0 red, 1 green).
    """

    metadata = {  # noqa: RUF012
        "render_modes": [],
        "paper_link": "https://arxiv.org/abs/2010.02459",
        "paper_name": "Usable Information and Evolution of Optimal Representations During Training",
        "tags": ["perceptual", "two-alternative", "supervised", "static"],
    }
    has_time = False
    periods = ("decision",)
    task_class = CheckerboardTask  #: the task protocol of this env

    def __init__(self, coherences=COHERENCES, sigma: float = 0.2, dt: float = 100, report: str = "direction") -> None:
        super().__init__(dt=dt)
        _check_params(dt=dt, sigma=sigma, catch_prob=0.0, coherences=coherences)
        self.report = _check_report(report)
        self.coherences = tuple(float(c) for c in coherences)
        self.sigma = float(sigma)
        self.timing = {"decision": dt}
        self.observation_space = spaces.Box(
            -np.inf, np.inf, shape=(4,), dtype=np.float32,
            name={"left_target": 0, "right_target": 1, "red": 2, "green": 3},
        )
        self.action_space = spaces.Discrete(2, name={"choice": [0, 1]})
        self._gen = np.random.default_rng()

    def sample(self, n: int, rng: np.random.Generator, fixed_timing: bool = False, **fixed):
        """Draw ``n`` static trials at once; inputs shape (1, n, 4), targets = direction (0/1)."""
        b = sample_color_direction(
            n, rng, dt=1.0, coherences=self.coherences, sigma=self.sigma,
            timing={"fixation": 0, "targets": 0, "stimulus": 0, "decision": 1}, report=self.report,
            **fixed,
        )
        # dt=1 makes the per-step noise sigma / sqrt(1) = sigma.
        return SampledTrials(b.inputs[:, :, 1:], b.targets - 1, b.mask, b.period, b.labels)

    def _new_trial(self, **kwargs):
        b = self.sample(1, self._gen, **kwargs)
        self.add_period("decision")
        self.ob = b.inputs[:, 0, :]
        self.gt = b.targets[:, 0]
        self._ob_built = self._gt_built = True
        return {k: v[0].item() for k, v in b.labels.items()}

    def _step(self, action):
        gt = self.gt_now
        correct = int(action == gt)
        self.performance = correct
        return self.ob_now, float(correct), False, False, {"new_trial": True, "gt": gt}

    def ideal_observer_evidence(self) -> tuple:
        """What the ideal observer sees: ``(coherences, noise s.d., 1)``, one sample of the board
        (:func:`decisionnets.envs.color_direction_ideal.ceiling_for_env`)."""
        return self.coherences, self.sigma, 1


def _check_report(report):
    if report not in REPORTS:
        raise ConfigError(f"report must be one of {', '.join(REPORTS)}; got {report!r}")
    return report


def _check_params(*, dt, sigma, catch_prob, coherences):
    if not dt > 0:
        raise ConfigError(f"dt must be > 0 ms; got {dt!r}")
    if not sigma >= 0:
        raise ConfigError(f"sigma must be >= 0; got {sigma!r}")
    if not 0 <= catch_prob < 1:
        raise ConfigError(f"catch_prob must be in [0, 1); got {catch_prob!r}")
    coherences = np.asarray(coherences, dtype=float)
    if coherences.ndim != 1 or coherences.size == 0 or np.any(coherences == 0) or np.any(np.abs(coherences) > 1):
        raise ConfigError(
            f"coherences must be a non-empty list of non-zero values in [-1, 1]; got {coherences.tolist()}"
        )
