import json
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from decisionnets.config import load_config
from decisionnets.errors import ConfigError
from decisionnets.io import open_activations
from decisionnets.models import build_model
from decisionnets.models.multi_area import MultiAreaRNN
from decisionnets.rundir import RunLog
from decisionnets.seeding import seed_streams, torch_seed
from decisionnets.training import train

TINY = ["model.area_size=10", "epochs=2", "n_trials=96", "batch_size=16", "n_per_condition=1",
        "env.timing={fixation = 40, targets = [\"uniform\", [100, 200]], stimulus = 100, decision = 60}"]


def _cfg(*extra, seed=0):
    return load_config("color-direction-3area", overrides=[*TINY, *extra], seed=seed)


def test_connectivity_follows_the_areas_and_dale():
    torch.manual_seed(0)
    m = MultiAreaRNN(5, 3, n_areas=3, area_size=20, ff=0.5, fb=0.25)
    n, ne = 20, 16
    w = m.effective_weights().detach()
    mask = m.mask.bool()
    for post in range(3):
        for pre in range(3):
            block = mask[post * n:(post + 1) * n, pre * n:(pre + 1) * n]
            if post == pre:  # dense within an area, no self-connections
                assert block.sum() == n * n - n and not block.diagonal().any()
            elif abs(post - pre) == 1:  # only E units project to a neighbouring area
                assert not block[:, ne:].any()
                frac = block[:, :ne].float().mean().item()
                assert frac == pytest.approx(0.5 if post == pre + 1 else 0.25, abs=0.12)
            else:  # area 1 and area 3 are not connected directly
                assert not block.any()
    # Dale: E columns >= 0, I columns <= 0, everywhere
    assert (w[:, m.is_excitatory] >= 0).all() and (w[:, ~m.is_excitatory] <= 0).all()
    # the input reaches area 1 only
    assert (m.input_weights()[n:] == 0).all() and (m.input_weights()[:n] != 0).any()


def test_readout_sees_only_area3_excitatory_units():
    m = MultiAreaRNN(5, 3, area_size=10).eval()
    x = torch.randn(6, 2, 5)
    logits, act = m(x)
    assert logits.shape == (6, 2, 3) and act["area3"].shape == (6, 2, 10) and set(act) == {"area1", "area2", "area3"}
    hidden = m(x, layers=("hidden",))[1]["hidden"]
    torch.testing.assert_close(m.readout(hidden[..., 20:28]), logits)
    assert m.readout.weight.shape == (3, 8)


def test_masks_are_drawn_from_the_init_stream_and_saved_with_the_checkpoint(tmp_path):
    train(_cfg(), tmp_path / "a", progress=False)
    train(_cfg(), tmp_path / "b", progress=False)
    train(_cfg(seed=1), tmp_path / "c", progress=False)
    a, b, c = (torch.load(tmp_path / r / "checkpoints" / "last.pt", weights_only=False)["model"] for r in "abc")
    assert torch.equal(a["mask"], b["mask"])
    assert not torch.equal(a["mask"], c["mask"])  # another seed, other between-area projections
    # the saved mask is the one the init stream draws
    cfg = _cfg()
    from decisionnets.build import build_model as build_for, build_task

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed(seed_streams(0)["init"]))
        fresh = build_for(cfg, build_task(cfg))
    assert torch.equal(fresh.mask, a["mask"])
    # and a model loaded from the checkpoint runs with that mask (it is a buffer, not redrawn)
    other = MultiAreaRNN(5, 3, area_size=10)
    other.load_state_dict(a)
    assert torch.equal(other.mask, a["mask"])


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_dale_signs_unchanged_after_training(optimizer, tmp_path):
    lr = "lr=0.5" if optimizer == "sgd" else "lr=0.05"  # large steps: plenty of chances to flip a sign
    cfg = _cfg(f"train.optimizer={optimizer}", lr, "epochs=3")
    with torch.random.fork_rng(devices=[]):
        from decisionnets.build import build_model as build_for, build_task

        torch.manual_seed(torch_seed(seed_streams(0)["init"]))
        init = build_for(cfg, build_task(cfg))
    train(cfg, tmp_path / "r", progress=False)
    trained = MultiAreaRNN(5, 3, area_size=10)
    trained.load_state_dict(torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=False)["model"])
    w0, w1 = init.effective_weights().detach(), trained.effective_weights().detach()
    assert not torch.equal(w0, w1)  # it trained
    if optimizer == "adam":  # the raw parameter did cross zero in places; the effective weights never do
        assert (torch.sign(init.w_rec) != torch.sign(trained.w_rec)).any()
    nz = w1 != 0
    assert torch.equal(torch.sign(w1)[nz], torch.sign(w0)[nz])
    assert torch.equal(w1 != 0, init.mask.bool() & (trained.w_rec != 0))
    assert (w1[:, trained.is_excitatory] >= 0).all() and (w1[:, ~trained.is_excitatory] <= 0).all()
    assert (trained.input_weights()[10:] == 0).all()


def test_no_dale_control_has_free_signs_on_the_same_connectivity():
    torch.manual_seed(3)
    m = MultiAreaRNN(5, 3, area_size=20, dale=False)
    w = m.effective_weights().detach()
    assert (w[:, m.is_excitatory] < 0).any() and (w[:, ~m.is_excitatory] > 0).any()
    assert torch.equal(w != 0, m.mask.bool())


