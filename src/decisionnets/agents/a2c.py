"""Reward-based training of the package's recurrent models: advantage actor-critic (A2C).

Read :func:`train_agent` top to bottom; it mirrors :func:`decisionnets.training.train` (same run
directory, seed streams, phases, checkpoints and resume, per-epoch recording, ``analyze``) with
one difference: instead of fitting targets, the network *plays* batches of trials in the env
(:func:`decisionnets.agents.rollout.play_trials`, the same closed-loop code as
:func:`~decisionnets.agents.rollout.rollout`, with autograd on) and is updated from the rewards.

Per update, on ``train.batch_size`` trials played with actions sampled from the policy:

* ``a2c``: a linear value head V on the hidden state (the critic, saved in the checkpoint next to
  the model) gives advantages by generalized advantage estimation,
  ``A_t = sum_k (gamma lambda)^k delta_{t+k}``, ``delta_t = r_t + gamma V_{t+1} - V_t`` (V = 0 after
  the trial's last step); loss = ``-mean(log pi(a_t) A_t) + value_coef mean((V_t - (A_t + V_t))^2)
  - entropy mean(H(pi_t))`` over the steps that happened;
* ``reinforce``: the Monte Carlo return minus the batch mean return (the simple baseline), no critic.

Gradients flow through the whole trial (backpropagation through time; trials are short). An
*epoch* is ``train.n_trials`` trials. The probe set is a fixed batch of trials (probe seed,
balanced over coherence x target configuration, typical timing) played with the greedy policy
at every recorded epoch and stored as activations (DESIGN.md section 3 plus ``action``,
``reward``, ``reaction_time``; see :mod:`decisionnets.agents.rollout`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from decisionnets import __version__
from decisionnets.agents.rollout import as_epoch, episodes_dataset, is_vectorized, play_trials
from decisionnets.build import build_model, build_task
from decisionnets.errors import ConfigError, TrainingDiverged
from decisionnets.io import write_epoch
from decisionnets.weights import save_weights
from decisionnets.recording import record_epochs
from decisionnets.rundir import RunDir, restore, snapshot
from decisionnets.training import _torch_seed, phase_settings, seed_streams

LOG_FIELDS = ("epoch", "step", "trials", "lr", "batch_size", "loss", "mean_reward", "train_accuracy",
              "abort_rate", "miss_rate", "probe_accuracy", "probe_reward", "probe_reaction_time", "seconds")


def advantages(reward, value, alive, gamma: float, lam: float):
    """GAE advantages and value targets.

    Parameters
    ----------
    reward : Tensor (T, n); value : Tensor (T, n) (detached); alive : Tensor (T, n) bool
        Steps after a trial's end have ``alive`` False and are ignored (V = 0 beyond the last step).
    gamma, lam : float

    Returns
    -------
    adv, target : Tensors (T, n); 0 where not alive.
    """
    T = reward.shape[0]
    alive = alive.to(reward.dtype)
    adv = torch.zeros_like(reward)
    nxt_adv = torch.zeros_like(reward[0])
    nxt_v = torch.zeros_like(reward[0])
    for t in range(T - 1, -1, -1):
        cont = alive[t + 1] if t + 1 < T else torch.zeros_like(alive[0])
        delta = reward[t] + gamma * nxt_v * cont - value[t]
        nxt_adv = (delta + gamma * lam * cont * nxt_adv) * alive[t]
        adv[t] = nxt_adv
        nxt_v = value[t]
    return adv, (adv + value) * alive


def returns(reward, alive, gamma: float):
    """Discounted return from each step to the trial's end, (T, n); 0 where not alive."""
    out = torch.zeros_like(reward)
    g = torch.zeros_like(reward[0])
    alive = alive.to(reward.dtype)
    for t in range(reward.shape[0] - 1, -1, -1):
        g = (reward[t] + gamma * g) * alive[t]
        out[t] = g
    return out


