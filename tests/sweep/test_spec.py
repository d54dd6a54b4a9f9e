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
    ({"grid": {"analysis.folds": [3, 4]}}, r"sweep\.grid\.analysis\.folds: a sweep analyses all its runs alike"),
    ({"set": {"analysis": {"folds": 3}}}, r"sweep\.set\.analysis: .*\[sweep\.analysis\]"),
    ({"axes": {"k": [{"value": 1, "set": {"analysis.seed": 1}}]}}, r"sweep\.axes\.k\.set\.analysis\.seed"),
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


def test_sweep_analysis_is_read_over_the_base_presets_table(tmp_path):
    """SWEEP_ANALYSIS < the base's [analysis] < [sweep.analysis]."""
    (tmp_path / "base.toml").write_text('base = "color-direction-static"\n[analysis]\nfolds = 4\nseed = 2\n'
                                        'figures = true\n')
    (tmp_path / "s.toml").write_text('[sweep]\nbase = "base.toml"\n[sweep.analysis]\nseed = 7\n')
    a = sweep.load_spec(tmp_path / "s.toml").analysis
    assert (a.folds, a.seed, a.figures, a.periods) == (4, 7, True, ("decision",))
    plain = sweep.parse_spec({"sweep": {"base": "color-direction-static"}}).analysis
    assert plain == sweep.SWEEP_ANALYSIS
    (tmp_path / "base.toml").write_text('base = "color-direction-static"\n[analysis]\nfolds = 2\n')
    with pytest.raises(ConfigError, match=r"base\.toml analysis\.folds must be an integer >= 3; got 2"):
        sweep.load_spec(tmp_path / "s.toml")
