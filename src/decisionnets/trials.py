"""Trial-aligned, seeded batches with per-trial labels, and the tasks that make them.

A *task object* is what the trainer consumes (see :class:`EnvTask`; image
tasks in :mod:`decisionnets.images` follow the same protocol): it knows its
input and output sizes, which outputs are choices, which label the network is
trained on, and it makes two kinds of :class:`TrialBatch`:

- the **training set** (``train_set``), drawn from the data stream of the run's
  seed, with random timing;
- the **probe set** (``probe_set``), generated once per run from its own seed,
  with fixed timing and balanced over all conditions (every combination of the
  task's trial variables, ``n_per_condition`` times), so the activations of
  every recorded epoch are for the same trials.

Trials of different lengths are padded at the *start* with zeros (mask 0), so
every trial ends on the last time step and the decision periods line up.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from decisionnets.errors import ConfigError


@dataclass(frozen=True)
class TrialBatch:
    """A batch of trials, aligned on their last time step.

    Attributes
    ----------
    inputs : np.ndarray, shape (time, trial, feature), float32
        Network inputs. Static tasks and images have ``time == 1`` (images are
        flattened to ``feature = C*H*W``).
    targets : np.ndarray, shape (time, trial), int64
        Correct output index at each step.
    mask : np.ndarray, shape (time, trial), float32
        1 where the loss counts: the decision period only (the network is free
        before it), 0 elsewhere and on padding.
    labels : dict of str to np.ndarray, each shape (trial,)
        Trial variables (e.g. ``color``, ``direction``, ``coherence``).
    period : np.ndarray of str, shape (time,), or None
        Period of each step when all trials share one timing (the probe set);
        None when timing varies across trials.
    dt : float or None
        Time step in ms (None for tasks without time).
    """

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    labels: dict = field(default_factory=dict)
    period: np.ndarray | None = None
    dt: float | None = None

    def __post_init__(self):
        T, n = self.inputs.shape[:2]
        if self.inputs.ndim != 3:
            raise ValueError(f"inputs must have dims (time, trial, feature); got shape {self.inputs.shape}")
        for name in ("targets", "mask"):
            if getattr(self, name).shape != (T, n):
                raise ValueError(f"{name} must have shape (time, trial) = {(T, n)}; got {getattr(self, name).shape}")
        for k, v in self.labels.items():
            if np.shape(v) != (n,):
                raise ValueError(f"label {k!r} must have shape (trial,) = ({n},); got {np.shape(v)}")
        if self.period is not None and np.shape(self.period) != (T,):
            raise ValueError(f"period must have shape (time,) = ({T},); got {np.shape(self.period)}")

    @property
    def n_trials(self) -> int:
        """Number of trials."""
        return self.inputs.shape[1]

    @property
    def n_time(self) -> int:
        """Number of time steps."""
        return self.inputs.shape[0]

    def response_step(self) -> np.ndarray:
        """Index of each trial's last masked step (where its choice is read), shape (trial,)."""
        has = self.mask.any(axis=0)
        last = self.n_time - 1 - np.argmax(self.mask[::-1] > 0, axis=0)
        return np.where(has, last, self.n_time - 1)

    def subset(self, index) -> TrialBatch:
        """The trials at ``index`` (integer array or slice), in that order."""
        return TrialBatch(
            self.inputs[:, index], self.targets[:, index], self.mask[:, index],
            {k: v[index] for k, v in self.labels.items()}, self.period, self.dt,
        )


def condition_grid(conditions: dict, n_per_condition: int) -> dict:
    """Every combination of the values in ``conditions``, each repeated ``n_per_condition`` times.

    Returns a dict of arrays of shape (n_conditions * n_per_condition,).
    """
    names = list(conditions)
    combos = list(itertools.product(*(conditions[k] for k in names)))
    out = {k: np.repeat(np.array([c[i] for c in combos]), n_per_condition) for i, k in enumerate(names)}
    return out


