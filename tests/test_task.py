"""The task protocol (decisionnets.task): every task declares itself in its env's file; EnvTask makes the batches."""

import json

import gymnasium
import numpy as np
import pytest
import xarray as xr

from decisionnets.analyses import Analysis
from decisionnets.build import make_task
from decisionnets.errors import ConfigError
from decisionnets.build import ceilings_from_attrs
from decisionnets.task import EnvTask, Task, ceiling_attrs, choice_actions, declaration_attrs
from decisionnets.trials import SampledTrials

ENVS = ["ColorDirection", "ColorDirectionStatic", "ColorDirectionRT", "PerceptualDecisionMaking",
        "ContextDecisionMaking", "neurogym:DelayMatchSample-v0", "GoNogo-v0"]


def test_color_direction_batch_shapes_and_mask():
    task = make_task("ColorDirection", {}, n_per_condition=2)
    b = task.train_set(50, np.random.default_rng(0))
    T, n, f = b.inputs.shape
    assert (n, f) == (50, 5) and b.inputs.dtype == np.float32
    assert b.targets.shape == b.mask.shape == (T, n)
    assert b.period is None  # random onset delays: no common timing
    assert b.mask.sum(0).tolist() == [5.0] * 50  # 100 ms decision period at dt = 20 ms
    np.testing.assert_array_equal(b.response_step(), T - 1)


def test_probe_set_is_fixed_timing_balanced_and_seeded():
    task = make_task("ColorDirection", {}, n_per_condition=3)
    p = task.probe_set(np.random.default_rng(5))
    assert p.n_trials == 14 * 2 * 3
    assert p.period is not None and p.period[-1] == "decision"
    combos = list(zip(p.labels["coherence"], p.labels["target_config"]))
    assert len(set(combos)) == 28 and all(combos.count(c) == 3 for c in set(combos))
    again = task.probe_set(np.random.default_rng(5))
    np.testing.assert_array_equal(p.inputs, again.inputs)
    other = task.probe_set(np.random.default_rng(6))
    assert not np.array_equal(p.inputs, other.inputs)


def test_probe_set_with_catch_trials():
    task = make_task("ColorDirection", {"catch_prob": 0.1}, n_per_condition=2)
    p = task.probe_set(np.random.default_rng(0))
    assert p.labels["catch"].sum() == 4
    assert (p.targets[:, p.labels["catch"] == 1] == 0).all()


@pytest.mark.parametrize("env,label", [("PerceptualDecisionMaking", "coh"), ("ContextDecisionMaking", "context")])
def test_neurogym_envs_expose_their_trial_variables(env, label):
    task = make_task(env, {}, n_per_condition=1)
    b = task.train_set(20, np.random.default_rng(0))
    assert label in b.labels and "ground_truth" in b.labels
    assert set(np.unique(b.labels["ground_truth"])) <= {0, 1}
    # the target action in the decision period is the ground-truth choice
    last = b.targets[-1]
    np.testing.assert_array_equal(last, np.asarray(task.choice_actions)[b.labels["ground_truth"]])
    p = task.probe_set(np.random.default_rng(1))
    assert p.period is not None and p.period[-1] == "decision"
    again = task.probe_set(np.random.default_rng(1))
    np.testing.assert_array_equal(p.inputs, again.inputs)


def test_unknown_env_and_parameter():
    with pytest.raises(ConfigError, match="unknown env 'Nope'.*ColorDirection"):
        make_task("Nope", {})
    with pytest.raises(ConfigError, match="no parameter 'sigmaa'.*sigma"):
        make_task("ColorDirection", {"sigmaa": 1})


@pytest.mark.parametrize("env", ENVS)
def test_every_env_task_implements_the_protocol(env):
    task = make_task(env, {}, n_per_condition=1)
    assert isinstance(task, Task)
    p = task.probe_set(np.random.default_rng(0))
    assert set(task.decode_labels) <= set(p.labels) and task.target_label in p.labels
    assert set(p.labels) <= set(task.label_names)
    assert p.n_trials == len(task.probe_conditions())
    assert p.period is not None and set(p.period) <= set(task.periods)
    assert task.has_time == (p.n_time > 1)
    if task.has_time:  # the probe's periods last what the task declares
        timing = task.probe_timing()
        for name in task.periods:
            assert np.sum(p.period == name) == pytest.approx(timing[name] / task.dt), name
    else:
        assert task.probe_timing() is None and task.dt is None
    attrs = declaration_attrs(task)
    assert json.loads(attrs["decode_labels"]) == list(task.decode_labels) and attrs["target"] == task.target_label


