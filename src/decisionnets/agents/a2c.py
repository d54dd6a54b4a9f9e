"""Reward-based training of the package's recurrent models: advantage actor-critic (A2C).

:func:`train_agent` runs the one training loop (:func:`decisionnets.training.fit`) with the
:class:`ActorCritic` objective, so it shares :func:`decisionnets.training.train`'s run directory,
seed streams, phases, checkpoints and resume, per-epoch recording and ``analyze``, with one
difference: instead of fitting targets, the network *plays* batches of trials in the env
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
from decisionnets.seeding import seed_streams, torch_generator, torch_seed
from decisionnets.optimization import make_optimizer, phase_settings
from decisionnets.training import fit

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


class ActorCritic:
    """The reward objective (:mod:`decisionnets.objectives`): trials played in the env, loss :func:`policy_loss`.

    Builds what an agent run is made of, each part from its own seed stream
    (:mod:`decisionnets.seeding`): the env and the probe set, the model and (``a2c``) its value
    head, the optimizer, the action and noise generators, the run directory; resumes from its last
    checkpoint. A batch is ``batch_size`` trials drawn from the data stream (the last batch of an
    epoch takes what is left of ``train.n_trials``), played with actions sampled from the policy.

    Metrics of a batch: ``loss`` (times the batch size), ``reward`` (summed), ``correct`` (non-catch
    trials answered right, by the env's rules), ``abort`` (trials ended before the stimulus),
    ``miss`` (no response), ``n`` (trials).
    """

    per_member = False
    max_loss = float("inf")  # diverged: a NaN or infinite loss only

    def __init__(self, config, run_dir, *, resume: bool):
        tc, rc, agent = config.train, config.record, config.agent
        self.config, self.run_dir, self.agent = config, Path(run_dir), agent
        self.device = device = torch.device(config.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device cuda asked for, but torch sees no CUDA GPU; use --device cpu")
        streams = seed_streams(config.seed)

        # --- env, probe set ---------------------------------------------------------
        task = build_task(config)
        self.env = env = getattr(task, "env", None)
        if env is None or not is_vectorized(env):
            raise ConfigError(f"agent training needs an env with vectorized trials and rules (sample, batch_step), "
                              f"e.g. ColorDirection or ColorDirectionRT; got env {config.env['name']!r}")
        self.data_rng = np.random.default_rng(streams["data"])
        self.probe = probe_trials(env, rc.n_per_condition, np.random.default_rng(streams["probe"]))

        # --- model, critic, optimizer, generators ----------------------------------
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch_seed(streams["init"]))
            self.model = model = build_model(config, task)
            if not hasattr(model, "step"):
                raise ConfigError(f"model {config.model['kind']} has no step API; agents need a recurrent model "
                                  "(leaky_rnn, gru, lstm)")
            self.value_head = torch.nn.Linear(model.hidden_size, 1)
        if tc.init_from:
            from decisionnets.training import load_init_weights

            load_init_weights(model, tc.init_from)
        model.to(device)
        self.value_head.to(device)
        self.params = list(model.parameters()) + (list(self.value_head.parameters()) if agent.algorithm == "a2c" else [])
        self.optimizer = make_optimizer(agent.optimizer, self.params, phase_settings(tc, 1))
        self.act_gen = torch_generator(streams["order"], device)
        self.noise_gen = torch_generator(streams["noise"], device)
        if hasattr(model, "noise_generator"):
            model.noise_generator = self.noise_gen
        self.attrs = {"task": config.task, "env": config.env["name"], "model": config.model["kind"],
                      "seed": config.seed, "config": config.to_json(), "decisionnets_version": __version__,
                      "target": task.target_label, "algorithm": agent.algorithm, "policy": "greedy"}
        self.schedule = set(record_epochs(rc.schedule, tc.epochs))

        # --- run directory: fresh, or resumed from its last checkpoint -------------
        self.run = RunDir(run_dir, config, resume=resume, log_fields=LOG_FIELDS, identity=False)
        self.start_epoch, self.step = 0, 0
        ckpt = self.run.open(device)
        if ckpt is not None:
            restore(ckpt, model=model, value_head=self.value_head, optimizer=self.optimizer, act_gen=self.act_gen,
                    noise_gen=self.noise_gen, data_rng=self.data_rng)
            self.start_epoch, self.step = ckpt["epoch"], ckpt["step"]
        self.run.start(self.start_epoch, self.step)
        if self.start_epoch == 0 and not self.run.has_epoch(0):
            self.record(0)
        if self.start_epoch == 0:
            self.run.save_checkpoint(self.state(0))

    def record(self, epoch: int):
        """Play the probe set with the greedy policy and write it as epoch ``epoch``'s activations."""
        self.model.eval()
        ep = play_trials(self.model, self.env, self.probe, policy="greedy", device=self.device)
        self.model.train()
        ds = as_epoch(episodes_dataset(ep, self.env, align="onset", attrs=self.attrs), epoch, self.step)
        save_weights(self.run_dir, epoch, self.model)  # before the activations, as the supervised trainer
        rc = self.config.record
        write_epoch(_thin(ds, rc.time_stride, rc.dtype), self.run_dir, epoch)
        return ds

    def state(self, epoch: int) -> dict:
        return {**snapshot(model=self.model, value_head=self.value_head, optimizer=self.optimizer,
                           act_gen=self.act_gen, noise_gen=self.noise_gen, data_rng=self.data_rng),
                "epoch": epoch, "step": self.step}

    def settings(self, epoch: int) -> dict:
        return phase_settings(self.config.train, epoch)

    def batches(self, epoch: int, batch_size: int):
        self.model.train()
        n, seen = self.config.train.n_trials, 0
        while seen < n:
            b = min(batch_size, n - seen)
            seen += b
            yield self.env.sample(b, self.data_rng), b

    def loss(self, batch):
        trials, b = batch
        ep = play_trials(self.model, self.env, trials, policy="sample", generator=self.act_gen, grad=True,
                         device=self.device)
        loss, _ = policy_loss(ep, self.value_head, self.agent)
        ok = ~np.asarray(trials.labels.get("catch", np.zeros(b))).astype(bool)
        ended_early = ~ep.responded & (ep.end_step < ep.onset_step)
        return loss, {"loss": float(loss.detach()) * b, "reward": float(ep.reward.sum()),
                      "correct": float(ep.correct[ok].sum()), "abort": float(ended_early.sum()),
                      "miss": float((~ep.responded & ~ended_early).sum()), "n": b}

    def diverged(self, losses, bad, epoch: int, step: int):
        self.run.diverged(epoch, step, float(losses))
        raise TrainingDiverged(epoch, step, float(losses))

    def end_epoch(self, epoch: int, step: int, sums: dict, seconds: float) -> dict:
        t0 = time.perf_counter()
        self.step, n, s = step, sums["n"], self.settings(epoch)
        row = {"epoch": epoch, "step": step, "trials": epoch * self.config.train.n_trials, "lr": s["lr"],
               "batch_size": s["batch_size"], "loss": sums["loss"] / n, "mean_reward": sums["reward"] / n,
               "train_accuracy": sums["correct"] / n, "abort_rate": sums["abort"] / n, "miss_rate": sums["miss"] / n}
        if epoch in self.schedule:
            ds = self.record(epoch)
            row.update(probe_accuracy=float(ds["accuracy"][0]), probe_reward=float(ds["mean_reward"][0]),
                       probe_reaction_time=float(ds["mean_reaction_time"][0]))
        row["seconds"] = round(seconds + time.perf_counter() - t0, 4)
        self.run.end_epoch(row, self.state(epoch))
        return {"reward": f"{row['mean_reward']:.3f}", "acc": f"{row['train_accuracy']:.3f}",
                "probe": f"{row.get('probe_accuracy', float('nan')):.3f}"}


def train_agent(config, run_dir, *, progress: bool = True, resume: bool = False) -> dict:
    """Train ``config`` (with ``[agent] algorithm = "a2c"`` or ``"reinforce"``) by reward into ``run_dir``.

    Parameters and return value as :func:`decisionnets.training.train`: the final status dict
    (``status``, ``epoch``, ``step`` = updates so far, ``run_dir``). The loop is
    :func:`decisionnets.training.fit` with the :class:`ActorCritic` objective.
    """
    objective = ActorCritic(config, run_dir, resume=resume)
    fit(objective, epochs=config.train.epochs, start_epoch=objective.start_epoch, step=objective.step,
        grad_clip=config.train.grad_clip, progress=progress, desc=f"{config.agent.algorithm} {config.task}")
    return objective.run.finish({"model": objective.model.state_dict(), "value_head": objective.value_head.state_dict()},
                                config.train.epochs, objective.step)
