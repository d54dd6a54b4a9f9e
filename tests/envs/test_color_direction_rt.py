import functools

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import decisionnets.envs  # noqa: F401  (registers the envs)
from decisionnets.envs import COHERENCES, ColorDirection, ColorDirectionRT, sample_color_direction_rt
from decisionnets.errors import ConfigError


@pytest.mark.filterwarnings("ignore")
def test_check_env():
    check_env(gymnasium.make("decisionnets/ColorDirectionRT-v0").unwrapped, skip_render_check=True)


def _play(env, seed, policy, n_steps=300):
    """Step the env with ``policy(ob, t_in_trial)``; return observations, rewards, trial dicts."""
    ob, _ = env.reset(seed=seed)
    obs, rewards, trials, t = [ob], [], [dict(env.trial)], 0
    for _ in range(n_steps):
        ob, r, _, _, info = env.step(policy(ob, t))
        obs.append(ob)
        rewards.append(r)
        t += 1
        if info.get("new_trial"):
            trials.append(dict(info["trial"]))
            t = 0
    return np.array(obs), np.array(rewards), trials


def test_reset_seed_makes_trials_reproducible():
    hold = lambda ob, t: 0  # noqa: E731
    a, b, c = (_play(ColorDirectionRT(), s, hold) for s in (5, 5, 6))
    np.testing.assert_array_equal(a[0], b[0])
    assert a[2] == b[2]
    assert not np.array_equal(a[0], c[0])
    # never reaching: every trial is a miss (reward 0) and lasts the whole window
    assert set(a[1]) == {0.0} and len(a[2]) > 3


def test_rewards_abort_correct_fail_miss():
    env = ColorDirectionRT(sigma=0.0, timing={"fixation": 40, "targets": 40, "stimulus": 100},
                           rewards={"miss": -0.5})
    env.reset(seed=0)
    # breaking fixation before onset ends the trial with the abort penalty
    _, r, _, _, info = env.step(1)
    assert info["new_trial"] and r == pytest.approx(-0.1)
    # hold through fixation and targets (4 steps of 20 ms), then reach correctly: reward 1
    for _ in range(4):
        _, r, _, _, info = env.step(0)
        assert r == 0 and not info["new_trial"]
    gt = env.gt_now
    assert gt in (1, 2)
    _, r, _, _, info = env.step(gt)
    assert info["new_trial"] and r == 1.0 and info["performance"] == 1
    for _ in range(4):
        env.step(0)
    _, r, _, _, info = env.step(3 - env.gt_now)  # the wrong target
    assert info["new_trial"] and r == 0.0
    rs = []  # no reach: a miss after the 100 ms window (5 steps)
    for _ in range(9):
        _, r, _, _, info = env.step(0)
        rs.append(r)
    assert info["new_trial"] and rs[-1] == -0.5 and sum(rs) == -0.5


@pytest.mark.parametrize("cls", [ColorDirection, ColorDirectionRT, functools.partial(ColorDirection, response="last")])
def test_batch_step_follows_the_env_rules(cls):
    """The vectorized rule gives the same rewards and trial ends as stepping the env itself."""
    rng = np.random.default_rng(1)
    for trial in range(30):
        env = cls()
        env.reset(seed=trial)
        env.t = env.t_ind = 0  # replay the current trial from its first step
        T = len(env.ob)
        periods = np.full(T, "", dtype=object)
        for p in env.timing:
            periods[env.start_ind[p]:env.end_ind[p]] = p
        actions = rng.choice(3, size=T, p=[0.9, 0.05, 0.05])
        for t in range(T):
            gt = env.gt_now
            _, r, _, _, info = env.step(int(actions[t]))
            rb, done, _ = env.batch_step(np.array([periods[t]]), np.array([gt]), actions[t:t + 1],
                                         np.array([t == T - 1]))
            assert rb[0] == pytest.approx(r) and bool(done[0]) == bool(info["new_trial"]), (trial, t)
            if info["new_trial"]:
                break


def test_sample_is_vectorized_seeded_and_labelled():
    a = sample_color_direction_rt(64, np.random.default_rng(0))
    b = sample_color_direction_rt(64, np.random.default_rng(0))
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.labels["direction"], a.labels["color"] ^ a.labels["target_config"])
    assert set(np.unique(a.period)) == {"", "fixation", "targets", "stimulus"}
    stim = a.period == "stimulus"
    # the fixation cue goes off at onset (the go signal); the answer is asked over the whole window
    assert (a.inputs[..., 0][stim] == 0).all() and (a.inputs[..., 0][(a.period == "fixation")] == 1).all()
    np.testing.assert_array_equal(a.mask, stim)
    np.testing.assert_array_equal(a.targets[-1], a.labels["direction"] + 1)
    assert (stim.sum(0) == 50).all()  # 1000 ms at dt = 20
    g = sample_color_direction_rt(28, np.random.default_rng(0), coherence=np.repeat(COHERENCES, 2),
                                  target_config=np.tile([0, 1], 14), fixed_timing=True)
    assert (g.period[:, 0] == g.period[:, -1]).all()


def test_bad_parameters_name_the_rule():
    with pytest.raises(ConfigError, match="unknown period 'decision'"):
        ColorDirectionRT(timing={"decision": 100})
    with pytest.raises(ConfigError, match="unknown key 'bonus'"):
        ColorDirectionRT(rewards={"bonus": 1})
    with pytest.raises(ConfigError, match="maximum decision time"):
        ColorDirectionRT(timing={"stimulus": 0})