def test_trains_and_records_areas_with_cell_types(tmp_path):
    train(_cfg("epochs=3", "lr=0.01"), tmp_path / "r", progress=False)
    ds = open_activations(tmp_path / "r")
    for k in (1, 2, 3):
        a = ds[f"area{k}"]
        assert a.dims == ("epoch", "trial", "time", f"area{k}_unit")
        assert list(ds[f"area{k}_cell_type"].values) == ["E"] * 8 + ["I"] * 2
    assert "hidden" not in ds
    loss = ds.loss.values
    assert np.isfinite(loss).all() and loss[-1] < loss[0]


def test_resume_is_bit_identical(tmp_path, monkeypatch):
    cfg = _cfg("epochs=3", "model.noise=0.2", "record.schedule=\"all\"")
    train(cfg, tmp_path / "full", progress=False)

    append = RunLog.append

    def killed_at_epoch_2(self, row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt  # after epoch 1's checkpoint, before epoch 2's
        append(self, row)

    monkeypatch.setattr(RunLog, "append", killed_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut", progress=False)
    monkeypatch.setattr(RunLog, "append", append)
    assert torch.load(tmp_path / "cut" / "checkpoints" / "last.pt", weights_only=False)["epoch"] == 1
    train(cfg, tmp_path / "cut", progress=False, resume=True)
    a, b = open_activations(tmp_path / "full").load(), open_activations(tmp_path / "cut").load()
    xr.testing.assert_identical(a, b)
    sa = torch.load(tmp_path / "full" / "checkpoints" / "last.pt", weights_only=False)
    sb = torch.load(tmp_path / "cut" / "checkpoints" / "last.pt", weights_only=False)
    for k in sa["model"]:
        assert torch.equal(sa["model"][k], sb["model"][k]), k
    assert sa["optimizer"]["state"].keys() == sb["optimizer"]["state"].keys()
    for i, st in sa["optimizer"]["state"].items():  # Adam's moments too
        for k, v in st.items():
            assert torch.equal(v, sb["optimizer"]["state"][i][k]), (i, k)


def test_bad_parameters_name_the_rule():
    with pytest.raises(ConfigError, match="ff is a connection probability"):
        build_model("multi_area_rnn", 5, 3, ff=1.5)
    with pytest.raises(ConfigError, match="e_fraction"):
        build_model("multi_area_rnn", 5, 3, area_size=1, e_fraction=0.2)
    with pytest.raises(ConfigError, match="dale must be true or false"):
        build_model("multi_area_rnn", 5, 3, dale="yes")
    with pytest.raises(ConfigError, match="no layer"):
        MultiAreaRNN(5, 3, area_size=4)(torch.zeros(2, 1, 5), layers=("area4",))
    with pytest.raises(ConfigError, match="optimizer must be one of sgd, adam; got 'rmsprop'"):
        load_config("color-direction-3area", overrides=["train.optimizer=rmsprop"])
    with pytest.raises(ConfigError, match="momentum applies to sgd only"):
        load_config("color-direction-3area", overrides=["momentum=0.9"])


def test_sweep_preset_plans_seeds_x_dale_x_ff_and_a_point_runs(tmp_path):
    from decisionnets import sweep

    spec = sweep.load_spec("multi-area-dale")
    pts = sweep.plan(spec, tmp_path)
    assert len(pts) == 5 * 2 * 3
    combos = {(json.loads(p.config_json)["model"]["ff"], json.loads(p.config_json)["model"]["dale"],
               json.loads(p.config_json)["seed"]) for p in pts}
    assert combos == {(ff, dale, s) for ff in (0.1, 0.5, 1.0) for dale in (True, False) for s in range(5)}
    # one point, made tiny, trains and is analysed on area 3 by the sweep's own code
    raw = {"description": "t", "sweep": {"base": "color-direction-3area", "seeds": [0]}}
    raw["sweep"]["set"] = {"model.area_size": 10, "train.epochs": 1, "train.n_trials": 96, "train.batch_size": 16,
                           "record.n_per_condition": 3,
                           "env.timing": {"fixation": 40, "targets": ["uniform", [100, 200]], "stimulus": 100,
                                          "decision": 60}}
    raw["sweep"]["grid"] = {"model.ff": [1.0]}
    raw["sweep"]["analysis"] = {"layers": ["area3"], "folds": 3, "variables": ["color", "direction"]}  # as the preset
    small = sweep.parse_spec(raw)
    (point,) = sweep.plan(small, tmp_path / "small")
    result = sweep.run_point(point, small.analysis)
    assert result["status"] == "completed", result
    info = xr.load_dataset(Path(point.run_dir) / "information.nc")
    assert list(info["layer"].values) == ["area3"] and set(info["variable"].values) == {"color", "direction"}
    assert np.isfinite(info["information"].values).all()


def test_analyze_gives_information_per_area_and_the_area_figure(tmp_path):
    from decisionnets.report import analyze_run

    train(_cfg("epochs=1", "n_per_condition=3", "record.time_stride=4"), tmp_path / "r", progress=False)
    paths = analyze_run(tmp_path / "r", variables=["color", "direction"], folds=3, progress=False)
    info = xr.load_dataset(paths[0])
    assert list(info["layer"].values) == ["area1", "area2", "area3"]
    assert info["information"].dims == ("layer", "variable", "epoch", "time")
    assert np.isfinite(info["information"].values).all()
    names = {p.name for p in paths}
    assert {"information_by_layer.png", "information_vs_epoch_area3.png", "information_vs_time_area1.png"} <= names
