import csv

import numpy as np
import pytest
import torch
import xarray as xr

import decisionnets.agents.a2c as a2c
from decisionnets.config import from_dict, load_config, read_preset
from decisionnets.errors import ConfigError
from decisionnets.io import open_activations
from decisionnets.report import analyze_run
from decisionnets.training import train

# an easy, short version of the fixed-duration task: 9 steps per trial, little noise
EASY = ["env.sigma=0.5", "env.timing={fixation = 20, targets = 20, stimulus = 100, decision = 40}",
        "model.hidden_size=16", "model.noise=0.0", "n_per_condition=2", "record.time_stride=1"]


def _cfg(*extra, task="color-direction-rl", seed=0):
    return load_config(task, overrides=[*EASY, *extra], seed=seed)


def test_advantages_and_returns_by_hand():
    r = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    alive = torch.tensor([[True, True], [True, True], [True, False]])
    g = a2c.returns(r, alive, 0.5)
    torch.testing.assert_close(g, torch.tensor([[0.25, 0.5], [0.5, 1.0], [1.0, 0.0]]))
    v = torch.tensor([[0.1, 0.2], [0.3, 0.4], [0.5, 9.0]])
    # lambda = 1: advantage = return - value (value beyond the trial's end is 0)
    adv, target = a2c.advantages(r, v, alive, 0.5, 1.0)
    torch.testing.assert_close(adv, (g - v) * alive)
    torch.testing.assert_close(target, g)
    # lambda = 0: one-step TD errors
    adv0, _ = a2c.advantages(r, v, alive, 0.5, 0.0)
    torch.testing.assert_close(adv0[0, 0], torch.tensor(0.0 + 0.5 * 0.3 - 0.1))
    torch.testing.assert_close(adv0[1, 1], torch.tensor(1.0 - 0.4))


@pytest.mark.parametrize("algorithm", ["a2c", "reinforce"])
def test_tiny_agent_learns_above_chance(algorithm, tmp_path):
    cfg = _cfg(f"agent.algorithm={algorithm}", "epochs=3", "n_trials=2048", "batch_size=64", "lr=0.01",
               "record.schedule=[3]")
    status = train(cfg, tmp_path / "run", progress=False)
    assert status["status"] == "completed" and status["step"] == 3 * 32
    ds = open_activations(tmp_path / "run").load()
    assert ds.epoch.values.tolist() == [0, 3]
    assert ds.hidden.dims == ("epoch", "trial", "time", "unit") and ds.action.dims == ("epoch", "trial", "time")
    # 56 probe trials (14 coherences x 2 configurations x 2), greedy: chance is 0.5 and
    # P(>= 0.7 correct | chance) < 0.002
    assert float(ds.accuracy.sel(epoch=3)) >= 0.7
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert float(rows[-1]["mean_reward"]) > float(rows[0]["mean_reward"])


def test_same_seed_identical_and_resume_continues_exactly(tmp_path, monkeypatch):
    cfg = _cfg("epochs=3", "n_trials=128", "batch_size=32", "record.schedule=all", "lr=0.01")
    train(cfg, tmp_path / "a", progress=False)
    real, calls = a2c.play_trials, {"n": 0}

    def dies_in_epoch_3(*args, **kw):  # the 11th training batch: the middle of epoch 3 (4 per epoch)
        if kw.get("grad"):
            calls["n"] += 1
            if calls["n"] == 11:
                raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(a2c, "play_trials", dies_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "b", progress=False)
    monkeypatch.setattr(a2c, "play_trials", real)
    assert open_activations(tmp_path / "b").epoch.values.tolist() == [0, 1, 2]
    train(cfg, tmp_path / "b", progress=False, resume=True)
    xr.testing.assert_identical(open_activations(tmp_path / "a").load(), open_activations(tmp_path / "b").load())
    wa = torch.load(tmp_path / "a" / "checkpoints" / "final.pt", weights_only=False)
    wb = torch.load(tmp_path / "b" / "checkpoints" / "final.pt", weights_only=False)
    for part in ("model", "value_head"):
        assert all(torch.equal(wa[part][k], wb[part][k]) for k in wa[part])
    train(_cfg("epochs=3", "n_trials=128", "batch_size=32", "record.schedule=all", "lr=0.01", seed=1),
          tmp_path / "c", progress=False)
    assert not np.array_equal(open_activations(tmp_path / "a").hidden.values[-1],
                              open_activations(tmp_path / "c").hidden.values[-1])


def test_rt_agent_run_records_and_analyzes(tmp_path):
    cfg = _cfg("epochs=1", "n_trials=64", "batch_size=32", "env.timing={fixation = 20, targets = 20, stimulus = 120}",
               "n_per_condition=1",
               task="color-direction-rt")
    train(cfg, tmp_path / "rt", progress=False)
    ds = open_activations(tmp_path / "rt")
    assert ds.attrs["algorithm"] == "a2c" and "reaction_time" in ds and ds.time.values[0] < 0
    paths = analyze_run(tmp_path / "rt", folds=3, progress=False, time_stride=2)
    info = xr.load_dataset(paths[0])
    assert set(info.variable.values) >= {"color", "direction", "target_config"}


def test_agent_config_rules(tmp_path):
    with pytest.raises(ConfigError, match="agent.algorithm must be one of"):
        _cfg("agent.algorithm=ppo")
    with pytest.raises(ConfigError, match=r"agent.gamma must be in \(0, 1\]"):
        _cfg("gamma=1.5")
    with pytest.raises(ConfigError, match="agent training needs an env with vectorized trials"):
        train(load_config("color-direction-static", overrides=["agent.algorithm=a2c"]), tmp_path / "a", progress=False)
    raw = read_preset("color-direction-rl")
    raw["model"] = {"kind": "mlp", "hidden_sizes": [4]}
    with pytest.raises(ConfigError, match="agents need a recurrent model"):
        train(from_dict(raw), tmp_path / "b", progress=False)


def test_probe_trials_are_the_conditions_the_task_declares():
    from decisionnets.envs import ColorDirection, ColorDirectionRT

    rt = a2c.probe_trials(ColorDirectionRT(), 2, np.random.default_rng(0))
    pairs = list(zip(rt.labels["coherence"].tolist(), rt.labels["target_config"].tolist()))
    assert len(pairs) == 14 * 2 * 2 and all(pairs.count(p) == 2 for p in set(pairs))
    assert rt.period.shape == rt.targets.shape  # each trial with its periods, as play_trials takes them
    catch = a2c.probe_trials(ColorDirection(catch_prob=0.2), 1, np.random.default_rng(0))
    assert catch.labels["catch"].tolist() == [0] * 28 + [1, 1]  # the catch conditions the env declares
