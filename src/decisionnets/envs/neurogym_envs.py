"""Any neurogym env as a decisionnets task (the task protocol of :mod:`decisionnets.task`).

neurogym's envs draw one trial at a time (``env.new_trial(**fixed)``) and know nothing of the
task protocol, so :class:`NeurogymTask` declares it for them:

- **labels**: the scalar, non-string entries of the env's trial dict (``coh``, ``context``, ...),
  plus ``ground_truth`` re-coded as the *class of the correct answer at the response step*,
  comparable with the network's ``choice``: the index of the correct choice among the choice
  actions (0..n_choices-1), and, for envs where keeping fixation is a correct answer on some trials
  (GoNogo's no-go trials, DelayPairedAssociation's unpaired ones, OneTwoThreeGo), one more class,
  *fixate* (index n_choices; the fixation action is then the last of ``choice_actions``, so the
  network's ``choice`` can be "fixate" too). The target label is ``ground_truth``;
- **time**: every neurogym env has time; the periods are the env's ``timing`` keys; the loss counts
  in its ``decision`` period, or at every step for an env without one (neurogym's own supervised
  convention), and the response step is the last step of the decision period (else of the trial);
- **probe timing**: every period at its typical duration (:func:`decisionnets.envs.timing.fixed_timing`;
  a lambda timing, such as ReadySetGo's ``measure``, at the median of its draws);
- **probe conditions**: a grid of the trial variables for the stock envs listed in
  :data:`CONDITIONS` (each with the labels ``analyze`` decodes by default in :data:`DECODE_LABELS`
  and the bins of its continuous labels in :data:`LABEL_BINS`); any other env gets
  ``2 x n_actions`` random conditions and decodes ``ground_truth``.

A new neurogym env needs nothing here to train and analyze by name
(``--set env.name=neurogym:GoNogo-v0``), and so does a collection id (``yang19.dm1-v0``,
``perceptualdecisionmaking.roitman02-v0``: the factory is called with the env's parameters, and the
trials are read from the env inside its wrappers; wrappers that act only in ``step``, such as
neurogym's ``ReactionTime``, have no effect on the whole trials trained here). An env that cannot
be trained on whole trials is refused up front, by :class:`NeurogymTask`, with one line that says
why (:class:`~decisionnets.errors.ConfigError`): continuous (Box) actions, no per-trial
observation/ground-truth arrays (envs meant to be stepped, e.g. bandits), a ground truth that is not
an action index, or a trial the env itself fails to draw.
"""
from __future__ import annotations

import itertools
import warnings

import numpy as np

from decisionnets.envs.timing import fixed_timing
from decisionnets.task import EnvTask
from decisionnets.trials import SampledTrials

__all__ = ["CONDITIONS", "DECODE_LABELS", "LABEL_BINS", "NeurogymTask", "check_env_id", "registered_ids"]

#: Trial variables of a probe *condition* of the stock neurogym envs (their ``new_trial`` kwargs).

CONDITIONS = {
    "PerceptualDecisionMaking": lambda e: {"ground_truth": list(e.choices), "coh": list(e.cohs)},
    "ContextDecisionMaking": lambda e: {
        "context": list(e.contexts), "ground_truth": list(e.choices),
        "other_choice": list(e.choices), "coh_1": list(e.cohs), "coh_2": list(e.cohs),
    },
}
#: Labels ``decisionnets analyze`` decodes by default (the network's ``choice`` is added to them).
#: ContextDecisionMaking (Mante et al. 2013): the context and the choice each modality alone
#: dictates (``ground_truth`` in context, ``other_choice``), and both coherences.
DECODE_LABELS = {
    "ContextDecisionMaking": ("context", "coh_1", "coh_2", "other_choice", "ground_truth"),
}
#: Bins of the continuous labels of the stock envs (``analyze`` decodes a continuous label through
#: equal-count bins: ``--bins VAR=K`` or this declaration). DelayMatchSample: the sample and test
#: directions (16 angles on the ring) in 4 bins.
LABEL_BINS = {
    "DelayMatchSample": {"sample_theta": 4, "test_theta": 4},
}


def _key(name: str) -> str:
    """The env's family name: ``ContextDecisionMaking`` for ``ContextDecisionMaking-v0`` or a class name."""
    return name.rpartition(":")[2].removesuffix("-v0")


