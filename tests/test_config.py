import pytest

from decisionnets.config import apply_override, config_from_json, load_config, parse_value, preset_names
from decisionnets.errors import ConfigError


def test_presets_listed_and_loadable():
    names = preset_names()
    for required in ["color-direction", "color-direction-static", "perceptual-dm", "context-dm"]:
        assert required in names
    for name in names:
        cfg = load_config(name)
        assert cfg.task == name and cfg.description


def test_overrides_bare_dotted_and_parsed():
    cfg = load_config("color-direction", overrides=["lr=0.2", "train.batch_size=64", "model.hidden_size=16",
                                                    "sigma=2.5", "seed=4"])
    assert cfg.train.lr == 0.2 and cfg.train.batch_size == 64 and cfg.seed == 4
    assert cfg.model["hidden_size"] == 16 and cfg.env["sigma"] == 2.5
    assert parse_value("[1, 2]") == [1, 2] and parse_value("relu") == "relu" and parse_value("true") is True


def test_config_is_immutable_and_round_trips_json():
    cfg = load_config("color-direction")
    with pytest.raises(Exception):
        cfg.train.lr = 1.0
    with pytest.raises(TypeError):
        cfg.env["sigma"] = 1.0
    assert config_from_json(cfg.to_json()) == cfg


@pytest.mark.parametrize("assignment,match", [
    ("lrr=0.1", "unknown config key 'lrr'"),
    ("lr=-0.1", "train.lr must be > 0; got -0.1"),
    ("batch_size=0", "train.batch_size must be >= 1; got 0"),
    ("batch_size=2.5", "train.batch_size must be int; got 2.5"),
    ("epochs=true", "train.epochs must be int"),
    ("momentum=1.5", "momentum must be in"),
    ("val_fraction=1", "val_fraction must be in"),
    ("schedule=weekly", "record.schedule must be"),
    ("n_per_condition=0", "n_per_condition must be >= 1"),
    ("foo.bar=1", "unknown config section 'foo' in 'foo.bar'; valid: env, model, train, record, agent, analysis"),
    ("device=tpu", "device must be cpu or cuda"),
])
def test_bad_overrides_name_the_rule(assignment, match):
    with pytest.raises(ConfigError, match=match):
        load_config("color-direction", overrides=[assignment])


