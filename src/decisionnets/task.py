"""The task protocol: what every task declares about itself, and :class:`EnvTask`, the batches of an env.

Data flow: ``tasks/<name>.toml`` (a preset) -> config -> **task** (here: an env, or an image
dataset, that declares its trials) -> batches (:mod:`decisionnets.trials`) -> models -> training
-> recording -> netCDF -> decoding -> analyses -> figures.

A *task* is the object the trainer, the recorder, the agents and (through the dataset's
attributes) the analysis consume; it implements the one protocol :class:`Task`. Its implementations:

- :class:`EnvTask` subclasses, one in each env's own file: the checkerboard envs
  (:class:`decisionnets.envs.color_direction.CheckerboardTask`, which serves ``ColorDirection``,
  ``ColorDirectionStatic`` and ``ColorDirectionRT``) and any neurogym env
  (:class:`decisionnets.envs.neurogym_envs.NeurogymTask`). :class:`EnvTask` holds what every env
  does the same way: training and probe batches drawn by the env's ``sample``, the probe set
  balanced over the declared conditions, the choice actions read from the action space;
- :class:`decisionnets.images.ImageTask`: images with coarse and fine labels.

Which class serves an ``[env]`` name is one lookup, :func:`decisionnets.build.task_class`. The
recorder writes a task's declarations into every activation dataset (:func:`declaration_attrs`:
``decode_labels``, ``analyses``, ``target``, ``label_bins``, ``label_colors``; :func:`ceiling_attrs`: the ideal
observer's bits where the task knows them), so ``decisionnets analyze`` and the sweep summaries
decode the task's own variables, run its own analyses and draw its own ceiling without knowing the
task. Adding an env is one file in ``envs/`` (the env and its :class:`EnvTask` subclass), its
registration line, its preset in ``tasks/`` and its test; nothing here changes.
"""

from __future__ import annotations

import json
from typing import Protocol, runtime_checkable

import numpy as np

from decisionnets.errors import ConfigError
from decisionnets.trials import TrialBatch, common_period

__all__ = ["Task", "EnvTask", "choice_actions", "declaration_attrs", "ceiling_attrs"]


@runtime_checkable
class Task(Protocol):
    """What every task declares and makes (implemented by :class:`EnvTask` subclasses and ``ImageTask``).

    Attributes
    ----------
    name : str
        The ``[env]`` name (or the task's own name) stored in run attributes.
    n_inputs, n_outputs : int
        Input features per step; output units (actions or classes).
    choice_actions : list of int
        Outputs that are choices; the network's ``choice`` is the index of the largest among them.
    target_label : str
        The label the network is trained to report.
    has_time : bool
        Whether trials have time steps (False: one step per trial, e.g. the static checkerboard).
    dt : float or None
        Time step (ms); None without time.
    periods : tuple of str
        The trial's periods in order (the loss counts in ``decision``).
    label_names : tuple of str
        Every per-trial label of a trial.
    decode_labels : tuple of str
        The labels ``decisionnets analyze`` decodes by default (the network's ``choice`` is added);
        the first is the one sweep figures show by default.
    analyses : tuple of str or Analysis
        Task-specific analyses run by ``analyze`` on top of the information analyses every task
        gets: :class:`decisionnets.analyses.Analysis` objects (name -> function, defined and
        registered in the task's own file, e.g. the checkerboard's ``psychometric``) or names of
        registered ones; the recorder writes their names.
    label_bins : dict of str to int
        Continuous labels ``analyze`` decodes through that many equal-count bins ({}: none).
    label_colors : dict of str to str, optional
        The matplotlib colour of each label in the figures ({} or absent: by its place in
        ``decode_labels``, :func:`decisionnets.plots.label_colors`).
    kind : str
        ``"trials"`` (drawn by an env) or ``"images"`` (a fixed set of images).
    """

    name: str
    n_inputs: int
    n_outputs: int
    choice_actions: list
    target_label: str
    has_time: bool
    dt: float | None
    periods: tuple
    label_names: tuple
    decode_labels: tuple
    analyses: tuple
    label_bins: dict
    kind: str

    def probe_conditions(self) -> list[dict]:
        """The probe conditions, one dict of fixed trial variables each ({} = drawn at random)."""

    def probe_timing(self) -> dict | None:
        """Duration (ms) of each period on the probe set (fixed timing); None without time."""

    def train_set(self, n: int, rng: np.random.Generator) -> TrialBatch:
        """``n`` training trials with random timing and random conditions."""

    def probe_set(self, rng: np.random.Generator) -> TrialBatch:
        """The probe set: fixed timing, balanced over :meth:`probe_conditions`."""

    def augment(self, inputs, generator):
        """Training-time augmentation of a minibatch (identity for trial tasks)."""

    def ceiling(self) -> dict:
        """The ideal observer's information (bits) about each label it is known for; {} if unknown."""


