"""decisionnets.sweep.figures: the panels of a planted summary (lines, means, error bars, files)."""

import matplotlib
import numpy as np
import pytest
import xarray as xr

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from decisionnets.sweep.figures import plot_final_vs, plot_information_vs_epoch, plot_summary  # noqa: E402

LR, BATCH, EPOCHS = [0.1, 0.01], [16, 128], [0, 1, 2]


def _summary():
    """information = lr + batch/1000 + epoch/10 + seed/100 (bits) about color; speed is 0; a ceiling of 0.8."""
    lr, b, s, e = np.meshgrid(LR, BATCH, [0, 1], EPOCHS, indexing="ij")
    color = lr + b / 1000 + e / 10 + s / 100
    info = np.stack([color, np.zeros_like(color)], axis=3)  # (lr, batch_size, seed, variable, epoch)
    steps = e * (360 // b)
    return xr.Dataset(
        {"information": (("lr", "batch_size", "seed", "variable", "epoch"), info),
         "status": (("lr", "batch_size", "seed"), np.full((2, 2, 2), "completed")),
         "step": (("lr", "batch_size", "seed", "epoch"), steps),
         "ceiling": (("lr", "batch_size", "variable"), np.tile([0.8, np.nan], (2, 2, 1)))},
        coords={"lr": LR, "batch_size": BATCH, "seed": [0, 1], "variable": ["color", "speed"], "epoch": EPOCHS},
        attrs={"decode_labels": '["color", "speed"]'})


def test_information_vs_epoch_one_line_per_regime_at_the_seed_mean():
    ax = plot_information_vs_epoch(Figure().subplots(), _summary())
    lines = ax.get_lines()
    assert [ln.get_label() for ln in lines[:4]] == ["lr=0.1, batch_size=16", "lr=0.1, batch_size=128",
                                                    "lr=0.01, batch_size=16", "lr=0.01, batch_size=128"]
    np.testing.assert_allclose(lines[0].get_xdata(), [0.5, 1, 2])  # epoch 0 drawn at 0.5 on the log axis
    np.testing.assert_allclose(lines[0].get_ydata(), 0.1 + 0.016 + np.array([0, 0.1, 0.2]) + 0.005)
    assert lines[4].get_label() == "Bayes ceiling" and lines[4].get_ydata()[0] == 0.8
    assert ax.get_ylabel() == "color information (bits)" and ax.get_xscale() == "log"


def test_information_vs_step_uses_the_sgd_steps_and_no_ceiling_where_unknown():
    ax = plot_information_vs_epoch(Figure().subplots(), _summary(), variable="speed", x="step")
    np.testing.assert_allclose(ax.get_lines()[1].get_xdata(), [1, 2, 4])  # batch 128: 2 steps an epoch, 0 at 1
    assert len(ax.get_lines()) == 4  # the speed ceiling is NaN: not drawn
    with pytest.raises(ValueError, match="x must be 'epoch' or 'step'; got 'time'"):
        plot_information_vs_epoch(Figure().subplots(), _summary(), x="time")


def test_final_vs_a_dim_one_line_per_other_dim_sorted_with_seed_sd():
    ax = plot_final_vs(Figure().subplots(), _summary(), "lr", line_dim="batch_size")
    lines = ax.get_lines()
    assert [c.get_label() for c in ax.containers] == ["batch_size=16", "batch_size=128"]
    np.testing.assert_allclose(lines[0].get_xdata(), [0.01, 0.1])  # sorted
    np.testing.assert_allclose(lines[0].get_ydata(), np.array([0.01, 0.1]) + 0.016 + 0.2 + 0.005)
    sd = np.std([0.0, 0.01])  # two seeds 0.01 apart (population s.d., as xarray's std)
    segments = ax.containers[0][2][0].get_segments()
    assert [s[1, 1] - s[0, 1] for s in segments] == pytest.approx([2 * sd, 2 * sd])
    assert ax.get_xlabel() == "lr" and ax.get_ylabel() == "final color information (bits)"
    fixed = plot_final_vs(Figure().subplots(), _summary(), "lr", fixed={"batch_size": 128})
    assert len(fixed.containers) == 1
    np.testing.assert_allclose(fixed.get_lines()[0].get_ydata(), np.array([0.01, 0.1]) + 0.128 + 0.205)


def test_plot_summary_writes_one_file_per_figure(tmp_path):
    paths = plot_summary(_summary(), tmp_path / "figures")
    assert sorted(p.name for p in paths) == ["color_vs_batch_size.png", "color_vs_lr.png",
                                             "information_vs_epoch.png", "information_vs_step.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)
    assert plot_summary(_summary().drop_vars("information"), tmp_path / "none") == []
