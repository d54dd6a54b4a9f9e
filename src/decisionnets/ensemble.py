"""Ensembles: K small networks of one architecture trained as one batched program.

A sweep of the paper's FC nets runs many small networks: at batch 32 one SGD step of the
4-100-100-100-2 net is about 0.15 ms of matrix products and 0.7 ms of per-operation overhead
(measured on one CPU thread), so one network per process spends most of its time in overhead;
a small RNN's step is one such overhead per time step. :func:`train_ensemble` trains K such
networks at once: their parameters are stacked (:func:`torch.func.stack_module_state`) into one
(member, n_params) tensor, every SGD step is one batched forward and backward
(:func:`torch.baddbmm` / :func:`torch.bmm` over the member dim) and one per-member SGD update of
the whole (member, n_params) tensor.
Each member keeps everything of its solo run:

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
a single one), but equal to float32 tolerance (tests: activations within 1e-5 after tiny runs;
after longer runs SGD can amplify the rounding differences, see the README's Benchmarks).

Compatible configs (:func:`ensemble_key`) share everything that shapes the computation: model,
env, number of trials, epochs, the batch size in force at each epoch (so every member takes the
same number of steps), gradient clipping, device. They may differ in seed, learning rate,
momentum, weight decay (base and per phase), ``init_from`` and recording.
Supported models: ``mlp`` (the FC static net, the paper's sweep case; hand-written backward) and
``leaky_rnn`` (the time-resolved tasks' rate RNN; its solo forward batched over the members, each
member drawing its recurrent noise from its own generator as its solo run does; autograd
backward). GRU, LSTM, multi-area and CNN runs stay solo.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch

from decisionnets.errors import UserError
from decisionnets.models.rnn import leaky_rates

#: model kinds that can be trained as an ensemble
ENSEMBLE_MODELS = ("mlp", "leaky_rnn")
_MEMBER_KEYS = ("lr", "momentum", "weight_decay")  # may differ between members (base and per phase)


def ensemble_key(config) -> str | None:
    """A string equal for configs that can share one ensemble, or None when ``config`` cannot be batched.

    Returns None for models other than :data:`ENSEMBLE_MODELS`, image tasks, optimizers other
    than SGD and runs trained by reward (``[agent]``).
    """
    from decisionnets.build import task_class
    from decisionnets.training import phase_settings

    if config.model.get("kind") not in ENSEMBLE_MODELS or task_class(config.env["name"]).kind != "trials":
        return None
    if getattr(config.train, "optimizer", "sgd") != "sgd":
        return None
    if config.agent.algorithm != "supervised":  # trained by reward (decisionnets.agents), not by this loop
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
        from decisionnets.weights import save_weights

        ds = self.recorder.dataset(self.model, epoch, self.step, self.device)
        save_weights(self.run_dir, epoch, self.model)  # before the activations, as the solo trainer
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
class _Stacked:
    """K networks of one architecture in one flat parameter tensor (the storage both kinds share).

    ``flat`` (member, n_params) holds every member's parameters; ``params`` are views of it in the
    ensemble's layout (weights as (member, in, out): a batched matmul with a contiguous right
    operand, measured ~25 % faster than the transposed view of the module's (member, out, in)).
    ``grad`` (member, n_params) and ``buf`` (momentum) have the same layout, so the per-member SGD
    update is a few operations on whole (member, n_params) tensors instead of a few per parameter.
    Subclasses define :meth:`loss` (forward) and :meth:`backward` (gradients into :attr:`grad`).
    """

    def __init__(self, stacked: dict):
        self.names = list(stacked)
        first = next(iter(stacked.values()))
        K, self.device = first.shape[0], first.device
        self.shapes = {n: tuple(reversed(t.shape[1:])) if self._is_weight(n, t) else tuple(t.shape[1:])
                       for n, t in stacked.items()}  # per member, ensemble layout
        n_params = sum(torch.Size(s).numel() for s in self.shapes.values())
        self.flat = torch.empty(K, n_params, dtype=first.dtype, device=self.device)
        self.grad = torch.zeros_like(self.flat)
        self.buf = torch.zeros_like(self.flat)  # momentum buffers
        self._views()
        with torch.no_grad():
            for n, t in stacked.items():
                self.params[n].copy_(t.transpose(1, 2) if self._is_weight(n, t) else t)

    @staticmethod
    def _is_weight(name, t):
        return name.endswith("weight") and t.dim() == 3

    def _split(self, t):
        out, off = {}, 0
        for n, s in self.shapes.items():
            size = torch.Size(s).numel()
            out[n] = t[:, off:off + size].view(t.shape[0], *s)
            off += size
        return out

    def _views(self):
        self.params, self.grads, self.bufs = self._split(self.flat), self._split(self.grad), self._split(self.buf)

    def keep(self, ix):
        """Keep only members ``ix`` (a LongTensor of member indices)."""
        self.flat, self.grad, self.buf = self.flat[ix].contiguous(), self.grad[ix].contiguous(), self.buf[ix].contiguous()
        self._views()

    def member(self, name, k):
        """Member ``k``'s parameter ``name`` in the module's layout (a view)."""
        t = self.params[name][k]
        return t.T if t.dim() == 2 else t

    def member_buf(self, name, k):
        """Member ``k``'s momentum buffer of ``name`` in the module's layout (a copy)."""
        t = self.bufs[name][k]
        return (t.T if t.dim() == 2 else t).clone()

    def set_member_buf(self, name, k, value):
        t = self.bufs[name][k]
        t.copy_(value.T if t.dim() == 2 else value)

    def clip(self, max_norm):
        """Per-member :func:`torch.nn.utils.clip_grad_norm_`: each member's gradient norm over all its parameters."""
        coef = (max_norm / (self.grad.norm(dim=1) + 1e-6)).clamp(max=1.0)
        self.grad.mul_(coef.unsqueeze(1))


