"""Metrics of a network's output on a batch: the masked loss and the network's choice, defined once.

Used by training (the loss it descends, its accuracy log) and by recording (the probe set's
loss, ``choice`` and ``correct``), below both in the data flow:
batches -> models -> **metrics** -> training / recording.

- **loss**: cross-entropy (nats) of the outputs against the target action at every time step,
  counted only where the mask is 1 (the decision period);
- **choice**: the index, among the choice actions (``task.choice_actions``), of the largest
  output at the trial's response step (:func:`choice_index`).

Where the choice is read differs between the two callers, as it did before this module existed
(results are unchanged): the recorder reads it at each trial's *response step* (its last masked
step, :meth:`decisionnets.trials.TrialBatch.response_step`); the training loop's accuracy reads
it at the *last* step of the batch (:func:`n_correct_choices`). The two are the same step for
every trial whose decision period ends the trial, which holds for the checkerboard envs and the
stock neurogym decision tasks (trials are aligned on their last step).
"""

from __future__ import annotations

import numpy as np
import torch


def masked_cross_entropy_sum(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum over the masked steps of the cross-entropy (nats), a 0-dim tensor.

    Parameters
    ----------
    logits : torch.Tensor, shape (time, batch, out)
    targets : torch.Tensor, shape (time, batch), int64
    mask : torch.Tensor, shape (time, batch), float
    """
    ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    return (ce * mask.flatten()).sum()


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats) over the masked steps (the training loss), a 0-dim tensor.

    logits (time, batch, out), targets/mask (time, batch); no masked step gives 0. With a leading
    member dim (an ensemble: logits (member, time, batch, out), targets/mask (member, time, batch))
    each member's own loss, shape (member,).
    """
    if targets.dim() == 3:
        ce = torch.nn.functional.cross_entropy(logits.flatten(0, 2), targets.flatten(), reduction="none")
        m = mask.flatten(1)
        return (ce.view_as(m) * m).sum(1) / m.sum(1).clamp_min(1.0)
    return masked_cross_entropy_sum(logits, targets, mask) / mask.flatten().sum().clamp_min(1.0)


def choice_index(logits_at_response, choice_actions):
    """The network's choice: index among ``choice_actions`` of the largest output, shape (trial,).

    Parameters
    ----------
    logits_at_response : np.ndarray or torch.Tensor, shape (trial, out)
        Outputs at each trial's response step.
    choice_actions : sequence of int (or an int64 tensor on the logits' device)
        Output indices that are choices.
    """
    if isinstance(logits_at_response, torch.Tensor):  # also (member, trial, out) -> (member, trial)
        return logits_at_response[..., choice_actions].argmax(dim=-1)
    return np.argmax(np.asarray(logits_at_response)[:, list(choice_actions)], axis=1)


def n_correct_choices(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor,
                      choice_actions: torch.Tensor) -> torch.Tensor:
    """Number of trials (a 0-dim tensor) whose choice at the last step is the target action there.

    The training loop's accuracy. Trials are aligned on their last step, so the last step is the
    response step of every trial whose decision period ends the trial (see the module doc).
    ``choice_actions`` is an int64 tensor of output indices; ``mask`` is unused (kept for the
    signature of the loss). With a leading member dim (logits (member, time, batch, out), targets
    (member, time, batch)) each member's count, shape (member,).
    """
    chosen = choice_actions[choice_index(logits[..., -1, :, :], choice_actions)]
    return (chosen == targets[..., -1, :]).sum(-1)
