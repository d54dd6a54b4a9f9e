"""The task protocol: what every task declares about itself, and :class:`EnvTask`, an env as a task.

Data flow: ``tasks/<name>.toml`` (a preset) -> config -> **task** (here: an env, or an image
dataset, that declares its trials) -> batches (:mod:`decisionnets.trials`) -> models -> training
-> recording -> netCDF -> decoding -> analyses -> figures.

A *task* is the object the trainer, the recorder and (through the dataset's attributes) the
analysis consume; it implements :class:`Task`. There are two kinds:

- :class:`EnvTask`: an env (:mod:`decisionnets.envs`) whose *trial source*
  (:class:`TrialSource`) declares the protocol. The checkerboard envs are their own trial source
  (``envs/color_direction.py``, ``envs/color_direction_rt.py``); any other neurogym env is
  declared by :class:`decisionnets.envs.neurogym_envs.NeurogymSource`.
- :class:`decisionnets.images.ImageTask`: images with coarse and fine labels.

The recorder writes a task's declarations into every activation dataset
(:func:`declaration_attrs`: ``decode_labels``, ``analyses``, ``target``), so
``decisionnets analyze`` decodes the task's own variables and runs its own analyses without
knowing the task. Adding an env is one file in ``envs/`` that implements :class:`TrialSource`
(plus its preset in ``tasks/`` and its test); nothing here changes.
"""

from __future__ import annotations

import json
from typing import Protocol, runtime_checkable

import numpy as np

from decisionnets.errors import ConfigError
from decisionnets.trials import TrialBatch, common_period

__all__ = ["TrialSource", "Task", "declaration_attrs", "EnvTask", "check_env_id"]


@runtime_checkable
class TrialSource(Protocol):
    """What an env declares to be trained and analyzed (the env itself or an adapter of it).

    Attributes
    ----------
    has_time : bool
        Whether trials have time steps (False: one step per trial, e.g. the static checkerboard).
    periods : tuple of str
        The trial's periods in order (the loss counts in ``decision``).
    label_names : tuple of str
        Every per-trial label of a sampled trial.
    decode_labels : tuple of str
        The labels ``decisionnets analyze`` decodes by default (the network's ``choice`` is added).
    target_label : str
        The label the network is trained to report.
    analyses : tuple of str
        Task-specific analyses of :mod:`decisionnets.analyses` run by ``analyze`` on top of the
        information analyses every task gets (e.g. ``choice_vs_direction``, ``psychometric``).
    """

    has_time: bool
    periods: tuple
    label_names: tuple
    decode_labels: tuple
    target_label: str
    analyses: tuple

    def probe_conditions(self) -> list[dict]:
        """The probe conditions, one dict of fixed trial variables each ({} = drawn at random);
        the task repeats each ``n_per_condition`` times."""

    def probe_timing(self) -> dict:
        """Duration (ms) of each period on the probe set (fixed timing)."""

    def sample(self, n: int, rng: np.random.Generator, fixed_timing: bool = False, **fixed):
        """``n`` trials (a :class:`~decisionnets.trials.SampledTrials`-like object) drawn with
        ``rng``; ``fixed`` holds arrays of shape (n,) of trial variables to fix."""


@runtime_checkable
class Task(Protocol):
    """What the trainer and the recorder consume (implemented by :class:`EnvTask` and ``ImageTask``).

    Attributes
    ----------
    name : str
    n_inputs, n_outputs : int
        Input features per step; output units (actions or classes).
    choice_actions : list of int
        Outputs that are choices; the network's ``choice`` is the index of the largest among them.
    target_label, has_time, periods, label_names, decode_labels, analyses
        As :class:`TrialSource` declares them.
    dt : float or None
        Time step (ms); None without time.
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

    def probe_conditions(self) -> list[dict]:
        """The probe set's conditions (see :meth:`TrialSource.probe_conditions`)."""

    def train_set(self, n: int, rng: np.random.Generator) -> TrialBatch:
        """``n`` training trials with random timing and random conditions."""

    def probe_set(self, rng: np.random.Generator) -> TrialBatch:
        """The probe set: fixed timing, balanced over :meth:`probe_conditions`."""

    def augment(self, inputs, generator):
        """Training-time augmentation of a minibatch (identity for trial tasks)."""


def declaration_attrs(task) -> dict:
    """The task's declarations as dataset attributes (strings only, lists as JSON).

    ``target`` (the trained label), ``decode_labels`` (what ``analyze`` decodes by default),
    ``analyses`` (the task-specific analyses ``analyze`` runs), and ``label_bins`` (a JSON object
    ``{label: K}``: continuous labels ``analyze`` decodes through K equal-count bins) when the task
    declares some.
    """
    out = {
        "target": str(task.target_label),
        "decode_labels": json.dumps([str(v) for v in task.decode_labels]),
        "analyses": json.dumps([str(v) for v in task.analyses]),
    }
    bins = getattr(task, "label_bins", None)
    if bins:
        out["label_bins"] = json.dumps({str(k): int(v) for k, v in bins.items()})
    return out