class NeurogymTask(EnvTask):
    """The task protocol of a neurogym :class:`~neurogym.core.TrialEnv` (trials drawn one by one).

    Parameters
    ----------
    env : neurogym.TrialEnv, or a neurogym wrapper of one
        The env, built with ``env_kwargs`` (a collection's factory returns it wrapped).
    env_kwargs : dict
        Its constructor arguments (the probe env is built with the same ones and fixed timing).
    n_per_condition : int
        Probe trials per condition.
    name : str, optional
        The env's config name: names it in messages and gives the factory that rebuilds it.
    factory : callable, optional
        What built ``env`` from ``env_kwargs`` (the class, or a collection's factory function);
        default: the one registered for ``name``, else ``type(env)``.

    Raises
    ------
    ConfigError
        When the env cannot be trained on whole trials (see the module doc), with the reason.
    """

    has_time = True
    target_label = "ground_truth"
    analyses: tuple[str, ...] = ()

    #: Trials drawn (from the training env and from the probe env) to check the env up front.
    N_CHECK = 24

    def __init__(self, env, env_kwargs: dict | None = None, n_per_condition: int = 36, name: str | None = None,
                 factory=None):
        u = env.unwrapped
        space = env.action_space
        self.name = name or type(u).__name__
        if not hasattr(space, "n"):
            self._refuse(f"its actions are continuous ({space}); decisionnets trains networks that choose among "
                         "discrete actions", "choose an env with a Discrete action space")
        super().__init__(env, env_kwargs, n_per_condition, name=self.name)
        if factory is None and name is not None:
            from decisionnets.envs.factory import make_env_class

            factory = make_env_class(name)
        self.factory = factory if factory is not None else type(env)
        # the stock grids know the plain envs only: a wrapper may ignore the trial variables
        self.key = _key(type(u).__name__) if env is u else _key(self.name)
        names = getattr(space, "name", None) or {}
        self.fixation_action = int(names.get("fixation", 0))
        self.choices = [a for a in self.choice_actions if a != self.fixation_action]
        self.periods = tuple(u.timing)
        self.decode_labels = DECODE_LABELS.get(self.key, ("ground_truth",))
        self.label_bins = dict(LABEL_BINS.get(self.key, {}))
        self.choice_actions = list(self.choices)
        self._probe_env = None
        self.fixation_answer = self._check()
        if self.fixation_answer:  # keeping fixation is a correct answer: its own class, the last one
            self.choice_actions = [*self.choices, self.fixation_action]

    # ------------------------------------------------------------------ up-front checks
    def _refuse(self, why: str, what: str):
        from decisionnets.errors import ConfigError

        raise ConfigError(f"env {self.name} cannot be trained by decisionnets: {why}; {what}")

    def _draw(self, env, n: int) -> list:
        """``n`` trials of ``env`` (seeded 0) as (trial dict, ob, gt, response step); refuses on failure."""
        _seed(env, 0)
        top, out = _top(env), []
        for _ in range(n):
            try:
                trial = top.new_trial()
            except Exception as e:  # the env's own code fails to draw a trial
                self._refuse(f"neurogym's env fails to draw a trial ({type(e).__name__}: {e})",
                             "change its parameters (--set env.NAME=VALUE) or choose another env")
            u = env.unwrapped
            if getattr(u, "ob", None) is None or getattr(u, "gt", None) is None or not u.start_ind:
                self._refuse("it builds no per-trial observation and ground-truth arrays (it is meant to be stepped "
                             "by an agent, e.g. a bandit or a two-step task)",
                             "decisionnets trains on whole trials: choose an env whose trials are built with "
                             "add_ob/set_groundtruth")
            ob, gt = np.asarray(u.ob), np.asarray(u.gt)
            if ob.ndim != 2 or ob.shape[1] != self.n_inputs or len(ob) == 0:
                self._refuse(f"its trial observation has shape {ob.shape}, not (time, {self.n_inputs})",
                             "choose another env")
            if gt.shape != (len(ob),) or not np.all(np.mod(gt, 1) == 0) or gt.min() < 0 or gt.max() >= self.n_outputs:
                bad = gt.ravel()[np.flatnonzero((np.mod(gt, 1) != 0) | (gt < 0) | (gt >= self.n_outputs))[:1]]
                self._refuse(f"its ground truth is not one action index per time step (shape {gt.shape}, e.g. "
                             f"{(bad if bad.size else gt.ravel())[0].item()!r}; actions 0..{self.n_outputs - 1}): it is a "
                             "continuous target, and decisionnets trains classifiers over actions",
                             "choose an env whose ground truth is an action")
            out.append((trial, ob, gt.astype(np.int64), _response(u, len(ob))[1]))
        return out

    def _check(self) -> bool:
        """Draw trials from the training env and the probe env; whether fixation is ever the answer."""
        drawn = self._draw(self.env, self.N_CHECK) + self._draw(self.probe_env(), self.N_CHECK)
        answers = {int(gt[r]) for _, _, gt, r in drawn}
        if not answers & set(self.choices) and self.fixation_action not in answers:
            self._refuse(f"no trial's ground truth at the response step is an action (seen {sorted(answers)})",
                         "choose another env")
        return self.fixation_action in answers

    # ------------------------------------------------------------------ the protocol
    @property
    def label_names(self) -> tuple[str, ...]:
        """The labels of a trial: the scalar entries of one trial dict, and ``ground_truth``."""
        env = self.factory(**self.env_kwargs)
        _seed(env, 0)
        trial = _top(env).new_trial()
        return tuple(sorted({k for k, v in trial.items() if _is_label(v)} | {"ground_truth"}))

    def probe_timing(self) -> dict:
        """Every period of the env's ``timing`` at its typical duration (ms, a multiple of dt)."""
        u = self.env.unwrapped
        return fixed_timing(u.timing, u.dt)

    def probe_env(self):
        """The env of the probe set: built like the training env, with :meth:`probe_timing`."""
        if self._probe_env is None:
            timing = self.probe_timing()
            try:
                self._probe_env = self.factory(**{**self.env_kwargs, "timing": timing})
            except (TypeError, ValueError, KeyError, IndexError):
                # an env that reads its timing's structure in __init__ (HierarchicalReasoning's
                # delay choices, ToneDetection's tone times): built as given, its periods fixed after
                self._probe_env = self.factory(**self.env_kwargs)
                self._probe_env.unwrapped.timing.update(timing)
        return self._probe_env

    def probe_conditions(self) -> list[dict]:
        """The probe conditions: the grid of :data:`CONDITIONS`, else ``2 x n_actions`` random ones."""
        if self.key not in CONDITIONS:
            return [{}] * (2 * self.n_outputs)
        grid = CONDITIONS[self.key](self.env.unwrapped)
        return [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]

    def sample(self, n: int, rng: np.random.Generator, fixed_timing: bool = False, **fixed) -> SampledTrials:
        """``n`` trials, one ``new_trial`` each, padded at the start to a common length.

        ``fixed`` holds arrays of shape (n,) of trial variables to fix (``new_trial`` kwargs);
        ``fixed_timing`` draws them from a copy of the env with :meth:`probe_timing`.
        """
        env = self.probe_env() if fixed_timing else self.env
        conds = [{k: np.asarray(v)[i].item() for k, v in fixed.items()} for i in range(n)]
        return self._batch(env, conds, rng)

    def answer_class(self, actions) -> np.ndarray:
        """Class of each correct action: its index in ``choice_actions`` (-1: not an answer), shape (n,)."""
        index = {a: i for i, a in enumerate(self.choice_actions)}
        return np.array([index.get(int(a), -1) for a in np.asarray(actions).ravel()], dtype=np.int64)

    def _batch(self, env, conds, rng) -> SampledTrials:
        _seed(env, int(rng.integers(0, 2**31 - 1)))
        top = _top(env)
        obs, gts, periods, masks, labels, answers = [], [], [], [], [], []
        for cond in conds:
            trial = top.new_trial(**cond)
            u = env.unwrapped
            ob = np.asarray(u.ob, dtype=np.float32)
            gt = np.asarray(u.gt).astype(np.int64)
            per = np.full(len(ob), "", dtype=object)
            for p in u.start_ind:
                per[u.start_ind[p]:u.end_ind[p]] = p
            mask, resp = _response(u, len(ob))
            obs.append(ob)
            gts.append(gt)
            periods.append(per)
            masks.append(mask)
            answers.append(gt[resp])
            labels.append({k: v for k, v in trial.items() if _is_label(v)})
        T = max(len(o) for o in obs)
        n = len(obs)
        x = np.zeros((T, n, self.n_inputs), np.float32)
        y = np.zeros((T, n), np.int64)
        m = np.zeros((T, n), np.float32)
        per_all = np.full((T, n), "", dtype=object)
        for i, (o, g, p, mk) in enumerate(zip(obs, gts, periods, masks)):
            s = T - len(o)
            x[s:, i] = o
            y[s:, i] = g
            m[s:, i] = mk
            per_all[s:, i] = p
        keys = set.intersection(*(set(d) for d in labels)) if labels else set()
        lab = {k: np.array([d[k] for d in labels]) for k in sorted(keys)}
        # ground_truth: the class of the correct answer at the response step (fixation its own class)
        lab["ground_truth"] = self.answer_class(answers)
        return SampledTrials(x, y, m, per_all.astype(str), lab)


