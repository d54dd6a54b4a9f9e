"""Every registered neurogym env id either trains and analyzes by name or is refused up front, with
one line that says why; the docs table (docs/guide/neurogym_envs.rst) is generated from the same check."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from decisionnets.build import make_task
from decisionnets.config import load_config
from decisionnets.envs.neurogym_envs import check_env_id, registered_ids
from decisionnets.errors import ConfigError
from decisionnets.report import analyze_run
from decisionnets.training import train

IDS = registered_ids()
ROOT = Path(__file__).resolve().parents[2]
#: The envs refused with the preset's settings, and the words their reason must hold.
REFUSED = {
    "AnnubesEnv-v0": "missing 2 required positional arguments",   # needs session and catch_prob
    "Bandit-v0": "no per-trial observation and ground-truth arrays",
    "DawTwoStep-v0": "no per-trial observation and ground-truth arrays",
    "EconomicDecisionMaking-v0": "no per-trial observation and ground-truth arrays",
    "Null-v0": "no per-trial observation and ground-truth arrays",
    "Reaching1D-v0": "ground truth is not one action index",
    "Reaching1DWithSelfDistraction-v0": "ground truth is not one action index",
    "ReachingDelayResponse-v0": "actions are continuous",
    "SpatialSuppressMotion-v0": "actions are continuous",
    "ToneDetection-v0": "dt=100 must be smaller",                   # works with env.dt=50
}


def test_every_registered_id_is_checked():
    assert len(IDS) == 52  # neurogym 2.3.1: 30 native envs, 2 perceptualdecisionmaking.*, 20 yang19.*
    assert sum(i.startswith("yang19.") for i in IDS) == 20


@pytest.mark.parametrize("env_id", IDS)
def test_env_id_builds_or_is_refused_with_one_line(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = check_env_id(env_id)
    if env_id in REFUSED:
        assert r["outcome"] == "refused"
        assert REFUSED[env_id] in r["reason"] and env_id in r["reason"] and "\n" not in r["reason"]
    else:
        assert r["outcome"] == "works", r["reason"]
        assert r["missing"] == 0  # every probe trial's answer is a class (fixation included), none -1


@pytest.mark.parametrize("env_id", ["GoNogo-v0", "DelayPairedAssociation-v0", "yang19.dms-v0"])
def test_fixation_is_its_own_class(env_id):
    """Keeping fixation is the correct answer on some trials: a class of its own (the last), not 'missing'."""
    task = make_task(f"neurogym:{env_id}", {"dt": 100}, n_per_condition=8)
    assert task.choice_actions[-1] == 0  # the fixation action, last: `choice` can be "fixate" too
    gt = task.probe_set(np.random.default_rng(0)).labels["ground_truth"]
    assert gt.min() >= 0 and len(task.choice_actions) - 1 in set(gt.tolist())


def test_go_nogo_answers_match_the_env():
    """The recoded class of each GoNogo trial is what the env asks for in its decision period."""
    task = make_task("neurogym:GoNogo-v0", {"dt": 100}, n_per_condition=8)
    b = task.sample(40, np.random.default_rng(3))
    last = b.targets[-1]  # the decision period ends every trial
    assert np.array_equal(np.array(task.choice_actions)[b.labels["ground_truth"]], last)
    assert set(last.tolist()) == {0, 1}


def test_refusal_is_a_config_error_up_front():
    with pytest.raises(ConfigError, match="cannot be trained by decisionnets: its actions are continuous"):
        make_task("neurogym:SpatialSuppressMotion-v0", {"dt": 100})


def test_lambda_timing_and_collection_ids_build():
    """ReadySetGo's lambda `measure` is fixed at the median of its draws; yang19 factories take **kwargs."""
    task = make_task("neurogym:ReadySetGo-v0", {"dt": 100}, n_per_condition=1)
    assert task.probe_timing()["measure"] % 100 == 0 and 800 <= task.probe_timing()["measure"] <= 1500
    task = make_task("neurogym:yang19.dm1-v0", {"dt": 100, "sigma": 0.5}, n_per_condition=1)
    assert task.env.unwrapped.sigma > 0


def test_docs_table_is_current():
    spec = importlib.util.spec_from_file_location("neurogym_table", ROOT / "analysis" / "neurogym_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    text = (ROOT / "docs" / "guide" / "neurogym_envs.rst").read_text()
    assert mod.table() in text, "run: python analysis/neurogym_table.py"


TINY = ["epochs=1", "n_trials=32", "batch_size=16", "model.hidden_size=8", "record.schedule=all",
        "n_per_condition=4"]


@pytest.mark.slow
@pytest.mark.parametrize("env_id", [i for i in IDS if i not in REFUSED])
def test_env_id_trains_and_analyzes(tmp_path, env_id):
    cfg = load_config("neurogym", overrides=[f"env.name=neurogym:{env_id}", *TINY], seed=1)
    assert train(cfg, tmp_path / "run", progress=False)["status"] == "completed"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths = analyze_run(tmp_path / "run", folds=3, time_stride=10**6, progress=False, figures=False)
    info = xr.load_dataset(paths[0])
    gt = info["information"].sel(variable="ground_truth")
    flags = info["unreliable"].sel(variable="ground_truth")
    # a number, or NaN that is flagged (one class on the probe set), never an unflagged NaN
    assert (np.isfinite(gt) | (flags & 1 != 0)).all()


@pytest.mark.slow
def test_go_nogo_ground_truth_is_decoded_after_training(tmp_path):
    """GoNogo's answer (go / keep fixating) is information, not a 'missing' class: > 0.5 bits in the
    decision period once the network performs the task (measured: 0.99 bits, probe accuracy 1.0)."""
    cfg = load_config("neurogym", overrides=["env.name=neurogym:GoNogo-v0", "epochs=3", "n_trials=256",
                                             "batch_size=16", "model.hidden_size=16", "n_per_condition=24",
                                             "record.schedule=all"], seed=0)
    train(cfg, tmp_path / "run", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths = analyze_run(tmp_path / "run", folds=5, progress=False, figures=False, periods=["decision"])
    info = xr.load_dataset(paths[0])
    gt = info["period_information"].sel(variable="ground_truth", period="decision", layer="hidden")
    assert float(gt.isel(epoch=-1)) > 0.5 and int(info["unreliable"].sel(variable="ground_truth").max()) == 0
    assert float(info["probe_accuracy"].isel(epoch=-1)) > 0.9 > float(info["probe_accuracy"].isel(epoch=0))
