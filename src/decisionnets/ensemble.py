"""Ensembles: K small networks of one architecture trained as one batched program.

A sweep of the paper's FC nets runs many networks whose SGD steps are a few microseconds of
arithmetic each; one network per process spends most of its time in per-operation overhead.
:func:`train_ensemble` trains K such networks at once: their parameters are stacked
(:func:`torch.func.stack_module_state`, shape (member, ...)), every SGD step is one batched
forward/backward (:func:`torch.baddbmm` over the member dim) and one per-member SGD update
written on the stacked tensors. Each member keeps everything of its solo run:

- its own seed streams (:func:`decisionnets.training.seed_streams`): training data, probe set,
  initialization (the member's module is built exactly as ``training.train`` builds it, then
  stacked), batch order (its own :class:`torch.Generator`);
- its own learning rate, momentum, weight decay and phases (per-member tensors, updated from
  :func:`decisionnets.training.phase_settings` every epoch), and its own momentum buffers;
- its own run directory with the solo layout: ``config.json``, ``status.json``, ``log.csv``,
  ``checkpoints/last.pt`` every epoch (a solo-format checkpoint, so ``train(..., resume=True)``
  continues a member alone) and ``final.pt``, ``activations/epoch_*.nc`` written by the same
  :class:`~decisionnets.recording.Recorder` from the member's own module.

The update matches :class:`torch.optim.SGD` (dampening 0, no Nesterov): weight decay added to the
gradient, ``buf = momentum * buf + grad`` (the first step's buffer is the gradient), ``p -= lr *
buf``. Members are not bit-identical to their solo runs (a batched matmul rounds differently from
a single one), but equal to float32 tolerance (tests: activations within 1e-4 after tiny runs).

Compatible configs (:func:`ensemble_key`) share everything that shapes the computation: model,
env, number of trials, epochs, the batch size in force at each epoch (so every member takes the
same number of steps), gradient clipping, device. They may differ in seed, learning rate,
momentum, weight decay (base and per phase), ``init_from`` and recording.
Supported models: ``mlp`` (the FC static net, the sweep case); recurrent nets run solo.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from decisionnets.errors import UserError

#: model kinds that can be trained as an ensemble
ENSEMBLE_MODELS = ("mlp",)
_MEMBER_KEYS = ("lr", "momentum", "weight_decay")  # may differ between members (base and per phase)


def ensemble_key(config) -> str | None:
    """A string equal for configs that can share one ensemble, or None when ``config`` cannot be batched.

    Returns None for models other than :data:`ENSEMBLE_MODELS`, image tasks and optimizers other
    than SGD.
    """
    from decisionnets.build import IMAGE_DATASETS
    from decisionnets.training import phase_settings

    if config.model.get("kind") not in ENSEMBLE_MODELS or config.env.get("name") in IMAGE_DATASETS:
        return None
    if getattr(config.train, "optimizer", "sgd") != "sgd":
        return None
    d = config.to_dict()
    for k in ("seed", "description", "task", "record"):
        d.pop(k, None)
    tr = d["train"]
    for k in (*_MEMBER_KEYS, "init_from"):
        tr.pop(k, None)
    # phases may differ in everything but the batch size in force at each epoch (steps per epoch)
    tr.pop("phases")
    tr["batch_size"] = [phase_settings(config.train, e)["batch_size"] for e in range(1, config.train.epochs + 1)]
    return json.dumps(d, sort_keys=True)


def group_configs(configs, max_size: int = 32) -> list[list[int]]:
    """Indices of ``configs`` grouped into ensembles (same :func:`ensemble_key`), at most ``max_size`` each.

    Configs that cannot be batched come back as groups of one, in input order.
    """
    groups, order = {}, []
    for i, c in enumerate(configs):
        key = ensemble_key(c)
        key = key if key is not None else f"solo-{i}"
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(i)
    out = []
    for key in order:
        g = groups[key]
        out += [g[lo:lo + max_size] for lo in range(0, len(g), max_size)]
    return out


# --------------------------------------------------------------------------------------------------
# one member: the solo run's setup, bookkeeping and files
# --------------------------------------------------------------------------------------------------
class _Member:
    """One member: what ``training.train`` builds and keeps per run (:func:`~decisionnets.training.setup_run`,
    :class:`~decisionnets.rundir.RunDir`), with a real SGD on its own module for solo-format checkpoints."""

    def __init__(self, config, run_dir, resume: bool, ensemble_size: int):
        from decisionnets import training as tr
        from decisionnets.recording import Recorder, record_epochs
        from decisionnets.rundir import RunDir, restore
        from decisionnets.threads import thread_info

        self.config, self.run_dir = config, Path(run_dir)
        tc, rc = config.train, config.record
        self.device = device = torch.device(config.device)
        r = tr.setup_run(config, device)
        self.task, self.model, self.layers = r.task, r.model, r.layers
        self.data_rng, self.train_set, self.val_set = r.data_rng, r.train_set, r.val_set
        self.order_gen, self.noise_gen = r.order_gen, r.noise_gen
        s = tr.phase_settings(tc, 1)
        # a real SGD on the member's module: its state_dict is the checkpoint format of a solo run
        self.opt = torch.optim.SGD(self.model.parameters(), lr=s["lr"], momentum=s["momentum"],
                                   weight_decay=s["weight_decay"])
        self.run = run = RunDir(self.run_dir, config, resume=resume, log_fields=tr.LOG_FIELDS)
        self.identity = run.identity
        self.recorder = Recorder(r.probe, self.task, self.layers, rc.time_stride, rc.dtype,
                                 tr.dataset_attrs(config, self.task, run.identity))
        self.schedule = set(record_epochs(rc.schedule, tc.epochs))
        self.start_epoch, self.step, self.momentum_bufs = 0, 0, None
        ckpt = run.open(device)
        if ckpt is not None:
            restore(ckpt, model=self.model, optimizer=self.opt, order_gen=self.order_gen, noise_gen=self.noise_gen,
                    data_rng=self.data_rng)
            self.momentum_bufs = [self.opt.state.get(p, {}).get("momentum_buffer") for p in self.model.parameters()]
            self.start_epoch, self.step = ckpt["epoch"], ckpt["step"]
        run.start(self.start_epoch, self.step, **thread_info(), ensemble_size=ensemble_size)

    @property
    def status(self) -> dict:
        return self.run.status

    # --- files ------------------------------------------------------------------------------------
    def record(self, epoch):
        from decisionnets.io import write_epoch

        ds = self.recorder.dataset(self.model, epoch, self.step, self.device)
        write_epoch(ds, self.run_dir, epoch)
        return float(ds.loss[0]), float(ds.accuracy[0])

    def state(self, epoch, bufs=None) -> dict:
        """Solo-format checkpoint state; ``bufs``: this member's momentum buffers (None: none yet)."""
        from decisionnets.rundir import snapshot

        if bufs is not None:
            for p, b in zip(self.model.parameters(), bufs):
                self.opt.state[p]["momentum_buffer"] = b.clone()
        return {**snapshot(model=self.model, optimizer=self.opt, order_gen=self.order_gen, noise_gen=self.noise_gen,
                           data_rng=self.data_rng), "epoch": epoch, "step": self.step}

    def write_status(self, **kw):
        self.run.update_status(**kw)

    def end_epoch(self, epoch, row, bufs=None):
        """The epoch's log row, solo-format checkpoint and status (as RunDir.end_epoch, status last)."""
        self.run.log.append(row)
        self.run.save_checkpoint(self.state(epoch, bufs))
        self.write_status(epoch=epoch, step=self.step)

    def finish(self):
        self.run.finish({"model": self.model.state_dict()}, self.config.train.epochs, self.step)


