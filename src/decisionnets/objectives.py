"""Objectives: what one trainer optimizes, run by the one training loop (:func:`decisionnets.training.fit`).

The loop owns epochs, phases, the backward pass, clipping and the optimizer step; an objective
supplies the rest. An objective has

``optimizer``
    the optimizer of its parameters (phase settings are put into its param groups by
    :func:`decisionnets.optimization.apply_settings`);
``params``, ``per_member``, ``max_loss``
    the parameters (for gradient clipping), whether they are stacked per ensemble member (then
    losses and clipping are per member), and the divergence bound of the loss;
``settings(epoch)``
    the phase settings in force (``lr``, ``momentum``, ``weight_decay``: floats, or (member,)
    tensors for an ensemble; ``batch_size``: an int);
``batches(epoch, batch_size)``
    the epoch's batches;
``loss(batch)``
    ``(losses, metrics)``: the loss to descend (0-dim, or (member,)) and the batch's metrics, each
    a sum over the batch that the loop adds up over the epoch (``n``: the number of trials);
``diverged(losses, bad, epoch, step)``
    a run whose loss diverged: a single run writes status "diverged" and raises
    :class:`~decisionnets.errors.TrainingDiverged`; an ensemble drops the members ``bad`` and returns
    the indices of those kept (None when none is left);
``end_epoch(epoch, step, sums, seconds)``
    the epoch's log rows, recordings and checkpoints; returns the progress bar's postfix.

Two objectives exist: :class:`Supervised` (the masked cross-entropy against the task's targets,
for one run or an ensemble of runs as one batched model) and
:class:`decisionnets.agents.a2c.ActorCritic` (reward: advantage actor-critic or REINFORCE).
"""

from __future__ import annotations

import torch

from decisionnets import metrics
from decisionnets.errors import TrainingDiverged
from decisionnets.optimization import apply_settings, divergence_bound, phase_settings

_MEMBER_KEYS = ("lr", "momentum", "weight_decay")  # may differ between the members of an ensemble