def _seed_from(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


class EnvTask:
    """A Gymnasium/neurogym environment as a source of training and probe batches.

    Parameters
    ----------
    env : str
        ``ColorDirection``, ``ColorDirectionStatic`` (vectorized batches),
        ``PerceptualDecisionMaking``, ``ContextDecisionMaking`` or any other
        neurogym env id (e.g. ``GoNogo-v0``; trials generated one by one).
    env_kwargs : dict
        Passed to the env's constructor (e.g. ``dt``, ``sigma``, ``timing``).
    n_per_condition : int
        Probe trials per condition.
    """

    #: Trial variables that make a probe *condition* for the stock neurogym envs.
    NEUROGYM_CONDITIONS = {
        "PerceptualDecisionMaking": lambda e: {"ground_truth": list(e.choices), "coh": list(e.cohs)},
        "ContextDecisionMaking": lambda e: {
            "context": list(e.contexts), "ground_truth": list(e.choices),
            "other_choice": list(e.choices), "coh_1": list(e.cohs), "coh_2": list(e.cohs),
        },
    }

    def __init__(self, env: str, env_kwargs: dict | None = None, n_per_condition: int = 36):
        self.name = env
        self.env_kwargs = dict(env_kwargs or {})
        if not isinstance(n_per_condition, int) or n_per_condition < 1:
            raise ConfigError(f"record.n_per_condition must be an integer >= 1; got {n_per_condition!r}")
        self.n_per_condition = n_per_condition
        self.env = make_env(env, self.env_kwargs)
        self.vectorized = hasattr(self.env, "sample")
        self.has_time = env != "ColorDirectionStatic"
        self.n_inputs = int(self.env.observation_space.shape[0])
        self.n_outputs = int(self.env.action_space.n)
        names = getattr(self.env.action_space, "name", None) or {}
        self.choice_actions = list(names.get("choice", range(1, self.n_outputs)))
        self.target_label = getattr(self.env, "report", "direction") if self.vectorized else "ground_truth"
        self.dt = float(self.env.dt) if self.has_time else None

    # --- the protocol -------------------------------------------------------
    def train_set(self, n: int, rng: np.random.Generator) -> TrialBatch:
        """``n`` training trials with random timing and random conditions."""
        if self.vectorized:
            b = self.env.sample(n, rng)
            return TrialBatch(b.inputs, b.targets, b.mask, b.labels, None, self.dt)
        return self._neurogym_batch(self.env, [{}] * n, rng, fixed_timing=False)

    def probe_set(self, rng: np.random.Generator) -> TrialBatch:
        """The probe set: fixed timing, every condition ``n_per_condition`` times."""
        if self.vectorized:
            conds = {"coherence": list(self.env.coherences), "target_config": [0, 1]}
            grid = condition_grid(conds, self.n_per_condition)
            grid["catch"] = np.zeros(len(grid["coherence"]), dtype=np.int8)
            if getattr(self.env, "catch_prob", 0) > 0:
                extra = condition_grid({"target_config": [0, 1], "catch": [1]}, self.n_per_condition)
                # catch trials: the coherence is irrelevant (no board); any non-zero value
                extra["coherence"] = np.full(len(extra["catch"]), self.env.coherences[0])
                grid = {k: np.concatenate([grid[k], extra[k]]) for k in grid}
            b = self.env.sample(len(grid["catch"]), rng, fixed_timing=True, **grid)
            period = b.period[:, 0] if self.has_time else np.array(["decision"])
            return TrialBatch(b.inputs, b.targets, b.mask, b.labels, period, self.dt)
        key = self.name.removesuffix("-v0")
        if key in self.NEUROGYM_CONDITIONS:
            grid = condition_grid(self.NEUROGYM_CONDITIONS[key](self.env), self.n_per_condition)
            n = len(next(iter(grid.values())))
            conds = [{k: v[i].item() for k, v in grid.items()} for i in range(n)]
        else:  # no known condition grid: random conditions
            conds = [{}] * (self.n_per_condition * 2 * self.n_outputs)
        probe_env = make_env(self.name, {**self.env_kwargs, "timing": _fixed_timing(self.env)})
        return self._neurogym_batch(probe_env, conds, rng, fixed_timing=True)

    def augment(self, inputs, generator):
        """No augmentation for trial-based tasks (identity)."""
        return inputs

    def describe(self) -> dict:
        """Facts about the task for the dataset's attrs."""
        return {"env": self.name, "dt": self.dt if self.dt is not None else 0.0}

    # --- neurogym envs, one trial at a time --------------------------------
    def _neurogym_batch(self, env, conds, rng, fixed_timing):
        env.seed(_seed_from(rng))
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
        resp = y[T - 1]
        lab["ground_truth"] = np.array([self.choice_actions.index(int(a)) if a in self.choice_actions else -1
                                        for a in resp])
        period = per_all[:, 0].astype(str) if fixed_timing and all(len(o) == T for o in obs) else None
        return TrialBatch(x, y, m, lab, period, self.dt)


def _fixed_timing(env) -> dict:
    """The env's timing with every random duration replaced by its typical value."""
    out = {}
    for p, v in env.timing.items():
        if isinstance(v, (int, float)):
            out[p] = v
        elif hasattr(v, "vmean"):  # neurogym TruncExp
            out[p] = float(np.clip(v.vmean, v.vmin, v.vmax))
        elif isinstance(v, (list, tuple)) and v and isinstance(v[0], (int, float)):
            out[p] = float(np.median(v))
        elif isinstance(v, (list, tuple)) and len(v) == 2:
            dist, args = v
            out[p] = float(np.mean(args)) if dist == "uniform" else float(np.median(args)) if dist == "choice" else float(args)
        else:
            raise ConfigError(f"cannot fix the timing of period {p!r}: {v!r}")
        out[p] = (out[p] // env.dt) * env.dt
    return out


#: Short names accepted in configs for envs outside decisionnets.
NEUROGYM_ENVS = {
    "PerceptualDecisionMaking": "PerceptualDecisionMaking-v0",
    "ContextDecisionMaking": "ContextDecisionMaking-v0",
}


def make_env_class(name: str, other_names=()):
    """The env class for config name ``name``; :class:`ConfigError` naming the valid ones otherwise.

    ``other_names``: more valid ``[env]`` names to list in that error (the image datasets, which
    :mod:`decisionnets.build` serves without an env class here).
    """
    import importlib

    import gymnasium

    from decisionnets.envs import ENV_IDS

    if name in ENV_IDS:
        env_id = ENV_IDS[name]
    else:
        import neurogym  # noqa: F401  (registers its envs)

        env_id = NEUROGYM_ENVS.get(name, name)
        if env_id not in gymnasium.registry:
            valid = sorted(ENV_IDS) + sorted(NEUROGYM_ENVS) + list(other_names)
            raise ConfigError(
                f"unknown env {name!r}; valid: {', '.join(valid)} (or any neurogym env id, e.g. GoNogo-v0)"
            )
    cls = gymnasium.spec(env_id).entry_point
    if isinstance(cls, str):
        mod, _, attr = cls.partition(":")
        cls = getattr(importlib.import_module(mod), attr)
    return cls


def make_env(name: str, kwargs: dict):
    """Build an env by config name, unwrapped, with a clear error for bad names or arguments."""
    import inspect

    cls = make_env_class(name)
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise ConfigError(f"env {name} has no parameter {', '.join(map(repr, unknown))}; valid: {', '.join(params)}")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError, AttributeError) as e:
        raise ConfigError(f"env {name}: invalid parameters {kwargs}: {e}") from None
