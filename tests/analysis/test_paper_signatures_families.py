"""analysis/paper_signatures_families.py: which problems each plan decodes, and the merge into a summary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("paper_signatures_families")


def _sweep(tmp_path: Path) -> Path:
    runs = []
    for wd in (0.0, 5e-4, 0.01):
        for regime in ("lr0.05-b32", "lr0.8-b512", "gain0.1"):
            for seed in (0, 1):
                rid = f"weight_decay-{wd}_regime-{regime}_seed-{seed}"
                runs.append({"run_id": rid, "coords": {"weight_decay": wd, "regime": regime, "seed": seed}})
    meta = {"name": "paper-signatures", "dims": ["weight_decay", "regime"], "runs": runs,
            "analysis": {"period": "decision"}}
    (tmp_path / "sweep.json").write_text(json.dumps(meta))
    return tmp_path


def test_plans_pick_the_signature_rows(tmp_path, script):
    sw = _sweep(tmp_path)
    core = script.tasks(sw, "core")
    # signature rows: weight decay 1e-2 (3 regimes) and weight decay 0 in the paper's regime; 2 seeds each
    assert {t[0] for t in core} == {r["run_id"] for r in json.loads((sw / "sweep.json").read_text())["runs"]
                                    if r["coords"]["weight_decay"] == 0.01
                                    or (r["coords"]["weight_decay"] == 0.0 and r["coords"]["regime"] == "lr0.05-b32")}
    assert {t[1] for t in core} == {"linear", "linear-raw", "sgd-linear", "sgd-mlp"}
    by = {(t[0], t[1]): t for t in core}
    assert by[("weight_decay-0.01_regime-lr0.05-b32_seed-0", "sgd-mlp")][4] == ["color", "direction"]
    assert by[("weight_decay-0.01_regime-lr0.8-b512_seed-0", "linear")][4] == ["color"]
    rest = script.tasks(sw, "rest")
    assert {t[0] for t in rest}.isdisjoint({t[0] for t in core})
    assert len(rest) + len(core) // 2 == 2 * 18  # every run is in exactly one of core / rest (2 families in rest)
    assert {t[1] for t in script.tasks(sw, "mlp")} == {"mlp"}


def test_merge_gives_a_decoder_dim_with_nan_where_not_decoded(tmp_path, script):
    sw = _sweep(tmp_path)
    rid = "weight_decay-0.01_regime-lr0.05-b32_seed-0"
    (sw / "runs" / rid).mkdir(parents=True)
    (sw / "families").mkdir()

    def part(epochs, variables, value):
        return xr.Dataset({"information": (("variable", "epoch"), np.full((len(variables), len(epochs)), value)),
                           "information_sd": (("variable", "epoch"), np.zeros((len(variables), len(epochs))))},
                          coords={"variable": variables, "epoch": epochs})

    part([0, 60], ["color", "direction"], 0.6).to_netcdf(sw / "families" / f"{rid}__linear__core.nc")
    part([0, 6, 60], ["color"], 0.5).to_netcdf(sw / "families" / f"{rid}__linear__timecourse.nc")
    part([0, 60], ["color"], 0.1).to_netcdf(sw / "families" / f"{rid}__sgd-mlp__core.nc")
    script.merge(sw)
    info = xr.load_dataset(sw / "runs" / rid / "information.nc")
    assert list(info["decoder"].values) == ["linear", "sgd-mlp"]
    assert float(info["information"].sel(decoder="linear", variable="color", epoch=6)) == 0.5
    assert float(info["information"].sel(decoder="linear", variable="color", epoch=60)) == 0.6  # core's kept
    assert np.isnan(float(info["information"].sel(decoder="sgd-mlp", variable="color", epoch=6)))
    assert np.isnan(float(info["information"].sel(decoder="sgd-mlp", variable="direction", epoch=60)))
    summary = xr.load_dataset(sw / "summary.nc")
    assert summary["information"].sel(decoder="sgd-mlp", variable="color", epoch=60, weight_decay=0.01,
                                      regime="lr0.05-b32", seed=0) == 0.1
    assert np.isnan(summary["information"].sel(decoder="linear", variable="color", epoch=60, weight_decay=0.0,
                                               regime="lr0.05-b32", seed=0))
