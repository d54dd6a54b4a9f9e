"""AnalysisConfig: one set of analysis options from keywords, a TOML table and CLI flags."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest

from decisionnets.analysis_config import RENAMED, AnalysisConfig, add_cli_arguments, options_table
from decisionnets.errors import ConfigError, UserError

TOML = """
[analysis]
variables = ["color", "direction"]
decoder = ["linear", "linear-raw"]
folds = 3
seed = 7
dtype = "float64"
epochs = [0, 2, 4, 6]
epoch_stride = 2
time_stride = 2
layers = ["hidden"]
periods = ["decision", "stimulus"]
cross_temporal_epoch = 6
exclude_catch = false
bins = { sample_theta = 4 }
analyses = ["information", "geometry"]
figures = false
"""

FLAGS = ["run", "--variables", "color", "direction", "--decoder", "linear", "linear-raw", "--folds", "3",
         "--seed", "7", "--dtype", "float64", "--epochs", "0", "2", "4", "6", "--epoch-stride", "2",
         "--time-stride", "2", "--layers", "hidden", "--periods", "decision", "stimulus",
         "--cross-temporal-epoch", "6", "--no-exclude-catch", "--bins", "sample_theta=4",
         "--analyses", "information", "geometry", "--no-figures"]

KWARGS = dict(variables=["color", "direction"], decoder=["linear", "linear-raw"], folds=3, seed=7, dtype="float64",
              epochs=[0, 2, 4, 6], epoch_stride=2, time_stride=2, layers=["hidden"], periods=["decision", "stimulus"],
              cross_temporal_epoch=6, exclude_catch=False, bins={"sample_theta": 4},
              analyses=["information", "geometry"], figures=False)


def _cli(argv):
    from decisionnets.cli import _parser

    return _parser().parse_args(["analyze", *argv])


def test_cli_table_and_keywords_give_equal_configs():
    from decisionnets.config import read_toml

    from_table = AnalysisConfig.from_table(read_toml(TOML, "test")["analysis"])
    from_cli = AnalysisConfig.from_cli(_cli(FLAGS))
    from_kwargs = AnalysisConfig(**KWARGS)
    assert from_table == from_cli == from_kwargs
    assert from_kwargs != AnalysisConfig()  # every option above differs from its default
    assert all(getattr(from_kwargs, f.name) != f.default for f in dataclasses.fields(AnalysisConfig)
               if f.name != "device")
    assert AnalysisConfig.from_table(from_kwargs.to_table()) == from_kwargs  # the table round-trips
    assert pickle.loads(pickle.dumps(from_kwargs)) == from_kwargs  # travels to Dask workers


def test_no_flags_and_an_empty_table_give_the_defaults():
    assert AnalysisConfig.from_cli(_cli(["run"])) == AnalysisConfig.from_table({}) == AnalysisConfig()
    d = AnalysisConfig()
    assert (d.decoder, d.folds, d.dtype, d.layers, d.periods, d.figures) == (("linear",), 5, "float32", None, None, True)


def test_every_option_has_one_flag_and_one_table_row():
    import argparse

    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    dests = {a.dest for a in parser._actions} - {"help"}
    assert dests == {f.name for f in dataclasses.fields(AnalysisConfig)}
    table = options_table()
    assert all(f"``{f.name}``" in table for f in dataclasses.fields(AnalysisConfig))


def test_frozen_and_normalized():
    c = AnalysisConfig(decoder="mlp", layers=[], variables="color", bins={"b": 3, "a": 2})
    assert c.decoder == ("mlp",) and c.layers is None and c.variables == ("color",)
    assert c.bins == (("a", 2), ("b", 3)) and c.label_bins == {"a": 2, "b": 3}
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.folds = 3
    assert c.replace(folds=3).folds == 3 and c.folds == 5


@pytest.mark.parametrize("key, value, message", [
    ("folds", 2, "folds must be an integer >= 3; got 2"),
    ("folds", True, "folds must be an integer >= 3; got True"),
    ("time_stride", 0, "time_stride must be an integer >= 1; got 0"),
    ("epoch_stride", 1.5, "epoch_stride must be an integer >= 1; got 1.5"),
    ("dtype", "float16", "dtype must be one of float32, float64; got 'float16'"),
    ("device", "gpu", "device must be 'cpu', 'cuda' or 'cuda:N'; got 'gpu'"),
    ("decoder", "svm", "decoder must name decoder families (linear, "),
    ("decoder", [], "decoder must be a decoder family or a non-empty list"),
    ("decoder", ["linear", "linear"], "decoder must not repeat a family"),
    ("epochs", [0, -1], "epochs must be a list of integers >= 0"),
    ("layers", "", "layers must be a list of names"),
    ("bins", {"x": 1}, "bins must map label names to integers >= 2; got 'x' = 1"),
    ("analyses", ["pca"], "analyses must name analyses (information, selectivity"),
    ("figures", "yes", "figures must be true or false; got 'yes'"),
])
def test_each_rule_names_the_option_and_the_value(key, value, message):
    with pytest.raises(ConfigError) as kw:
        AnalysisConfig(**{key: value})
    assert message in str(kw.value)
    with pytest.raises(ConfigError) as tab:
        AnalysisConfig.from_table({key: value}, where="sweep.analysis")
    assert str(tab.value).startswith(f"sweep.analysis.{key} ") and message in str(tab.value)
    assert isinstance(kw.value, UserError)  # the CLI's exit 2


def test_unknown_and_renamed_table_keys_are_refused_with_advice():
    with pytest.raises(ConfigError, match="unknown key sweep.analysis.fold; valid: variables, decoder, folds"):
        AnalysisConfig.from_table({"fold": 3}, where="sweep.analysis")
    for key in RENAMED:
        with pytest.raises(ConfigError, match=rf"sweep.analysis.{key} was replaced by"):
            AnalysisConfig.from_table({key: "x"}, where="sweep.analysis")
    with pytest.raises(ConfigError, match="unknown analysis option 'standardise'"):
        AnalysisConfig().replace(standardise=False)
    with pytest.raises(ConfigError, match="'standardize' was replaced by the decoder name: decoder = \"linear-raw\""):
        AnalysisConfig().replace(standardize=False)  # analyze_run(..., standardize=False) of earlier versions


def test_flags_are_named_in_cli_errors():
    with pytest.raises(ConfigError, match="^--time-stride must be an integer >= 1; got 0$"):
        AnalysisConfig.from_cli(_cli(["run", "--time-stride", "0"]))
    with pytest.raises(ConfigError, match="--bins takes VAR=K"):
        AnalysisConfig.from_cli(_cli(["run", "--bins", "theta"]))


def test_select_epochs_keeps_first_and_last_of_every_kth():
    rec = [0, 1, 2, 3, 4, 5, 6]
    assert AnalysisConfig().select_epochs(rec) is None  # every recorded epoch
    assert AnalysisConfig(epoch_stride=3).select_epochs(rec) == [0, 3, 6]
    assert AnalysisConfig(epoch_stride=4).select_epochs(rec) == [0, 4, 6]
    assert AnalysisConfig(epochs=[1, 2, 5], epoch_stride=2).select_epochs(rec) == [1, 5]
    with pytest.raises(ConfigError, match=r"epochs \[9\] were not recorded"):
        AnalysisConfig(epochs=[9]).select_epochs(rec)


def test_sweep_defaults_differ_from_analyze_only_where_declared():
    from decisionnets.sweep import ANALYSIS_DEFAULTS, SWEEP_ANALYSIS

    diff = {f.name for f in dataclasses.fields(AnalysisConfig)
            if getattr(SWEEP_ANALYSIS, f.name) != getattr(AnalysisConfig(), f.name)}
    assert diff == {"periods", "figures"}
    assert ANALYSIS_DEFAULTS == SWEEP_ANALYSIS.to_table()


def test_the_options_table_of_the_docs_is_current():
    page = (Path(__file__).resolve().parents[1] / "docs" / "guide" / "analysis_options.rst").read_text()
    assert options_table() in page, "regenerate: python -c 'from decisionnets.analysis_config import options_table; " \
                                    "print(options_table())'"
