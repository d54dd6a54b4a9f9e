"""analysis/paper_signatures.py on a synthetic sweep summary with known falls."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("paper_signatures")


def _summary(decoders=None):
    """Color falls from 0.6 to 0.06 at epoch 3 (step 300) in lr0.05-b32 with weight decay; kept elsewhere."""
    regimes, wds, seeds, epochs = ["lr0.05-b32", "lr0.005-b512", "gain0.1"], [0.0, 0.01], [0, 1, 2], [0, 1, 2, 3, 4]
    shape = (len(regimes), len(wds), len(seeds), 2, len(epochs))
    info = np.full(shape, 0.6)
    info[:, :, :, 1] = 0.65  # direction
    info[0, 1, :, 0, 3:] = 0.06  # color discarded from epoch 3 on
    info[0, 1, 2, 0, 4] = np.nan  # one seed lacks its last epoch: final = its last recorded
    step = np.broadcast_to(np.array(epochs, float) * 100, (len(regimes), len(wds), len(seeds), len(epochs))).copy()
    dims = ("regime", "weight_decay", "seed", "variable", "epoch")
    ds = xr.Dataset(
        {"information": (dims, info), "step": (("regime", "weight_decay", "seed", "epoch"), step),
         "final_val_accuracy": (("regime", "weight_decay", "seed"), np.full(shape[:3], 0.89)),
         "ceiling": (("regime", "weight_decay"), np.full(shape[:2], 0.676))},
        coords={"regime": regimes, "weight_decay": wds, "seed": seeds, "variable": ["color", "direction"],
                "epoch": epochs})
    if decoders:
        ds = xr.concat([ds] * len(decoders), dim=xr.DataArray(decoders, dims="decoder", name="decoder"))
    return ds


def test_per_seed_statistics(script):
    s = _summary()
    st = script.stats(s, None, "lr0.05-b32", 0.01)
    np.testing.assert_allclose(st["peak"], 0.6)
    np.testing.assert_allclose(st["final"], 0.06)
    np.testing.assert_allclose(st["ratio"], 0.1)
    np.testing.assert_allclose(st["fall_step"], 300)
    kept = script.stats(s, None, "lr0.05-b32", 0.0)
    np.testing.assert_allclose(kept["ratio"], 1.0)
    assert np.isnan(kept["fall_step"]).all()


def test_a_run_decoded_at_two_epochs_has_no_fall_step(script):
    s = _summary()
    s["information"].loc[dict(regime="lr0.05-b32", weight_decay=0.01, epoch=[1, 2, 3])] = np.nan
    st = script.stats(s, None, "lr0.05-b32", 0.01)
    np.testing.assert_allclose(st["final"][:2], 0.06)  # first and last epoch still give init / final
    assert np.isnan(st["fall_step"]).all()


@pytest.mark.parametrize("decoders", [None, ["linear", "sgd-mlp"]])
def test_writes_tables_and_figures(tmp_path, script, decoders):
    _summary(decoders).to_netcdf(tmp_path / "summary.nc")
    assert script.main([str(tmp_path)]) == 0
    sig = (tmp_path / "signatures" / "signatures.md").read_text()
    assert "0.100 ± 0.000" in sig  # final / peak of the discarding regime
    assert "300 ± 0" in sig  # the step of the fall
    if decoders:
        assert "sgd-mlp" in sig.splitlines()[0]
    reg = (tmp_path / "signatures" / "regimes.md").read_text()
    assert len(reg.splitlines()) == 2 + 3 * 2 * (len(decoders) if decoders else 1)
    for name in ("color_vs_epoch.png", "color_vs_step.png"):
        assert (tmp_path / "signatures" / name).stat().st_size > 5000


def test_refuses_a_folder_without_summary(tmp_path, script):
    with pytest.raises(SystemExit, match="no summary.nc"):
        script.main([str(tmp_path)])
