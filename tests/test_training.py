import csv
import json

import numpy as np
import pytest
import torch
import xarray as xr

from decisionnets.config import load_config, preset_names
from decisionnets.errors import TrainingDiverged
from decisionnets.io import open_activations
from decisionnets.recording import record_epochs
from decisionnets.training import train


def _cfg(task, tiny, *extra, seed=0):
    return load_config(task, overrides=[*tiny(task), *extra], seed=seed)


@pytest.mark.parametrize("task", preset_names())
def test_every_preset_trains_tiny(task, tiny, tmp_path, fake_cifar):
    status = train(_cfg(task, tiny), tmp_path / "run", progress=False)
    assert status["status"] == "completed" and status["epoch"] == 2
    ds = open_activations(tmp_path / "run")
    assert ds.sizes["epoch"] == 3 and list(ds.epoch.values) == [0, 1, 2]
    assert ds.choice.dims == ("epoch", "trial") and ds.correct.dims == ("epoch", "trial")
    assert np.isfinite(ds.loss.values).all()
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert (tmp_path / "run" / "checkpoints" / "final.pt").is_file()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["task"] == task


def test_color_direction_dataset_contract(tiny, tmp_path):
    train(_cfg("color-direction", tiny), tmp_path / "r", progress=False)
    ds = open_activations(tmp_path / "r")
    assert ds.hidden.dims == ("epoch", "trial", "time", "unit")
    assert ds.logits.dims == ("epoch", "trial", "time", "action")
    for label in ("color", "direction", "target_config", "coherence", "catch"):
        assert ds[label].dims == ("trial",)
    np.testing.assert_array_equal(ds.direction.values, ds.color.values ^ ds.target_config.values)
    assert ds.period.values[-1] == "decision" and ds.time.attrs["units"] == "ms"
    assert ds.attrs["format_version"] == 1 and json.loads(ds.attrs["config"])["task"] == "color-direction"
    # step counts SGD steps: 86 training trials / batch 16 -> 6 steps per epoch
    assert ds.step.values.tolist() == [0, 6, 12]


def test_same_seed_bit_identical_different_seed_differs(tiny, tmp_path):
    cfg = _cfg("color-direction", tiny, "model.noise=0.1")
    train(cfg, tmp_path / "a", progress=False)
    train(cfg, tmp_path / "b", progress=False)
    a, b = open_activations(tmp_path / "a").load(), open_activations(tmp_path / "b").load()
    xr.testing.assert_identical(a, b)
    train(_cfg("color-direction", tiny, "model.noise=0.1", seed=1), tmp_path / "c", progress=False)
    c = open_activations(tmp_path / "c").load()
    assert not np.array_equal(a.hidden.values[0], c.hidden.values[0])  # other initialization
    assert not np.array_equal(a.hidden.values[-1], c.hidden.values[-1])


def test_probe_set_is_shared_across_seeds_by_default(tiny, tmp_path):
    """record.probe_seed (default 0) fixes the probe trials for every run seed; -1 takes the run seed's."""
    from decisionnets.build import build_task
    from decisionnets.seeding import probe_stream

    def probe_inputs(cfg):
        return build_task(cfg).probe_set(np.random.default_rng(probe_stream(cfg))).inputs

    c1, c2 = _cfg("color-direction-static", tiny, seed=1), _cfg("color-direction-static", tiny, seed=2)
    own2 = _cfg("color-direction-static", tiny, "record.probe_seed=-1", seed=2)
    p2 = _cfg("color-direction-static", tiny, "record.probe_seed=2", seed=1)
    np.testing.assert_array_equal(probe_inputs(c1), probe_inputs(c2))
    np.testing.assert_array_equal(probe_inputs(own2), probe_inputs(p2))  # probe_seed s = run seed s's own
    assert not np.array_equal(probe_inputs(c2), probe_inputs(own2))
    # and training uses it: same network (seed 1), other probe trials -> other recorded activity
    train(c1, tmp_path / "a", progress=False)
    train(p2, tmp_path / "b", progress=False)
    a, b = open_activations(tmp_path / "a").load(), open_activations(tmp_path / "b").load()
    assert not np.array_equal(a.hidden.values[0], b.hidden.values[0])
    assert json.loads(a.attrs["config"])["record"]["probe_seed"] == 0


def test_training_does_not_touch_global_rng_state(tiny, tmp_path):
    np_state = np.random.get_state()[1].copy()
    torch_state = torch.get_rng_state().clone()
    train(_cfg("color-direction-static", tiny), tmp_path / "r", progress=False)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_phases_set_lr_and_batch_size(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('base = "color-direction-static"\n[model]\nhidden_sizes = [4]\n'
                 '[train]\nepochs = 3\nn_trials = 80\nbatch_size = 8\nlr = 0.05\n'
                 '[[train.phases]]\nepochs = 2\nlr = 0.005\nbatch_size = 40\n[record]\nn_per_condition = 1\n')
    cfg = load_config(config_file=f)
    train(cfg, tmp_path / "r", progress=False)
    rows = list(csv.DictReader(open(tmp_path / "r" / "log.csv")))
    assert [float(r["lr"]) for r in rows] == [0.005, 0.005, 0.05]
    # 72 training trials: 2 steps per epoch at batch 40, 9 at batch 8
    assert [int(r["step"]) for r in rows] == [2, 4, 13]


def test_fresh_trials_change_the_training_set(tiny, tmp_path):
    cfg = _cfg("color-direction-static", tiny, "fresh_trials=true")
    train(cfg, tmp_path / "a", progress=False)
    train(_cfg("color-direction-static", tiny), tmp_path / "b", progress=False)
    la = list(csv.DictReader(open(tmp_path / "a" / "log.csv")))
    lb = list(csv.DictReader(open(tmp_path / "b" / "log.csv")))
    assert la[0]["train_loss"] == lb[0]["train_loss"]  # epoch 1: the same first set
    assert la[1]["train_loss"] != lb[1]["train_loss"]


def test_divergence_stops_cleanly_and_keeps_recorded_epochs(tiny, tmp_path):
    cfg = _cfg("color-direction-static", tiny, "lr=1e6", "epochs=3")
    with pytest.raises(TrainingDiverged) as e:
        train(cfg, tmp_path / "r", progress=False)
    st = json.loads((tmp_path / "r" / "status.json").read_text())
    assert st["status"] == "diverged" and st["epoch"] == e.value.epoch and st["step"] == e.value.step
    ds = open_activations(tmp_path / "r")
    assert 0 in ds.epoch.values


def test_record_schedule():
    log = record_epochs("log", 70)
    assert log[:10] == [0, 1, 2, 3, 4, 6, 8, 11, 16, 23]  # dense early
    assert log[-1] == 70 and all(b / a <= 1.5 for a, b in zip(log[4:], log[5:]))
    assert record_epochs("all", 3) == [0, 1, 2, 3]
    assert record_epochs((5, 2), 10) == [0, 2, 5, 10]