# --------------------------------------------------------------------------------------------------
# the stacked network and the per-member SGD
# --------------------------------------------------------------------------------------------------
def _mlp_forward(params, x, activation):
    """Stacked MLP: ``x`` (member, time, batch, feature) -> logits (member, time, batch, out).

    ``params`` holds the stacked weights transposed, (member, in, out): a batched matmul with a
    contiguous right operand (measured ~25 % faster than the transposed view of (member, out, in)).
    """
    K, T, B, F = x.shape
    h = x.reshape(K, T * B, F)
    n_hidden = (len(params) - 2) // 2
    act = torch.relu if activation == "relu" else torch.tanh
    for k in range(n_hidden):
        h = act(torch.baddbmm(params[f"layers.{k}.bias"].unsqueeze(1), h, params[f"layers.{k}.weight"]))
    out = torch.baddbmm(params["readout.bias"].unsqueeze(1), h, params["readout.weight"])
    return out.view(K, T, B, -1)


def _to_stacked(name, t):
    """A member-stacked module tensor (K, ...) in the ensemble's layout (weights as (K, in, out))."""
    return t.transpose(1, 2).contiguous() if name.endswith("weight") and t.dim() == 3 else t


def _from_stacked(name, t):
    """One member's tensor in the ensemble's layout -> the module's layout."""
    return t.T if name.endswith("weight") and t.dim() == 2 else t


