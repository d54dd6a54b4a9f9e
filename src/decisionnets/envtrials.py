"""Any Gymnasium env with per-trial labels as a source of trials: :func:`probe_trials`.

Data flow: a user's own env (no module inside the package needed) -> **trials** (here: a
:class:`~decisionnets.trials.TrialBatch`) -> a user's model -> :func:`decisionnets.record` /
:class:`decisionnets.RunRecorder` -> the activation dataset.

One trial is one episode of the env: ``reset``, then ``step`` until ``terminated`` or
``truncated`` or, for neurogym-style envs that run trial after trial, ``info["new_trial"]``.
The trial's labels are read, for each name in ``label_keys``, from the first of: the info
``reset`` returned, the env's ``unwrapped.trial`` dict right after ``reset`` (neurogym's
convention), the info of the trial's last step. The action taken at each step is
``policy(obs, info)``; by default the correct action when the env tells it (neurogym's
``unwrapped.gt_now``, or ``info["gt"]`` in the info returned with the observation), else 0, so
the trial runs its full course.
"""

from __future__ import annotations

from numbers import Number
from typing import Callable, Sequence

import numpy as np

from decisionnets.errors import UserError
from decisionnets.trials import TrialBatch

__all__ = ["probe_trials"]


def _scalars(d) -> dict:
    if not isinstance(d, dict):
        return {}
    return {str(k): v for k, v in d.items()
            if isinstance(v, (Number, np.number, np.bool_, bool, str)) or (np.ndim(v) == 0 and not isinstance(v, dict))}


def _correct_action(env, info) -> int:
    """The correct action for the observation just returned: neurogym's ``unwrapped.gt_now``, else
    ``info["gt"]`` of that observation's info, else 0."""
    gt = getattr(env.unwrapped, "gt_now", None)
    if gt is None and isinstance(info, dict):
        gt = info.get("gt")
    return 0 if gt is None else int(gt)


def probe_trials(env, n_trials: int, *, seed: int, label_keys: Sequence[str] | None = None,
                 policy: Callable | None = None, max_steps: int = 10_000) -> TrialBatch:
    """Play ``n_trials`` trials of a Gymnasium env and return them as one aligned batch with labels.

    Parameters
    ----------
    env : gymnasium.Env
        Any env whose observations are arrays; a trial ends with ``terminated``/``truncated`` or
        ``info["new_trial"]``.
    n_trials : int
    seed : int
        Seeds the env once (``reset(seed=...)``, and ``unwrapped.seed`` where the env has one,
        as neurogym's envs need), so the same seed gives the same trials.
    label_keys : sequence of str, optional
        The per-trial labels to keep (see the module doc for where they are read); default:
        every scalar entry of the first trial's reset info and ``unwrapped.trial``.
    policy : callable(obs, info) -> action, optional
        The action at each step (default: the correct action when the env tells it, else 0).
    max_steps : int
        Longest trial accepted (a guard against envs that never end a trial).

    Returns
    -------
    TrialBatch
        ``inputs`` (time, trial, feature) float32, trials aligned on their last step and padded
        at the start with zeros; ``targets`` (time, trial) int64: the correct action of each step
        (``gt_now`` / ``info["gt"]``; 0 where the env gives none or on padding); ``mask`` (time,
        trial) float32: 1 on the trial's own steps; ``labels`` {name: (trial,)}; ``dt`` the env's
        ``dt`` when it has one.

    Raises
    ------
    UserError
        ``n_trials`` < 1, a label missing from a trial (the keys found are listed), a trial
        longer than ``max_steps``.
    """
    if not (isinstance(n_trials, (int, np.integer)) and n_trials >= 1):
        raise UserError(f"n_trials must be an integer >= 1; got {n_trials!r}")
    policy = policy or (lambda obs, info: _correct_action(env, info))
    env_seed = int(np.random.SeedSequence(int(seed)).generate_state(1)[0])
    if callable(getattr(env.unwrapped, "seed", None)):
        env.unwrapped.seed(env_seed)
    obs_seqs, gt_seqs, label_rows = [], [], []
    for k in range(int(n_trials)):
        obs, info = env.reset(seed=env_seed if k == 0 else None)
        sources = [_scalars(info), _scalars(getattr(env.unwrapped, "trial", None))]
        if label_keys is None:
            label_keys = list(dict.fromkeys([*sources[0], *sources[1]]))
            if not label_keys:
                raise UserError("the env gives no per-trial labels (no scalar entry in reset's info or in "
                                "env.unwrapped.trial); pass label_keys=[...] read from the last step's info")
        seq, gts = [np.asarray(obs, dtype=np.float32).ravel()], []
        for t in range(max_steps + 1):
            if t == max_steps:
                raise UserError(f"trial {k} did not end within max_steps={max_steps} steps")
            gts.append(_correct_action(env, info))
            action = policy(obs, info)
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated or (isinstance(info, dict) and info.get("new_trial")):
                break
            seq.append(np.asarray(obs, dtype=np.float32).ravel())
        sources.append(_scalars(info))
        row = {}
        for key in label_keys:
            src = next((s for s in sources if key in s), None)
            if src is None:
                found = sorted(set().union(*sources))
                raise UserError(f"trial {k} has no label {key!r}; the env gives: {', '.join(found) or 'none'}")
            row[key] = src[key]
        label_rows.append(row)
        obs_seqs.append(np.stack(seq))
        gt_seqs.append(np.asarray(gts, dtype=np.int64))
    T = max(len(s) for s in obs_seqs)
    n_feat = obs_seqs[0].shape[1]
    inputs = np.zeros((T, n_trials, n_feat), np.float32)
    targets = np.zeros((T, n_trials), np.int64)
    mask = np.zeros((T, n_trials), np.float32)
    for k, (s, g) in enumerate(zip(obs_seqs, gt_seqs)):
        if s.shape[1] != n_feat:
            raise UserError(f"trial {k} has {s.shape[1]} observation values per step; trial 0 had {n_feat}")
        inputs[T - len(s):, k] = s
        targets[T - len(g):, k] = g
        mask[T - len(s):, k] = 1.0
    labels = {key: np.asarray([row[key] for row in label_rows]) for key in label_keys}
    dt = getattr(env.unwrapped, "dt", None)
    return TrialBatch(inputs, targets, mask, labels, None, float(dt) if dt else None)
