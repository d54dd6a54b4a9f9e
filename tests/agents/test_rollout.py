import numpy as np
import pytest
import torch
import xarray as xr

from decisionnets.agents import as_epoch, rollout
from decisionnets.agents.rollout import start_aligned
from decisionnets.decoding import usable_information
from decisionnets.envs import ColorDirection, ColorDirectionRT
from decisionnets.models import build_model
from decisionnets.report import analyze_run
from decisionnets.envs import make_env


def _model(n_in=5, n_out=3, hold=0.0, seed=0, kind="leaky_rnn", **kw):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        m = build_model(kind, n_in, n_out, hidden_size=8, **kw)
    with torch.no_grad():
        m.readout.bias[0] += hold  # > 0: more likely to hold fixation
    return m


def test_start_aligned_moves_every_trial_to_step_zero():
    b = ColorDirection().sample(6, np.random.default_rng(0))
    a = start_aligned(b)
    for i in range(6):
        on = b.period[:, i] != ""
        L = on.sum()
        assert a["length"][i] == L
        np.testing.assert_array_equal(a["inputs"][:L, i], b.inputs[on, i])
        np.testing.assert_array_equal(a["period"][:L, i], b.period[on, i])
        assert (a["inputs"][L:, i] == 0).all() and a["period"][a["onset"][i], i] == "stimulus"


def test_greedy_rollout_matches_the_network_run_on_the_same_trials():
    """Closed loop = the sequence forward on the same inputs, up to each trial's end."""
    env, m = ColorDirection(), _model(hold=1.0).eval()
    ds = rollout(m, env, 40, seed=3, fixed_timing=True)
    # the same trials, drawn as rollout draws them (its first seed stream)
    trials = env.sample(40, np.random.default_rng(np.random.SeedSequence(3).spawn(2)[0]), fixed_timing=True)
    with torch.no_grad():
        logits, act = m(torch.from_numpy(trials.inputs))
    onset = int(np.argmax(trials.period[:, 0] == "stimulus"))
    h = act["hidden"].numpy().transpose(1, 0, 2)  # (trial, time, unit), fixed timing: same start
    alive = np.isfinite(ds.hidden.values[..., 0])
    np.testing.assert_allclose(ds.hidden.values[alive], h[:, :alive.shape[1]][alive], rtol=1e-5, atol=1e-6)
    assert ds.time.values[onset] == 0 and ds.time.attrs["units"] == "ms"
    # greedy: the reach is the first decision step whose argmax is a choice
    lg = logits.numpy()
    dec = np.flatnonzero(trials.period[:, 0] == "decision")
    for i in range(40):
        go = [t for t in dec if lg[t, i].argmax() != 0]
        if go:
            assert ds.reaction_time.values[i] == (go[0] - onset + 1) * env.dt
            assert ds.choice.values[i] == lg[go[0], i].argmax() - 1
            assert np.isnan(ds.hidden.values[i, go[0] + 1:]).all()
        else:
            assert ds.responded.values[i] == 0 and np.isnan(ds.reaction_time.values[i])


def test_rollout_dataset_contract_and_seeding():
    env = ColorDirectionRT()
    m = _model(hold=4.0)
    ds = rollout(m, env, 60, seed=1, policy="sample")
    assert ds.hidden.dims == ("trial", "time", "unit") and ds.logits.dims == ("trial", "time", "action")
    assert ds.action.dims == ds.reward.dims == ("trial", "time")
    for v in ("choice", "correct", "reaction_time", "color", "direction", "target_config", "coherence"):
        assert ds[v].dims == ("trial",)
    done = np.isnan(ds.hidden.values[..., 0])
    assert (ds.action.values[done] == -1).all() and np.isnan(ds.reward.values[done]).all()
    # the total reward per trial is what the rules give: 1 correct, 0 wrong or miss, -0.1 abort
    total = np.nansum(ds.reward.values, axis=1)
    assert (ds.correct.values == 1).sum() > 5 and (ds.responded.values == 0).sum() > 5
    np.testing.assert_allclose(total[ds.correct.values == 1], 1.0)
    aborted = (ds.responded.values == 0) & (total < 0)
    np.testing.assert_allclose(total[aborted], -0.1)
    assert (np.nan_to_num(ds.reaction_time.values, nan=1.0) > 0).all()  # reaches come after onset
    xr.testing.assert_identical(ds, rollout(m, env, 60, seed=1, policy="sample"))
    assert not ds.identical(rollout(m, env, 60, seed=2, policy="sample"))


def test_align_response_puts_the_reach_at_time_zero():
    ds = rollout(_model(hold=4.0), ColorDirectionRT(), 50, seed=0, policy="sample", align="response")
    resp = ds.responded.values == 1
    assert resp.any()
    assert ds.time.values[-1] == 0
    assert np.isfinite(ds.hidden.values[resp, -1]).all()  # every reach is at the last column
    assert np.isnan(ds.hidden.values[~resp]).all()