def _per_member(values, device):
    return torch.tensor(values, dtype=torch.float32, device=device)


def _bcast(v, p):
    """Member vector ``v`` (K,) shaped to broadcast against a stacked tensor ``p`` (K, ...)."""
    return v.view(-1, *([1] * (p.dim() - 1)))


class _SGD:
    """Per-member SGD on stacked tensors for one epoch's settings, as :class:`torch.optim.SGD` updates.

    ``lr``, ``momentum``, ``weight_decay``: (K,) tensors. Weight decay is added to the gradient;
    with momentum, ``buf = momentum * buf + grad`` (the first step's buffer is the gradient; a
    member with momentum 0 keeps its buffer untouched, as torch does); then ``p -= lr * buf``.
    """

    def __init__(self, lr, momentum, weight_decay):
        self.use_wd = bool((weight_decay != 0).any())
        self.use_mom = bool((momentum != 0).any())
        self.momentum_on = momentum != 0
        views = {}
        for dim in (2, 3):  # stacked biases (K, out) and weights (K, in, out)
            shape = (-1,) + (1,) * (dim - 1)
            views[dim] = (lr.view(shape), momentum.view(shape), weight_decay.view(shape),
                          self.momentum_on.view(shape))
        self.views = views

    @torch.no_grad()
    def step(self, params, grads, bufs, has_momentum):
        for i, (p, g) in enumerate(zip(params, grads)):
            lr, m, wd, on = self.views[p.dim()]
            d = g.add(p * wd) if self.use_wd else g
            if self.use_mom:
                started = has_momentum.view(on.shape)
                new_buf = torch.where(started, bufs[i] * m + d, d)  # first step: buf = grad (torch: a clone)
                bufs[i] = torch.where(on, new_buf, bufs[i])
                d = torch.where(on, bufs[i], d)
            p.sub_(d * lr)
        if self.use_mom:
            has_momentum |= self.momentum_on


def _clip(grads, max_norm):
    """Per-member :func:`torch.nn.utils.clip_grad_norm_` on stacked gradients."""
    norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads], dim=1).norm(dim=1)
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    return [g * _bcast(coef, g) for g in grads]