def policy_loss(ep, value_head, agent):
    """The loss of one batch of played :class:`~decisionnets.agents.rollout.Episodes` and its parts."""
    alive = torch.as_tensor(ep.alive)
    m = alive.to(ep.logits.dtype)
    n_steps = m.sum().clamp_min(1.0)
    reward = torch.as_tensor(ep.reward, dtype=ep.logits.dtype)
    logp_all = torch.log_softmax(ep.logits, -1)
    logp = logp_all.gather(-1, ep.actions[..., None])[..., 0]
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    parts = {}
    if agent.algorithm == "a2c":
        value = value_head(ep.hidden)[..., 0]
        adv, target = advantages(reward, value.detach(), alive, agent.gamma, agent.gae_lambda)
        v_loss = (((value - target) ** 2) * m).sum() / n_steps
        parts["value_loss"] = float(v_loss.detach())
    else:
        ret = returns(reward, alive, agent.gamma)
        adv = (ret - (ret * m).sum() / n_steps) * m
        v_loss = torch.zeros((), dtype=ep.logits.dtype)
    if agent.normalize_advantage:
        mu = (adv * m).sum() / n_steps
        sd = torch.sqrt((((adv - mu) ** 2) * m).sum() / n_steps).clamp_min(1e-6)
        adv = (adv - mu) / sd * m
    pg = -(logp * adv.detach() * m).sum() / n_steps
    ent = (entropy * m).sum() / n_steps
    loss = pg + agent.value_coef * v_loss - agent.entropy * ent
    parts.update(policy_loss=float(pg.detach()), entropy=float(ent.detach()))
    return loss, parts


def probe_trials(env, n_per_condition: int, rng: np.random.Generator):
    """The fixed probe set: every probe condition the env's task declares (:meth:`~decisionnets.task.Task.probe_conditions`;
    the checkerboard: coherence x target configuration) ``n_per_condition`` times, typical timing.

    Returns the env's :class:`~decisionnets.trials.SampledTrials` (each trial with its periods), as
    :func:`~decisionnets.agents.rollout.play_trials` takes them.
    """
    from decisionnets.envs import task_for

    return task_for(env, n_per_condition).probe_trials(rng)


def _thin(ds, stride: int, dtype: str):
    """Keep every ``stride``-th time step (counted from stimulus onset, which is kept); store in ``dtype``."""
    if stride > 1:
        steps = np.rint(ds["time"].values / ds.attrs["dt"]).astype(int)
        ds = ds.isel(time=np.flatnonzero(steps % stride == 0))
    for v in ("hidden", "logits"):
        ds[v] = ds[v].astype(dtype)
    return ds