class _StackedMLP(_Stacked):
    """K MLPs (:class:`~decisionnets.models.mlp.MLP`) with a hand-written backward.

    The backward is written out (cross-entropy, readout, activations, hidden layers) rather than
    taken from autograd: the same arithmetic without the graph (measured 13 % faster per step at
    K = 10, batch 32, and 20 % at batch 512 on one thread); it equals autograd's gradients to float
    rounding (tested).
    """

    def __init__(self, stacked: dict, template):
        if not isinstance(template.act, (torch.nn.ReLU, torch.nn.Tanh)):
            raise UserError(f"ensembles support MLP activations relu and tanh; got {template.act!r}")
        self.activation = "relu" if isinstance(template.act, torch.nn.ReLU) else "tanh"
        super().__init__(stacked)

    def loss(self, x, y, mask, generators=None):
        """Losses of one batch, its logits at the response step, and what :meth:`backward` needs.

        Parameters
        ----------
        x : Tensor, shape (member, batch, time, feature)
        y : LongTensor, shape (member, batch, time)
            Target action per step.
        mask : Tensor, shape (member, batch, time)
            Loss mask per step; ``losses`` is ``training.masked_loss`` (the masked sum of the
            cross-entropy, then divided by the number of unmasked steps, in that order, so a loss
            that overflows does so where the solo run's does).
        generators : unused (an MLP has no noise)

        Returns
        -------
        losses : Tensor, shape (member,)
        at_response : Tensor, shape (member, batch, action)
            Logits at each trial's last step.
        cache : what :meth:`backward` needs
        """
        K, B, T, F = x.shape
        losses, logits, cache = self.forward(x.reshape(K, B * T, F), y.reshape(K, B * T), mask.reshape(K, B * T))
        return losses, logits.view(K, B, T, -1)[:, :, -1], cache

    def forward(self, x, y, mask):
        """Rows (member, row, feature), targets and mask (member, row) -> losses (member,),
        logits (member, row, action), cache."""
        n_hidden = (len(self.names) - 2) // 2
        p = self.params
        hs, h = [x], x
        for k in range(n_hidden):
            z = torch.baddbmm(p[f"layers.{k}.bias"].unsqueeze(1), h, p[f"layers.{k}.weight"])
            h = z.relu_() if self.activation == "relu" else z.tanh_()
            hs.append(h)
        logits = torch.baddbmm(p["readout.bias"].unsqueeze(1), h, p["readout.weight"])
        logp = torch.log_softmax(logits, dim=-1)
        yi = y.unsqueeze(-1)
        count = mask.sum(1, keepdim=True).clamp_min(1.0)
        losses = (-logp.gather(-1, yi).squeeze(-1) * mask).sum(1) / count.squeeze(1)
        return losses, logits, (hs, logp, yi, mask / count)

    def backward(self, cache):
        """Gradients of ``losses.sum()`` into :attr:`grad` (every member's loss only depends on its own parameters)."""
        hs, logp, yi, w = cache
        n_hidden = len(hs) - 1
        g, p = self.grads, self.params
        d = logp.exp()  # d loss / d logits = (softmax - onehot) * w
        d.scatter_add_(-1, yi, torch.full(yi.shape, -1.0, dtype=d.dtype, device=d.device))
        d.mul_(w.unsqueeze(-1))
        layer = [f"layers.{k}" for k in range(n_hidden)] + ["readout"]
        for k in range(n_hidden, -1, -1):
            h_in = hs[k]
            torch.bmm(h_in.transpose(1, 2), d, out=g[f"{layer[k]}.weight"])
            torch.sum(d, 1, out=g[f"{layer[k]}.bias"])
            if k > 0:
                d = torch.bmm(d, p[f"{layer[k]}.weight"].transpose(1, 2))
                if self.activation == "relu":
                    d = torch.ops.aten.threshold_backward(d, h_in, 0)
                else:
                    d = torch.ops.aten.tanh_backward(d, h_in)