def _is_label(v) -> bool:
    """A trial-dict entry that is a per-trial label: a scalar number or bool (not a string)."""
    return np.isscalar(v) and not isinstance(v, (str, bytes))


def _response(u, T: int) -> tuple[np.ndarray, int]:
    """The loss mask (T,) of one trial of the unwrapped env ``u`` and its response step: its
    ``decision`` period, else every step (neurogym's supervised convention) and the last step."""
    if "decision" in u.start_ind and u.end_ind["decision"] > u.start_ind["decision"]:
        mask = np.zeros(T, np.float32)
        mask[u.start_ind["decision"]:u.end_ind["decision"]] = 1
        return mask, int(u.end_ind["decision"]) - 1
    return np.ones(T, np.float32), T - 1


def _top(env):
    """The outermost object of a wrapper stack that draws trials itself (has ``new_trial``)."""
    while not hasattr(type(env), "new_trial") and hasattr(env, "env"):
        env = env.env
    return env


def _seed(env, seed: int) -> None:
    """Reseed the trials of ``env`` (neurogym reseeds only through ``seed``; wrappers that schedule
    several envs or attributes reseed them all)."""
    while not hasattr(type(env), "seed") and hasattr(env, "env"):
        env = env.env
    with warnings.catch_warnings():  # neurogym's wrappers reach their env's seed through gymnasium's
        warnings.filterwarnings("ignore", message=".*to get variables from other wrappers is deprecated")
        env.seed(seed)


