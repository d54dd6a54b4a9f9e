"""analysis/two_stage.py: per-stage color/direction tables and figure, decoded once per run and cached."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest
import xarray as xr

matplotlib.use("Agg")

TINY = ["model.hidden_size=6", "model.stage2_size=5", "epochs=1", "n_trials=64", "batch_size=16",
        "n_per_condition=3", "record.schedule=\"all\"", "record.time_stride=1",
        "env.timing={fixation = 40, targets = 100, stimulus = 100, decision = 60}"]


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("two_stage")


def _result(model, wd, seed, color_last):
    """A planted result: every number 0.6 except color in stage2 at the last epoch."""
    info = np.full((2, 2, 3), 0.6)  # layer, variable, epoch
    info[1, 0, -1] = color_last
    return xr.Dataset(
        {"information": (("layer", "variable", "epoch"), info),
         "information_sd": (("layer", "variable", "epoch"), np.full_like(info, 0.04)),
         "accuracy": (("epoch",), [0.5, 0.8, 0.9]), "step": (("epoch",), [0, 10, 20])},
        coords={"layer": ["stage1", "stage2"], "variable": ["color", "direction"], "epoch": [0, 5, 40]},
        attrs={"model": model, "weight_decay": wd, "seed": seed, "time": 300.0})


def test_table_and_figure_from_planted_results(script, tmp_path):
    res = [_result("two-stage (rnn stage 2)", 0.01, s, 0.1 + s / 100) for s in (0, 1, 2)]
    res += [_result("two-stage (rnn stage 2)", 0.0, s, 0.6) for s in (0, 1, 2)]
    groups = script.stack(res)
    assert list(groups) == [("two-stage (rnn stage 2)", 0.0), ("two-stage (rnn stage 2)", 0.01)]
    rows = {(r[1], r[2]): r for r in script.table_rows(groups)}
    assert rows[("0.01", "stage2")][5:7] == ["0.600 ± 0.000", "0.110 ± 0.010"]  # color first, last (ddof 1)
    assert rows[("0.01", "stage1")][6] == "0.600 ± 0.000"
    assert rows[("0", "stage2")][6] == "0.600 ± 0.000"
    assert rows[("0.01", "stage2")][3] == "3 (0, 1, 2)" and rows[("0.01", "stage2")][4] == "0 → 40"
    assert rows[("0.01", "stage2")][9] == "0.900 ± 0.000"
    text = script.rst_table(script.table_rows(groups))
    assert text.splitlines()[0].startswith("====") and "color last (bits)" in text
    assert any("change -0.500, -0.490, -0.480" in line for line in script.per_seed_lines(groups))

    fig = script.figure(groups, ceiling=0.676)
    ax = fig.axes[0]
    assert "bits" in ax.get_ylabel() and ax.get_xlabel() == "training epoch"
    solid = next(ln for ln in ax.lines if ln.get_label().startswith("stage2, wd 0.01"))
    np.testing.assert_allclose(solid.get_ydata(), [0.6, 0.6, 0.11])
    assert solid.get_linestyle() == "-"
    assert next(ln for ln in ax.lines if ln.get_label().startswith("stage2, wd 0 ")).get_linestyle() == "--"
    fig.savefig(tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 0


def test_a_tiny_sweep_is_decoded_once_per_run_and_unfinished_runs_are_skipped(script, tmp_path, monkeypatch):
    from decisionnets.config import load_config
    from decisionnets.training import train

    sweep = tmp_path / "sw"
    ids = ["weight_decay-0.01_seed-0", "weight_decay-0.01_seed-1"]
    train(load_config("two-stage-rnn", overrides=[*TINY, "train.weight_decay=0.01"], seed=0), sweep / "runs" / ids[0],
          progress=False)
    (sweep / "runs" / ids[1]).mkdir()  # planned, not trained
    (sweep / "sweep.json").write_text(json.dumps(
        {"runs": [{"run_id": r, "coords": {"seed": s, "weight_decay": 0.01}} for s, r in enumerate(ids)]}))
    said = []
    res = script.results([sweep], folds=3, log=said.append)
    assert len(res) == 1 and any("skipped" in s and ids[1] in s for s in said)
    r = res[0]
    assert r["information"].dims == ("layer", "variable", "epoch")
    assert list(r["layer"].values) == ["stage1", "stage2"] and list(r["epoch"].values) == [0, 1]
    assert r.attrs["model"] == "two-stage (rnn stage 2)" and r.attrs["weight_decay"] == 0.01
    assert np.isfinite(r["information"].values).all()
    # the decoded step is the last stimulus step: 40 + 100 + 100 ms = 240 ms from trial start, minus one 20 ms step
    assert r.attrs["time"] == pytest.approx(220.0)
    assert sorted(p.name for p in (sweep / "two_stage").iterdir()) == [f"{ids[0]}__linear.nc"]

    def no_decoding(*a, **k):
        raise AssertionError("a cached run was decoded again")

    monkeypatch.setattr(script, "decode_run", no_decoding)
    again = script.results([sweep], folds=3, log=said.append)
    xr.testing.assert_identical(again[0], res[0])
    out = tmp_path / "fig.png"
    assert script.main([str(sweep), "--folds", "3", "--out", str(out), "--rst", str(tmp_path / "t.rst")]) == 0
    assert out.stat().st_size > 0 and "stage2" in (tmp_path / "t.rst").read_text()


def test_weight_norms_read_each_matrix_at_the_first_and_last_epoch(script, tmp_path):
    import torch

    from decisionnets.config import load_config
    from decisionnets.training import train
    from decisionnets.weights import load_weights

    run = tmp_path / "r"
    train(load_config("two-stage-rnn", overrides=[*TINY, "train.weight_decay=0.5"], seed=0), run, progress=False)
    norms = script.weight_norms([run])
    ((key, per),) = norms.items()
    assert key == ("two-stage (rnn stage 2)", 0.5)
    assert set(per) == {"w_in", "w_rec", "w_12", "w_rec2", "readout"}
    want = float(load_weights(run, 1)["w_rec2.weight"].norm())
    assert per["w_rec2"][0][1] == pytest.approx(want)
    assert per["w_rec2"][0][1] < per["w_rec2"][0][0]  # strong weight decay shrank it
    assert "w_rec2" in script.norm_lines(norms)[0] and torch.is_tensor(load_weights(run, 0)["w_rec2.weight"])


def test_agent_wd_preset_trains_tiny_and_its_hidden_layer_is_decoded(script, tmp_path):
    """The reward-trained agent with weight decay (``color-direction-rl-wd``), tiny: it trains with
    its preset's Adam L2 term in force and the script decodes its one recorded layer."""
    from decisionnets.config import load_config
    from decisionnets.training import train

    tiny = ["model.hidden_size=8", "n_per_condition=1", "epochs=1", "n_trials=32", "record.schedule=\"all\""]
    cfg = load_config("color-direction-rl-wd", overrides=tiny, seed=0)
    assert cfg.train.weight_decay == 1e-3 and cfg.agent.algorithm == "a2c"
    run = tmp_path / "agent"
    train(cfg, run, progress=False)
    plain = tmp_path / "agent-wd0"
    train(load_config("color-direction-rl-wd", overrides=[*tiny, "train.weight_decay=0"], seed=0), plain, progress=False)
    from decisionnets.weights import load_weights

    w, w0 = load_weights(run, 1), load_weights(plain, 1)
    assert any(not (w[k] == w0[k]).all() for k in w)  # the L2 term changed the trained weights
    res = script.decode_run(run, folds=3)
    assert list(res["layer"].values) == ["hidden"] and set(res["variable"].values) == {"color", "direction"}
    assert res.attrs["weight_decay"] == 1e-3 and np.isfinite(res["information"].sel(epoch=0)).all()