class _StackedLeakyRNN(_Stacked):
    """K leaky RNNs (:class:`~decisionnets.models.rnn.LeakyRNN`), the solo forward batched over members.

    The same arithmetic as ``LeakyRNN.forward`` in training mode: the input drive
    ``alpha (W_in u_t + b)`` and the recurrent noise for all steps at once (each member's noise one
    (time, batch, hidden) draw from its own ``noise_generator``, as its solo run draws it), then
    ``x_t = (1 - alpha) x_{t-1} + drive_t + r_{t-1} (alpha W_rec^T)`` step by step as one batched
    matmul over the members. Gradients by autograd.
    """

    def __init__(self, stacked: dict, template):
        super().__init__(stacked)
        # the dynamics' constants from one member's module (equal in all: same model config and task)
        self.f, self.alpha, self.noise = template.f, template.alpha, template.noise
        self.hidden_size = template.hidden_size

    def loss(self, x, y, mask, generators=None):
        """As :meth:`_StackedMLP.loss`; ``generators``: each member's recurrent-noise generator."""
        K, B, T, F = x.shape
        leaves = {n: p.detach().requires_grad_() for n, p in self.params.items()}
        with torch.enable_grad():
            xs = x.transpose(1, 2).reshape(K, T * B, F)  # (member, time * batch, feature)
            drive = self.alpha * torch.baddbmm(leaves["w_in.bias"].unsqueeze(1), xs, leaves["w_in.weight"])
            drive = drive.view(K, T, B, -1)
            if self.noise > 0:  # each member's (time, batch, hidden) draw, written in place (no stacked copy)
                xi = torch.empty_like(drive)
                for k, g in enumerate(generators):
                    torch.randn((T, B, self.hidden_size), generator=g, out=xi[k])
                drive = drive + math.sqrt(2 * self.alpha) * self.noise * xi
            # (member, in, out) weights: r @ (alpha W_rec^T); rates (member, time, batch, hidden) -> rows (time, batch)
            hidden = leaky_rates(drive, self.alpha * leaves["w_rec.weight"], self.f, self.alpha, dim=1).view(K, T * B, -1)
            logits = torch.baddbmm(leaves["readout.bias"].unsqueeze(1), hidden, leaves["readout.weight"])
            ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.transpose(1, 2).reshape(-1),
                                                   reduction="none")
            m = mask.transpose(1, 2).reshape(K, -1)
            losses = (ce.view(K, -1) * m).sum(1) / m.sum(1).clamp_min(1.0)
        at_response = logits.detach().view(K, T, B, -1)[:, -1]
        return losses.detach(), at_response, (losses, leaves)

    def backward(self, cache):
        """Gradients of ``losses.sum()`` into :attr:`grad`, by autograd."""
        losses, leaves = cache
        grads = torch.autograd.grad(losses.sum(), list(leaves.values()))
        with torch.no_grad():
            for name, g in zip(leaves, grads):
                self.grads[name].copy_(g)


