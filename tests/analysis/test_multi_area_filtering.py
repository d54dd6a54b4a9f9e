"""analysis/multi_area_filtering.py: gathering per-run results and the figure against ff."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
import xarray as xr

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("multi_area_filtering")


def _write_runs(out: Path, color_by_group: dict, seeds=(0, 1, 2)):
    """Fake ``areas_information.nc`` files: area-3 color at the last epoch is ``color_by_group[g] + seed/100``."""
    for g, c in color_by_group.items():
        for s in seeds:
            info = np.full((2, 3, 2, 2, 4), 0.6)  # decoder, area, variable, epoch, time
            info[:, 2, 0, -1, :] = c + s / 100
            ds = xr.Dataset(
                {"information": (("decoder", "area", "variable", "epoch", "time"), info),
                 "probe_accuracy": (("epoch",), [0.5, 0.9])},
                coords={"decoder": ["linear", "linear-raw"], "area": ["area1", "area2", "area3"],
                        "variable": ["color", "direction"], "epoch": [0, 12], "time": [0, 20, 40, 60]})
            (out / f"{g}_seed{s}").mkdir(parents=True)
            ds.to_netcdf(out / f"{g}_seed{s}" / "areas_information.nc")


def test_gather_and_ff_panel(script, tmp_path):
    colors = {"dale": 0.6, "dale_ff0.5": 0.5, "dale_ff1.0": 0.3, "nodale": 0.65, "nodale_ff1.0": 0.66}
    _write_runs(tmp_path, colors)
    ds = script.gather(tmp_path)
    assert list(ds.group.values) == [g for g in script.GROUPS if g in colors]
    assert ds.sizes["seed"] == 3
    resp = ds["information"].isel(time=-1)

    from matplotlib.figure import Figure

    ax = Figure().subplots()
    assert script.plot_ff(ax, resp, "area3", "color", ceiling=0.729) is ax
    lines = {ln.get_label(): ln for ln in ax.lines}
    # one mean line per law, at the right ff and value (seed offsets 0, .01, .02: mean + 0.01)
    dale = next(c for c in ax.containers if c.get_label().startswith("Dale"))
    x, y = (np.asarray(v, float) for v in dale.lines[0].get_data())
    np.testing.assert_allclose(x, [0.1 - 0.015, 0.5 - 0.015, 1.0 - 0.015])
    np.testing.assert_allclose(y, [0.61, 0.51, 0.31])
    nodale = next(c for c in ax.containers if c.get_label().startswith("no Dale"))
    x, y = (np.asarray(v, float) for v in nodale.lines[0].get_data())
    np.testing.assert_allclose(x, [0.1 + 0.015, 1.0 + 0.015])  # no ff 0.5 runs of the control
    np.testing.assert_allclose(y, [0.66, 0.67])
    assert "ideal observer" in lines
    assert ax.get_xlabel() and "bits" in ax.get_ylabel()

    fig = script.ff_figure(resp, ceiling=0.729)
    assert len(fig.axes) == 6
    fig.savefig(tmp_path / "ff.png")
    assert (tmp_path / "ff.png").stat().st_size > 0


@pytest.mark.filterwarnings("ignore:.*did not converge.*:RuntimeWarning")  # 84 trials, 3,000 SGD iterations
def test_final_activity_and_authors_decoders(script, tmp_path):
    """A tiny trained 3-area net is re-recorded from its final weights on a larger probe set and decoded
    per area by the authors' SGD decoders and linear-raw."""
    import torch

    from decisionnets.config import load_config
    from decisionnets.io import open_activations
    from decisionnets.training import train

    torch.set_num_threads(1)
    tiny = ["model.area_size=10", "epochs=1", "n_trials=96", "batch_size=16", "n_per_condition=1",
            "env.timing={fixation = 40, targets = [\"uniform\", [100, 200]], stimulus = 100, decision = 60}"]
    run = tmp_path / "dale_seed0"
    train(load_config("color-direction-3area", overrides=tiny, seed=0), run, progress=False)

    ds = script.final_activity(run, n_per_condition=3, probe_seed=1)
    assert ds.sizes["trial"] == 3 * 28  # 14 coherences x 2 configurations
    assert {"area1", "area2", "area3"} <= set(ds.data_vars)
    # the final weights' activity on the training probe set equals the recorded last epoch
    same = script.final_activity(run, n_per_condition=1, probe_seed=0)
    rec = open_activations(run).sel(epoch=1)
    np.testing.assert_allclose(same["area3"].isel(epoch=0).values, rec["area3"].values, atol=1e-6)
    # and the rebuilt untrained network's equals the recorded epoch 0
    init = script.final_activity(run, n_per_condition=1, probe_seed=0, weights="init")
    rec0 = open_activations(run).sel(epoch=0)
    np.testing.assert_allclose(init["area3"].isel(epoch=0).values, rec0["area3"].values, atol=1e-6)
    assert not np.allclose(init["area3"].values, same["area3"].values)

    # every run under OUT (sgd-mlp left out: the slowest, and fitted by the same code path)
    assert script.main(["authors", str(tmp_path), "--per-condition", "3", "--decoders", "sgd-linear",
                        "linear-raw"]) is None
    out = xr.load_dataset(run / "areas_information_final.nc")
    assert out["information"].dims == ("decoder", "area", "variable")
    assert set(out.decoder.values) == {"sgd-linear", "linear-raw"}
    assert np.isfinite(out["information"].values).all()
    assert out.attrs["n_trials"] == 84
