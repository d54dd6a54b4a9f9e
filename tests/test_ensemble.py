"""Ensembles: every member equals its solo run (to float tolerance), in files, logs and checkpoints.

Tolerance: a batched matmul rounds differently from a single one, so members are not bit-identical
to their solo runs. After these tiny runs (2-3 epochs, tens of SGD steps) the recorded activity and
logits differ by < 1e-6 (measured); the tests allow 1e-5 absolute, losses 1e-5 relative, and
require identical choices, step counts and file layout.
"""

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from decisionnets.config import Phase, load_config
from decisionnets.ensemble import ensemble_key, group_configs, train_ensemble
from decisionnets.errors import UserError
from decisionnets.io import open_activations
from decisionnets.training import train

ATOL = 1e-5
TINY = ["epochs=3", "n_trials=120", "batch_size=16", "model.hidden_sizes=[8, 8]", "n_per_condition=1",
        "schedule=\"all\""]


def _cfg(seed=0, *extra):
    return load_config("color-direction-static", overrides=[*TINY, *extra], seed=seed)


def _with_phase(config, phase):
    return dataclasses.replace(config, train=dataclasses.replace(config.train, phases=(phase,)))


def _members():
    return [
        _cfg(0, "lr=0.05"),
        _cfg(1, "lr=0.2", "weight_decay=0.01"),
        _cfg(2, "lr=0.1", "momentum=0.9", "weight_decay=5e-4"),
        # a phase with its own lr and momentum (same length and batch size as the others' base)
        _with_phase(_cfg(3, "lr=0.05"), Phase(epochs=1, lr=0.5, momentum=0.5)),
        _cfg(0, "lr=0.1", "model.activation=\"relu\"", "grad_clip=0"),  # same seed as member 0, other lr
    ]