# --------------------------------------------------------------------------------------------------
# the ensemble loop
# --------------------------------------------------------------------------------------------------
def train_ensemble(configs, run_dirs, *, progress: bool = True, resume: bool = False) -> list[dict]:
    """Train compatible configs as one batched program; each member writes a solo run directory.

    Parameters
    ----------
    configs : sequence of Config
        All with the same :func:`ensemble_key` (not None).
    run_dirs : sequence of path
        One run directory per config (the layout of ``training.train``).
    progress : bool
        A tqdm bar over epochs.
    resume : bool
        Continue every member from its last checkpoint; they must all be at the same epoch.

    Returns
    -------
    list of dict
        Each member's final status, as ``training.train`` returns it, or with ``status``
        "diverged" (plus ``epoch``, ``step``, ``loss``) for a member whose loss became NaN/inf: it
        is dropped from the ensemble there (its recorded epochs are kept) and the others go on.

    Raises
    ------
    UserError
        For incompatible configs, or members of a resumed ensemble at different epochs.
    """
    from tqdm.auto import tqdm

    from decisionnets.training import _evaluate, phase_settings

    configs, run_dirs = list(configs), [Path(d) for d in run_dirs]
    if not configs or len(configs) != len(run_dirs):
        raise UserError(f"train_ensemble needs one run directory per config; got {len(configs)} configs and "
                        f"{len(run_dirs)} run directories")
    keys = {ensemble_key(c) for c in configs}
    if None in keys:
        bad = next(c for c in configs if ensemble_key(c) is None)
        raise UserError(f"ensemble members must be {', '.join(ENSEMBLE_MODELS)} nets on trial tasks trained by SGD; "
                        f"got model {bad.model.get('kind')!r} on env {bad.env.get('name')!r}")
    if len(keys) != 1:
        raise UserError("ensemble members must share model, env, trials, epochs, batch sizes (at every epoch) and "
                        "gradient clipping (only seed, lr, momentum, weight decay, init_from and recording may differ)")
    if len({str(d.resolve()) for d in run_dirs}) != len(run_dirs):
        raise UserError("ensemble members need distinct run directories")
    K = len(configs)
    members = [_Member(c, d, resume, K) for c, d in zip(configs, run_dirs)]
    starts = {m.start_epoch for m in members}
    if len(starts) != 1:
        raise UserError(f"members of a resumed ensemble are at different epochs {sorted(starts)}; resume them solo")
    start_epoch = starts.pop()
    tc0, device = configs[0].train, members[0].device
    activation = configs[0].model.get("activation", "relu")

    from torch.func import stack_module_state

    stacked, _ = stack_module_state([m.model for m in members])  # (K, ...)
    params = {n: _to_stacked(n, p.detach()).requires_grad_() for n, p in stacked.items()}
    names = list(params)
    bufs = [torch.zeros_like(p) for p in params.values()]
    has_momentum = torch.zeros(K, dtype=torch.bool, device=device)
    for k, m in enumerate(members):  # resumed momentum buffers
        if m.momentum_bufs is not None and all(b is not None for b in m.momentum_bufs):
            for i, (name, b) in enumerate(zip(names, m.momentum_bufs)):
                bufs[i][k] = _from_stacked(name, b)  # (out, in) -> (in, out): the transpose is its own inverse
            has_momentum[k] = True

    def sync_modules():  # stacked values -> each member's own module (for recording and checkpoints)
        with torch.no_grad():
            for k, m in enumerate(members):
                own = dict(m.model.named_parameters())
                for name in names:
                    own[name].copy_(_from_stacked(name, params[name][k]))

    def stack_data():
        x = torch.stack([torch.from_numpy(m.train_set.inputs).transpose(0, 1) for m in members]).to(device)
        y = torch.stack([torch.from_numpy(m.train_set.targets).T for m in members]).to(device)
        mk = torch.stack([torch.from_numpy(m.train_set.mask).T for m in members]).to(device)
        # flattened to (member * trial, time[, feature]) for index_select
        return x.flatten(0, 1), y.flatten(0, 1), mk.flatten(0, 1)

    def member_bufs(k):
        return [_from_stacked(n, b[k]) for n, b in zip(names, bufs)] if bool(has_momentum[k]) else None

    def drop(dead):  # remove members (diverged) from every stacked tensor
        nonlocal members, params, bufs, has_momentum, x_all, y_all, m_all
        keep = [k for k in range(len(members)) if k not in dead]
        ix = torch.tensor(keep, device=device)
        members = [members[k] for k in keep]
        params = {n: p.detach()[ix].clone().requires_grad_() for n, p in params.items()}
        bufs = [b[ix] for b in bufs]
        has_momentum = has_momentum[ix]
        x_all, y_all, m_all = (t.view(-1, n_train, *t.shape[1:])[ix].flatten(0, 1) for t in (x_all, y_all, m_all))
        return ix

    if start_epoch == 0:
        for m in members:
            if not m.run.has_epoch(0):
                m.record(0)
            m.run.save_checkpoint(m.state(0))

    all_members, results = list(members), {}
    choices = torch.as_tensor(members[0].task.choice_actions, device=device)
    x_all, y_all, m_all = stack_data()
    n_train = members[0].train_set.n_trials
    bar = tqdm(range(start_epoch + 1, tc0.epochs + 1), desc=f"ensemble of {K}", unit="epoch",
               disable=not progress, initial=start_epoch, total=tc0.epochs, dynamic_ncols=True)
    for epoch in bar:
        t0 = time.perf_counter()
        settings = [phase_settings(m.config.train, epoch) for m in members]
        bs = settings[0]["batch_size"]
        lr = _per_member([s["lr"] for s in settings], device)
        mom = _per_member([s["momentum"] for s in settings], device)
        wd = _per_member([s["weight_decay"] for s in settings], device)
        sgd = _SGD(lr, mom, wd)
        if tc0.fresh_trials and epoch > 1:
            for m in members:
                m.train_set = m.task.train_set(m.train_set.n_trials, m.data_rng)
            x_all, y_all, m_all = stack_data()
        perm = torch.stack([torch.randperm(n_train, generator=m.order_gen) for m in members]).to(device)
        offsets = torch.arange(len(members), device=device)[:, None] * n_train
        loss_sum = torch.zeros(len(members), device=device)
        n_correct = torch.zeros(len(members), device=device)
        n_seen = 0

        def batch_losses(lo):
            K = len(members)
            flat = (perm[:, lo:lo + bs] + offsets).reshape(-1)  # rows of the (member * trial) data
            nb = flat.numel() // K
            x = x_all.index_select(0, flat).view(K, nb, *x_all.shape[1:]).transpose(1, 2)  # (K, time, batch, feat)
            y = y_all.index_select(0, flat).view(K, nb, -1).transpose(1, 2)  # (K, time, batch)
            mk = m_all.index_select(0, flat).view(K, nb, -1).transpose(1, 2).reshape(K, -1)
            logits = _mlp_forward(params, x, activation)
            ce = torch.nn.functional.cross_entropy(logits.flatten(0, 2), y.flatten(), reduction="none")
            losses = (ce.view(K, -1) * mk).sum(1) / mk.sum(1).clamp_min(1.0)  # training.masked_loss
            return logits, y, losses

        for lo in range(0, n_train, bs):
            logits, y, losses = batch_losses(lo)
            finite = torch.isfinite(losses)
            if not bool(finite.all()):  # like a solo run: that member stops here, status "diverged"
                dead = torch.nonzero(~finite).flatten().tolist()
                for k in dead:
                    m = members[k]
                    m.write_status(status="diverged", epoch=epoch, step=m.step, loss=float(losses[k].detach()))
                    results[id(m)] = dict(m.status)
                if len(dead) == len(members):
                    bar.close()
                    return [results[id(m)] for m in all_members]
                ix = drop(set(dead))
                settings = [settings[k] for k in ix.tolist()]
                perm, lr, mom, wd = perm[ix], lr[ix], mom[ix], wd[ix]
                offsets = torch.arange(len(members), device=device)[:, None] * n_train
                sgd = _SGD(lr, mom, wd)
                loss_sum, n_correct = loss_sum[ix], n_correct[ix]
                logits, y, losses = batch_losses(lo)
            plist = list(params.values())
            grads = torch.autograd.grad(losses.sum(), plist)
            if tc0.grad_clip > 0:
                grads = _clip(grads, tc0.grad_clip)
            sgd.step(plist, grads, bufs, has_momentum)
            for m in members:
                m.step += 1
            with torch.no_grad():  # accumulated on the device: no sync per step
                nb = y.shape[2]
                loss_sum += losses.detach() * nb
                at = logits[:, -1]  # (K, batch, action) at the response step
                chosen = choices[at[..., choices].argmax(dim=-1)]
                n_correct += (chosen == y[:, -1]).sum(1)
            n_seen += nb
        sync_modules()
        seconds = (time.perf_counter() - t0) / len(members)  # the ensemble's training time, shared out
        for k, m in enumerate(members):
            t1 = time.perf_counter()
            s = settings[k]
            for g in m.opt.param_groups:  # the checkpoint's optimizer holds this epoch's settings, as a solo run's
                g["lr"], g["momentum"], g["weight_decay"] = s["lr"], s["momentum"], s["weight_decay"]
            row = {"epoch": epoch, "step": m.step, "lr": s["lr"], "batch_size": s["batch_size"],
                   "train_loss": float(loss_sum[k]) / n_seen, "train_accuracy": float(n_correct[k]) / n_seen}
            if m.val_set is not None:
                row["val_loss"], row["val_accuracy"] = _evaluate(m.model, m.val_set, m.task, device)
            if epoch in m.schedule:
                row["probe_loss"], row["probe_accuracy"] = m.record(epoch)
            row["seconds"] = round(seconds + time.perf_counter() - t1, 4)
            row["threads"] = torch.get_num_threads()
            m.end_epoch(epoch, row, member_bufs(k))
        bar.set_postfix(members=len(members), loss=f"{float(loss_sum.mean()) / n_seen:.3f}")
    bar.close()
    for m in members:
        m.finish()
        results[id(m)] = dict(m.status)
    return [results[id(m)] for m in all_members]
