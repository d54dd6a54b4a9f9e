"""Recording: the epoch schedule, and one epoch's dataset from a model whose outputs are planted."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from decisionnets.recording import Recorder, record_epochs
from decisionnets.trials import TrialBatch


@pytest.mark.parametrize("schedule, epochs, expected", [
    ("log", 20, [0, 1, 2, 3, 4, 6, 8, 11, 16, 20]),
    ("log", 3, [0, 1, 2, 3]),
    ("all", 3, [0, 1, 2, 3]),
    ([5, 2, 50], 10, [0, 2, 5, 10]),  # 0 and the last always; beyond the last dropped
    ([], 0, [0]),
])
def test_record_epochs(schedule, epochs, expected):
    assert record_epochs(schedule, epochs) == expected


class Echo(torch.nn.Module):
    """Logits = the inputs; ``hidden`` = 2 x inputs, ``layer1`` = the first two inputs. Notes its mode."""

    layer_names = ("hidden", "layer1")

    def __init__(self, cell_types=None):
        super().__init__()
        self.modes, self.cell_types = [], cell_types

    def forward(self, x, layers=None):
        self.modes.append(self.training)
        acts = {"hidden": 2 * x, "layer1": x[..., :2]}
        return x.clone(), {k: acts[k] for k in layers}

    def unit_coords(self, name):
        return {"cell_type": self.cell_types} if name == "hidden" and self.cell_types is not None else {}


TASK = SimpleNamespace(choice_actions=[1, 2], target_label="direction", has_time=True,
                       decode_labels=["direction"], analyses=[])


def _probe():
    """4 trials, 3 steps, 3 outputs (0 = fixate, 1 and 2 = the choices).

    Trial 0: answers choice 0 (right); trial 1: its decision ends at step 1, where it answers 1
    (right), though step 2 says 0; trial 2: answers 0, target 1 (wrong); trial 3: a catch trial
    that keeps fixating (right).
    """
    x = np.zeros((3, 4, 3), np.float32)
    x[2, 0] = [0, 2, 1]
    x[1, 1], x[2, 1] = [0, 0, 3], [0, 5, 0]
    x[2, 2] = [0, 4, 1]
    x[:, 3] = [3, 1, 1]
    targets = np.array([[0, 0, 0, 0], [0, 2, 0, 0], [1, 0, 2, 0]], np.int64)
    mask = np.zeros((3, 4), np.float32)
    mask[2, [0, 2]] = 1
    mask[1, 1] = 1
    labels = {"direction": np.array([0, 1, 1, 0]), "catch": np.array([0, 0, 0, 1], np.int8),
              "color": np.array([1, 0, 1, 0])}
    return TrialBatch(x, targets, mask, labels, period=np.array(["fix", "stim", "decision"]), dt=20.0)


def _log_softmax(v):
    v = np.asarray(v, float)
    return v - np.log(np.exp(v).sum())


def test_forward_reads_choices_at_the_response_step_and_scores_non_catch_trials():
    model = Echo()
    model.train()
    out = Recorder(_probe(), TASK, ["hidden"], chunk=3).forward(model)  # two chunks
    np.testing.assert_array_equal(out["choice"], [0, 1, 0, 0])
    np.testing.assert_array_equal(out["correct"], [1, 1, 0, 1])
    assert out["accuracy"] == pytest.approx(2 / 3)  # the catch trial does not count
    expected = -(_log_softmax([0, 2, 1])[1] + _log_softmax([0, 0, 3])[2] + _log_softmax([0, 4, 1])[2]) / 3
    assert out["loss"] == pytest.approx(expected, rel=1e-6)
    assert out["logits"].shape == (3, 4, 3) and out["hidden"].shape == (3, 4, 3)
    np.testing.assert_allclose(out["hidden"], 2 * _probe().inputs)
    assert model.modes == [False, False] and model.training  # run in eval mode, then put back


def test_dataset_of_one_epoch_follows_the_contract():
    model = Echo(cell_types=np.array(["E", "E", "I"]))
    rec = Recorder(_probe(), TASK, ["hidden", "layer1"], time_stride=2, dtype="float16", attrs={"seed": 7})
    ds = rec.dataset(model, epoch=5, step=123)
    assert ds.hidden.dims == ("epoch", "trial", "time", "unit")
    assert ds.layer1.dims == ("epoch", "trial", "time", "layer1_unit") and ds.sizes["layer1_unit"] == 2
    assert ds.logits.dims == ("epoch", "trial", "time", "action")
    assert ds.hidden.dtype == np.float16 and ds.logits.dtype == np.float16
    np.testing.assert_array_equal(ds.time.values, [0.0, 40.0])  # every 2nd step counted back from the last
    np.testing.assert_array_equal(ds.period.values, ["fix", "decision"])
    np.testing.assert_allclose(ds.hidden.values[0, :, 1], 2 * _probe().inputs[2])
    assert ds.epoch.values.tolist() == [5] and ds.step.values.tolist() == [123]
    np.testing.assert_array_equal(ds.choice.values, [[0, 1, 0, 0]])
    np.testing.assert_array_equal(ds.correct.values, [[1, 1, 0, 1]])
    assert float(ds.accuracy[0]) == pytest.approx(2 / 3) and ds.loss.attrs["units"] == "nats"
    np.testing.assert_array_equal(ds.color.values, [1, 0, 1, 0])  # labels are trial coordinates
    np.testing.assert_array_equal(ds.cell_type.values, ["E", "E", "I"])
    assert ds.attrs["seed"] == 7 and ds.attrs["target"] == "direction"
    assert json.loads(ds.attrs["decode_labels"]) == ["direction"] and "format_version" in ds.attrs


def test_dataset_of_a_task_without_time_has_no_time_dim():
    probe = _probe()
    static = TrialBatch(probe.inputs[-1:], probe.targets[-1:], probe.mask[-1:], probe.labels)
    task = SimpleNamespace(**{**vars(TASK), "has_time": False})
    ds = Recorder(static, task, ["hidden"]).dataset(Echo(), epoch=0, step=0)
    assert ds.hidden.dims == ("epoch", "trial", "unit") and ds.logits.dims == ("epoch", "trial", "action")
    assert "time" not in ds.dims
    np.testing.assert_array_equal(ds.choice.values, [[0, 0, 0, 0]])  # trial 1 has no step 1 here