def test_phases_from_config_file(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('base = "color-direction-static"\n[train]\nepochs = 8\n'
                 '[[train.phases]]\nepochs = 3\nlr = 0.005\nbatch_size = 512\n')
    cfg = load_config(config_file=f)
    assert config_from_json(cfg.to_json()) == cfg  # unset phase fields survive the round trip
    assert cfg.env["name"] == "ColorDirectionStatic"
    assert cfg.train.phases[0].epochs == 3 and cfg.train.phases[0].batch_size == 512
    f.write_text('base = "color-direction-static"\n[train]\nepochs = 2\n[[train.phases]]\nepochs = 3\n')
    with pytest.raises(ConfigError, match="phases cover 3 epochs"):
        load_config(config_file=f)


def test_unknown_task_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown task 'nope'; valid: .*color-direction"):
        load_config("nope")
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(config_file=tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nlr = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(config_file=bad)


def test_ambiguous_bare_key_is_refused():
    raw = {"env": {"name": "ColorDirection"}, "model": {"kind": "leaky_rnn"}}
    with pytest.raises(ConfigError, match="ambiguous"):
        apply_override(raw, "dt=10")  # both the env and the leaky RNN take dt


def test_set_value_takes_python_values_as_set_takes_toml_text():
    from decisionnets.config import from_dict, merge, raw_config, read_toml, set_value

    raw, task = raw_config("color-direction-static")
    assert task == "color-direction-static" and "base" not in raw
    for key, value, text in (("lr", 0.1, "0.1"), ("model.hidden_sizes", [8, 8], "[8, 8]"),
                             ("env.timing", {"stimulus": 100}, "{stimulus = 100}"), ("seed", 3, "3")):
        assert set_value(raw, key, value) == apply_override(raw, f"{key}={text}")
    phased = set_value(raw, "train.phases", [{"epochs": 1, "lr": 0.5}])  # --set refuses phases; Python may set them
    assert from_dict(phased).train.phases[0].lr == 0.5
    with pytest.raises(ConfigError, match="phases cannot be set with --set"):
        apply_override(raw, "train.phases=[]")
    assert merge({"train": {"lr": 1, "epochs": 2}}, {"train": {"lr": 3}}) == {"train": {"lr": 3, "epochs": 2}}
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_toml("a = ", "spec x")


# --- a preset's [analysis] table ------------------------------------------------------------------
#: run_identity of color-direction-static's config.json, computed before presets took an [analysis]
#: table: a config without one must keep its JSON (and with it its run identity and checkpoint hash).
STATIC_IDENTITY = "9e390a15c984555b"


def test_a_preset_without_analysis_keeps_its_config_json_and_identity():
    from decisionnets.io import run_identity

    cfg = load_config("color-direction-static")
    assert "analysis" not in cfg.to_dict()
    assert run_identity(cfg.to_json()) == STATIC_IDENTITY


def test_an_empty_analysis_table_is_not_carried(tmp_path):
    from decisionnets.io import run_identity

    f = tmp_path / "c.toml"
    f.write_text('base = "color-direction-static"\n[analysis]\n')
    cfg = load_config(config_file=f)
    assert dict(cfg.analysis) == {} and "analysis" not in cfg.to_dict()
    assert run_identity(cfg.to_json()) == STATIC_IDENTITY


def test_analysis_table_is_checked_carried_and_read_back(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('base = "color-direction-static"\n[analysis]\nfolds = 3\nvariables = ["color"]\ndecoder = "linear-raw"\n')
    cfg = load_config(config_file=f)
    assert cfg.to_dict()["analysis"] == {"folds": 3, "variables": ["color"], "decoder": "linear-raw"}
    back = config_from_json(cfg.to_json())
    assert back == cfg
    a = back.analysis_config
    assert (a.folds, a.variables, a.decoder_names, a.time_stride) == (3, ("color",), ["linear-raw"], 1)


@pytest.mark.parametrize("table, match", [
    ("folds = 1", r"analysis\.folds must be an integer >= 3; got 1"),
    ("bogus = 1", r"unknown key analysis\.bogus"),
    ("layer = \"hidden\"", r"analysis\.layer was replaced by layers"),
    ("dtype = \"float16\"", r"analysis\.dtype must be one of float32, float64; got 'float16'"),
])
def test_a_bad_analysis_table_is_refused_when_the_config_loads(tmp_path, table, match):
    f = tmp_path / "c.toml"
    f.write_text(f'base = "color-direction-static"\n[analysis]\n{table}\n')
    with pytest.raises(ConfigError, match=match):
        load_config(config_file=f)


def test_set_changes_the_analysis_table_key_by_key():
    base = load_config("color-direction-static-wd")
    cfg = load_config("color-direction-static-wd", overrides=["analysis.folds=3", 'analysis.decoder=["linear", "mlp"]'])
    a = cfg.analysis_config
    assert (a.folds, a.decoder_names) == (3, ["linear", "mlp"])
    # the preset's other keys stay
    assert (a.variables, a.epoch_stride) == (base.analysis_config.variables, base.analysis_config.epoch_stride)
    assert config_from_json(cfg.to_json()) == cfg
    with pytest.raises(ConfigError, match=r"analysis\.folds must be an integer >= 3; got 2"):
        load_config("color-direction-static", overrides=["analysis.folds=2"])
    with pytest.raises(ConfigError, match=r"unknown key analysis\.bogus; valid: variables, decoder"):
        load_config("color-direction-static", overrides=["analysis.bogus=1"])


def test_the_demo_preset_declares_its_analysis():
    a = load_config("color-direction-static-wd").analysis_config
    assert a.variables == ("color", "direction", "target_config") and a.epoch_stride == 3
