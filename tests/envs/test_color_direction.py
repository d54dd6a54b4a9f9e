import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import decisionnets.envs  # noqa: F401  (registers the envs)
from decisionnets.envs import COHERENCES, ColorDirection, ColorDirectionStatic, sample_color_direction
from decisionnets.errors import ConfigError

ENV_IDS = ["decisionnets/ColorDirection-v0", "decisionnets/ColorDirectionStatic-v0"]


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env(env_id):
    env = gymnasium.make(env_id).unwrapped
    check_env(env, skip_render_check=True)


def _rollout(env, seed, n_steps=120):
    ob, _ = env.reset(seed=seed)
    obs, trials = [ob], [dict(env.trial)]
    for _ in range(n_steps):
        ob, _, _, _, info = env.step(0)
        obs.append(ob)
        if info.get("new_trial"):
            trials.append(dict(info["trial"]))
    return np.array(obs), trials


@pytest.mark.parametrize("cls", [ColorDirection, ColorDirectionStatic])
def test_reset_seed_makes_trials_reproducible(cls):
    a = _rollout(cls(), seed=7)
    b = _rollout(cls(), seed=7)
    c = _rollout(cls(), seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]
    assert not np.array_equal(a[0], c[0])


def test_reset_seed_reseeds_a_used_env():
    env = ColorDirection()
    first = _rollout(env, seed=3)
    _rollout(env, seed=99)
    again = _rollout(env, seed=3)
    np.testing.assert_array_equal(first[0], again[0])


def _grid():
    coh = np.repeat(COHERENCES, 2)
    tconf = np.tile([0, 1], len(COHERENCES))
    return coh, tconf


def test_labels_for_every_condition():
    coh, tconf = _grid()
    b = sample_color_direction(len(coh), np.random.default_rng(0), coherence=coh, target_config=tconf,
                               fixed_timing=True, sigma=0.0)
    lab = b.labels
    np.testing.assert_array_equal(lab["coherence"], coh)
    np.testing.assert_array_equal(lab["color"], (coh < 0).astype(int))  # 0 red dominant, 1 green
    np.testing.assert_array_equal(lab["target_config"], tconf)
    # XOR rule, spelled out: red dominant and red target right -> right, etc.
    for i in range(len(coh)):
        red_dominant = coh[i] > 0
        red_on_right = tconf[i] == 1
        expected = "right" if red_dominant == red_on_right else "left"
        assert ["left", "right"][lab["direction"][i]] == expected
    # inputs agree with the labels: target colors, signed coherence without noise
    last = b.inputs[-1]
    np.testing.assert_array_equal(last[:, 1], np.where(tconf == 0, 1.0, -1.0))
    np.testing.assert_array_equal(last[:, 2], -last[:, 1])
    np.testing.assert_allclose(last[:, 3], coh, rtol=1e-6)
    np.testing.assert_allclose(last[:, 4], -coh, rtol=1e-6)
    # targets: direction + 1 in the decision period, fixation (0) before
    dec = b.period[:, 0] == "decision"
    np.testing.assert_array_equal(b.targets[dec], np.broadcast_to(lab["direction"] + 1, (dec.sum(), len(coh))))
    assert (b.targets[~dec] == 0).all()


def test_periods_mask_and_padding_with_random_delays():
    b = sample_color_direction(200, np.random.default_rng(1))
    T = b.inputs.shape[0]
    # every trial ends on the last step with its decision period; padding is at the start
    assert (b.period[-1] == "decision").all()
    np.testing.assert_array_equal(b.mask, (b.period == "decision").astype(np.float32))
    pad = b.period == ""
    assert (b.inputs[pad] == 0).all()
    lengths = (~pad).sum(0)
    assert lengths.min() < lengths.max() <= T  # the checkerboard onset delay varies
    # the board is off before the stimulus period, the fixation cue off in the decision period
    assert (b.inputs[..., 3][(b.period == "targets") | (b.period == "fixation")] == 0).all()
    assert (b.inputs[..., 0][b.period == "decision"] == 0).all()


def test_catch_trials_have_no_board_and_fixation_target():
    b = sample_color_direction(300, np.random.default_rng(2), catch_prob=0.5)
    catch = b.labels["catch"] == 1
    assert 0 < catch.sum() < 300
    assert (b.inputs[:, catch, 3:] == 0).all()
    assert (b.targets[:, catch] == 0).all()
    assert (b.labels["coherence"][catch] == 0).all()