def test_rollout_in_a_neurogym_env():
    env = make_env("PerceptualDecisionMaking", {"dt": 100})
    m = _model(env.observation_space.shape[0], env.action_space.n, kind="gru")
    ds = rollout(m, env, 30, seed=0, policy="sample")
    assert ds.sizes["trial"] == 30 and "ground_truth" in ds.coords and "coh" in ds.coords
    assert set(np.unique(ds.ground_truth.values)) <= {0, 1}
    assert set(np.unique(ds.choice.values)) <= {-1, 0, 1}


def test_rollout_round_trips_netcdf_and_analyze(tmp_path):
    env = ColorDirection(sigma=1.0, timing={"fixation": 20, "targets": 20, "stimulus": 100, "decision": 40})
    ds = as_epoch(rollout(_model(hold=1.0), env, 140, seed=0, fixed_timing=True,
                          coherence=np.repeat(env.coherences, 10), target_config=np.tile([0, 1], 70)), epoch=5, step=7)
    path = tmp_path / "rollout.nc"
    ds.to_netcdf(path)
    back = xr.load_dataset(path)
    xr.testing.assert_identical(ds, back)
    # usable_information reads it directly; ended trials (NaN) are dropped per time step
    info = usable_information(back.hidden.isel(epoch=0), back.target_config, folds=3)
    assert info.dims == ("time",) and float(info.max()) > 0.5  # target colours are on screen
    paths = analyze_run(path, folds=3, progress=False, time_stride=2)
    res = xr.load_dataset(paths[0])
    assert paths[0] == tmp_path / "rollout" / "information.nc"
    assert res.information.dims[:3] == ("layer", "variable", "epoch") and res.epoch.values.tolist() == [5]
    assert float(res.information.sel(variable="target_config").max()) > 0.5
    assert any(p.name == "psychometric.png" for p in paths)


def test_bad_arguments_name_the_rule():
    with pytest.raises(Exception, match="policy must be one of"):
        rollout(_model(), ColorDirection(), 5, seed=0, policy="epsilon")
    with pytest.raises(Exception, match="align must be one of"):
        rollout(_model(), ColorDirection(), 5, seed=0, align="end")
    with pytest.raises(Exception, match="no step API"):
        rollout(build_model("mlp", 5, 3, hidden_sizes=[4]), ColorDirection(), 5, seed=0)


def test_a_new_rollout_removes_the_analysis_of_the_one_it_replaces(tmp_path):
    from decisionnets.agents.rollout import clear_stale_outputs

    old = tmp_path / "rollout"
    (old / "figures").mkdir(parents=True)
    for p in (old / "information.nc", old / "figures" / "information_vs_time.png", old / "notes.txt"):
        p.write_text("from the rollout in the previous env")
    gone = clear_stale_outputs(tmp_path / "rollout.nc")
    assert sorted(p.name for p in gone) == ["information.nc", "information_vs_time.png"]
    assert not (old / "information.nc").exists() and (old / "notes.txt").exists()  # only what analyze writes


def test_rollout_draws_the_psychometric_curve_only_for_a_task_that_declares_it(tmp_path, monkeypatch):
    from decisionnets.agents.rollout import rollout_run
    from decisionnets.config import load_config
    from decisionnets.envs.color_direction import CheckerboardTask
    from decisionnets.envs.color_direction_analyses import CHOICE_VS_DIRECTION
    from decisionnets.training import train

    cfg = load_config("color-direction", seed=0, overrides=[
        "model.hidden_size=8", "epochs=1", "n_trials=64", "n_per_condition=1"])
    train(cfg, tmp_path / "run", progress=False)
    paths, summary = rollout_run(tmp_path / "run", n_trials=28, seed=1)
    assert {p.name for p in paths[1:]} == {"closed_loop_psychometric.png", "chronometric.png"}
    assert "corr_abs_coherence_rt_correct" in summary  # the declared evidence: the signed coherence
    # the same env's trials (coherence and all) under a task that does not declare the curve: no figures
    monkeypatch.setattr(CheckerboardTask, "analyses", (CHOICE_VS_DIRECTION,))
    paths, _ = rollout_run(tmp_path / "run", n_trials=28, seed=1, out=tmp_path / "other.nc")
    assert "coherence" in xr.load_dataset(paths[0]).coords and paths[1:] == []
    # nor under one that declares the curve but no evidence to draw the behaviour against
    monkeypatch.undo()
    monkeypatch.setattr(CheckerboardTask, "behaviour_evidence", None)
    paths, summary = rollout_run(tmp_path / "run", n_trials=28, seed=1, out=tmp_path / "third.nc")
    assert paths[1:] == [] and "accuracy" in summary and not any(k.startswith("corr_") for k in summary)
