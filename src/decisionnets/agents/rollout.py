"""Closed-loop rollouts: a recurrent network acting in an env one step at a time.

:func:`rollout` runs a model's step API (``initial_state``, ``step``; see
:mod:`decisionnets.models.rnn`) in a Gymnasium env of the package and returns an
:class:`xarray.Dataset` with the activation-dataset conventions (DESIGN.md section 3), so
:func:`decisionnets.usable_information` and ``decisionnets analyze`` read it unchanged:

==========================  =============================================================
``hidden``                  (trial, time, unit) — NaN outside the trial (before its start
                            at the alignment, after its end)
``logits``                  (trial, time, action) — NaN outside the trial
``action``                  (trial, time) int8 — action taken; -1 outside the trial
``reward``                  (trial, time) float — reward received; NaN outside the trial
``choice``                  (trial) — index of the reach among the choice actions; -1: none
``correct``                 (trial) int8 — the reach was to the correct target
``responded``               (trial) int8 — the trial ended with a reach (not abort / miss)
``reaction_time``           (trial) ms from stimulus onset to the reach, which is emitted at
                            the end of its step (a reach at the onset step: dt); NaN: none
``nll``                     (trial) nats — cross-entropy of the policy against the correct
                            action at the trial's last step
labels                      coordinates on ``trial`` (``color``, ``direction``, ...)
``time``                    ms from stimulus onset (``align="onset"``) or from the reach
                            (``align="response"``); ``period`` (time) when all trials agree
==========================  =============================================================

Two paths, one result: envs with a vectorized trial sampler and rules (``sample`` and
``batch_step``: ColorDirection, ColorDirectionRT) draw all trials at once and step the
network over the whole batch; other envs (neurogym's) are stepped as one copy per trial, in
lockstep, with the network still batched over trials. Trials that have ended are masked.
The checkerboard envs' observations do not depend on the agent's actions before the trial
ends, so a whole trial can be drawn in advance; the response still ends it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from decisionnets.errors import ConfigError
from decisionnets.task import choice_actions

POLICIES = ("greedy", "sample")
ALIGNS = ("onset", "response")


@dataclass
class Episodes:
    """A batch of trials played by a network, in trial-start-aligned time (step 0 = first step).

    Attributes (``T`` steps, ``n`` trials)
    ----------
    logits : Tensor (T, n, action); hidden : Tensor (T, n, unit) — with autograd when asked
    actions : Tensor (T, n) int64
    reward : np.ndarray (T, n) float — 0 at steps that did not happen
    alive : np.ndarray (T, n) bool — the step happened (the trial had not ended before it)
    end_step, response_step, onset_step : np.ndarray (n,) int — last step; reach step (-1: none);
        first stimulus step
    choice, correct, responded : np.ndarray (n,)
    target : np.ndarray (n,) int — correct action at the last step
    period : np.ndarray (T_trial, n) str or None — every step of each trial ("" after its length),
        whether or not it happened
    labels : dict of (n,) arrays
    """

    logits: torch.Tensor
    hidden: torch.Tensor
    actions: torch.Tensor
    reward: np.ndarray
    alive: np.ndarray
    end_step: np.ndarray
    response_step: np.ndarray
    onset_step: np.ndarray
    choice: np.ndarray
    correct: np.ndarray
    responded: np.ndarray
    target: np.ndarray
    period: np.ndarray | None
    labels: dict
    length: np.ndarray | None = None  #: (n,) steps each trial would last without an early end


def is_vectorized(env) -> bool:
    """Whether ``env`` draws batches of trials (``sample``) and has vectorized rules (``batch_step``)."""
    return hasattr(env, "sample") and hasattr(env, "batch_step")


def start_aligned(trials):
    """Re-align a batch padded at the start (trials end together) so that every trial starts at step 0.

    Parameters
    ----------
    trials : SampledTrials (or any object with ``inputs`` (T, n, F), ``targets``/``period`` (T, n))

    Returns
    -------
    dict with ``inputs`` (T, n, F) float32 (zeros after the end), ``targets`` (T, n), ``period`` (T, n)
    str ("" after the end), ``length`` (n,), ``onset`` (n,) index of the first ``stimulus`` step.
    """
    period = np.asarray(trials.period).astype(str)
    T, n = period.shape
    start = np.argmax(period != "", axis=0)
    length = T - start
    idx = np.minimum(start[None, :] + np.arange(T)[:, None], T - 1)  # (T, n)
    valid = np.arange(T)[:, None] < length[None, :]
    inputs = np.take_along_axis(trials.inputs, idx[..., None], axis=0) * valid[..., None]
    targets = np.where(valid, np.take_along_axis(trials.targets, idx, axis=0), 0)
    per = np.where(valid, np.take_along_axis(period, idx, axis=0), "")
    stim = per == "stimulus"
    onset = np.where(stim.any(0), np.argmax(stim, axis=0), 0)
    return {"inputs": inputs.astype(np.float32), "targets": targets, "period": per, "length": length,
            "onset": onset}


def _act(logits, policy, generator):
    if policy == "greedy":
        return logits.argmax(-1)
    probs = torch.softmax(logits.detach().float(), -1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def play_trials(model, env, trials, *, policy="greedy", generator=None, grad=False, device="cpu") -> Episodes:
    """Play a pre-drawn batch of trials of a vectorized env, stepping the network over the batch.

    Parameters
    ----------
    model : a recurrent model with ``initial_state`` and ``step``
    env : an env with ``batch_step`` (the rules) and ``action_space``
    trials : the env's ``sample(...)`` output
    policy : {"greedy", "sample"}
    generator : torch.Generator, optional — for ``policy="sample"``
    grad : bool — keep the autograd graph (for training); otherwise under ``torch.no_grad``

    Returns
    -------
    Episodes
    """
    a = start_aligned(trials)
    x = torch.from_numpy(a["inputs"]).to(device)
    T, n = a["period"].shape
    length, period, targets = a["length"], a["period"], a["targets"]
    choices = choice_actions(env)
    to_choice = np.full(int(env.action_space.n), -1)
    to_choice[choices] = np.arange(len(choices))
    alive_now = np.ones(n, bool)
    alive = np.zeros((T, n), bool)
    reward = np.zeros((T, n))
    end_step = np.full(n, -1)
    response_step = np.full(n, -1)
    resp_action = np.zeros(n, np.int64)
    logits, hidden, actions = [], [], []
    with torch.set_grad_enabled(grad):
        state = model.initial_state(n)
        for t in range(T):
            if not alive_now.any():
                break
            lt, state, act = model.step(x[t], state)
            at = _act(lt, policy, generator)
            logits.append(lt)
            hidden.append(act["hidden"])
            actions.append(at)
            a_np = at.cpu().numpy()
            r, done, resp = env.batch_step(period[t], targets[t], a_np, t == length - 1)
            alive[t] = alive_now
            reward[t] = np.where(alive_now, r, 0.0)
            ended = alive_now & done
            end_step[ended] = t
            hit = alive_now & resp
            response_step[hit] = t
            resp_action[hit] = a_np[hit]
            alive_now = alive_now & ~done
    T_run = len(logits)
    responded = response_step >= 0
    last = np.clip(end_step, 0, None)
    target = targets[last, np.arange(n)]
    choice = np.where(responded, to_choice[resp_action], -1)
    correct = responded & (resp_action == target)
    catch = np.asarray(trials.labels.get("catch", np.zeros(n))).astype(bool)
    correct = np.where(catch, ~responded, correct)
    return Episodes(torch.stack(logits), torch.stack(hidden), torch.stack(actions), reward[:T_run], alive[:T_run],
                    end_step, response_step, a["onset"], choice, correct, responded, target, period,
                    {k: np.asarray(v) for k, v in trials.labels.items()}, length)


def _play_copies(model, env, n, rng, policy, generator, device="cpu") -> Episodes:
    """One copy of a (neurogym) env per trial, stepped in lockstep; the network batched over trials."""
    choices = choice_actions(env)
    to_choice = {a: i for i, a in enumerate(choices)}
    envs, trials, obs = [], [], []
    for seed in rng.integers(0, 2**31 - 1, size=n):
        e = copy.deepcopy(env)
        e.seed(int(seed))
        trials.append(e.new_trial())
        e.t = e.t_ind = 0
        envs.append(e)
        obs.append(np.asarray(e.ob[0], np.float32))
    length = np.array([len(e.ob) for e in envs])
    T = int(length.max())
    period = np.full((T, n), "", dtype=object)
    for i, e in enumerate(envs):
        for p in e.timing:
            if p in e.start_ind:
                period[e.start_ind[p]:e.end_ind[p], i] = p
    period = period.astype(str)
    onset = np.array([e.start_ind.get("stimulus", 0) for e in envs])
    alive_now = np.ones(n, bool)
    alive, reward = np.zeros((T, n), bool), np.zeros((T, n))
    end_step, response_step = np.full(n, -1), np.full(n, -1)
    choice, correct, target = np.full(n, -1), np.zeros(n, bool), np.zeros(n, np.int64)
    logits, hidden, actions = [], [], []
    x = np.stack(obs)
    with torch.no_grad():
        state = model.initial_state(n)
        for t in range(T):
            if not alive_now.any():
                break
            lt, state, act = model.step(torch.from_numpy(x).to(device), state)
            at = _act(lt, policy, generator)
            logits.append(lt)
            hidden.append(act["hidden"])
            actions.append(at)
            a_np = at.cpu().numpy()
            alive[t] = alive_now
            for i in np.flatnonzero(alive_now):
                gt = int(envs[i].gt[envs[i].t_ind]) if envs[i].gt is not None else 0
                ob, r, _, _, info = envs[i].step(int(a_np[i]))
                reward[t, i] = r
                x[i] = ob
                if info.get("new_trial"):
                    alive_now[i] = False
                    end_step[i] = t
                    target[i] = gt
                    if a_np[i] in to_choice and period[t, i] != "fixation":
                        response_step[i] = t
                        choice[i] = to_choice[int(a_np[i])]
                    correct[i] = info.get("performance", 0) == 1
    T_run = len(logits)
    keys = set.intersection(*(set(k for k, v in d.items() if np.isscalar(v) and not isinstance(v, str))
                              for d in trials))
    labels = {k: np.array([d[k] for d in trials]) for k in sorted(keys)}
    if "ground_truth" in labels:  # as the index of the correct choice, comparable with `choice`
        labels["ground_truth"] = np.array([to_choice.get(int(g), -1) if int(g) in to_choice else int(g)
                                           for g in labels["ground_truth"]])
    return Episodes(torch.stack(logits), torch.stack(hidden), torch.stack(actions), reward[:T_run], alive[:T_run],
                    end_step, response_step, onset, choice, correct, response_step >= 0, target, period,
                    labels, length)


def _realign(a: np.ndarray, zero: np.ndarray, alive: np.ndarray, fill, length=None):
    """(T, n, ...) in trial-start time -> (n, T', ...) with step ``zero[i]`` of trial i at a common index.

    Returns the array and the time offsets (steps relative to the alignment) of its T' columns:
    from the earliest trial start to the latest step that happened, or, with ``length`` (n,), to the
    latest step any trial could have lasted (a time axis that does not depend on the behaviour).
    Trials whose ``zero`` is -1 are left all ``fill``.
    """
    T, n = alive.shape
    ok = zero >= 0
    z = np.where(ok, zero, 0)
    first = -int(z[ok].max()) if ok.any() else 0
    if length is not None:
        last = int((np.asarray(length) - 1 - z)[ok].max()) if ok.any() else 0
    else:
        last_rel = np.where(alive, np.arange(T)[:, None] - z[None, :], -10**9)
        last = int(last_rel[:, ok].max()) if ok.any() else 0
    rel = np.arange(first, last + 1)
    out = np.full((n, len(rel)) + a.shape[2:], fill, dtype=np.result_type(a.dtype, np.asarray(fill).dtype))
    tt, ii = np.nonzero(alive & ok[None, :])
    out[ii, tt - z[ii] - first] = a[tt, ii]
    return out, rel


def episodes_dataset(ep: Episodes, env, *, align: str = "onset", dt: float | None = None, attrs=None) -> xr.Dataset:
    """The rollout dataset (module docstring) of played :class:`Episodes`, aligned to onset or response."""
    if align not in ALIGNS:
        raise ConfigError(f"align must be one of {', '.join(ALIGNS)}; got {align!r}")
    dt = float(dt if dt is not None else getattr(env, "dt", 1.0))
    zero = ep.onset_step if align == "onset" else ep.response_step
    alive = ep.alive
    span = ep.length if align == "onset" else None  # onset: the trials' full extent, whatever the behaviour
    hidden, rel = _realign(ep.hidden.detach().cpu().float().numpy(), zero, alive, np.nan, span)
    logits, _ = _realign(ep.logits.detach().cpu().float().numpy(), zero, alive, np.nan, span)
    action, _ = _realign(ep.actions.cpu().numpy().astype(np.int8), zero, alive, np.int8(-1), span)
    reward, _ = _realign(ep.reward, zero, alive, np.nan, span)
    n = alive.shape[1]
    # the action of a step is emitted at its end, after that step's observation: a reach at the onset step
    # comes dt after onset
    rt = np.where(ep.responded, (ep.response_step - ep.onset_step + 1) * dt, np.nan)
    lg = ep.logits.detach().cpu().double()
    last = torch.as_tensor(np.clip(ep.end_step, 0, None))
    at_end = lg[last, torch.arange(n)]  # (n, action)
    nll = torch.nn.functional.cross_entropy(at_end, torch.as_tensor(ep.target), reduction="none").numpy()
    coords = {"trial": np.arange(n),
              "time": ("time", rel * dt, {"units": "ms", "long_name": f"time from {'stimulus onset' if align == 'onset' else 'the reach'}"})}
    for k, v in ep.labels.items():
        coords[k] = ("trial", v)
    if ep.period is not None:
        per, _ = _realign(ep.period.astype(object), zero, ep.period != "", "", span)
        per = per.astype(str)
        col = [set(per[:, j][per[:, j] != ""]) for j in range(per.shape[1])]
        if all(len(c) <= 1 for c in col) and any(col):
            coords["period"] = ("time", np.array([next(iter(c)) if c else "" for c in col]))
    ds = xr.Dataset(
        {
            "hidden": (("trial", "time", "unit"), hidden.astype(np.float32)),
            "logits": (("trial", "time", "action"), logits.astype(np.float32)),
            "action": (("trial", "time"), action.astype(np.int8)),
            "reward": (("trial", "time"), reward.astype(np.float32)),
            "choice": (("trial",), ep.choice.astype(np.int64)),
            "correct": (("trial",), ep.correct.astype(np.int8)),
            "responded": (("trial",), ep.responded.astype(np.int8)),
            "reaction_time": (("trial",), rt),
            "nll": (("trial",), nll),
        },
        coords=coords,
        attrs={"align": align, "dt": dt, "time_units": "ms", "choice_actions": np.asarray(choice_actions(env), np.int64),
               **(attrs or {})},
    )
    ds["reaction_time"].attrs.update(units="ms", long_name="reaction time from stimulus onset")
    ds["nll"].attrs["units"] = "nats"
    ds["choice"].attrs["description"] = "index of the reach among the choice actions; -1: no reach"
    ds["action"].attrs["description"] = "action taken at each step; -1: outside the trial"
    return ds


def rollout(model, env, n_trials: int, seed: int, policy: str = "greedy", *, align: str = "onset",
            fixed_timing: bool = False, device="cpu", **fixed) -> xr.Dataset:
    """Run ``model`` in closed loop in ``env`` for ``n_trials`` trials.

    Parameters
    ----------
    model : a recurrent model of :mod:`decisionnets.models.rnn` (``initial_state``, ``step``)
    env : a Gymnasium/neurogym TrialEnv of the package (ColorDirection, ColorDirectionRT) or of
        neurogym (e.g. PerceptualDecisionMaking-v0); left untouched (copies are stepped)
    n_trials : int
    seed : int
        Seeds the trials and, with ``policy="sample"``, the actions (independent streams).
    policy : {"greedy", "sample"}
        The most likely action at each step, or one sampled from the softmax of the logits.
    align : {"onset", "response"}
        Time zero at stimulus onset (default) or at the reach (trials without a reach: all NaN).
    fixed_timing : bool
        Every period at its typical duration (vectorized envs), as the probe set.
    **fixed
        Trial variables to fix (vectorized envs: ``coherence``, ``target_config``), arrays (n_trials,).

    Returns
    -------
    xr.Dataset
        dims (trial, time, unit, action); see the module docstring.
    """
    if policy not in POLICIES:
        raise ConfigError(f"policy must be one of {', '.join(POLICIES)}; got {policy!r}")
    if not (isinstance(n_trials, (int, np.integer)) and n_trials >= 1):
        raise ConfigError(f"n_trials must be an integer >= 1; got {n_trials!r}")
    if not hasattr(model, "step"):
        raise ConfigError(f"{type(model).__name__} has no step API (initial_state/step); only recurrent models act")
    env = getattr(env, "unwrapped", env)
    trial_ss, act_ss = np.random.SeedSequence(seed).spawn(2)
    rng = np.random.default_rng(trial_ss)
    gen = torch.Generator().manual_seed(int(act_ss.generate_state(1, dtype=np.uint64)[0] % (2**63 - 1)))
    was_training = model.training
    model.eval()
    try:
        if is_vectorized(env):
            trials = env.sample(int(n_trials), rng, fixed_timing=fixed_timing, **fixed)
            ep = play_trials(model, env, trials, policy=policy, generator=gen, device=device)
        else:
            if fixed:
                raise ConfigError(f"{type(env).__name__} draws its trials one by one; cannot fix {sorted(fixed)}")
            ep = _play_copies(model, env, int(n_trials), rng, policy, gen, device=device)
    finally:
        model.train(was_training)
    return episodes_dataset(ep, env, align=align, attrs={"policy": policy, "seed": int(seed),
                                                         "env": type(env).__name__, "model": type(model).__name__})


def as_epoch(ds: xr.Dataset, epoch: int, step: int = 0) -> xr.Dataset:
    """A rollout dataset as one recorded epoch of an activation dataset (DESIGN.md section 3).

    Adds the ``epoch`` dim (length 1) to every per-trial variable and the epoch metrics
    ``accuracy`` (fraction correct, non-catch trials; no reach counts as wrong), ``loss`` (mean
    ``nll``, nats), ``reward`` per trial ``mean_reward``, ``mean_reaction_time`` (ms) and ``step``.
    """
    from decisionnets.io import FORMAT_VERSION

    catch = ds["catch"].values.astype(bool) if "catch" in ds.coords else np.zeros(ds.sizes["trial"], bool)
    out = ds.copy()
    for v in ("hidden", "logits", "action", "reward", "choice", "correct", "responded", "reaction_time", "nll"):
        out[v] = ds[v].expand_dims(epoch=[int(epoch)])
    ok = ~catch
    out["accuracy"] = ("epoch", [float(ds["correct"].values[ok].mean())])
    out["loss"] = ("epoch", [float(ds["nll"].values[ok].mean())])
    out["mean_reward"] = ("epoch", [float(np.nansum(ds["reward"].values, axis=1).mean())])
    out["mean_reaction_time"] = ("epoch", [float(np.nanmean(ds["reaction_time"].values)) if
                                           np.isfinite(ds["reaction_time"].values).any() else np.nan])
    out["step"] = ("epoch", np.array([int(step)], np.int64))
    out["loss"].attrs["units"] = "nats"
    out["mean_reaction_time"].attrs["units"] = "ms"
    out.attrs["format_version"] = FORMAT_VERSION
    return out


def load_run_model(run_dir, env_name: str | None = None, **env_overrides):
    """The trained model of a run directory and the env to act in (the run's, or ``env_name``).

    ``env_name`` takes the run's ``[env]`` parameters that its constructor accepts (``timing``
    only when it is the run's own env); ``env_overrides`` are env parameters set on top (e.g.
    ``response="last"`` for :class:`~decisionnets.envs.ColorDirection`). Returns
    ``(model, env, config, epoch, step)``.
    """
    import inspect
    from pathlib import Path

    from decisionnets.build import build_model, make_task
    from decisionnets.config import config_from_json
    from decisionnets.errors import DataFileError
    from decisionnets.envs import make_env_class

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise DataFileError(f"{run_dir} is not a run directory (no config.json)")
    try:
        cfg = config_from_json((run_dir / "config.json").read_text())
    except ValueError as e:
        raise DataFileError(f"{run_dir / 'config.json'} is not a valid decisionnets config: {e}") from None
    ckpt_path = next((p for p in (run_dir / "checkpoints" / "final.pt", run_dir / "checkpoints" / "last.pt")
                      if p.is_file()), None)
    if ckpt_path is None:
        raise DataFileError(f"no checkpoint in {run_dir / 'checkpoints'} (final.pt or last.pt)")
    kw = {k: v for k, v in cfg.env.items() if k != "name"}
    name = cfg.env["name"]
    if env_name is not None and env_name != name:
        params = inspect.signature(make_env_class(env_name).__init__).parameters
        kw = {k: v for k, v in kw.items() if k in params and k != "timing"}
        name = env_name
    task = make_task(name, {**kw, **env_overrides})
    model = build_model(cfg, task)
    if not hasattr(model, "step"):
        raise ConfigError(f"model {cfg.model['kind']} has no step API; only recurrent models act in envs")
    from decisionnets.rundir import load_checkpoint

    ckpt = load_checkpoint(ckpt_path)
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError, EOFError, OSError) as e:
        raise DataFileError(f"cannot load {ckpt_path} into the model ({name}): {e}") from None
    return model, task.env, cfg, int(ckpt.get("epoch", 0)), int(ckpt.get("step", 0))


def rollout_run(run_dir, *, env: str | None = None, n_trials: int = 1008, seed: int = 0, policy: str = "greedy",
                align: str = "onset", out=None) -> list:
    """``decisionnets rollout``: play a run's trained network in closed loop; write the dataset and figures.

    Writes ``out`` (default ``RUN_DIR/rollout.nc``; the rollout as one recorded epoch, so
    ``decisionnets analyze RUN_DIR/rollout.nc`` reads it) and, next to it in ``<out stem>/figures/``,
    ``closed_loop_psychometric.png`` (fraction correct vs signed evidence, and P(right)) and
    ``chronometric.png`` (reaction time vs signed evidence, correct and error trials) when the
    env's task declares the ``psychometric`` analysis and its ``behaviour_evidence`` (the
    checkerboard envs: their signed coherence). What an
    earlier ``analyze`` wrote for the file it replaces (``<stem>/information.nc``, figures; e.g.
    of a rollout in another env) is removed first, so old and new outputs never sit side by side. Holds the output folder's analysis lock (a second rollout or analyze there is
    refused), and checks that it can write there before playing any trial.

    Returns
    -------
    list of Path, then a dict of behaviour numbers (:func:`~decisionnets.agents.behaviour.behaviour_summary`).
    """
    from pathlib import Path

    from decisionnets.locks import ANALYSIS_LOCK, run_lock
    from decisionnets.report import check_writable

    run_dir = Path(run_dir)
    model, env_obj, cfg, epoch, step = load_run_model(run_dir, env)
    out = Path(out) if out is not None else run_dir / "rollout.nc"
    check_writable(out.parent)
    with run_lock(out.parent, what="rollout output folder", name=ANALYSIS_LOCK):
        return _write_rollout(model, env_obj, cfg, epoch, step, run_dir, env, n_trials, seed, policy, align, out)


def clear_stale_outputs(out) -> list:
    """Remove what an earlier ``analyze OUT`` wrote for the rollout file ``out`` (``<stem>/information.nc``,
    ``<stem>/figures/*.png``): they describe the rollout that ``out`` is about to replace."""
    from pathlib import Path

    stem = Path(out).with_suffix("")
    gone = [p for p in [stem / "information.nc", *sorted((stem / "figures").glob("*.png"))] if p.is_file()]
    for p in gone:
        p.unlink()
    return gone


def _write_rollout(model, env_obj, cfg, epoch, step, run_dir, env, n_trials, seed, policy, align, out):
    """The body of :func:`rollout_run`, run while holding the output folder's analysis lock."""
    from matplotlib.figure import Figure

    from decisionnets import plots
    from decisionnets.agents import behaviour
    from decisionnets.analyses import AnalysisJob, declared_analyses
    from decisionnets.analysis_config import AnalysisConfig
    from decisionnets.envs import task_for
    from decisionnets.io import atomic_path
    from decisionnets.report import save_figure

    ds = rollout(model, env_obj, n_trials, seed, policy, align=align)
    ds.attrs.update(task=cfg.task, config=cfg.to_json(), run_dir=str(run_dir), env=env or cfg.env["name"])
    clear_stale_outputs(out)
    recorded = as_epoch(ds, epoch, step)
    with atomic_path(out) as tmp:
        recorded.to_netcdf(tmp, format="NETCDF4", engine="netcdf4")
    fig_dir = out.with_suffix("") / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    title = f"{cfg.task} in {ds.attrs['env']} ({policy}, {n_trials} trials)"
    paths = [out]
    task = task_for(env_obj)
    # the task declares what its behaviour is drawn against: (trial variable of signed evidence, axis label)
    evidence, axis = getattr(task, "behaviour_evidence", None) or (None, None)
    summary = behaviour.behaviour_summary(ds, evidence)
    psychometric = declared_analyses(task).get("psychometric")  # the env's task declares it
    if evidence is not None and psychometric is not None:
        job = AnalysisJob(recorded, {}, None, AnalysisConfig(), cross_temporal_epoch=int(epoch))
        p = psychometric.run(job)["p_right"]  # every trial: no reach counts as not right
        fig = Figure(figsize=(9, 3.4), layout="constrained")
        a1, a2 = fig.subplots(1, 2)
        behaviour.plot_accuracy(a1, behaviour.accuracy_by_evidence(ds, evidence, long_name=axis),
                                title="closed-loop accuracy")
        plots.plot_psychometric(a2, p, title="P(right) (no reach counts as not right)")
        fig.suptitle(title)
        save_figure(fig, fig_dir / "closed_loop_psychometric.png")
        paths.append(fig_dir / "closed_loop_psychometric.png")
        fig = Figure(figsize=(4.8, 3.6), layout="constrained")
        behaviour.plot_chronometric(fig.subplots(), behaviour.chronometric(ds, evidence, long_name=axis))
        fig.suptitle(title, fontsize="small")
        save_figure(fig, fig_dir / "chronometric.png")
        paths.append(fig_dir / "chronometric.png")
    return paths, summary


def open_vs_closed_loop(run_dir, env=None, **env_overrides) -> dict:
    """Accuracy of a run's trained network on its own probe set, open loop and closed loop.

    Open loop is what the recorder measures (the network reads the whole trial; its choice is the
    argmax over the choice outputs at the last step). Closed loop plays the same trials in the env
    (greedy) by the env's response rule: by default (``ColorDirection(response="first")``) the first
    step whose argmax is a choice ends the trial, wherever it falls; with ``response="last"`` (an
    ``env_overrides`` entry) the action at the last step of the decision period is the choice. A trial
    without a choice is wrong. Returns ``open_loop``, ``closed_loop`` (fractions correct, non-catch
    trials), ``open_loop_first_decision_step`` (the open-loop choice read at the first step of the
    decision period, where a network that reaches at the go cue acts), ``reach_rate``,
    ``mean_reaction_time_ms`` and ``n_trials``.
    """
    from types import SimpleNamespace

    from decisionnets.build import build_task
    from decisionnets.seeding import seed_streams

    model, env_obj, cfg, _, _ = load_run_model(run_dir, env, **env_overrides)
    task = build_task(cfg)
    probe = task.probe_set(np.random.default_rng(seed_streams(cfg.seed)["probe"]))
    period = np.broadcast_to(np.asarray(probe.period)[:, None], probe.targets.shape)
    trials = SimpleNamespace(inputs=probe.inputs, targets=probe.targets, period=period, labels=probe.labels)
    model.eval()
    with torch.no_grad():
        logits, _ = model(torch.from_numpy(probe.inputs))
    ch = np.asarray(task.choice_actions)
    last = logits[-1].numpy()
    open_choice = ch[np.argmax(last[:, ch], axis=1)]
    catch = np.asarray(probe.labels.get("catch", np.zeros(probe.n_trials))).astype(bool)
    open_ok = (open_choice == probe.targets[-1])[~catch]
    first = int(np.argmax(np.asarray(probe.period) == "decision"))  # the go cue (fixed timing: one index)
    first_choice = ch[np.argmax(logits[first].numpy()[:, ch], axis=1)]
    first_ok = (first_choice == probe.targets[-1])[~catch]
    ep = play_trials(model, env_obj, trials, policy="greedy")
    rt = np.where(ep.responded, (ep.response_step - ep.onset_step + 1) * float(env_obj.dt), np.nan)
    return {"open_loop": float(open_ok.mean()), "closed_loop": float(ep.correct[~catch].mean()),
            "open_loop_first_decision_step": float(first_ok.mean()),
            "reach_rate": float(ep.responded.mean()), "mean_reaction_time_ms": float(np.nanmean(rt)),
            "n_trials": int((~catch).sum())}