class EnvTask:
    """An env as a source of training and probe batches, declared by its trial source.

    Parameters
    ----------
    env : str
        A name of :func:`decisionnets.envs.make_env`: ``ColorDirection``, ``ColorDirectionStatic``,
        ``ColorDirectionRT``, ``PerceptualDecisionMaking``, ``ContextDecisionMaking`` or any
        neurogym env id (``GoNogo-v0``, ``neurogym:DelayMatchSample-v0``).
    env_kwargs : dict
        Passed to the env's constructor (e.g. ``dt``, ``sigma``, ``timing``).
    n_per_condition : int
        Probe trials per condition.

    Attributes
    ----------
    env : the env (unwrapped)
    source : TrialSource
        The env itself or its adapter (:func:`decisionnets.envs.trial_source`).
    """

    def __init__(self, env: str, env_kwargs: dict | None = None, n_per_condition: int = 36):
        from decisionnets.envs import make_env, trial_source

        self.name = env
        self.env_kwargs = dict(env_kwargs or {})
        if not isinstance(n_per_condition, int) or n_per_condition < 1:
            raise ConfigError(f"record.n_per_condition must be an integer >= 1; got {n_per_condition!r}")
        self.n_per_condition = n_per_condition
        self.env = make_env(env, self.env_kwargs)
        self.source = trial_source(self.env, self.env_kwargs, name=env)
        src = self.source
        self.has_time = bool(src.has_time)
        self.periods = tuple(src.periods)
        self.decode_labels = tuple(src.decode_labels)
        self.analyses = tuple(src.analyses)
        self.target_label = src.target_label
        self.n_inputs = int(self.env.observation_space.shape[0])
        self.n_outputs = int(self.env.action_space.n)
        names = getattr(self.env.action_space, "name", None) or {}
        # the source may declare them (a neurogym env whose fixation is an answer: fixation last)
        self.choice_actions = list(getattr(src, "choice_actions", None) or names.get("choice", range(1, self.n_outputs)))
        self.label_bins = dict(getattr(src, "label_bins", None) or {})
        self.dt = float(self.env.unwrapped.dt) if self.has_time else None

    @property
    def label_names(self) -> tuple:
        """Every per-trial label of a trial (declared by the source)."""
        return tuple(self.source.label_names)

    def probe_conditions(self) -> list[dict]:
        """The source's probe conditions (each repeated ``n_per_condition`` times in the probe set)."""
        return list(self.source.probe_conditions())

    def probe_timing(self) -> dict:
        """Duration (ms) of each period on the probe set."""
        return self.source.probe_timing()

    # --- batches ------------------------------------------------------------
    def train_set(self, n: int, rng: np.random.Generator) -> TrialBatch:
        """``n`` training trials with random timing and random conditions."""
        b = self.source.sample(n, rng)
        return TrialBatch(b.inputs, b.targets, b.mask, b.labels, None, self.dt)

    def probe_set(self, rng: np.random.Generator) -> TrialBatch:
        """The probe set: fixed timing, every condition ``n_per_condition`` times."""
        conds = [c for c in self.probe_conditions() for _ in range(self.n_per_condition)]
        keys = list(conds[0]) if conds else []
        if any(list(c) != keys for c in conds):
            raise ConfigError(f"env {self.name}: every probe condition must fix the same trial variables; "
                              f"got {sorted({tuple(c) for c in conds})}")
        fixed = {k: np.array([c[k] for c in conds]) for k in keys}
        b = self.source.sample(len(conds), rng, fixed_timing=True, **fixed)
        return TrialBatch(b.inputs, b.targets, b.mask, b.labels, common_period(b.period), self.dt)

    def augment(self, inputs, generator):
        """No augmentation for trial-based tasks (identity)."""
        return inputs

    def describe(self) -> dict:
        """Facts about the task for the dataset's attrs."""
        return {"env": self.name, "dt": self.dt if self.dt is not None else 0.0}


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
        task = EnvTask(f"neurogym:{env_id}", kwargs, n_per_condition=n_per_condition)
        rng = np.random.default_rng(0)
        probe = task.probe_set(rng)
        task.train_set(8, rng)
    except UserError as e:
        return {"outcome": "refused", "reason": str(e)}
    gt = np.asarray(probe.labels["ground_truth"])
    return {"outcome": "works", "reason": "", "classes": len(task.choice_actions),
            "fixation_class": bool(task.source.fixation_answer), "labels": tuple(task.label_names),
            "probe_classes": sorted(int(v) for v in np.unique(gt)), "missing": int((gt < 0).sum())}