class Supervised:
    """The masked cross-entropy (:func:`decisionnets.metrics.masked_cross_entropy`) on a fixed training set.

    Parameters
    ----------
    members : list of decisionnets.training.Member
        One run, or the members of an ensemble (same task, number of trials and batch sizes).
    model : callable, optional
        The ensemble's batched model (:class:`decisionnets.ensemble.Ensemble`, inputs and outputs
        with a leading member dim); default: the one member's own module.
    optimizer : optional
        The ensemble's optimizer (:class:`decisionnets.ensemble.MemberSGD`); default: the one
        member's own.

    Notes
    -----
    Metrics of a batch: ``loss`` (the loss times the batch size) and ``correct`` (the number of
    trials whose choice at the last step is the target, :func:`decisionnets.metrics.n_correct_choices`),
    per member for an ensemble; ``n`` (trials). Each member's log row holds their epoch means.
    """

    def __init__(self, members, model=None, optimizer=None):
        self.members = list(members)
        self.per_member = model is not None
        if not self.per_member and len(self.members) != 1:
            raise ValueError(f"Supervised: several members ({len(self.members)}) need their batched model")
        first = self.members[0]
        self.model = model if model is not None else first.model
        self.optimizer = optimizer if optimizer is not None else first.opt
        self.device, self.task = first.device, first.task
        self.fresh_trials = first.config.train.fresh_trials
        self.max_loss = divergence_bound(self.task.n_outputs)
        self.choices = torch.as_tensor(self.task.choice_actions, device=self.device)
        self._load()

    @property
    def params(self) -> list:
        return list(self.model.parameters())

    def _load(self):
        """The members' training sets on the device: (time, trial, ...), stacked (member, time, trial, ...)."""
        arrays = [tuple(torch.from_numpy(a) for a in (m.train_set.inputs, m.train_set.targets, m.train_set.mask))
                  for m in self.members]
        if self.per_member:
            self.data = tuple(torch.stack(col).to(self.device) for col in zip(*arrays))
        else:
            self.data = tuple(a.to(self.device) for a in arrays[0])

    def settings(self, epoch: int) -> dict:
        self.member_settings = [phase_settings(m.config.train, epoch) for m in self.members]
        if not self.per_member:
            return self.member_settings[0]
        return {"batch_size": self.member_settings[0]["batch_size"],
                **{k: torch.tensor([s[k] for s in self.member_settings], dtype=torch.float32, device=self.device)
                   for k in _MEMBER_KEYS}}

    def batches(self, epoch: int, batch_size: int):
        """Each member's training set in its own order (its ``order_gen``), ``batch_size`` trials at a time."""
        if self.fresh_trials and epoch > 1:
            for m in self.members:
                m.train_set = m.task.train_set(m.train_set.n_trials, m.data_rng)
            self._load()
        self.model.train()
        n = self.members[0].train_set.n_trials
        perms = [torch.randperm(n, generator=m.order_gen).to(self.device) for m in self.members]
        if not self.per_member:
            x_all, y_all, m_all = self.data
            order_gen = self.members[0].order_gen
            for lo in range(0, n, batch_size):
                idx = perms[0][lo:lo + batch_size]
                yield self.task.augment(x_all[:, idx], order_gen), y_all[:, idx], m_all[:, idx]
            return
        # an ensemble: every member's data in its own order once per epoch, so a batch is a slice
        # (ensembles hold trial tasks only, which have no augmentation)
        self.epoch_data = tuple(torch.stack([t[k].index_select(1, perms[k]) for k in range(len(perms))])
                                for t in self.data)
        for lo in range(0, n, batch_size):
            yield tuple(t[:, :, lo:lo + batch_size] for t in self.epoch_data)  # read again after a drop

    def loss(self, batch):
        x, y, mask = batch
        logits, _ = self.model(x, layers=())
        losses = metrics.masked_cross_entropy(logits, y, mask)
        with torch.no_grad():  # accumulated on the device: no sync per step
            n = y.shape[-1]
            return losses, {"loss": losses.detach() * n, "n": n,
                            "correct": metrics.n_correct_choices(logits, y, mask, self.choices)}

    def diverged(self, losses, bad, epoch: int, step: int):
        if not self.per_member:  # a single run stops: status "diverged", recorded epochs kept
            loss = losses.item()
            self.members[0].run.diverged(epoch, step, loss)
            raise TrainingDiverged(epoch, step, loss, self.max_loss)
        # an ensemble's member stops as its solo run would; the others go on
        for k in torch.nonzero(bad).flatten().tolist():
            self.members[k].run.diverged(epoch, step, float(losses[k]))
        keep = torch.nonzero(~bad).flatten()
        if len(keep) == 0:
            self.members = []
            return None
        kept = keep.tolist()
        self.members = [self.members[k] for k in kept]
        self.member_settings = [self.member_settings[k] for k in kept]
        self.model.keep(keep)
        self.optimizer.keep(keep, self.params)
        self.data = tuple(t[keep] for t in self.data)
        self.epoch_data = tuple(t[keep] for t in self.epoch_data)
        return keep

    def end_epoch(self, epoch: int, step: int, sums: dict, seconds: float) -> dict:
        n = sums["n"]
        if self.per_member:
            self.model.to_modules([m.model for m in self.members])  # for validation, recording, checkpoints
            seconds /= len(self.members)  # the ensemble's training time, shared out
        loss, correct = sums["loss"].reshape(-1).tolist(), sums["correct"].reshape(-1).tolist()
        for k, m in enumerate(self.members):
            s = self.member_settings[k]
            if self.per_member:  # the member's own optimizer holds this epoch's settings and its momentum buffers
                apply_settings(m.opt, s)
                self.optimizer.to_member(k, m.opt, m.model)
            row = {"epoch": epoch, "step": step, "lr": s["lr"], "batch_size": s["batch_size"],
                   "train_loss": loss[k] / n, "train_accuracy": correct[k] / n}
            m.end_epoch(epoch, step, row, seconds)
        return {"loss": f"{sum(loss) / len(loss) / n:.3f}", "acc": f"{sum(correct) / len(correct) / n:.3f}"}
