"""analysis/perturbation_discard.py: half-fall, paired differences and CKA on planted inputs; the tiny preset end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from decisionnets import sweep


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("perturbation_discard")


# --- the presets -----------------------------------------------------------------------------------
def test_preset_matches_total_steps_and_switches_lr_at_k():
    """Every run: batch 32 in every epoch and the same epochs (equal SGD steps); lowK / highK switch lr after K epochs."""
    pts = sweep.plan(sweep.load_spec("perturbation-discard"), "/nonexistent/sweeps")
    assert len(pts) == 8 * 5 and sorted({p.coords["seed"] for p in pts}) == [0, 1, 2, 3, 4]
    for p in pts:
        t = json.loads(p.config_json)["train"]
        assert t["epochs"] == 80 and t["batch_size"] == 32 and t["weight_decay"] == 0.01
        assert all(ph.get("batch_size", 32) == 32 for ph in t.get("phases", []))
        start = p.coords["start"]
        lr_first = {"low": 0.005, "high": 0.05}
        if start[:3] in ("low", "hig"):
            kind, k = ("low", int(start[3:])) if start.startswith("low") else ("high", int(start[4:]))
            assert t["phases"] == [{"epochs": k, "lr": lr_first[kind]}]
            assert t["lr"] == (0.05 if kind == "low" else 0.005)
        else:
            assert t["lr"] == 0.05 and not t.get("phases")
            assert (p.pretrain is not None) == (start == "pretrained")
    pre = json.loads(next(p for p in pts if p.pretrain is not None).pretrain.config_json)
    assert pre["env"]["report"] == "color" and pre["train"]["epochs"] == 10


# --- the measures on planted curves ----------------------------------------------------------------
def test_half_fall_step_interpolates_after_the_peak(script):
    step = [0, 100, 200, 300, 400]
    # peak 0.7 at step 100, half = 0.35: crossed between 200 (0.5) and 300 (0.2) -> 200 + 0.15 / 0.3 * 100
    assert script.half_fall_step(step, [0.6, 0.7, 0.5, 0.2, 0.0]) == pytest.approx(250.0)
    assert np.isnan(script.half_fall_step(step, [0.6, 0.7, 0.5, 0.4, 0.36]))  # never at half: not reached
    assert np.isnan(script.half_fall_step([0, 1, 2], [0.2, 0.7, 0.6]))  # low before the peak does not count
    assert script.half_fall_step(step, [0.8, np.nan, 0.4, 0.0, 0.0]) == pytest.approx(200.0)  # NaN points dropped


def _curves(color, direction_final, steps=(0, 282, 564, 846)):
    """Planted curves: color (condition, seed, epoch), direction decoded at the ends only."""
    conds = list(color)
    seeds = list(range(len(next(iter(color.values())))))
    c = np.array([color[k] for k in conds], float)
    d = np.full_like(c, np.nan)
    d[:, :, 0] = 0.5
    d[:, :, -1] = np.array([direction_final[k] for k in conds])
    return xr.Dataset({"color": (("condition", "seed", "epoch"), c), "direction": (("condition", "seed", "epoch"), d),
                       "step": (("condition", "epoch"), np.tile(np.asarray(steps, float), (len(conds), 1)))},
                      coords={"condition": conds, "seed": seeds, "epoch": [0, 1, 2, 3]},
                      attrs={"ceiling_color": 0.676, "ceiling_direction": 0.676})


def test_paired_differences_and_table_against_planted_runs(script):
    curves = _curves(
        {"k0": [[0.6, 0.6, 0.2, 0.0], [0.6, 0.6, 0.1, 0.0]],
         "low10": [[0.6, 0.6, 0.6, 0.3], [0.6, 0.6, 0.6, 0.2]],     # falls later and less
         "high10": [[0.6, 0.6, 0.6, 0.6], [0.6, 0.6, 0.6, 0.6]]},   # never falls
        {"k0": [0.66, 0.64], "low10": [0.67, 0.66], "high10": [0.60, 0.62]})
    m = script.run_metrics(curves)
    # k0 seed 0: half = 0.3 crossed between 282 (0.6) and 564 (0.2): 282 + 0.3 / 0.4 * 282
    np.testing.assert_allclose(m["half_fall_step"].sel(condition="k0"), [282 + 0.75 * 282, 282 + 0.6 * 282])
    np.testing.assert_allclose(m["half_fall_step"].sel(condition="low10"), [846, 564 + 282 * 0.3 / 0.4])
    assert np.isnan(m["half_fall_step"].sel(condition="high10")).all()
    np.testing.assert_allclose(m["final_direction"].sel(condition="high10"), [0.60, 0.62])
    d = script.paired_differences(m["final_color"])
    np.testing.assert_allclose(d.sel(condition="low10"), [0.3, 0.2])
    np.testing.assert_allclose(d.sel(condition="k0"), [0.0, 0.0])
    dh = script.paired_differences(m["half_fall_step"]).sel(condition="low10").values
    np.testing.assert_allclose(dh, [846 - 493.5, 775.5 - 451.2])
    with pytest.raises(ValueError, match="reference condition 'k0'"):
        script.paired_differences(m["final_color"].sel(condition=["low10"]))

    rows = script.table_rows(m)
    assert [r[0] for r in rows] == ["k0", "low10", "high10"] and all(len(r) == len(script.COLUMNS) for r in rows)
    low = dict(zip(script.COLUMNS, rows[1]))
    mean, sd, n = script.mean_sd(dh)
    assert low["Δ half-fall"] == f"{mean:,.0f} ± {sd:,.0f}" and n == 2
    assert low["Δ final color"] == "0.250 ± 0.071"
    assert dict(zip(script.COLUMNS, rows[2]))["half-fall step"] == "not reached 2/2"
    md = script.markdown_table(rows)
    assert md.splitlines()[0].count("|") == len(script.COLUMNS) + 1 and "| low10 |" in md
    rst = script.rst_table(rows)
    assert rst.splitlines()[0] == rst.splitlines()[2] == rst.splitlines()[-1]


def test_cka_to_the_reference_of_the_same_seed(script):
    rng = np.random.default_rng(0)
    a0, a1 = rng.normal(size=(60, 8)), rng.normal(size=(60, 8))
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    states = {("k0", 0): a0, ("k0", 1): a1,
              ("low5", 0): 3.0 * a0 @ q,                 # rotated and scaled: the same geometry
              ("low5", 1): rng.normal(size=(60, 8))}     # unrelated to k0 seed 1
    cka, across = script.cka_table(states)
    assert cka.sel(condition="k0").values.tolist() == pytest.approx([1.0, 1.0])
    assert float(cka.sel(condition="low5", seed=0)) == pytest.approx(1.0)
    assert float(cka.sel(condition="low5", seed=1)) < 0.5
    assert across.shape == (1,) and across[0] < 0.5


def test_decoder_strides_are_parsed(script):
    assert script.parse_decoders(["linear-raw:2", "linear"], 3) == [("linear-raw", 2), ("linear", 3)]
    with pytest.raises(ValueError, match="STRIDE an integer >= 1"):
        script.parse_decoders(["linear:0"], 1)


# --- the tiny preset through the script ------------------------------------------------------------
def test_quick_preset_end_to_end(script, tmp_path):
    sweep_dir = tmp_path / "perturbation-discard-quick"
    sweep.run_sweep("perturbation-discard-quick", out=tmp_path, n_workers=1, progress=False, analyze=False)
    assert script.main([str(sweep_dir), "--decoders", "linear-raw:1", "--folds", "3",
                        "--figure", str(tmp_path / "fig.png")]) == 0
    out = sweep_dir / "perturbation"
    header = (out / "table.md").read_text().splitlines()[2]
    assert header == "| " + " | ".join(script.COLUMNS) + " |"
    m = xr.load_dataset(out / "metrics.nc")
    assert m["condition"].values.tolist() == ["k0", "low2", "high2", "pretrained"]
    assert m.sizes == {"decoder": 1, "condition": 4, "seed": 2}
    assert np.isfinite(m["final_color"]).all() and np.isfinite(m["final_direction"]).all()
    cka = xr.load_dataset(out / "cka.nc")["cka"]
    np.testing.assert_allclose(cka.sel(condition="k0"), 1.0)
    assert ((cka > 0) & (cka <= 1 + 1e-9)).all()
    assert (tmp_path / "fig.png").stat().st_size > 1000
    # cached: a second call decodes nothing and gives the same table
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*__linear-raw__s1.nc")}
    assert len(before) == 8
    table = (out / "table.md").read_text()
    assert script.main([str(sweep_dir), "--decoders", "linear-raw:1", "--folds", "3"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*__linear-raw__s1.nc")} == before
    assert (out / "table.md").read_text() == table


def test_cumulative_lr_sums_lr_over_steps_and_aligns_half_falls(script, tmp_path):
    (tmp_path / "log.csv").write_text("epoch,step,lr,batch_size\n1,100,0.005,32\n2,200,0.005,32\n3,300,0.05,32\n"
                                      "4,400,0.05,32\n")
    assert script.cumulative_lr(tmp_path) == pytest.approx({0: 0.0, 1: 0.5, 2: 1.0, 3: 6.0, 4: 11.0})
    # the same fall on the summed-lr axis, later in steps: paired Δ in steps > 0, on the summed-lr axis 0
    curves = _curves({"k0": [[0.6, 0.2, 0.0, 0.0]], "low2": [[0.6, 0.6, 0.6, 0.2]]}, {"k0": [0.6], "low2": [0.6]})
    curves["lr_steps"] = (("condition", "epoch"), np.array([[0.0, 282 * 0.05, 564 * 0.05, 846 * 0.05],
                                                            [0.0, 282 * 0.005, 564 * 0.005, 564 * 0.005 + 282 * 0.05]]))
    m = script.run_metrics(curves)
    assert float(script.paired_differences(m["half_fall_step"]).sel(condition="low2")) == pytest.approx(564)
    lr_hf = m["half_fall_lr_steps"].sel(condition="k0").item()
    assert lr_hf == pytest.approx(0.75 * 282 * 0.05)
    assert m["half_fall_lr_steps"].sel(condition="low2").item() == pytest.approx(564 * 0.005 + 0.75 * 282 * 0.05)
