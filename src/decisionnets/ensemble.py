"""Ensembles: K small networks of one architecture trained as one batched model by the one training loop.

A sweep of the paper's FC nets runs many small networks: at batch 32 one SGD step of the
4-100-100-100-2 net is about 0.15 ms of matrix products and 0.7 ms of per-operation overhead
(measured on one CPU thread), so one network per process spends most of its time in overhead;
a small RNN's step is one such overhead per time step. :func:`train_ensemble` trains K such
networks at once: :class:`Ensemble` stacks their parameters (:func:`torch.func.stack_module_state`)
into (member, ...) tensors and runs their forward as one batched program (by default the
member's own ``forward`` under :func:`torch.func.vmap` with :func:`torch.func.functional_call`);
gradients come from autograd, and :class:`MemberSGD` updates every member with its own settings.
The loop is :func:`decisionnets.training.fit` with the :class:`~decisionnets.objectives.Supervised`
objective, as for a solo run.

Each member keeps everything of its solo run (:class:`decisionnets.training.Member`):

- its own seed streams (:mod:`decisionnets.seeding`): training data, probe set, initialization
  (the member's module is built exactly as ``training.train`` builds it, then stacked), batch
  order (its own :class:`torch.Generator`), recurrent noise (its own generator);
- its own learning rate, momentum, weight decay and phases (per-member tensors, from
  :func:`decisionnets.optimization.phase_settings` every epoch), and its own momentum buffers;
- its own run directory with the solo layout: ``config.json``, ``status.json``, ``log.csv``,
  ``checkpoints/last.pt`` every epoch (a solo-format checkpoint, so ``train(..., resume=True)``
  continues a member alone) and ``final.pt``, ``activations/epoch_*.nc`` written by the same
  :class:`~decisionnets.recording.Recorder` from the member's own module.

The update matches :class:`torch.optim.SGD` (dampening 0, no Nesterov): weight decay added to the
gradient, ``buf = momentum * buf + grad`` (the first step's buffer is the gradient), ``p -= lr *
buf``. Members are not bit-identical to their solo runs (a batched matmul rounds differently from
a single one), but equal to float32 tolerance (tests: activations within 1e-5 after tiny runs;
after longer runs SGD can amplify the rounding differences).

Compatible configs (:func:`ensemble_key`) share everything that shapes the computation: model,
env, number of trials, epochs, the batch size in force at each epoch (so every member takes the
same number of steps), gradient clipping, device. They may differ in seed, learning rate,
momentum, weight decay (base and per phase), ``init_from`` and recording.

**A model joins ensembles** when its kind is in :data:`ENSEMBLE_MODELS` and its training-mode
``forward(x, layers=())`` can be batched: either :func:`torch.func.vmap` can run it (no random
draws, no in-place updates of parameters, no data-dependent Python control flow), or it
registers a batched forward in :data:`BATCHED_FORWARD` (the leaky RNN does: each member draws
its recurrent noise from its own generator, which ``vmap`` cannot do). No backward is written by
hand. GRU, LSTM, multi-area and CNN runs stay solo.
"""

from __future__ import annotations

import json
import math

import torch

from decisionnets.errors import UserError
from decisionnets.models.mlp import MLP
from decisionnets.models.rnn import LeakyRNN, leaky_rates

#: model kinds that can be trained as an ensemble (their forward batches: tested against solo runs)
ENSEMBLE_MODELS = ("mlp", "leaky_rnn")
_MEMBER_KEYS = ("lr", "momentum", "weight_decay")  # may differ between members (base and per phase)


