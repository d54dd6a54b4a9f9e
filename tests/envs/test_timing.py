"""envs.timing: one parser of period durations for every env."""

import numpy as np
import pytest

from decisionnets.envs.timing import draw_ms, fixed_timing, typical_ms
from decisionnets.errors import ConfigError


class TruncExp:  # the attributes of neurogym's TruncExp
    vmean, vmin, vmax = 700.0, 100.0, 500.0


@pytest.mark.parametrize("spec,typical", [
    (300, 300), (("uniform", (100, 300)), 200.0), (("choice", [100, 200, 600]), 200.0), ([100, 200, 600], 200.0),
    (("constant", 50), 50), (("truncated_exponential", [700, 100, 500]), 500.0), (TruncExp(), 500.0),
])
def test_typical_duration_of_every_form(spec, typical):
    assert typical_ms(spec) == typical


def test_draws_are_seeded_and_in_range():
    a = draw_ms(("uniform", (100, 300)), np.random.default_rng(0), 50)
    np.testing.assert_array_equal(a, draw_ms(("uniform", (100, 300)), np.random.default_rng(0), 50))
    assert ((a >= 100) & (a < 300)).all()
    assert set(draw_ms(("choice", [100, 200]), np.random.default_rng(1), 40)) == {100.0, 200.0}
    np.testing.assert_array_equal(draw_ms(("uniform", (100, 300)), None, 3), [200.0] * 3)


def test_fixed_timing_rounds_down_to_dt_and_bad_specs_name_the_period():
    assert fixed_timing({"a": ("uniform", (100, 350)), "b": 90}, 20) == {"a": 220.0, "b": 80}
    with pytest.raises(ConfigError, match=r"timing\['stim'\] must be a duration in ms.*got 'long'"):
        typical_ms("long", "stim")
    with pytest.raises(ConfigError, match="drawn by neurogym"):
        draw_ms(TruncExp(), np.random.default_rng(0), 2, "delay")