def _log(run_dir):
    with open(run_dir / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def assert_member_equals_solo(ens_dir, solo_dir):
    a, b = open_activations(ens_dir).load(), open_activations(solo_dir).load()
    assert list(a.epoch.values) == list(b.epoch.values)
    np.testing.assert_allclose(a.hidden.values, b.hidden.values, rtol=0, atol=ATOL)
    np.testing.assert_allclose(a.logits.values, b.logits.values, rtol=0, atol=ATOL)
    np.testing.assert_array_equal(a.choice.values, b.choice.values)
    np.testing.assert_array_equal(a.step.values, b.step.values)
    np.testing.assert_allclose(a.loss.values, b.loss.values, rtol=1e-5)
    assert a.attrs["config"] == b.attrs["config"] and a.attrs["seed"] == b.attrs["seed"]
    for c in ("color", "direction", "coherence"):
        np.testing.assert_array_equal(a[c].values, b[c].values)  # the member's own probe set
    la, lb = _log(ens_dir), _log(solo_dir)
    assert [r["epoch"] for r in la] == [r["epoch"] for r in lb]
    for ra, rb in zip(la, lb):
        for k in ("step", "lr", "batch_size", "train_accuracy", "val_accuracy", "probe_accuracy", "threads"):
            assert ra[k] == rb[k], (k, ra[k], rb[k])
        for k in ("train_loss", "val_loss", "probe_loss"):
            assert float(ra[k]) == pytest.approx(float(rb[k]), rel=1e-5)
    assert (ens_dir / "config.json").read_text() == (solo_dir / "config.json").read_text()
    sa, sb = (json.loads((d / "status.json").read_text()) for d in (ens_dir, solo_dir))
    assert sa["status"] == sb["status"] == "completed" and (sa["epoch"], sa["step"]) == (sb["epoch"], sb["step"])
    for name in ("last.pt", "final.pt"):
        ca = torch.load(ens_dir / "checkpoints" / name, weights_only=False)
        cb = torch.load(solo_dir / "checkpoints" / name, weights_only=False)
        assert ca.keys() == cb.keys()
        for k, v in cb["model"].items():
            torch.testing.assert_close(ca["model"][k], v, rtol=0, atol=ATOL)
    ca = torch.load(ens_dir / "checkpoints" / "last.pt", weights_only=False)
    cb = torch.load(solo_dir / "checkpoints" / "last.pt", weights_only=False)
    assert ca["optimizer"]["param_groups"] == cb["optimizer"]["param_groups"]
    assert ca["optimizer"]["state"].keys() == cb["optimizer"]["state"].keys()
    for i, st in cb["optimizer"]["state"].items():
        torch.testing.assert_close(ca["optimizer"]["state"][i]["momentum_buffer"], st["momentum_buffer"],
                                   rtol=0, atol=ATOL)
    assert torch.equal(ca["order_gen"], cb["order_gen"]) and ca["data_rng"] == cb["data_rng"]


def test_members_equal_their_solo_runs(tmp_path):
    configs = _members()
    assert len({ensemble_key(c) for c in configs}) == 1
    statuses = train_ensemble(configs, [tmp_path / f"e{i}" for i in range(len(configs))], progress=False)
    assert [s["status"] for s in statuses] == ["completed"] * len(configs)
    assert all(s["ensemble_size"] == len(configs) for s in statuses)
    for i, c in enumerate(configs):
        train(c, tmp_path / f"s{i}", progress=False)
        assert_member_equals_solo(tmp_path / f"e{i}", tmp_path / f"s{i}")
    # members with other seeds or settings really differ (the comparison above can fail)
    a, b = open_activations(tmp_path / "e0").load(), open_activations(tmp_path / "e4").load()
    assert np.abs(a.hidden.values[-1] - b.hidden.values[-1]).max() > 1e-3


@pytest.mark.parametrize("path", ["fast", "vmap"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_batched_mlp_and_member_sgd_equal_each_members_own_module_and_sgd(activation, path):
    """The batched model (its registered fast path, or the generic vmap forward) gives losses, logits and autograd gradients equal each member's own MLP and
    masked loss (2 time steps, a partly masked batch), per-member gradient clipping equals
    clip_grad_norm_, and two SGD steps with weight decay and momentum (one member without) equal
    torch.optim.SGD's."""
    from decisionnets.ensemble import Ensemble, MemberSGD, vmap_forward
    from decisionnets.metrics import masked_cross_entropy
    from decisionnets.models.mlp import MLP
    from decisionnets.optimization import apply_settings, clip_grad_norm

    torch.manual_seed(0)
    K, T, B, F = 3, 2, 7, 5
    models = [MLP(F, 3, hidden_sizes=(6, 4), activation=activation) for _ in range(K)]
    ens = Ensemble(models, forward=vmap_forward if path == "vmap" else None)
    lr, mom, wd = torch.tensor([0.1, 0.2, 0.05]), torch.tensor([0.9, 0.0, 0.5]), torch.tensor([0.0, 1e-2, 1e-3])
    sgd = MemberSGD(ens.parameters())
    apply_settings(sgd, {"lr": lr, "momentum": mom, "weight_decay": wd})
    solo = [MLP(F, 3, hidden_sizes=(6, 4), activation=activation) for _ in range(K)]
    for m, own in zip(models, solo):
        own.load_state_dict(m.state_dict())
    opts = [torch.optim.SGD(m.parameters(), lr=float(lr[k]), momentum=float(mom[k]), weight_decay=float(wd[k]))
            for k, m in enumerate(solo)]
    names = [n for n, _ in solo[0].named_parameters()]
    grad_max = 0.0
    for _ in range(2):
        x, y = torch.randn(K, T, B, F), torch.randint(0, 3, (K, T, B))
        mask = (torch.rand(K, T, B) > 0.3).float()
        logits, _ = ens(x)
        losses = masked_cross_entropy(logits, y, mask)
        sgd.zero_grad()
        losses.sum().backward()
        clip_grad_norm(ens.parameters(), 0.5, per_member=True)
        for k, m in enumerate(solo):
            out, _ = m(x[k])
            loss = masked_cross_entropy(out, y[k], mask[k])
            torch.testing.assert_close(losses[k], loss.detach(), rtol=1e-6, atol=1e-6)
            torch.testing.assert_close(logits[k].detach(), out.detach(), rtol=1e-6, atol=1e-6)
            opts[k].zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 0.5)
            for name, p in m.named_parameters():
                torch.testing.assert_close(ens.params[name].grad[k], p.grad, rtol=1e-5, atol=1e-6)
                grad_max = max(grad_max, float(p.grad.abs().max()))
            opts[k].step()
        sgd.step()
        for k, m in enumerate(solo):
            for name, p in m.named_parameters():
                torch.testing.assert_close(ens.params[name][k].detach(), p.detach(), rtol=1e-6, atol=1e-7)
    assert grad_max > 1e-3  # the comparison above compared gradients, not zeros
    # the members' own optimizers receive their momentum buffers (none for the member without momentum)
    for k in range(K):
        own = torch.optim.SGD(models[k].parameters(), lr=0.1)
        sgd.to_member(k, own, models[k])
        assert (len(own.state) > 0) == bool(mom[k] != 0)
        for name, p in zip(names, models[k].parameters()):
            if mom[k] != 0:
                torch.testing.assert_close(own.state[p]["momentum_buffer"],
                                           opts[k].state[dict(solo[k].named_parameters())[name]]["momentum_buffer"],
                                           rtol=1e-6, atol=1e-7)


def test_mlp_fast_path_equals_the_autograd_vmap_path():
    """The MLP's hand-written batched backward gives autograd's gradients of the vmapped module forward."""
    from decisionnets.ensemble import BATCHED_FORWARD, Ensemble, vmap_forward
    from decisionnets.metrics import masked_cross_entropy
    from decisionnets.models.mlp import MLP

    assert BATCHED_FORWARD[MLP] is not vmap_forward
    torch.manual_seed(1)
    K, T, B, F = 4, 3, 5, 4
    models = [MLP(F, 3, hidden_sizes=(7, 5, 6)) for _ in range(K)]
    x, y = torch.randn(K, T, B, F), torch.randint(0, 3, (K, T, B))
    mask = (torch.rand(K, T, B) > 0.4).float()
    results = []
    for forward in (None, vmap_forward):
        ens = Ensemble(models, forward=forward)
        logits, _ = ens(x)
        losses = masked_cross_entropy(logits, y, mask)
        losses.sum().backward()
        results.append((losses.detach(), logits.detach(), {n: p.grad for n, p in ens.params.items()}))
    (l_fast, z_fast, g_fast), (l_auto, z_auto, g_auto) = results
    torch.testing.assert_close(l_fast, l_auto, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(z_fast, z_auto, rtol=1e-6, atol=1e-6)
    assert g_fast.keys() == g_auto.keys() and len(g_fast) == 8
    for n in g_fast:
        torch.testing.assert_close(g_fast[n], g_auto[n], rtol=1e-5, atol=1e-7)
    assert min(float(g.abs().max()) for g in g_auto.values()) > 1e-4  # every parameter has a gradient


RNN_TINY = ["epochs=3", "n_trials=96", "batch_size=16", "model.hidden_size=8", "n_per_condition=1", "schedule=\"all\"",
            "model.noise=0.1", "grad_clip=0.5"]


def _rnn(seed, *extra):
    return load_config("color-direction", overrides=[*RNN_TINY, *extra], seed=seed)


def test_leaky_rnn_members_equal_their_solo_runs(tmp_path):
    """Leaky RNNs with recurrent noise (each member draws its own, as its solo run does), gradient
    clipping, momentum, weight decay, a phase, and variable-length trials (masked steps); a member
    that diverges is dropped without disturbing the others' noise streams."""
    configs = [
        _rnn(0, "lr=0.1"),
        _rnn(1, "lr=0.05", "weight_decay=0.01"),
        _rnn(2, "lr=0.1", "momentum=0.9"),
        _with_phase(_rnn(3, "lr=0.05"), Phase(epochs=1, lr=0.3, momentum=0.5)),
        _rnn(4, "lr=1e38", "momentum=0.9"),  # diverges at step 1, as its solo run does
    ]
    assert len({ensemble_key(c) for c in configs}) == 1
    statuses = train_ensemble(configs, [tmp_path / f"e{i}" for i in range(len(configs))], progress=False)
    assert [s["status"] for s in statuses] == ["completed"] * 4 + ["diverged"]
    assert (statuses[4]["epoch"], statuses[4]["step"]) == (1, 1)  # where its solo run stops
    for i, c in enumerate(configs[:4]):
        train(c, tmp_path / f"s{i}", progress=False)
        assert_member_equals_solo(tmp_path / f"e{i}", tmp_path / f"s{i}")
    a = open_activations(tmp_path / "e0").load()
    assert a.hidden.dims == ("epoch", "trial", "time", "unit") and a.sizes["time"] > 1
    # the comparison can fail: without the member's own noise stream the run differs
    other = _rnn(0, "lr=0.1", "model.noise=0.0")
    train(other, tmp_path / "quiet", progress=False)
    b = open_activations(tmp_path / "quiet").load()
    assert np.abs(a.hidden.values[-1] - b.hidden.values[-1]).max() > 1e-3


def test_a_diverging_member_stops_and_the_others_go_on(tmp_path):
    configs = [_cfg(0, "lr=0.05"), _cfg(1, "lr=1e30"), _cfg(2, "lr=0.1", "momentum=0.9")]
    statuses = train_ensemble(configs, [tmp_path / f"e{i}" for i in range(3)], progress=False)
    assert [s["status"] for s in statuses] == ["completed", "diverged", "completed"]
    assert statuses[1]["epoch"] == 1 and not np.isfinite(statuses[1]["loss"])
    assert json.loads((tmp_path / "e1" / "status.json").read_text())["status"] == "diverged"
    assert (tmp_path / "e1" / "activations" / "epoch_00000.nc").is_file()  # recorded epochs are kept
    for i in (0, 2):
        train(configs[i], tmp_path / f"s{i}", progress=False)
        assert_member_equals_solo(tmp_path / f"e{i}", tmp_path / f"s{i}")


def test_an_ensemble_whose_members_all_diverge_stops_with_their_statuses(tmp_path):
    configs = [_cfg(0, "lr=1e30"), _cfg(1, "lr=1e30")]
    statuses = train_ensemble(configs, [tmp_path / f"e{i}" for i in range(2)], progress=False)
    assert [s["status"] for s in statuses] == ["diverged", "diverged"]
    for i in range(2):
        assert json.loads((tmp_path / f"e{i}" / "status.json").read_text())["status"] == "diverged"
        assert not (tmp_path / f"e{i}" / "checkpoints" / "final.pt").exists()


class _Stop(Exception):
    pass


def test_killed_ensemble_resumes_and_members_resume_solo(tmp_path, monkeypatch):
    from decisionnets.rundir import RunDir

    configs = [_cfg(0, "lr=0.05", "momentum=0.9"), _cfg(1, "lr=0.2", "weight_decay=0.01")]
    real = RunDir.end_epoch

    def stop_after_epoch_2(self, row, state):  # killed once the last member has ended epoch 2
        real(self, row, state)
        if state["epoch"] == 2 and self.path.name == "e1":
            raise _Stop

    monkeypatch.setattr(RunDir, "end_epoch", stop_after_epoch_2)
    dirs = [tmp_path / "e0", tmp_path / "e1"]
    with pytest.raises(_Stop):
        train_ensemble(configs, dirs, progress=False)
    monkeypatch.undo()
    import shutil

    shutil.copytree(dirs[0], tmp_path / "alone0")  # member 0 killed at epoch 2, resumed as a solo run
    statuses = train_ensemble(configs, dirs, progress=False, resume=True)
    assert [s["status"] for s in statuses] == ["completed", "completed"]
    train(configs[0], tmp_path / "alone0", progress=False, resume=True)
    for i, c in enumerate(configs):
        train(c, tmp_path / f"s{i}", progress=False)
        assert_member_equals_solo(dirs[i], tmp_path / f"s{i}")
    assert_member_equals_solo(tmp_path / "alone0", tmp_path / "s0")


def test_incompatible_configs_are_refused_and_grouped_apart(tmp_path):
    a, b = _cfg(0), _cfg(1, "batch_size=32")
    assert ensemble_key(a) != ensemble_key(b)
    with pytest.raises(UserError, match="must share model, env, trials, epochs, batch sizes"):
        train_ensemble([a, b], [tmp_path / "a", tmp_path / "b"], progress=False)
    gru = load_config("color-direction", overrides=['model.kind="gru"', "model.hidden_size=4"])
    assert ensemble_key(gru) is None
    with pytest.raises(UserError, match="ensemble members must be mlp, leaky_rnn nets"):
        train_ensemble([gru, gru], [tmp_path / "c", tmp_path / "d"], progress=False)
    with pytest.raises(UserError, match="distinct run directories"):
        train_ensemble([a, a], [tmp_path / "x", tmp_path / "x"], progress=False)
    assert not any(tmp_path.iterdir())  # nothing written
    rnn = load_config("color-direction", overrides=["model.hidden_size=4"])  # a leaky RNN: its own group
    assert ensemble_key(rnn) is not None and ensemble_key(rnn) != ensemble_key(a)
    for rl in ("color-direction-rl", "color-direction-rt"):  # leaky RNNs trained by reward: never batched here
        assert ensemble_key(load_config(rl)) is None
        assert ensemble_key(load_config(rl, overrides=['agent.optimizer="sgd"'])) is None
    configs = [a, b, _cfg(2), rnn, _cfg(3, "batch_size=32"), _cfg(4), gru, gru]
    assert group_configs(configs) == [[0, 2, 5], [1, 4], [3], [6], [7]]
    assert group_configs(configs, max_size=2) == [[0, 2], [5], [1, 4], [3], [6], [7]]


# --- sweeps ------------------------------------------------------------------------------------------
def _sweep_points(tmp_path):
    from decisionnets import sweep

    sp = sweep.parse_spec({"description": "t", "sweep": {
        "base": "color-direction-static", "seeds": [0, 1],
        "set": {"train.epochs": 2, "train.n_trials": 150, "model.hidden_sizes": [8], "record.n_per_condition": 2,
                "record.schedule": "all"},
        "grid": {"train.lr": [0.05, 0.2], "train.batch_size": [16, 50]}}})
    return sweep, sweep.plan(sp, tmp_path), sp


def test_sweep_groups_compatible_runs_and_spreads_them_over_workers(tmp_path):
    sweep, points, _ = _sweep_points(tmp_path)
    units = sweep.ensemble_units(points, n_workers=1)
    assert sorted(len(u) for u in units) == [4, 4]  # one ensemble per batch size
    for u in units:
        assert len({json.loads(p.config_json)["train"]["batch_size"] for p in u}) == 1
    assert sorted(len(u) for u in sweep.ensemble_units(points, n_workers=4)) == [2, 2, 2, 2]
    # a run with a checkpoint already (to be resumed) runs alone
    ck = Path(points[0].run_dir) / "checkpoints"
    ck.mkdir(parents=True)
    (ck / "last.pt").write_bytes(b"")
    units = sweep.ensemble_units(points, n_workers=1)
    assert sorted(len(u) for u in units) == [1, 3, 4]


def test_sweep_ensemble_runs_equal_solo_runs_and_are_analysed(tmp_path):
    sweep, points, sp = _sweep_points(tmp_path / "ens")
    analysis = sp.analysis.replace(folds=3)
    group = [p for p in points if json.loads(p.config_json)["train"]["batch_size"] == 16]
    results = sweep.run_ensemble(group, analysis)
    assert [r["status"] for r in results] == ["completed"] * 4
    assert all(r["action"] == "trained in ensemble of 4+analyzed" for r in results)
    _, solo_points, _ = _sweep_points(tmp_path / "solo")
    for p, q in zip(group, [q for q in solo_points if q.run_id in {p.run_id for p in group}]):
        assert sweep.run_point(q, analysis)["status"] == "completed"
        assert_member_equals_solo(Path(p.run_dir), Path(q.run_dir))
        assert (Path(p.run_dir) / "information.nc").is_file()
    # rerun: nothing to do, each run says so
    assert [r["action"] for r in sweep.run_ensemble(group, analysis)] == ["skipped"] * 4