def ensemble_key(config) -> str | None:
    """A string equal for configs that can share one ensemble, or None when ``config`` cannot be batched.

    Returns None for models other than :data:`ENSEMBLE_MODELS`, image tasks, optimizers other
    than SGD and runs trained by reward (``[agent]``).
    """
    from decisionnets.build import task_class
    from decisionnets.optimization import phase_settings

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
# the batched model and the per-member SGD
# --------------------------------------------------------------------------------------------------
def _leaky_rnn_forward(ens: "Ensemble", x: torch.Tensor) -> torch.Tensor:
    """K leaky RNNs (:class:`~decisionnets.models.rnn.LeakyRNN`): the solo forward batched over members.

    The same arithmetic as ``LeakyRNN.forward``: the input drive ``alpha (W_in u_t + b)`` and, in
    training mode, the recurrent noise for all steps at once (each member's one (time, batch,
    hidden) draw from its own generator, as its solo run draws it), then the Euler loop
    (:func:`~decisionnets.models.rnn.leaky_rates`) as one batched matmul per step.
    """
    net, p = ens.template, ens.params
    K, T, B, F = x.shape  # (member, time, batch, feature)
    drive = net.alpha * torch.baddbmm(p["w_in.bias"].unsqueeze(1), x.reshape(K, T * B, F),
                                      p["w_in.weight"].transpose(1, 2))
    drive = drive.view(K, T, B, -1)
    if net.training and net.noise > 0:  # each member's (time, batch, hidden) draw, written in place
        xi = torch.empty_like(drive)
        for k, g in enumerate(ens.generators):
            torch.randn((T, B, net.hidden_size), generator=g, out=xi[k])
        drive = drive + math.sqrt(2 * net.alpha) * net.noise * xi
    hidden = leaky_rates(drive, net.alpha * p["w_rec.weight"].transpose(1, 2), net.f, net.alpha, dim=1)
    logits = torch.baddbmm(p["readout.bias"].unsqueeze(1), hidden.view(K, T * B, -1),
                           p["readout.weight"].transpose(1, 2))
    return logits.view(K, T, B, -1)


def vmap_forward(ens: "Ensemble", x: torch.Tensor) -> torch.Tensor:
    """The member module's own forward, vmapped over the stacked parameters and the member dim of ``x``.

    The default batched forward (any model whose training-mode forward :func:`torch.func.vmap` can run).
    """
    return ens.vmapped(ens.params, ens.buffers, x)


class _StackedMLPLayers(torch.autograd.Function):
    """K MLPs' hidden layers and readout with a hand-written backward (the autograd graph's arithmetic
    without the graph: fewer, larger operations). Inputs (member, row, feature) and the parameters in
    the module's layout; returns the logits (member, row, action)."""

    @staticmethod
    def forward(ctx, x, activation, *params):
        hs, h = [x], x
        for k in range(0, len(params) - 2, 2):
            w, b = params[k], params[k + 1]
            z = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
            h = z.relu_() if activation == "relu" else z.tanh_()
            hs.append(h)
        ctx.hs, ctx.activation, ctx.weights = hs, activation, params[0::2]
        return torch.baddbmm(params[-1].unsqueeze(1), h, params[-2].transpose(1, 2))

    @staticmethod
    def backward(ctx, d):
        hs, weights, grads = ctx.hs, ctx.weights, []
        for k in range(len(weights) - 1, -1, -1):
            h_in = hs[k]
            grads += [d.sum(1), torch.bmm(d.transpose(1, 2), h_in)]  # bias, weight (module layout)
            if k > 0:
                d = torch.bmm(d, weights[k])
                d = (torch.ops.aten.threshold_backward(d, h_in, 0) if ctx.activation == "relu"
                     else torch.ops.aten.tanh_backward(d, h_in))
        return (None, None, *reversed(grads))


def _mlp_forward(ens: "Ensemble", x: torch.Tensor) -> torch.Tensor:
    """K MLPs (:class:`~decisionnets.models.mlp.MLP`, ReLU or tanh): batched matmuls with a hand-written
    backward, the fast path of :func:`vmap_forward` (equal to it to float rounding, tested); other
    activations go through :func:`vmap_forward`."""
    act = ens.template.act
    if not isinstance(act, (torch.nn.ReLU, torch.nn.Tanh)):
        return vmap_forward(ens, x)
    K, F = x.shape[0], x.shape[-1]
    p = ens.params
    n_hidden = len(ens.template.layers)
    params = [t for k in range(n_hidden) for t in (p[f"layers.{k}.weight"], p[f"layers.{k}.bias"])]
    params += [p["readout.weight"], p["readout.bias"]]
    logits = _StackedMLPLayers.apply(x.reshape(K, -1, F), "relu" if isinstance(act, torch.nn.ReLU) else "tanh",
                                     *params)
    return logits.view(*x.shape[:-1], -1)


