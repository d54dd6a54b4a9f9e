"""The env factory (decisionnets.envs.factory): an env from its config name, with clear errors."""

import pytest

from decisionnets.envs.color_direction import ColorDirection
from decisionnets.envs.factory import make_env, make_env_class
from decisionnets.errors import ConfigError


def test_decisionnets_names_resolve_to_their_classes_and_build():
    assert make_env_class("ColorDirection") is ColorDirection
    env = make_env("ColorDirection", {"dt": 50, "sigma": 0.3})
    assert isinstance(env, ColorDirection) and env.dt == 50 and env.sigma == 0.3


def test_neurogym_short_name_prefix_and_bare_id_are_the_same_class():
    a = make_env_class("PerceptualDecisionMaking")
    assert make_env_class("neurogym:PerceptualDecisionMaking-v0") is a
    assert make_env_class("PerceptualDecisionMaking-v0") is a


def test_unknown_name_lists_the_valid_ones_and_the_extra_names():
    with pytest.raises(ConfigError, match=r"unknown env 'NoSuchEnv'; valid: .*ColorDirection.*digits"):
        make_env_class("NoSuchEnv", other_names=("digits",))


@pytest.mark.parametrize("dt", [0, -5, float("inf"), "abc", True])
def test_a_bad_dt_is_refused_with_its_value(dt):
    with pytest.raises(ConfigError, match=r"env.dt must be a positive number of ms; got"):
        make_env("ColorDirection", {"dt": dt})


def test_an_unknown_parameter_is_refused_with_the_valid_ones():
    with pytest.raises(ConfigError, match=r"env ColorDirection has no parameter 'colour'; valid: .*sigma"):
        make_env("ColorDirection", {"colour": 1})


class _NoDt:
    """An env whose constructor has no ``dt`` (its time step is fixed)."""

    def __init__(self, sigma=1.0):
        self.dt = 20
        self.sigma = sigma


def test_env_without_dt_parameter_takes_the_presets_dt_only_when_it_is_its_own(monkeypatch):
    import gymnasium

    monkeypatch.setitem(gymnasium.registry, "NoDtTest-v0", gymnasium.envs.registration.EnvSpec(
        "NoDtTest-v0", entry_point=_NoDt))
    assert make_env("NoDtTest-v0", {"dt": 20, "sigma": 2.0}).sigma == 2.0
    with pytest.raises(ConfigError, match="has no parameter 'dt': its time step is fixed at 20 ms, not 100; set env.dt=20"):
        make_env("NoDtTest-v0", {"dt": 100})
