import numpy as np
import pytest
import xarray as xr

from decisionnets.decoding import decoding_scores
from decisionnets.envs import ColorDirection
from decisionnets.envs.color_direction_ideal import ceiling_for_env, color_direction_ceiling
from decisionnets.build import make_task


def test_ceiling_limits_and_monotonic_in_noise():
    coh = [-0.5, 0.5]
    assert color_direction_ceiling(coh, 0.0, 1)["information"] == 1.0
    far = color_direction_ceiling(coh, 1e-3, 1)
    assert far["accuracy"] > 0.999 and far["information"] > 0.999
    infos = [color_direction_ceiling(coh, s, 10)["information"] for s in (0.5, 1.0, 2.0, 4.0)]
    assert all(a > b for a, b in zip(infos, infos[1:]))
    # two symmetric coherences: accuracy is Phi(c / v)
    from math import erf, sqrt

    v = 1.0 / sqrt(2 * 10)
    assert abs(color_direction_ceiling(coh, 1.0, 10)["accuracy"] - 0.5 * (1 + erf(0.5 / v / sqrt(2)))) < 1e-6


def test_ceiling_matches_a_monte_carlo_ideal_observer():
    env = ColorDirection()
    b = env.sample(100_000, np.random.default_rng(0), fixed_timing=True)
    board = (b.period[:, 0] == "stimulus") | (b.period[:, 0] == "decision")
    m = ((b.inputs[board, :, 3] - b.inputs[board, :, 4]) / 2).mean(0)
    acc_mc = np.mean((m < 0) == (b.labels["color"] == 1))  # MAP = sign of m (symmetric prior)
    assert abs(acc_mc - ceiling_for_env(env)["accuracy"]) < 0.004  # MC s.e. ~ 0.001


def test_color_information_on_the_inputs_reaches_the_ceiling():
    """Sanity check of decoder + task: the probe set's inputs hold the Bayes amount of color information.

    Features: the time-averaged red and green channels over the board period (sufficient) and the
    target colors. The linear probe is a logistic model, slightly misspecified for a mixture of
    coherences, and is estimated from 2,800 trials, so it may fall a little short of the ceiling.
    """
    task = make_task("ColorDirection", {}, n_per_condition=100)
    p = task.probe_set(np.random.default_rng(0))
    board = (p.period == "stimulus") | (p.period == "decision")
    X = np.concatenate([p.inputs[board][:, :, 3:].mean(0), p.inputs[-1][:, 1:3]], axis=1)
    ds = decoding_scores(xr.DataArray(X, dims=("trial", "unit")),
                         {"color": xr.DataArray(p.labels["color"], dims="trial")})
    ceiling = ceiling_for_env(task.env)
    assert abs(float(ds.information[0]) - ceiling["information"]) < 0.04  # measured: 0.652 vs 0.676 bits
    assert abs(float(ds.decoding_accuracy[0]) - ceiling["accuracy"]) < 0.015  # measured: 0.888 vs 0.897


def test_ceiling_of_a_gymnasium_made_env_is_that_of_the_unwrapped_env():
    import gymnasium

    import decisionnets.envs  # noqa: F401  (registers the envs)

    made = gymnasium.make("decisionnets/ColorDirection-v0")
    assert made is not made.unwrapped  # wrapped (order enforcing, env checker)
    got = ceiling_for_env(made)["information"]
    assert abs(got - 0.676) < 0.001 and got == ceiling_for_env(ColorDirection())["information"]


def test_ceiling_attrs_name_each_label_and_are_empty_for_unknown_envs():
    import json

    from decisionnets.build import ceilings_from_attrs
    from decisionnets.task import ceiling_attrs

    attrs = ceiling_attrs(make_task("ColorDirection", {}))
    c = json.loads(attrs["ceiling"])
    assert c["color"] == c["direction"] == pytest.approx(0.676, abs=1e-3) and c["target_config"] == 1.0
    assert ceilings_from_attrs(attrs) == c
    assert ceiling_attrs(make_task("PerceptualDecisionMaking", {})) == {}
    with pytest.raises(TypeError, match="no ideal observer"):
        ceiling_for_env(make_task("PerceptualDecisionMaking", {}).env)
