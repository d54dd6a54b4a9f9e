"""The optimizer and its schedule, shared by every trainer: phases, settings, clipping, divergence.

A run's ``[train]`` table may split training into *phases* (``[[train.phases]]``: the first k epochs
at another lr, batch size, momentum or weight decay). :func:`phase_settings` gives the settings in
force at an epoch, :func:`apply_settings` is the one place they reach an optimizer (one run's
``torch.optim`` optimizer, or an ensemble's :class:`~decisionnets.ensemble.MemberSGD` with
per-member tensors), :func:`clip_grad_norm` clips one run or each ensemble member by its own norm,
and :func:`divergence_bound` is the loss above which a run has diverged. The training loop
(:func:`decisionnets.training.fit`) and the objectives (:mod:`decisionnets.objectives`) use them.
"""

from __future__ import annotations

import numpy as np
import torch

from decisionnets.errors import ConfigError

__all__ = ["DIVERGENCE_FACTOR", "divergence_bound", "phase_settings", "make_optimizer", "apply_settings",
           "clip_grad_norm"]

#: A training loss above ``DIVERGENCE_FACTOR`` x the cross-entropy of a uniform guess (ln of the number
#: of outputs, about what an untrained network scores) is a divergence, as a NaN or infinite loss is.
DIVERGENCE_FACTOR = 1e4


def divergence_bound(n_outputs: int) -> float:
    """The largest training loss that is not a divergence: ``DIVERGENCE_FACTOR * ln(max(n_outputs, 2))``."""
    return DIVERGENCE_FACTOR * float(np.log(max(int(n_outputs), 2)))


def phase_settings(train_cfg, epoch: int) -> dict:
    """lr, batch_size, momentum and weight_decay in force at (1-based) ``epoch``."""
    base = {k: getattr(train_cfg, k) for k in ("lr", "batch_size", "momentum", "weight_decay")}
    end = 0
    for p in train_cfg.phases:
        end += p.epochs
        if epoch <= end:
            return {k: (getattr(p, k) if getattr(p, k) is not None else v) for k, v in base.items()}
    return base


def make_optimizer(kind: str, params, settings: dict):
    """``torch.optim.SGD`` (kind "sgd") or ``torch.optim.Adam`` ("adam") with a phase's ``settings``."""
    if kind == "adam":
        return torch.optim.Adam(params, lr=settings["lr"], weight_decay=settings["weight_decay"])
    if kind == "sgd":
        return torch.optim.SGD(params, lr=settings["lr"], momentum=settings["momentum"],
                               weight_decay=settings["weight_decay"])
    raise ConfigError(f"train.optimizer must be sgd or adam; got {kind!r}")


def apply_settings(optimizer, settings: dict) -> None:
    """Put a phase's ``lr``, ``weight_decay`` and (SGD) ``momentum`` into every param group of ``optimizer``.

    The one place where phases reach an optimizer. Values are floats, or (member,) tensors for an
    ensemble's :class:`~decisionnets.ensemble.MemberSGD`.
    """
    for g in optimizer.param_groups:
        g["lr"], g["weight_decay"] = settings["lr"], settings["weight_decay"]
        if "momentum" in g:  # sgd only
            g["momentum"] = settings["momentum"]


def clip_grad_norm(params, max_norm: float, per_member: bool = False) -> None:
    """:func:`torch.nn.utils.clip_grad_norm_` over ``params``; with ``per_member``, each member's own norm.

    ``per_member``: parameters are stacked (member, ...) and each member's gradient is scaled by
    its own norm over all its parameters, as its solo run's ``clip_grad_norm_`` would.
    """
    if not per_member:
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        return
    grads = [p.grad for p in params if p.grad is not None]
    norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads]).norm(dim=0)  # (member,)
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *([1] * (g.dim() - 1))))