def choice_actions(env) -> list[int]:
    """The actions of ``env`` that are choices: its ``action_space.name["choice"]`` (neurogym's
    convention), else every action but 0 (the fixation)."""
    names = getattr(env.action_space, "name", None) or {}
    return [int(a) for a in names.get("choice", range(1, int(env.action_space.n)))]


class EnvTask:
    """An env as a :class:`Task`: what every env does the same way. Each env's file subclasses it.

    A subclass declares the task's science (class attributes or properties: ``periods``,
    ``label_names``, ``decode_labels``, ``target_label``, ``analyses``, ``label_bins``,
    ``has_time``; methods :meth:`probe_conditions` and, where known, :meth:`ceiling`) and, when the
    env has no vectorized ``sample(n, rng, fixed_timing=False, **fixed)``, its own :meth:`sample`.
    Build one by ``[env]`` name with :meth:`from_config` (or :func:`decisionnets.build.build_task`).

    Parameters
    ----------
    env : gymnasium.Env
        The env (a neurogym collection's env may come wrapped).
    env_kwargs : dict, optional
        Its constructor arguments.
    n_per_condition : int
        Probe trials per condition.
    name : str, optional
        Its ``[env]`` name (default: the env's class name).
    """

    has_time = True
    #: the data: trials an env draws (``ImageTask`` is ``"images"``, a fixed set of images)
    kind = "trials"
    periods: tuple = ()
    label_names: tuple = ()
    decode_labels: tuple = ()
    target_label = ""
    analyses: tuple = ()
    label_bins: dict = {}  # noqa: RUF012  (read only)
    label_colors: dict = {}  # noqa: RUF012  (read only)

    def __init__(self, env, env_kwargs: dict | None = None, n_per_condition: int = 36, name: str | None = None):
        if isinstance(n_per_condition, bool) or not isinstance(n_per_condition, int) or n_per_condition < 1:
            raise ConfigError(f"record.n_per_condition must be an integer >= 1; got {n_per_condition!r}")
        self.env = env
        self.env_kwargs = dict(env_kwargs or {})
        self.n_per_condition = n_per_condition
        self.name = name or type(env.unwrapped).__name__
        self.n_inputs = int(env.observation_space.shape[0])
        self.n_outputs = int(env.action_space.n)
        self.choice_actions = choice_actions(env)

    @classmethod
    def from_config(cls, name: str, env_kwargs: dict | None = None, n_per_condition: int = 36):
        """The task of ``[env]`` name ``name`` built with ``env_kwargs`` (:func:`decisionnets.envs.factory.make_env`)."""
        from decisionnets.envs.factory import make_env

        env_kwargs = dict(env_kwargs or {})
        return cls(make_env(name, env_kwargs), env_kwargs, n_per_condition, name=name)

    @property
    def dt(self) -> float | None:
        """Time step (ms) of the env; None for a task without time."""
        return float(self.env.unwrapped.dt) if self.has_time else None

    # --- declarations a subclass overrides ------------------------------------
    def probe_conditions(self) -> list[dict]:
        """The probe conditions (each repeated ``n_per_condition`` times in the probe set)."""
        raise NotImplementedError(f"{type(self).__name__} declares no probe conditions")

    def ceiling(self) -> dict:
        """The ideal observer's bits per label; {} (unknown) unless the env's file declares it."""
        return {}

    def sample(self, n: int, rng: np.random.Generator, fixed_timing: bool = False, **fixed):
        """``n`` trials (:class:`~decisionnets.trials.SampledTrials`) drawn by the env's ``sample``;
        ``fixed`` holds arrays of shape (n,) of trial variables to fix."""
        return self.env.sample(n, rng, fixed_timing=fixed_timing, **fixed)

    def probe_timing(self) -> dict | None:
        """Duration (ms) of each period on the probe set: those of one trial drawn with fixed timing
        (None for a task without time)."""
        if not self.has_time:
            return None
        b = self.sample(1, np.random.default_rng(0), fixed_timing=True)
        per = np.asarray(b.period[:, 0])
        return {p: float(np.sum(per == p) * self.dt) for p in self.periods}

    # --- batches ------------------------------------------------------------
    def train_set(self, n: int, rng: np.random.Generator) -> TrialBatch:
        """``n`` training trials with random timing and random conditions."""
        b = self.sample(n, rng)
        return TrialBatch(b.inputs, b.targets, b.mask, b.labels, None, self.dt)

    def probe_trials(self, rng: np.random.Generator):
        """The probe trials as the env draws them (:class:`~decisionnets.trials.SampledTrials`, each
        trial with its periods): fixed timing, every condition ``n_per_condition`` times in a row."""
        conds = [c for c in self.probe_conditions() for _ in range(self.n_per_condition)]
        keys = list(conds[0]) if conds else []
        if any(list(c) != keys for c in conds):
            raise ConfigError(f"env {self.name}: every probe condition must fix the same trial variables; "
                              f"got {sorted({tuple(c) for c in conds})}")
        fixed = {k: np.array([c[k] for c in conds]) for k in keys}
        return self.sample(len(conds), rng, fixed_timing=True, **fixed)

    def probe_set(self, rng: np.random.Generator) -> TrialBatch:
        """The probe set: :meth:`probe_trials` as one batch with their common periods."""
        b = self.probe_trials(rng)
        return TrialBatch(b.inputs, b.targets, b.mask, b.labels, common_period(b.period), self.dt)

    def augment(self, inputs, generator):
        """No augmentation for trial-based tasks (identity)."""
        return inputs

    def describe(self) -> dict:
        """Facts about the task for the dataset's attrs."""
        return {"env": self.name, "dt": self.dt if self.dt is not None else 0.0}


