"""The two-stage recurrent model: shapes, recorded layers, step API, batching, seeding, training."""

import numpy as np
import pytest
import torch
import xarray as xr

from decisionnets.config import load_config
from decisionnets.errors import ConfigError
from decisionnets.io import open_activations
from decisionnets.models import build_model
from decisionnets.models.two_stage import TwoStageRNN
from decisionnets.training import train

TINY = ["model.hidden_size=6", "model.stage2_size=5", "epochs=2", "n_trials=128", "batch_size=16",
        "n_per_condition=1", "lr=0.5", "record.schedule=\"all\"",
        "env.timing={fixation = 40, targets = 100, stimulus = 100, decision = 60}"]


def _cfg(*extra, seed=0):
    return load_config("two-stage-rnn", overrides=[*TINY, *extra], seed=seed)


@pytest.mark.parametrize("stage2", ["rnn", "mlp"])
def test_shapes_layers_and_the_readout_sees_stage2_only(stage2):
    torch.manual_seed(0)
    m = TwoStageRNN(4, 3, hidden_size=6, stage2_size=5, stage2=stage2).eval()
    x = torch.randn(7, 2, 4)
    logits, act = m(x)
    assert logits.shape == (7, 2, 3)
    assert set(act) == {"stage1", "stage2"}  # the default layers
    assert act["stage1"].shape == (7, 2, 6) and act["stage2"].shape == (7, 2, 5)
    torch.testing.assert_close(m.readout(act["stage2"]), logits)
    hidden = m(x, layers=("hidden",))[1]["hidden"]
    torch.testing.assert_close(hidden, torch.cat([act["stage1"], act["stage2"]], -1))
    assert m.hidden_size == 11 and m(x, layers=())[1] == {}
    # stage 2 is driven by stage 1's rates of the same step, nothing else
    from decisionnets.models.rnn import leaky_rates

    with torch.no_grad():
        drive = m.w_12(act["stage1"])
        want = (torch.tanh(drive) if stage2 == "mlp"
                else leaky_rates(m.alpha * drive, m.alpha * m.w_rec2.weight.t(), torch.tanh, m.alpha))
    torch.testing.assert_close(act["stage2"], want)


@pytest.mark.parametrize("stage2,kw", [("rnn", {}), ("mlp", {}), ("rnn", {"activation": "softplus", "noise": 0.3})])
def test_step_equals_forward(stage2, kw):
    g = torch.Generator().manual_seed(3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model("two_stage_rnn", 4, 3, hidden_size=7, stage2_size=5, stage2=stage2, **kw).eval()
    x = torch.randn(11, 9, 4, generator=g)
    with torch.no_grad():
        logits, act = model(x, layers=("stage1", "stage2", "hidden"))
        state = model.initial_state(9)
        steps, per = [], {k: [] for k in act}
        for t in range(x.shape[0]):
            lt, state, a = model.step(x[t], state)
            steps.append(lt)
            for k in per:
                per[k].append(a[k])
    torch.testing.assert_close(torch.stack(steps), logits, rtol=1e-5, atol=1e-6)
    for k in per:
        torch.testing.assert_close(torch.stack(per[k]), act[k], rtol=1e-5, atol=1e-6)


def test_forward_batches_over_stacked_members_with_torch_func():
    """Members' parameters stacked and the solo forward vmapped give each member's own forward."""
    from torch.func import functional_call, stack_module_state, vmap

    members = []
    for s in range(3):
        torch.manual_seed(s)
        members.append(TwoStageRNN(4, 3, hidden_size=6, stage2_size=5).eval())
    params, buffers = stack_module_state(members)
    x = torch.randn(8, 2, 4)

    def solo(p, b):
        return functional_call(members[0], (p, b), (x,))[0]

    batched = vmap(solo)(params, buffers)
    assert batched.shape == (3, 8, 2, 3)
    for k, m in enumerate(members):
        torch.testing.assert_close(batched[k], m(x)[0], rtol=1e-5, atol=1e-6)


def test_same_seed_same_activations_and_training_lowers_the_loss(tmp_path):
    train(_cfg(), tmp_path / "a", progress=False)
    train(_cfg(), tmp_path / "b", progress=False)
    train(_cfg("epochs=1", seed=1), tmp_path / "c", progress=False)
    a, b, c = (open_activations(tmp_path / r).load() for r in "abc")
    xr.testing.assert_identical(a, b)
    assert not np.array_equal(a["stage1"].values[:2], c["stage1"].values)  # another seed, another network
    assert a["stage1"].dims == ("epoch", "trial", "time", "stage1_unit")
    assert a["stage2"].dims == ("epoch", "trial", "time", "stage2_unit")
    assert a.sizes["stage1_unit"] == 6 and a.sizes["stage2_unit"] == 5 and "hidden" not in a
    loss = a["loss"].values
    assert np.isfinite(loss).all() and loss[-1] < loss[0], loss


def test_analyze_decodes_each_stage_as_a_layer(tmp_path):
    from decisionnets.report import analyze_run

    train(_cfg("epochs=1", "n_per_condition=3", "record.time_stride=4"), tmp_path / "r", progress=False)
    paths = analyze_run(tmp_path / "r", variables=["color", "direction"], folds=3, progress=False, figures=False)
    info = xr.load_dataset(paths[0])
    assert list(info["layer"].values) == ["stage1", "stage2"]
    assert np.isfinite(info["information"].sel(layer="stage2").values).any()


def test_bad_parameters_name_the_rule():
    with pytest.raises(ConfigError, match="stage2 must be one of rnn, mlp; got 'gru'"):
        build_model("two_stage_rnn", 4, 3, stage2="gru")
    with pytest.raises(ConfigError, match="stage2_size must be an integer >= 1; got 0"):
        build_model("two_stage_rnn", 4, 3, stage2_size=0)
    with pytest.raises(ConfigError, match="no layer"):
        TwoStageRNN(4, 3, hidden_size=3)(torch.zeros(2, 1, 4), layers=("area1",))


@pytest.mark.parametrize("name,n,grid", [("two-stage-rnn-wd", 6, {0.0, 2e-2}), ("two-stage-mlp-wd", 6, {0.0, 2e-2}),
                                         ("agent-wd", 9, {0.0, 1e-3, 1e-2})])
def test_sweep_presets_plan_seeds_x_weight_decay(name, n, grid, tmp_path):
    import json

    from decisionnets import sweep

    pts = sweep.plan(sweep.load_spec(name), tmp_path)
    cfgs = [json.loads(p.config_json) for p in pts]
    assert len(pts) == n
    assert {c["train"]["weight_decay"] for c in cfgs} == grid
    assert {c["seed"] for c in cfgs} == {0, 1, 2}
    if name.startswith("two-stage"):
        assert {c["model"]["kind"] for c in cfgs} == {"two_stage_rnn"}
        assert {c["model"]["stage2"] for c in cfgs} == {"mlp" if "mlp" in name else "rnn"}


def test_trains_on_one_thread_like_the_other_small_recurrent_models():
    from decisionnets.threads import job_for_model

    assert job_for_model("two_stage_rnn") == "small"
