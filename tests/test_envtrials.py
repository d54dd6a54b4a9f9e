"""decisionnets.probe_trials: a user's own Gymnasium env with per-trial labels as a trial source."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

import decisionnets as dn
from decisionnets.errors import UserError


class Blink(gymnasium.Env):
    """A cue (+1 / -1 for side 1 / 0) at the first step, then a variable delay; the label is in reset's info."""

    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.side = int(self.np_random.integers(2))
        self.length = int(self.np_random.integers(2, 5))
        self.t = 0
        return np.array([2.0 * self.side - 1, 1.0], np.float32), {"side": self.side, "gt": self.side}

    def step(self, action):
        self.t += 1
        done = self.t >= self.length
        info = {"gt": self.side, "late": 10 + self.side}
        return np.array([0.0, 1.0], np.float32), float(action == self.side), done, False, info


def test_own_env_trials_are_aligned_labelled_and_seeded():
    env = Blink()
    b = dn.probe_trials(env, 12, seed=3)
    lengths = b.mask.sum(0).astype(int)
    assert b.inputs.shape == (lengths.max(), 12, 2) and set(lengths) <= {2, 3, 4}
    first = b.n_time - lengths  # the cue is each trial's first step; trials end on the last step
    cue = b.inputs[first, np.arange(12), 0]
    np.testing.assert_array_equal(cue, 2.0 * b.labels["side"] - 1)
    assert (b.inputs[: first.min()][b.mask[: first.min()] == 0] == 0).all()  # zero padding at the start
    np.testing.assert_array_equal(b.targets[-1], b.labels["side"])
    assert list(b.labels) == ["side", "gt"]
    again = dn.probe_trials(Blink(), 12, seed=3)
    np.testing.assert_array_equal(again.inputs, b.inputs)
    other = dn.probe_trials(Blink(), 12, seed=4)
    assert not np.array_equal(other.labels["side"], b.labels["side"])


def test_labels_from_the_last_step_and_a_missing_label():
    b = dn.probe_trials(Blink(), 5, seed=0, label_keys=["side", "late"])
    np.testing.assert_array_equal(b.labels["late"], 10 + b.labels["side"])
    with pytest.raises(UserError, match=r"trial 0 has no label 'color'; the env gives: gt, late, side"):
        dn.probe_trials(Blink(), 2, seed=0, label_keys=["color"])
    with pytest.raises(UserError, match="n_trials must be an integer >= 1"):
        dn.probe_trials(Blink(), 0, seed=0)


def test_neurogym_style_env_labels_from_its_trial():
    env = gymnasium.make("decisionnets/ColorDirection-v0")
    b = dn.probe_trials(env, 8, seed=1, label_keys=["color", "direction", "target_config"])
    np.testing.assert_array_equal(b.labels["direction"], b.labels["color"] ^ b.labels["target_config"])
    np.testing.assert_array_equal(b.targets[-1], 1 + b.labels["direction"])  # the reach at the last step
    assert b.dt == 20.0