def declaration_attrs(task) -> dict:
    """The task's declarations as dataset attributes (strings only, lists as JSON).

    ``target`` (the trained label), ``decode_labels`` (what ``analyze`` decodes by default),
    ``analyses`` (the task-specific analyses ``analyze`` runs), and, when the task declares some,
    ``label_bins`` (a JSON object ``{label: K}``: continuous labels ``analyze`` decodes through K
    equal-count bins) and ``label_colors`` (a JSON object ``{label: colour}``: the figures' colours).
    """
    from decisionnets.analyses import analysis_names

    out = {
        "target": str(task.target_label),
        "decode_labels": json.dumps([str(v) for v in task.decode_labels]),
        "analyses": json.dumps(analysis_names(task.analyses)),  # objects: their names (and registered)
    }
    bins = getattr(task, "label_bins", None)
    if bins:
        out["label_bins"] = json.dumps({str(k): int(v) for k, v in bins.items()})
    colors = getattr(task, "label_colors", None)
    if colors:
        out["label_colors"] = json.dumps({str(k): str(v) for k, v in colors.items()})
    return out


def ceiling_attrs(task) -> dict:
    """Dataset attributes with the task's ceiling ({} when unknown, e.g. image tasks).

    ``ceiling``: JSON ``{label: bits}`` (:meth:`Task.ceiling`); ``ceiling_accuracy``: the ideal
    observer's fraction correct, when the task declares it (``ceiling_accuracy()``).
    :mod:`decisionnets.report` reads them back (:func:`decisionnets.build.ceilings_from_attrs`).
    """
    labels = task.ceiling() if hasattr(task, "ceiling") else {}
    if not labels:
        return {}
    out = {"ceiling": json.dumps({k: round(float(v), 6) for k, v in labels.items()}, sort_keys=True)}
    if hasattr(task, "ceiling_accuracy"):
        out["ceiling_accuracy"] = float(task.ceiling_accuracy())
    return out
