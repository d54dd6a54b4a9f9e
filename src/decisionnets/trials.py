"""Batches: trial-aligned arrays with per-trial labels, the data every task hands the trainer.

Data flow: tasks -> envs -> **batches** (here) -> models -> training -> recording.

A task (the protocol of :mod:`decisionnets.task`: an env through
:class:`decisionnets.task.EnvTask`, or an image dataset through
:class:`decisionnets.images.ImageTask`) makes two kinds of :class:`TrialBatch`:

- the **training set** (``train_set``), drawn from the data stream of the run's
  seed, with random timing;
- the **probe set** (``probe_set``), generated once per run from its own seed,
  with fixed timing and balanced over the task's conditions (each
  ``n_per_condition`` times), so the activations of every recorded epoch are
  for the same trials.

Envs hand their trials over as :class:`SampledTrials` (each trial with its own
periods); trials of different lengths are padded at the *start* with zeros
(mask 0), so every trial ends on the last time step and the decision periods
line up. This module knows no env and no task.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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


@dataclass(frozen=True)
class SampledTrials:
    """Trials as an env draws them (what a trial source's ``sample`` returns), aligned on their last step.

    Attributes
    ----------
    inputs : np.ndarray, shape (time, trial, feature), float32
    targets : np.ndarray, shape (time, trial), int64
    mask : np.ndarray, shape (time, trial), float32
    period : np.ndarray of str, shape (time, trial)
        Period of each step of each trial ("" for padding).
    labels : dict of str to np.ndarray, each shape (trial,)
    """

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    period: np.ndarray
    labels: dict


def common_period(period: np.ndarray) -> np.ndarray | None:
    """The period of each step, shape (time,), when every trial of ``period`` (time, trial) has the
    same ones (fixed timing); None when they differ."""
    period = np.asarray(period).astype(str)
    if period.shape[1] == 0 or not (period == period[:, :1]).all():
        return None
    return period[:, 0]