#: model class -> a batched training forward ``f(ensemble, x) -> logits`` (member, ...): for models that
#: :func:`torch.func.vmap` cannot batch (the leaky RNN's per-member noise) and fast paths (the MLP);
#: every other model is batched by :func:`vmap_forward`
BATCHED_FORWARD = {LeakyRNN: _leaky_rnn_forward, MLP: _mlp_forward}


class Ensemble:
    """K modules of one architecture as one batched model with stacked parameters.

    Parameters
    ----------
    modules : sequence of torch.nn.Module
        The members' own modules (same class and shapes); the first is the template whose
        ``forward`` is batched (:data:`BATCHED_FORWARD`, or :func:`torch.func.vmap`).
    generators : sequence of torch.Generator, optional
        Each member's recurrent-noise generator (for models that draw noise).
    forward : callable, optional
        The batched forward ``f(ensemble, x) -> logits``; default: the model class's in
        :data:`BATCHED_FORWARD`, else :func:`vmap_forward`.

    Attributes
    ----------
    params : dict of str -> Tensor
        Each parameter stacked, shape (member, *its shape in the module), leaves of autograd.
    buffers : dict of str -> Tensor
        Each buffer stacked.

    Calling it with inputs (member, *solo shape) returns ``(logits, {})``, logits (member, *solo shape).
    """

    def __init__(self, modules, generators=None, forward=None):
        from torch.func import functional_call, stack_module_state, vmap

        modules = list(modules)
        self.params, self.buffers = stack_module_state(modules)
        self.template = modules[0]
        self.generators = list(generators) if generators is not None else [None] * len(modules)
        self.forward = forward or BATCHED_FORWARD.get(type(self.template), vmap_forward)

        def one(params, buffers, x):
            return functional_call(self.template, (params, buffers), (x,), {"layers": ()})[0]

        self.vmapped = vmap(one)

    def __call__(self, x, layers=()):
        return self.forward(self, x), {}

    def parameters(self) -> list:
        return list(self.params.values())

    def train(self, mode: bool = True):
        self.template.train(mode)
        return self

    def keep(self, ix: torch.Tensor) -> None:
        """Keep only members ``ix`` (a LongTensor of member indices), with their gradients."""
        def take(p):
            q = p.detach()[ix].requires_grad_(p.requires_grad)
            q.grad = p.grad[ix] if p.grad is not None else None
            return q

        self.params = {n: take(p) for n, p in self.params.items()}
        self.buffers = {n: b[ix] for n, b in self.buffers.items()}
        self.generators = [self.generators[k] for k in ix.tolist()]

    @torch.no_grad()
    def to_modules(self, modules) -> None:
        """Copy each member's parameters and buffers into its own module (``modules`` in member order)."""
        for k, module in enumerate(modules):
            own = {**dict(module.named_parameters()), **dict(module.named_buffers())}
            for name, t in (*self.params.items(), *self.buffers.items()):
                own[name].copy_(t[k])


