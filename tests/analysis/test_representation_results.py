"""analysis/representation_results.py: tables of the representation analyses from run directories."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import xarray as xr

matplotlib.use("Agg")

EPOCHS = [0, 1, 2, 3, 4]
CLASSES = ["pure", "mixed", "none", "silent"]
VARIABLES = ["color", "direction"]


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("representation_results")


def _write_run(run: Path, seed: int, pure: float, cka_row):
    """A fake run with planted analyses: ``pure`` fraction at every epoch, CKA with the last = ``cka_row``."""
    (run / "analyses").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"seed": seed}))
    E = len(EPOCHS)
    frac = np.zeros((1, E, 1, 4))
    frac[..., 0], frac[..., 1], frac[..., 3] = pure, 1 - pure - 0.1, 0.1
    f = np.full((E, 1, 3, 2), 10.0)
    f[:, :, :, 0] = 100.0 * (seed + 1)  # median F of color: 100 (seed 0) or 200 (seed 1)
    xr.Dataset(
        {"class_fraction": (("layer", "epoch", "period", "class"), frac),
         "selective_fraction": (("layer", "epoch", "period", "variable"), np.full((1, E, 1, 2), 0.5)),
         "f_statistic": (("epoch", "period", "unit", "variable"), f)},
        coords={"layer": ["hidden"], "epoch": EPOCHS, "period": ["stimulus"], "class": CLASSES,
                "variable": VARIABLES, "unit": [0, 1, 2], "unit_layer": ("unit", ["hidden"] * 3)},
        attrs={"task": "fake-task"},
    ).to_netcdf(run / "analyses" / "selectivity.nc")
    xr.Dataset(
        {"dimensionality": (("layer", "epoch", "period"), np.arange(E, dtype=float)[None, :, None] + 1 + seed),
         "variance_fraction": (("layer", "epoch", "marginalization"), np.full((1, E, 2), 0.5))},
        coords={"layer": ["hidden"], "epoch": EPOCHS, "period": ["stimulus"], "marginalization": ["color", "noise"]},
    ).to_netcdf(run / "analyses" / "geometry.nc")
    cka = np.ones((1, E, E))
    cka[0, :, -1] = cka[0, -1, :] = cka_row
    xr.Dataset(
        {"cka_epochs": (("layer", "epoch", "epoch2"), cka),
         "cka_layers": (("epoch", "layer", "layer2"), np.ones((E, 1, 1)))},
        coords={"layer": ["hidden"], "layer2": ["hidden"], "epoch": EPOCHS, "epoch2": EPOCHS},
        attrs={"period": "stimulus"},
    ).to_netcdf(run / "analyses" / "similarity.nc")


def test_settled_epoch(script):
    c = np.array([0.5, 0.96, 0.94, 0.99, 1.0])
    assert script.settled_epoch(c, np.array(EPOCHS), 0.95) == 3  # epoch 1 passes, but 2 falls back
    assert script.settled_epoch(c, np.array(EPOCHS), 0.9) == 1
    assert script.settled_epoch(c, np.array(EPOCHS), 0.999) == 4


def test_tables_and_seed_spread(script, tmp_path, capsys):
    _write_run(tmp_path / "a", 0, pure=0.4, cka_row=[0.5, 0.96, 0.94, 0.99, 1.0])
    _write_run(tmp_path / "b", 1, pure=0.6, cka_row=[0.7, 0.91, 0.97, 0.98, 1.0])
    assert script.main([str(tmp_path / "a"), str(tmp_path / "b"), "--figure", str(tmp_path / "f.png")]) == 0
    out = capsys.readouterr().out
    assert "(task fake-task, seed 0)" in out and "(task fake-task, seed 1)" in out
    # per run: first, middle, last epochs; pure fraction and median F of color as planted
    sel_a = out.split("selectivity, layer hidden, period stimulus:")[1].split("\n\n")[0]
    rows = [r.split() for r in sel_a.splitlines() if r[:1].isdigit()]
    assert [r[0] for r in rows] == ["0", "2", "4"]
    assert all(float(r[1]) == 0.4 and float(r[7]) == 100 for r in rows)
    assert "settled (CKA >= 0.95 with the last from this epoch on): {'hidden': 3}" in out
    # two seeds of one task: mean [min, max]
    assert "0.50 [0.40, 0.60]" in out  # the pure fraction
    assert "2.50 [2.00, 3.00]" in out  # the participation ratio at epoch 1
    assert "settled epochs (CKA >= 0.95): [3, 2]" in out
    assert (tmp_path / "f.png").stat().st_size > 0


def test_missing_analysis_is_an_error(script, tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(SystemExit, match="lacks analyses"):
        script.main([str(tmp_path / "run")])
