"""Any neurogym env as a decisionnets trial source (the task protocol of :mod:`decisionnets.task`).

neurogym's envs draw one trial at a time (``env.new_trial(**fixed)``) and know nothing of the
task protocol, so :class:`NeurogymSource` declares it for them:

- **labels**: the scalar, non-string entries of the env's trial dict (``coh``, ``context``, ...),
  plus ``ground_truth`` re-coded as the *index of the correct choice* among the choice actions
  (0..n_choices-1), comparable with the network's ``choice``; the target label is ``ground_truth``;
- **time**: every neurogym env has time; the periods are the env's ``timing`` keys, and the loss
  counts in its ``decision`` period;
- **probe timing**: every period at its typical duration (:func:`decisionnets.envs.timing.fixed_timing`);
- **probe conditions**: a grid of the trial variables for the stock envs listed in
  :data:`CONDITIONS` (each with the labels ``analyze`` decodes by default in :data:`DECODE_LABELS`);
  any other env gets ``2 x n_actions`` random conditions and decodes ``ground_truth``.

A new neurogym env needs nothing here to train and analyze by name
(``--set env.name=neurogym:GoNogo-v0``); an entry in :data:`CONDITIONS` gives it a balanced probe
set, one in :data:`DECODE_LABELS` its own default variables.
"""

from __future__ import annotations

import itertools

import numpy as np

from decisionnets.envs.timing import fixed_timing
from decisionnets.trials import SampledTrials

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


def _key(name: str) -> str:
    """The env's family name: ``ContextDecisionMaking`` for ``ContextDecisionMaking-v0`` or a class name."""
    return name.rpartition(":")[2].removesuffix("-v0")


class NeurogymSource:
    """The task protocol of a neurogym :class:`~neurogym.core.TrialEnv` (trials drawn one by one).

    Parameters
    ----------
    env : neurogym.TrialEnv
        The env (unwrapped), built with ``env_kwargs``.
    env_kwargs : dict
        Its constructor arguments (the probe env is built with the same ones and fixed timing).
    """

    has_time = True
    target_label = "ground_truth"
    analyses: tuple[str, ...] = ()

    def __init__(self, env, env_kwargs: dict | None = None):
        self.env = env
        self.env_kwargs = dict(env_kwargs or {})
        self.key = _key(type(env).__name__)
        self.n_inputs = int(env.observation_space.shape[0])
        self.n_outputs = int(env.action_space.n)
        names = getattr(env.action_space, "name", None) or {}
        self.choice_actions = list(names.get("choice", range(1, self.n_outputs)))
        self.periods = tuple(env.timing)
        self.decode_labels = DECODE_LABELS.get(self.key, ("ground_truth",))
        self._probe_env = None

    @property
    def label_names(self) -> tuple[str, ...]:
        """The labels of a trial: the scalar entries of one trial dict, and ``ground_truth``."""
        env = type(self.env)(**self.env_kwargs)
        env.seed(0)
        trial = env.new_trial()
        return tuple(sorted({k for k, v in trial.items() if np.isscalar(v) and not isinstance(v, str)}
                            | {"ground_truth"}))

    def probe_timing(self) -> dict:
        """Every period of the env's ``timing`` at its typical duration (ms, a multiple of dt)."""
        return fixed_timing(self.env.timing, self.env.dt)

    def probe_conditions(self) -> list[dict]:
        """The probe conditions: the grid of :data:`CONDITIONS`, else ``2 x n_actions`` random ones."""
        if self.key not in CONDITIONS:
            return [{}] * (2 * self.n_outputs)
        grid = CONDITIONS[self.key](self.env)
        return [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]

    def sample(self, n: int, rng: np.random.Generator, fixed_timing: bool = False, **fixed) -> SampledTrials:
        """``n`` trials, one ``new_trial`` each, padded at the start to a common length.

        ``fixed`` holds arrays of shape (n,) of trial variables to fix (``new_trial`` kwargs);
        ``fixed_timing`` draws them from a copy of the env with :meth:`probe_timing`.
        """
        if fixed_timing and self._probe_env is None:
            self._probe_env = type(self.env)(**{**self.env_kwargs, "timing": self.probe_timing()})
        env = self._probe_env if fixed_timing else self.env
        conds = [{k: np.asarray(v)[i].item() for k, v in fixed.items()} for i in range(n)]
        return self._batch(env, conds, rng)

    def _batch(self, env, conds, rng) -> SampledTrials:
        env.seed(int(rng.integers(0, 2**31 - 1)))
        obs, gts, periods, labels = [], [], [], []
        for cond in conds:
            trial = env.new_trial(**cond)
            obs.append(np.asarray(env.ob, dtype=np.float32))
            gts.append(np.asarray(env.gt, dtype=np.int64))
            per = np.full(len(env.ob), "", dtype=object)
            for p in env.timing:
                per[env.start_ind[p]:env.end_ind[p]] = p
            periods.append(per)
            labels.append({k: v for k, v in trial.items() if np.isscalar(v) and not isinstance(v, str)})
        T = max(len(o) for o in obs)
        n = len(obs)
        x = np.zeros((T, n, self.n_inputs), np.float32)
        y = np.zeros((T, n), np.int64)
        m = np.zeros((T, n), np.float32)
        per_all = np.full((T, n), "", dtype=object)
        for i, (o, g, p) in enumerate(zip(obs, gts, periods)):
            s = T - len(o)
            x[s:, i] = o
            y[s:, i] = g
            m[s:, i] = p == "decision"
            per_all[s:, i] = p
        keys = set.intersection(*(set(d) for d in labels)) if labels else set()
        lab = {k: np.array([d[k] for d in labels]) for k in sorted(keys)}
        # ground_truth as the index of the correct choice (0..n_choices-1), comparable with `choice`
        lab["ground_truth"] = np.array([self.choice_actions.index(int(a)) if a in self.choice_actions else -1
                                        for a in y[T - 1]])
        return SampledTrials(x, y, m, per_all.astype(str), lab)