def train_agent(config, run_dir, *, progress: bool = True, resume: bool = False) -> dict:
    """Train ``config`` (with ``[agent] algorithm = "a2c"`` or ``"reinforce"``) by reward into ``run_dir``.

    Parameters and return value as :func:`decisionnets.training.train`: the final status dict
    (``status``, ``epoch``, ``step`` = updates so far, ``run_dir``).
    """
    from tqdm.auto import tqdm

    run_dir = Path(run_dir)
    tc, rc, agent = config.train, config.record, config.agent
    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda asked for, but torch sees no CUDA GPU; use --device cpu")
    streams = seed_streams(config.seed)

    # --- env, probe set ---------------------------------------------------------
    task = build_task(config)
    env = getattr(task, "env", None)
    if env is None or not is_vectorized(env):
        raise ConfigError(f"agent training needs an env with vectorized trials and rules (sample, batch_step), "
                          f"e.g. ColorDirection or ColorDirectionRT; got env {config.env['name']!r}")
    data_rng = np.random.default_rng(streams["data"])
    probe = probe_trials(env, rc.n_per_condition, np.random.default_rng(streams["probe"]))

    # --- model, critic, optimizer, generators ----------------------------------
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_torch_seed(streams["init"]))
        model = build_model(config, task)
        if not hasattr(model, "step"):
            raise ConfigError(f"model {config.model['kind']} has no step API; agents need a recurrent model "
                              "(leaky_rnn, gru, lstm)")
        value_head = torch.nn.Linear(model.hidden_size, 1)
    if tc.init_from:
        from decisionnets.training import load_init_weights

        load_init_weights(model, tc.init_from)
    model.to(device)
    value_head.to(device)
    params = list(model.parameters()) + (list(value_head.parameters()) if agent.algorithm == "a2c" else [])
    s = phase_settings(tc, 1)
    if agent.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=s["lr"], weight_decay=s["weight_decay"])
    else:
        opt = torch.optim.SGD(params, lr=s["lr"], momentum=s["momentum"], weight_decay=s["weight_decay"])
    act_gen = torch.Generator(device=device).manual_seed(_torch_seed(streams["order"]))
    noise_gen = torch.Generator(device=device).manual_seed(_torch_seed(streams["noise"]))
    if hasattr(model, "noise_generator"):
        model.noise_generator = noise_gen

    attrs = {"task": config.task, "env": config.env["name"], "model": config.model["kind"], "seed": config.seed,
             "config": config.to_json(), "decisionnets_version": __version__, "target": task.target_label,
             "algorithm": agent.algorithm, "policy": "greedy"}
    schedule = set(record_epochs(rc.schedule, tc.epochs))

    # --- run directory: fresh, or resumed from its last checkpoint -------------
    run = RunDir(run_dir, config, resume=resume, log_fields=LOG_FIELDS, identity=False)
    start_epoch, step = 0, 0
    ckpt = run.open(device)
    if ckpt is not None:
        restore(ckpt, model=model, value_head=value_head, optimizer=opt, act_gen=act_gen, noise_gen=noise_gen,
                data_rng=data_rng)
        start_epoch, step = ckpt["epoch"], ckpt["step"]
    run.start(start_epoch, step)

    def record(epoch):
        model.eval()
        ep = play_trials(model, env, probe, policy="greedy", device=device)
        model.train()
        ds = as_epoch(episodes_dataset(ep, env, align="onset", attrs=attrs), epoch, step)
        save_weights(run_dir, epoch, model)  # before the activations, as the supervised trainer
        write_epoch(_thin(ds, rc.time_stride, rc.dtype), run_dir, epoch)
        return ds

    def state(epoch):
        return {**snapshot(model=model, value_head=value_head, optimizer=opt, act_gen=act_gen, noise_gen=noise_gen,
                           data_rng=data_rng), "epoch": epoch, "step": step}

    if start_epoch == 0 and not run.has_epoch(0):
        record(0)
    if start_epoch == 0:
        run.save_checkpoint(state(0))

    model.train()
    bar = tqdm(range(start_epoch + 1, tc.epochs + 1), desc=f"{agent.algorithm} {config.task}", unit="epoch",
               disable=not progress, initial=start_epoch, total=tc.epochs, dynamic_ncols=True)
    for epoch in bar:
        t0 = time.perf_counter()
        s = phase_settings(tc, epoch)
        for g in opt.param_groups:
            g["lr"], g["weight_decay"] = s["lr"], s["weight_decay"]
            if "momentum" in g:
                g["momentum"] = s["momentum"]
        sums = dict(loss=0.0, reward=0.0, correct=0.0, abort=0.0, miss=0.0)
        seen = 0
        while seen < tc.n_trials:
            b = min(s["batch_size"], tc.n_trials - seen)
            trials = env.sample(b, data_rng)
            ep = play_trials(model, env, trials, policy="sample", generator=act_gen, grad=True, device=device)
            loss, _ = policy_loss(ep, value_head, agent)
            if not torch.isfinite(loss):
                run.diverged(epoch, step, float(loss))
                bar.close()
                raise TrainingDiverged(epoch, step, float(loss))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, tc.grad_clip)
            opt.step()
            step += 1
            seen += b
            ok = ~np.asarray(trials.labels.get("catch", np.zeros(b))).astype(bool)
            sums["loss"] += float(loss.detach()) * b
            sums["reward"] += float(ep.reward.sum())
            sums["correct"] += float(ep.correct[ok].sum())
            ended_early = ~ep.responded & (ep.end_step < ep.onset_step)
            sums["abort"] += float(ended_early.sum())
            sums["miss"] += float((~ep.responded & ~ended_early).sum())
        row = {"epoch": epoch, "step": step, "trials": epoch * tc.n_trials, "lr": s["lr"], "batch_size": s["batch_size"],
               "loss": sums["loss"] / seen, "mean_reward": sums["reward"] / seen,
               "train_accuracy": sums["correct"] / seen, "abort_rate": sums["abort"] / seen,
               "miss_rate": sums["miss"] / seen}
        if epoch in schedule:
            ds = record(epoch)
            row.update(probe_accuracy=float(ds["accuracy"][0]), probe_reward=float(ds["mean_reward"][0]),
                       probe_reaction_time=float(ds["mean_reaction_time"][0]))
        row["seconds"] = round(time.perf_counter() - t0, 4)
        run.end_epoch(row, state(epoch))
        bar.set_postfix(reward=f"{row['mean_reward']:.3f}", acc=f"{row['train_accuracy']:.3f}",
                        probe=f"{row.get('probe_accuracy', float('nan')):.3f}")
    bar.close()
    return run.finish({"model": model.state_dict(), "value_head": value_head.state_dict()}, tc.epochs, step)
