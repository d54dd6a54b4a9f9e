"""Any neurogym env trains and analyzes by name, declared by envs/neurogym_envs.py alone."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from decisionnets.build import make_task
from decisionnets.config import load_config
from decisionnets.envs.neurogym_envs import NeurogymTask
from decisionnets.report import analyze_run
from decisionnets.training import train

TINY = ["epochs=1", "n_trials=64", "batch_size=16", "model.hidden_size=8", "record.schedule=all"]


@pytest.mark.parametrize("name,n_per_condition", [
    ("PerceptualDecisionMaking", 3),              # a short name, with a declared condition grid
    # declared grid and default labels; its probe grid and 6 variables make it ~1 min: slow suite
    pytest.param("neurogym:ContextDecisionMaking-v0", 1, marks=pytest.mark.slow),
    ("neurogym:DelayMatchSample-v0", 6),           # nothing declared: random conditions
    ("neurogym:GoNogo-v0", 8),
])
def test_neurogym_env_trains_and_analyzes_by_name(tmp_path, name, n_per_condition):
    cfg = load_config("neurogym", overrides=[f"env.name={name}", f"n_per_condition={n_per_condition}", *TINY], seed=1)
    status = train(cfg, tmp_path / "run", progress=False)
    assert status["status"] == "completed"
    task = make_task(name, {"dt": 100}, n_per_condition=n_per_condition)
    paths = analyze_run(tmp_path / "run", folds=3, time_stride=2, progress=False)
    info = xr.load_dataset(paths[0])
    assert [str(v) for v in info["variable"].values] == [*task.decode_labels, "choice"]
    if "ContextDecisionMaking" in name:  # the variables of Mante et al.'s task, declared with the env
        assert task.decode_labels == ("context", "coh_1", "coh_2", "other_choice", "ground_truth")
    assert info["information"].dims == ("layer", "variable", "epoch", "time")
    assert info.sizes["epoch"] == 2 and np.isfinite(info["information"].sel(variable="ground_truth")).all()
    assert "error_information" not in info and "p_right" not in info  # the checkerboard's analyses only
    timed = {p for p, ms in task.probe_timing().items() if ms > 0}  # periods of the probe trials
    found = set(map(str, info["period_information"]["period"].values))  # (time_stride 2 may skip a 1-step one)
    assert found <= timed and "decision" in found
    assert (tmp_path / "run" / "figures" / "information_vs_epoch.png").is_file()


def test_context_decision_making_declares_mantes_variables():
    """Mante et al.'s task decodes context and what each modality alone would dictate, by default."""
    task = make_task("neurogym:ContextDecisionMaking-v0", {"dt": 100}, n_per_condition=1)
    assert task.decode_labels == ("context", "coh_1", "coh_2", "other_choice", "ground_truth")
    assert task.target_label == "ground_truth"


def test_generic_source_labels_are_the_trial_dict_scalars():
    from decisionnets.envs import make_env

    src = NeurogymTask(make_env("neurogym:DelayMatchSample-v0", {}), {})
    assert src.label_names == ("ground_truth", "sample_theta", "test_theta")
    b = src.sample(5, np.random.default_rng(0))
    assert set(b.labels) == set(src.label_names) and b.period.shape == b.targets.shape
    assert set(np.unique(b.labels["ground_truth"])) <= {0, 1}  # index among the choice actions (match, non-match)