def test_noise_scale_follows_sigma_over_sqrt_dt():
    b = sample_color_direction(4000, np.random.default_rng(3), sigma=4.0, dt=20, coherence=0.6,
                               fixed_timing=True)
    on = b.period[:, 0] == "stimulus"
    resid = b.inputs[on, :, 3] - 0.6
    assert abs(resid.std() - 4.0 / np.sqrt(20)) < 0.01


@pytest.mark.parametrize("kwargs", [{"sigma": -1}, {"dt": 0}, {"catch_prob": 1.5}, {"coherences": [0.0, 0.5]},
                                    {"timing": {"delay": 100}}, {"timing": {"targets": "long"}},
                                    {"response": "middle"}])
def test_bad_parameters_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        ColorDirection(**kwargs)


def test_static_variant_is_one_step():
    env = ColorDirectionStatic(sigma=0.0)
    b = env.sample(6, np.random.default_rng(0), coherence=0.2, target_config=[0, 1, 0, 1, 0, 1])
    assert b.inputs.shape == (1, 6, 4)
    np.testing.assert_array_equal(b.targets[0], b.labels["direction"])
    np.testing.assert_allclose(b.inputs[0, :, 2], 0.2, rtol=1e-6)


def test_report_color_trains_on_the_dominant_color():
    from decisionnets.build import make_task

    b = sample_color_direction(50, np.random.default_rng(0), report="color")
    np.testing.assert_array_equal(b.targets[-1], b.labels["color"] + 1)
    task = make_task("ColorDirectionStatic", {"report": "color"}, n_per_condition=1)
    assert task.target_label == "color"
    s = task.train_set(20, np.random.default_rng(0))
    np.testing.assert_array_equal(s.targets[0], s.labels["color"])
    with pytest.raises(ConfigError, match="report must be one of direction, color"):
        ColorDirection(report="size")


def _to_decision(env, seed):
    """Reset ``env`` and hold fixation up to the first decision step; returns the trial's decision steps."""
    env.reset(seed=seed)
    while not env.in_period("decision"):
        _, r, _, _, info = env.step(0)
        assert r == 0 and not info["new_trial"]
    return env.end_ind["decision"] - env.start_ind["decision"]


def test_response_first_ends_the_trial_at_the_first_reach():
    env = ColorDirection()
    assert env.response == "first"  # the default
    _to_decision(env, seed=3)
    _, r, _, _, info = env.step(3 - env.gt_now)  # the wrong target, at the first decision step
    assert info["new_trial"] and r == 0.0 and info["performance"] == 0


def test_response_last_counts_the_target_held_at_the_end_of_the_window():
    env = ColorDirection(response="last")
    n = _to_decision(env, seed=3)
    assert n == 5  # 100 ms at dt 20
    for _ in range(n - 1):  # reaching to the wrong target early in the window neither ends nor counts
        _, r, _, _, info = env.step(3 - env.gt_now)
        assert r == 0 and not info["new_trial"]
    _, r, _, _, info = env.step(env.gt_now)  # the correct target at the last step: the choice
    assert info["new_trial"] and r == 1.0 and info["performance"] == 1
    n = _to_decision(env, seed=4)
    for _ in range(n - 1):
        env.step(env.gt_now)
    _, r, _, _, info = env.step(3 - env.gt_now)  # a change of mind to the wrong target: wrong
    assert info["new_trial"] and r == 0.0 and info["performance"] == 0
    n = _to_decision(env, seed=5)
    for _ in range(n):  # fixating at the end is no choice
        _, r, _, _, info = env.step(0)
    assert info["new_trial"] and r == 0.0 and info["performance"] == 0


@pytest.mark.parametrize("name", ["ColorDirection", "ColorDirectionStatic", "ColorDirectionRT"])
@pytest.mark.parametrize("action", [-1, "n", 1.5, None])
def test_invalid_actions_are_refused(name, action):
    import decisionnets.envs as envs

    env = getattr(envs, name)()
    env.reset(seed=0)
    bad = env.action_space.n if action == "n" else action
    with pytest.raises(ValueError, match="not in the action space"):
        env.step(bad)
    for ok in (0, np.int64(env.action_space.n - 1)):  # valid actions (python and numpy ints) still step
        env.step(ok)