class MemberSGD:
    """Per-member SGD on stacked (member, ...) parameters, as :class:`torch.optim.SGD` updates each member.

    ``lr``, ``momentum``, ``weight_decay`` in the one param group are (member,) tensors (set by
    :func:`decisionnets.optimization.apply_settings`). Weight decay is added to the gradient; with
    momentum, ``buf = momentum * buf + grad`` (the buffer starts at zero, so the first step's
    buffer is the gradient, as torch's); then ``p -= lr * buf``. A member with momentum 0 leaves
    its buffer untouched and, until it first has momentum, holds none (as torch).

    Parameters
    ----------
    params : list of Tensor
        Stacked parameters, (member, ...).
    optimizers : list of torch.optim.SGD, optional
        The members' own optimizers (of modules whose parameters are in the order of ``params``):
        their momentum buffers, when all present (a resumed run), start this one's.
    """

    def __init__(self, params, optimizers=None):
        params = list(params)
        K = params[0].shape[0]
        zeros = torch.zeros(K, device=params[0].device)
        self.param_groups = [{"params": params, "lr": zeros, "momentum": zeros, "weight_decay": zeros}]
        self.bufs = [torch.zeros_like(p, requires_grad=False) for p in params]
        self.has_buf = torch.zeros(K, dtype=torch.bool, device=params[0].device)
        self._flags = None
        for k, opt in enumerate(optimizers or ()):
            own = [opt.state.get(p, {}).get("momentum_buffer") for g in opt.param_groups for p in g["params"]]
            if own and all(b is not None for b in own):
                with torch.no_grad():
                    for buf, b in zip(self.bufs, own):
                        buf[k].copy_(b)
                self.has_buf[k] = True

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.param_groups[0]["params"]:
            p.grad = None

    def _prepare(self, g) -> tuple:
        """Per-settings constants: each of lr, momentum, weight decay viewed for every parameter's shape."""
        lr, mom, wd = g["lr"], g["momentum"], g["weight_decay"]
        on = mom != 0
        shapes = [(-1,) + (1,) * (p.dim() - 1) for p in g["params"]]
        return (mom, wd, lr, on, [on.view(s) for s in shapes], [lr.view(s) for s in shapes],
                [mom.view(s) for s in shapes], [wd.view(s) for s in shapes],
                bool((wd != 0).any()), bool(on.any()), bool(on.any()) and not bool(on.all()))

    @torch.no_grad()
    def step(self) -> None:
        g = self.param_groups[0]
        f = self._flags
        if f is None or f[0] is not g["momentum"] or f[1] is not g["weight_decay"] or f[2] is not g["lr"]:
            f = self._flags = self._prepare(g)  # once per epoch (settings change only then)
        _, _, _, on, ons, lrs, moms, wds, use_wd, use_mom, mixed = f
        params = g["params"]
        grads = [p.grad for p in params]
        if use_wd:  # in place: the gradient is spent
            torch._foreach_addcmul_(grads, params, wds)
        if mixed:  # members without momentum keep their buffer (torch keeps no new one)
            for buf, d, where, m in zip(self.bufs, grads, ons, moms):
                buf.copy_(torch.where(where, buf * m + d, buf))
            grads = [torch.where(where, buf, d) for buf, d, where in zip(self.bufs, grads, ons)]
        elif use_mom:
            torch._foreach_mul_(self.bufs, moms)
            torch._foreach_add_(self.bufs, grads)
            grads = self.bufs
        torch._foreach_addcmul_(params, grads, lrs, value=-1.0)
        if use_mom:
            self.has_buf |= on

    def keep(self, ix: torch.Tensor, params) -> None:
        """Keep only members ``ix``; ``params``: the kept stacked parameters (:meth:`Ensemble.keep`)."""
        g = self.param_groups[0]
        g["params"] = list(params)
        for k in ("lr", "momentum", "weight_decay"):
            g[k] = g[k][ix]
        self.bufs = [b[ix] for b in self.bufs]
        self.has_buf = self.has_buf[ix]
        self._flags = None

    def to_member(self, k: int, optimizer, module) -> None:
        """Member ``k``'s momentum buffers into its own ``optimizer`` (on ``module``), as its solo SGD holds them."""
        if not bool(self.has_buf[k]):
            return
        for p, buf in zip(module.parameters(), self.bufs):
            optimizer.state[p]["momentum_buffer"] = buf[k].clone()


# --------------------------------------------------------------------------------------------------
# training an ensemble
# --------------------------------------------------------------------------------------------------
def train_ensemble(configs, run_dirs, *, progress: bool = True, resume: bool = False) -> list[dict]:
    """Train compatible configs as one batched model; each member writes a solo run directory.

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
    from pathlib import Path

    from decisionnets.objectives import Supervised
    from decisionnets.training import Member, fit

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
    members = [Member(c, d, resume=resume, ensemble_size=K) for c, d in zip(configs, run_dirs)]
    starts = {m.start_epoch for m in members}
    if len(starts) != 1:
        raise UserError(f"members of a resumed ensemble are at different epochs {sorted(starts)}; resume them solo")
    for m in members:
        m.begin()
    model = Ensemble([m.model for m in members], generators=[m.noise_gen for m in members])
    objective = Supervised(members, model, MemberSGD(model.parameters(), [m.opt for m in members]))
    fit(objective, epochs=configs[0].train.epochs, start_epoch=members[0].start_epoch, step=members[0].step,
        grad_clip=configs[0].train.grad_clip, progress=progress, desc=f"ensemble of {K}")
    for m in objective.members:  # those that did not diverge
        m.finish()
    return [dict(m.run.status) for m in members]
