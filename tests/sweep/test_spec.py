"""decisionnets.sweep.spec: sweep presets, the validation of a spec's tables, unknown names."""

import pytest

from decisionnets import sweep
from decisionnets.config import preset_names
from decisionnets.errors import ConfigError


def test_sweep_presets_are_listed():
    names = preset_names("sweep")
    for n in ("sgd-regimes", "early-perturbation", "sgd-regimes-quick", "early-perturbation-quick",
              "paper-signatures", "explore-architecture", "explore-fc", "explore-arc", "signature-arc"):
        assert n in names
        sp = sweep.load_spec(n)
        assert len(sweep.plan(sp, "/nonexistent/sweeps")) >= 4

@pytest.mark.parametrize("table, match", [
    ({"seeds": []}, "seeds"),
    ({"grid": {"train.lr": 0.1}}, "non-empty list"),
    ({"axes": {"k": [{"phases": []}]}}, "value"),
    ({"bogus": 1}, "unknown key sweep.bogus"),
    ({"set": {"train.nope": 1}}, "nope"),
    ({"analysis": {"folds": 1}}, "folds"),
])
def test_bad_specs_raise_one_line_config_errors(tmp_path, table, match, sweep_spec):
    with pytest.raises(ConfigError, match=match) as e:
        sweep.plan(sweep_spec(**table), tmp_path)
    assert "\n" not in str(e.value)


def test_unknown_spec_name_and_missing_file():
    with pytest.raises(ConfigError, match="unknown sweep"):
        sweep.load_spec("no-such-sweep")
    with pytest.raises(ConfigError, match="not found"):
        sweep.load_spec("nowhere/spec.toml")
