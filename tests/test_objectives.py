"""decisionnets.objectives.Supervised: the loss, metrics, batches and epoch rows of planted batches.

The members here are stand-ins with the attributes :class:`decisionnets.training.Member` has
(config, device, task, model, opt, train_set, order_gen, run, end_epoch); the model returns its
inputs as logits, so every loss is known in closed form.
"""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from decisionnets.config import load_config
from decisionnets.errors import TrainingDiverged
from decisionnets.objectives import Supervised
from decisionnets.training import divergence_bound

# one decision step after one masked-out step, 3 trials, outputs (fixation, left, right); choices 1 and 2
PROBS = np.array([[0.1, 0.7, 0.2],    # chooses 1, target 1: correct
                  [0.1, 0.3, 0.6],    # chooses 2, target 1: wrong
                  [0.2, 0.2, 0.6]])   # chooses 2, target 2: correct
TARGETS = np.array([1, 1, 2])
CE = -np.log(PROBS[np.arange(3), TARGETS])  # each trial's cross-entropy at the decision step (nats)


class Logits(torch.nn.Module):
    """A model whose logits are its inputs times (1 + w), w = 0 (any leading dims)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, layers=()):
        return x * (1 + self.w), {}


def _member(probs=PROBS, targets=TARGETS, lr=0.1, seed=0):
    n = len(targets)
    inputs = np.stack([np.zeros((n, 3)), np.log(probs)]).astype(np.float32)  # (time, trial, out)
    inputs[0, np.arange(n), np.where(targets == 1, 2, 1)] = 5.0  # confident and wrong at the masked step
    inputs[0, :, 0] = np.arange(n)  # trial k is tagged k (fixation logit at the masked step)
    train_set = SimpleNamespace(inputs=inputs, targets=np.stack([targets, targets]).astype(np.int64),
                                mask=np.array([[0.0] * n, [1.0] * n], np.float32), n_trials=n)
    model = Logits()
    rows = []
    return SimpleNamespace(
        config=load_config("color-direction-static", overrides=[f"lr={lr}", "batch_size=2"]),
        device=torch.device("cpu"), model=model, opt=torch.optim.SGD(model.parameters(), lr=lr),
        task=SimpleNamespace(n_outputs=3, choice_actions=[1, 2], augment=lambda x, gen: x),
        train_set=train_set, order_gen=torch.Generator().manual_seed(seed), rows=rows,
        end_epoch=lambda epoch, step, row, seconds: rows.append(row),
        run=SimpleNamespace(diverged=lambda epoch, step, loss: rows.append(("diverged", epoch, step, loss))))


def _batch(member):
    ts = member.train_set
    return tuple(torch.from_numpy(a) for a in (ts.inputs, ts.targets, ts.mask))


def test_loss_and_metrics_of_a_planted_batch():
    obj = Supervised([_member()])
    losses, metrics = obj.loss(_batch(obj.members[0]))
    assert losses.shape == () and losses.item() == pytest.approx(CE.mean(), rel=1e-6)
    assert metrics["n"] == 3 and metrics["correct"].item() == 2
    assert metrics["loss"].item() == pytest.approx(3 * CE.mean(), rel=1e-6)  # a sum over the batch
    assert obj.max_loss == divergence_bound(3) and not obj.per_member


def test_the_gradient_flows_through_the_model_from_the_masked_steps_only():
    obj = Supervised([_member()])
    losses, _ = obj.loss(_batch(obj.members[0]))
    losses.backward()
    assert obj.params == [obj.members[0].model.w]
    # d/dw CE(softmax((1 + w) x), y) at w = 0 is sum_j (p_j - [j == y]) x_j, with x = log p at the decision step
    onehot = np.eye(3)[TARGETS]
    expected = np.mean(np.sum((PROBS - onehot) * np.log(PROBS), axis=1))
    assert obj.members[0].model.w.grad.item() == pytest.approx(expected, rel=1e-5)


def test_batches_cover_every_trial_once_in_the_members_order():
    obj = Supervised([_member(probs=np.tile(PROBS, (2, 1)), targets=np.tile(TARGETS, 2))])
    batches = list(obj.batches(epoch=1, batch_size=4))
    assert [b[0].shape for b in batches] == [(2, 4, 3), (2, 2, 3)]  # (time, trial, out)
    order = torch.cat([b[0][0, :, 0] for b in batches]).long()  # the trials' tags
    assert order.tolist() == torch.randperm(6, generator=torch.Generator().manual_seed(0)).tolist()
    assert all(torch.equal(b[1][1], torch.from_numpy(np.tile(TARGETS, 2))[b[0][0, :, 0].long()]) for b in batches)


def test_settings_and_the_epoch_row():
    obj = Supervised([_member(lr=0.3)])
    s = obj.settings(1)
    assert s["lr"] == 0.3 and s["batch_size"] == 2
    postfix = obj.end_epoch(1, 7, {"n": 4, "loss": torch.tensor(2.0), "correct": torch.tensor(3)}, 1.0)
    row = obj.members[0].rows[-1]
    assert (row["epoch"], row["step"], row["lr"], row["batch_size"]) == (1, 7, 0.3, 2)
    assert row["train_loss"] == 0.5 and row["train_accuracy"] == 0.75
    assert postfix == {"loss": "0.500", "acc": "0.750"}


def test_a_diverged_single_run_is_recorded_and_raised():
    obj = Supervised([_member()])
    with pytest.raises(TrainingDiverged, match="loss=inf .*at epoch 2, step 5") as e:
        obj.diverged(torch.tensor(float("inf")), torch.tensor(True), 2, 5)
    assert e.value.bound == obj.max_loss
    assert obj.members[0].rows == [("diverged", 2, 5, float("inf"))]


def test_several_members_need_a_batched_model():
    with pytest.raises(ValueError, match="several members \\(2\\) need their batched model"):
        Supervised([_member(), _member()])


def test_an_ensemble_has_one_loss_and_one_count_per_member():
    """Members stacked on a leading dim: member k's loss is its solo loss; lr is per member."""
    other_targets = np.array([2, 1, 1])  # member 1 chooses as member 0, so no trial is correct
    a, b = _member(lr=0.1), _member(targets=other_targets, lr=0.4, seed=1)
    model = Logits()
    obj = Supervised([a, b], model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    assert obj.per_member
    s = obj.settings(1)
    assert s["batch_size"] == 2 and s["lr"].tolist() == pytest.approx([0.1, 0.4])
    batch = tuple(torch.stack(pair) for pair in zip(_batch(a), _batch(b)))  # (member, time, trial, ...)
    losses, metrics = obj.loss(batch)
    ce_b = -np.log(PROBS[np.arange(3), other_targets])
    assert losses.shape == (2,)
    np.testing.assert_allclose(losses.detach().numpy(), [CE.mean(), ce_b.mean()], rtol=1e-6)
    assert metrics["correct"].tolist() == [2, 0] and metrics["n"] == 3
    solo = Supervised([_member(targets=other_targets)]).loss(_batch(b))[0]
    assert solo.item() == pytest.approx(losses[1].item(), rel=1e-6)
    batches = list(obj.batches(epoch=1, batch_size=2))
    assert [bt[0].shape for bt in batches] == [(2, 2, 2, 3), (2, 2, 1, 3)]  # (member, time, trial, out)