def test_the_checkerboard_declares_its_science():
    task = make_task("ColorDirection", {}, n_per_condition=1)
    assert task.decode_labels == ("color", "direction", "target_config")
    assert [a.name for a in task.analyses] == ["choice_vs_direction", "psychometric"]  # declared in its own file
    assert json.loads(declaration_attrs(task)["analyses"]) == ["choice_vs_direction", "psychometric"]
    assert task.target_label == "direction"
    assert make_task("ColorDirectionStatic", {"report": "color"}, n_per_condition=1).target_label == "color"


def test_context_decision_making_decodes_its_context_and_modalities():
    task = make_task("ContextDecisionMaking", {}, n_per_condition=1)
    assert task.decode_labels == ("context", "coh_1", "coh_2", "other_choice", "ground_truth")
    assert task.target_label == "ground_truth" and task.analyses == ()
    e = task.env  # conditions: context x ground_truth x other_choice x coh_1 x coh_2
    assert len(task.probe_conditions()) == len(e.contexts) * len(e.choices) ** 2 * len(e.cohs) ** 2


def test_any_neurogym_env_by_id_with_or_without_prefix():
    a = make_task("neurogym:GoNogo-v0", {}, n_per_condition=2)
    b = make_task("GoNogo-v0", {}, n_per_condition=2)
    pa, pb = a.probe_set(np.random.default_rng(3)), b.probe_set(np.random.default_rng(3))
    np.testing.assert_array_equal(pa.inputs, pb.inputs)
    assert a.decode_labels == ("ground_truth",) and a.periods == ("fixation", "stimulus", "delay", "decision")
    with pytest.raises(ConfigError, match="unknown env 'neurogym:Nope-v0'"):
        make_task("neurogym:Nope-v0", {})


# --- a new env: one file that declares its task (here inline), found by one lookup -----------------
class Blink(gymnasium.Env):
    """A light on the left or the right for one step, then report its side (0 fixate, 1 left, 2 right)."""

    has_time = True
    periods = ("stimulus", "decision")
    dt = 10.0
    observation_space = gymnasium.spaces.Box(-1, 1, (2,), np.float32)
    action_space = gymnasium.spaces.Discrete(3)

    def sample(self, n, rng, fixed_timing=False, **fixed):
        side = np.asarray(fixed["side"]) if "side" in fixed else rng.integers(0, 2, n)
        x = np.zeros((2, n, 2), np.float32)
        x[0, np.arange(n), side] = 1
        targets = np.stack([np.zeros(n, np.int64), side + 1])
        period = np.array([["stimulus"] * n, ["decision"] * n])
        return SampledTrials(x, targets, np.array([[0.0] * n, [1.0] * n], np.float32), period, {"side": side})


class BlinkTask(EnvTask):
    label_names = decode_labels = ("side",)
    target_label = "side"
    periods = ("stimulus", "decision")

    def probe_conditions(self):
        return [{"side": 0}, {"side": 1}]

    def ceiling(self):
        return {"side": 1.0}


Blink.task_class = BlinkTask


@pytest.fixture
def blink_id():
    gymnasium.register(id="decisionnets-test/Blink-v0", entry_point=Blink)
    yield "decisionnets-test/Blink-v0"
    del gymnasium.registry["decisionnets-test/Blink-v0"]


def test_a_new_env_declares_its_task_in_its_own_file(blink_id):
    task = make_task(blink_id, {}, n_per_condition=3)
    assert type(task) is BlinkTask and isinstance(task, Task) and task.kind == "trials"
    assert task.choice_actions == [1, 2] and (task.n_inputs, task.n_outputs, task.dt) == (2, 3, 10.0)
    p = task.probe_set(np.random.default_rng(0))
    assert p.labels["side"].tolist() == [0, 0, 0, 1, 1, 1] and p.period.tolist() == ["stimulus", "decision"]
    np.testing.assert_array_equal(p.targets[-1], np.asarray(task.choice_actions)[p.labels["side"]])
    assert task.probe_timing() == {"stimulus": 10.0, "decision": 10.0}
    assert ceiling_attrs(task) == {"ceiling": '{"side": 1.0}'}  # no ideal observer's accuracy declared
    assert json.loads(declaration_attrs(task)["decode_labels"]) == ["side"]


