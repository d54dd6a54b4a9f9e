import numpy as np
import pytest

from decisionnets.errors import ConfigError
from decisionnets.trials import EnvTask, TrialBatch, condition_grid


def test_condition_grid_is_balanced():
    g = condition_grid({"a": [0, 1], "b": [5, 6, 7]}, 3)
    assert len(g["a"]) == 18
    pairs = list(zip(g["a"], g["b"]))
    assert all(pairs.count(p) == 3 for p in set(pairs)) and len(set(pairs)) == 6


def test_color_direction_batch_shapes_and_mask():
    task = EnvTask("ColorDirection", {}, n_per_condition=2)
    b = task.train_set(50, np.random.default_rng(0))
    T, n, f = b.inputs.shape
    assert (n, f) == (50, 5) and b.inputs.dtype == np.float32
    assert b.targets.shape == b.mask.shape == (T, n)
    assert b.period is None  # random onset delays: no common timing
    assert b.mask.sum(0).tolist() == [5.0] * 50  # 100 ms decision period at dt = 20 ms
    np.testing.assert_array_equal(b.response_step(), T - 1)


def test_probe_set_is_fixed_timing_balanced_and_seeded():
    task = EnvTask("ColorDirection", {}, n_per_condition=3)
    p = task.probe_set(np.random.default_rng(5))
    assert p.n_trials == 14 * 2 * 3
    assert p.period is not None and p.period[-1] == "decision"
    combos = list(zip(p.labels["coherence"], p.labels["target_config"]))
    assert len(set(combos)) == 28 and all(combos.count(c) == 3 for c in set(combos))
    again = task.probe_set(np.random.default_rng(5))
    np.testing.assert_array_equal(p.inputs, again.inputs)
    other = task.probe_set(np.random.default_rng(6))
    assert not np.array_equal(p.inputs, other.inputs)


def test_probe_set_with_catch_trials():
    task = EnvTask("ColorDirection", {"catch_prob": 0.1}, n_per_condition=2)
    p = task.probe_set(np.random.default_rng(0))
    assert p.labels["catch"].sum() == 4
    assert (p.targets[:, p.labels["catch"] == 1] == 0).all()


@pytest.mark.parametrize("env,label", [("PerceptualDecisionMaking", "coh"), ("ContextDecisionMaking", "context")])
def test_neurogym_envs_expose_their_trial_variables(env, label):
    task = EnvTask(env, {}, n_per_condition=1)
    b = task.train_set(20, np.random.default_rng(0))
    assert label in b.labels and "ground_truth" in b.labels
    assert set(np.unique(b.labels["ground_truth"])) <= {0, 1}
    # the target action in the decision period is the ground-truth choice
    last = b.targets[-1]
    np.testing.assert_array_equal(last, np.asarray(task.choice_actions)[b.labels["ground_truth"]])
    p = task.probe_set(np.random.default_rng(1))
    assert p.period is not None and p.period[-1] == "decision"
    again = task.probe_set(np.random.default_rng(1))
    np.testing.assert_array_equal(p.inputs, again.inputs)


def test_unknown_env_and_parameter():
    with pytest.raises(ConfigError, match="unknown env 'Nope'.*ColorDirection"):
        EnvTask("Nope", {})
    with pytest.raises(ConfigError, match="no parameter 'sigmaa'.*sigma"):
        EnvTask("ColorDirection", {"sigmaa": 1})


def test_trial_batch_validates_shapes():
    with pytest.raises(ValueError, match="targets must have shape"):
        TrialBatch(np.zeros((3, 2, 1), np.float32), np.zeros((3, 3), np.int64), np.zeros((3, 2), np.float32))