#: model kind -> its stacked implementation
_STACKED = {"mlp": _StackedMLP, "leaky_rnn": _StackedLeakyRNN}


def _per_member(values, device):
    return torch.tensor(values, dtype=torch.float32, device=device)


class _SGD:
    """Per-member SGD on a :class:`_StackedMLP` for one epoch's settings, as :class:`torch.optim.SGD` updates.

    ``lr``, ``momentum``, ``weight_decay``: (member,) tensors. Weight decay is added to the gradient;
    with momentum, ``buf = momentum * buf + grad`` (the buffer starts at zero, so the first step's
    buffer is the gradient, as torch's); then ``p -= lr * buf``. A member with momentum 0 leaves its
    buffer untouched, as torch does.
    """

    def __init__(self, lr, momentum, weight_decay):
        self.lr, self.momentum, self.wd = lr.unsqueeze(1), momentum.unsqueeze(1), weight_decay.unsqueeze(1)
        self.use_wd = bool((weight_decay != 0).any())
        self.momentum_on = momentum != 0
        self.mixed = bool(self.momentum_on.any()) and not bool(self.momentum_on.all())
        self.use_mom = bool(self.momentum_on.any())

    @torch.no_grad()
    def step(self, net: _StackedMLP):
        d = net.grad.addcmul_(net.flat, self.wd) if self.use_wd else net.grad  # in place: the gradient is spent
        if self.use_mom:
            if self.mixed:  # members without momentum keep their buffer (torch keeps no new one)
                on = self.momentum_on.unsqueeze(1)
                net.buf.copy_(torch.where(on, net.buf * self.momentum + d, net.buf))
                d = torch.where(on, net.buf, d)
            else:
                d = net.buf.mul_(self.momentum).add_(d)
        net.flat.addcmul_(d, self.lr, value=-1.0)


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

    from torch.func import stack_module_state

    stacked, _ = stack_module_state([m.model for m in members])  # (K, ...), the modules' layout
    net = _STACKED[configs[0].model["kind"]]({n: p.detach() for n, p in stacked.items()}, members[0].model)
    names = net.names
    has_momentum = torch.zeros(K, dtype=torch.bool, device=device)  # a solo run's SGD would hold a buffer
    for k, m in enumerate(members):  # resumed momentum buffers
        if m.momentum_bufs is not None and all(b is not None for b in m.momentum_bufs):
            for name, b in zip(names, m.momentum_bufs):
                net.set_member_buf(name, k, b)
            has_momentum[k] = True

    def sync_modules():  # stacked values -> each member's own module (for recording and checkpoints)
        with torch.no_grad():
            for k, m in enumerate(members):
                own = dict(m.model.named_parameters())
                for name in names:
                    own[name].copy_(net.member(name, k))

    def stack_data():  # (member, trial, time[, feature])
        x = torch.stack([torch.from_numpy(m.train_set.inputs).transpose(0, 1) for m in members]).to(device)
        y = torch.stack([torch.from_numpy(m.train_set.targets).T for m in members]).to(device)
        mk = torch.stack([torch.from_numpy(m.train_set.mask).T for m in members]).to(device)
        return x, y.long(), mk.to(x.dtype)

    def member_bufs(k):
        return [net.member_buf(n, k) for n in names] if bool(has_momentum[k]) else None

    def drop(dead):  # remove members (diverged) from every stacked tensor
        nonlocal members, has_momentum, x_all, y_all, m_all
        keep = [k for k in range(len(members)) if k not in dead]
        ix = torch.tensor(keep, device=device)
        members = [members[k] for k in keep]
        net.keep(ix)
        has_momentum = has_momentum[ix]
        x_all, y_all, m_all = x_all[ix], y_all[ix], m_all[ix]
        return ix

    if start_epoch == 0:
        for m in members:
            if not m.run.has_epoch(0):
                m.record(0)
            m.run.save_checkpoint(m.state(0))

    all_members, results = list(members), {}
    choices = torch.as_tensor(members[0].task.choice_actions, device=device)
    from decisionnets.training import divergence_bound

    max_loss = divergence_bound(members[0].task.n_outputs)
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
        # every member's data in its own epoch order, once per epoch: a batch is then a slice
        perm = torch.stack([torch.randperm(n_train, generator=m.order_gen) for m in members]).to(device)

        def in_order(t):
            return torch.stack([t[k].index_select(0, perm[k]) for k in range(len(members))])

        x_ep, y_ep, m_ep = in_order(x_all), in_order(y_all), in_order(m_all)
        loss_sum = torch.zeros(len(members), device=device)
        n_correct = torch.zeros(len(members), device=device)
        n_seen = 0
        for lo in range(0, n_train, bs):
            K = len(members)
            xb, yb, mb = x_ep[:, lo:lo + bs], y_ep[:, lo:lo + bs], m_ep[:, lo:lo + bs]  # (K, batch, time, ...)
            nb = xb.shape[1]
            losses, at, cache = net.loss(xb, yb, mb, [m.noise_gen for m in members])
            net.backward(cache)  # members are independent: a diverged member's NaNs stay in its own rows
            finite = torch.isfinite(losses) & (losses <= max_loss)  # the solo run's divergence rule
            if not bool(finite.all()):  # like a solo run: that member stops here, status "diverged"
                dead = torch.nonzero(~finite).flatten().tolist()
                for k in dead:
                    m = members[k]
                    m.write_status(status="diverged", epoch=epoch, step=m.step, loss=float(losses[k]))
                    results[id(m)] = dict(m.status)
                if len(dead) == len(members):
                    bar.close()
                    return [results[id(m)] for m in all_members]
                # drop them here, after the backward (no second forward: it would draw the noise again)
                ix = drop(set(dead))
                settings = [settings[k] for k in ix.tolist()]
                lr, mom, wd = lr[ix], mom[ix], wd[ix]
                x_ep, y_ep, m_ep = x_ep[ix], y_ep[ix], m_ep[ix]
                losses, at, yb = losses[ix], at[ix], yb[ix]
                sgd = _SGD(lr, mom, wd)
                loss_sum, n_correct = loss_sum[ix], n_correct[ix]
            if tc0.grad_clip > 0:
                net.clip(tc0.grad_clip)
            sgd.step(net)
            for m in members:
                m.step += 1
            # accumulated on the device: no sync per step
            loss_sum += losses * nb
            chosen = choices[at[..., choices].argmax(dim=-1)]  # at: (K, batch, action) at the response step
            n_correct += (chosen == yb[:, :, -1]).sum(1)
            n_seen += nb
        has_momentum |= sgd.momentum_on
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