def registered_ids() -> list[str]:
    """Every env id registered by the installed neurogym (its native envs and its collections), sorted."""
    import gymnasium
    import neurogym  # noqa: F401  (registers its envs)

    return sorted(k for k, spec in gymnasium.registry.items()
                  if str(spec.entry_point).startswith("neurogym.") or getattr(spec.entry_point, "__module__", "")
                  .startswith("neurogym."))



def check_env_id(env_id: str, env_kwargs: dict | None = None, n_per_condition: int = 2) -> dict:
    """Whether a neurogym env id trains by name, without training: build its task, probe and training trials.

    Parameters
    ----------
    env_id : str
        A neurogym env id (``GoNogo-v0``, ``yang19.dm1-v0``).
    env_kwargs : dict, optional
        The env's parameters (default: the ``neurogym`` preset's, ``dt=100``).
    n_per_condition : int

    Returns
    -------
    dict
        ``outcome`` ("works" or "refused"), ``reason`` (the one-line refusal, or ""), and for an env
        that works: ``classes`` (number of ``ground_truth`` classes), ``fixation_class`` (bool),
        ``labels`` (its label names), ``probe_classes`` (ground_truth classes present on the probe set).
    """
    from decisionnets.errors import UserError

    kwargs = {"dt": 100} if env_kwargs is None else dict(env_kwargs)
    try:
        task = NeurogymTask.from_config(f"neurogym:{env_id}", kwargs, n_per_condition=n_per_condition)
        rng = np.random.default_rng(0)
        probe = task.probe_set(rng)
        task.train_set(8, rng)
    except UserError as e:
        return {"outcome": "refused", "reason": str(e)}
    gt = np.asarray(probe.labels["ground_truth"])
    return {"outcome": "works", "reason": "", "classes": len(task.choice_actions),
            "fixation_class": bool(task.fixation_answer), "labels": tuple(task.label_names),
            "probe_classes": sorted(int(v) for v in np.unique(gt)), "missing": int((gt < 0).sum())}