def _side_contrast(job, act):
    """Mean activity on right-side trials minus left-side ones, per epoch (a task's own analysis)."""
    side = job.ds["side"]
    dims = [d for d in act.dims if d != "epoch"]
    gap = act.where(side == 1).mean(dims) - act.where(side == 0).mean(dims)
    return xr.Dataset({"side_contrast": gap})


#: Blink's own analysis, declared by its task as a function with its problem count (it fits none).
SIDE_CONTRAST = Analysis("side_contrast", _side_contrast, lambda job, act: 0, needs=("side",), declared=True)


def test_a_new_env_declares_its_own_analysis_and_analyze_runs_it(tmp_path):
    from decisionnets.analyses import ANALYSES
    from decisionnets.io import FORMAT_VERSION
    from decisionnets.report import analyze_run

    class BlinkWithAnalysis(BlinkTask):
        analyses = (SIDE_CONTRAST,)

    task = BlinkWithAnalysis(Blink(), {}, 12)
    probe = task.probe_set(np.random.default_rng(0))
    side = probe.labels["side"]
    rng = np.random.default_rng(1)
    hidden = rng.standard_normal((2, side.size, 2, 3)).astype(np.float32)
    hidden[1] += 2.0 * side[:, None, None]  # epoch 1: right-side trials are more active
    ds = xr.Dataset({"hidden": (("epoch", "trial", "time", "unit"), hidden),
                     "choice": (("epoch", "trial"), np.stack([side, side]))},
                    coords={"epoch": [0, 1], "time": [0.0, 10.0], "period": ("time", list(probe.period)),
                            "side": ("trial", side)})
    try:
        ds.attrs.update(declaration_attrs(task), format_version=FORMAT_VERSION)  # writes (and registers) the name
        assert json.loads(ds.attrs["analyses"]) == ["side_contrast"] and ANALYSES["side_contrast"] is SIDE_CONTRAST
        ds.to_netcdf(tmp_path / "run.nc")
        analyze_run(tmp_path / "run.nc", folds=3, progress=False, figures=False)
    finally:
        ANALYSES.pop("side_contrast", None)
    info = xr.load_dataset(tmp_path / "run" / "information.nc")
    gap = info["side_contrast"].sel(layer="hidden")
    assert abs(float(gap.sel(epoch=0))) < 0.5 and float(gap.sel(epoch=1)) > 1.5
    assert "p_right" not in info and "error_information" not in info  # the checkerboard's are not Blink's


def test_a_declared_analysis_may_not_take_a_registered_name():
    from decisionnets.analyses import analysis_names
    from decisionnets.errors import UserError

    impostor = Analysis("psychometric", _side_contrast, lambda job, act: 0, declared=True)
    with pytest.raises(UserError, match="another analysis of that name is registered"):
        analysis_names([impostor])
    with pytest.raises(UserError, match="names or Analysis objects; got 3"):
        analysis_names([3])


def test_probe_conditions_must_fix_the_same_variables(blink_id):
    class Uneven(BlinkTask):
        def probe_conditions(self):
            return [{"side": 0}, {}]

    with pytest.raises(ConfigError, match="every probe condition must fix the same trial variables"):
        Uneven(Blink(), {}, 1).probe_set(np.random.default_rng(0))
    with pytest.raises(ConfigError, match="n_per_condition must be an integer >= 1; got 0"):
        BlinkTask(Blink(), {}, 0)


def test_choice_actions_are_read_once_from_the_action_space():
    assert choice_actions(Blink()) == [1, 2]  # no names: every action but the fixation 0
    assert choice_actions(make_task("ColorDirectionStatic").env) == [0, 1]  # declared: action_space.name
    assert make_task("GoNogo-v0", {}, 1).choice_actions == [1, 0]  # neurogym: no-go (fixate) is an answer


def test_ceiling_of_runs_recorded_before_the_ceiling_attribute_comes_from_their_config():
    cfg = {"env": {"name": "ColorDirectionStatic", "sigma": 0.4}}
    got = ceilings_from_attrs({"config": json.dumps(cfg)})
    assert got == make_task("ColorDirectionStatic", {"sigma": 0.4}).ceiling() and got["color"] < 0.676
    assert ceilings_from_attrs({"config": json.dumps({"env": {"name": "PerceptualDecisionMaking"}})}) == {}
    assert ceilings_from_attrs({"ceiling": '{"color": 0.5}'}) == {"color": 0.5}
