"""Figure functions: ax in, ax out, labelled axes, legends, tolerant titles."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure

from decisionnets import plots


def info_da(n_epoch=4, n_time=6):
    rng = np.random.default_rng(0)
    periods = ["fixation", "targets", "stimulus", "stimulus", "decision", "decision"][:n_time]
    return xr.DataArray(
        rng.random((2, n_epoch, n_time)),
        dims=("variable", "epoch", "time"),
        coords={"variable": ["color", "direction"], "epoch": np.arange(n_epoch) * 2,
                "time": np.arange(n_time) * 20.0, "time_period": ("time", periods)},
        name="information",
    )


def new_ax():
    return Figure().subplots()


def test_information_vs_epoch_period_mean_and_labels():
    info = info_da()
    ax = new_ax()
    assert plots.plot_information_vs_epoch(ax, info, period="stimulus", spread=info * 0.1) is ax
    assert ax.get_xlabel() == "training epoch"
    assert "bits" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["color", "direction"]
    y = ax.lines[0].get_ydata()
    np.testing.assert_allclose(y, info.sel(variable="color").isel(time=[2, 3]).mean("time"))


def test_information_vs_epoch_unknown_period_raises():
    with pytest.raises(ValueError, match="period 'reward' not found"):
        plots.plot_information_vs_epoch(new_ax(), info_da(), period="reward")


def test_information_vs_time_and_cross_temporal():
    info = info_da()
    ax = plots.plot_information_vs_time(new_ax(), info, variable="direction")
    assert ax.get_xlabel() == "time in trial (ms)"
    assert len(ax.get_legend().get_texts()) == 4
    ct = xr.DataArray(np.eye(3), dims=("train_time", "test_time"),
                      coords={"train_time": [0.0, 10, 20], "test_time": [0.0, 10, 20]})
    ax = plots.plot_cross_temporal(new_ax(), ct)
    assert ax.get_xlabel() == "test time (ms)" and ax.get_ylabel() == "train time (ms)"


def test_learning_curve_and_psychometric():
    e = np.arange(5)
    loss = xr.DataArray(np.linspace(0.7, 0.1, 5), dims="epoch", coords={"epoch": e})
    acc = xr.DataArray(np.linspace(0.5, 1, 5), dims="epoch", coords={"epoch": e})
    ax = plots.plot_learning_curve(new_ax(), loss, acc)
    assert "loss" in ax.get_ylabel() and "accuracy" in ax.right_ax.get_ylabel()
    p = xr.DataArray(np.tile([0.1, 0.4, 0.6, 0.9], (5, 1)), dims=("epoch", "evidence"),
                     coords={"epoch": e, "evidence": [-0.5, -0.1, 0.1, 0.5]})
    ax = plots.plot_psychometric(new_ax(), p)
    assert ax.get_ylabel() == "P(choice = right)"
    assert ax.get_legend() is not None


@pytest.mark.parametrize(
    "attrs, expected",
    [
        ({"task": "color-direction", "config": json.dumps({"train": {"lr": 0.05, "batch_size": 32}})},
         "color-direction | lr=0.05 | batch=32"),
        ({"task": "t"}, "t"),
        ({"config": "not json"}, "run"),
    ],
)
def test_run_title_is_tolerant(attrs, expected):
    assert plots.run_title(attrs) == expected


def test_information_figures_draw_the_ceiling_as_a_dashed_labelled_line():
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    import xarray as xr

    from decisionnets import plots

    info = xr.DataArray(np.full((3, 4), 0.3), dims=("variable", "epoch"),
                        coords={"variable": ["color", "direction", "choice"], "epoch": [0, 1, 2, 3]})
    ceiling = xr.DataArray([0.676, 0.676, np.nan], dims="variable", coords={"variable": info["variable"]})
    fig = matplotlib.figure.Figure()
    ax = plots.plot_information_vs_epoch(fig.subplots(), info, ceiling=ceiling)
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(dashed) == 1 and dashed[0].get_label() == "ceiling" and dashed[0].get_ydata()[0] == 0.676
    assert "ceiling" in [t.get_text() for t in ax.get_legend().get_texts()]
    timed = xr.DataArray(np.full((2, 5), 0.2), dims=("epoch", "time"), coords={"epoch": [0, 1], "time": np.arange(5.0)})
    ax = plots.plot_information_vs_time(fig.subplots(), timed, ceiling=0.5)
    assert [ln.get_ydata()[0] for ln in ax.get_lines() if ln.get_linestyle() == "--"] == [0.5]
    ax = plots.plot_information_vs_epoch(fig.subplots(), info)  # no ceiling given: none drawn
    assert not [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]


# --- colours and labels from the task's declarations --------------------------------------------
def test_label_colors_follow_the_tasks_declarations():
    # declared colours first; the other declared labels by their place in decode_labels; choice fixed
    attrs = {"decode_labels": json.dumps(["a", "b", "c"]), "label_colors": json.dumps({"b": "tab:olive"})}
    got = plots.label_colors(attrs, ["a", "b", "c", "choice", "extra"])
    assert got == {"a": plots.LABEL_PALETTE[0], "b": "tab:olive", "c": plots.LABEL_PALETTE[2],
                   "choice": plots.CHOICE_COLOR, "extra": plots.LABEL_PALETTE[3]}
    # nothing declared (e.g. recorded neurons): the palette in the variables' order
    assert plots.label_colors({}, ["x", "choice", "y"]) == {"x": "tab:red", "choice": "tab:purple", "y": "tab:blue"}


def test_a_drawn_subset_keeps_each_variables_colour():
    from matplotlib.colors import to_hex

    info = info_da()
    ax = plots.plot_information_vs_epoch(new_ax(), info, variables=["direction"], colors={"direction": "tab:green"})
    assert [to_hex(ln.get_color()) for ln in ax.get_lines()[:1]] == [to_hex("tab:green")]
    ax = plots.plot_information_vs_epoch(new_ax(), info, variables=["direction"])  # 2nd of the array's variables
    assert to_hex(ax.get_lines()[0].get_color()) == to_hex(plots.LABEL_PALETTE[1])


def _info_ds(decode_labels=("color", "direction", "target_config"), colors=None):
    rng = np.random.default_rng(1)
    names = [*decode_labels, "choice"]
    attrs = {"task": "t", "decode_labels": json.dumps(list(decode_labels))}
    if colors is not None:
        attrs["label_colors"] = json.dumps(colors)
    return xr.Dataset({"information": (("layer", "variable", "epoch"), rng.random((1, len(names), 3))),
                       "information_sd": (("layer", "variable", "epoch"), np.zeros((1, len(names), 3)))},
                      coords={"layer": ["hidden"], "variable": names, "epoch": [0, 1, 2]}, attrs=attrs)


def test_run_figures_and_the_demo_figure_use_the_declared_colours_and_labels():
    from matplotlib.colors import to_hex

    colors = {"color": "tab:red", "direction": "tab:blue", "target_config": "tab:green"}
    info = _info_ds(colors=colors)
    (name, fig), *_ = plots.run_figures(info)
    ax = fig.axes[0]
    drawn = {ln.get_label(): to_hex(ln.get_color()) for ln in ax.get_lines() if not ln.get_label().startswith("_")}
    assert drawn == {**{k: to_hex(v) for k, v in colors.items()}, "choice": to_hex("tab:purple")}
    fig = plots.demo_figure([_info_ds(("b", "a"), colors={"a": "tab:cyan"})])  # default: the declared labels
    drawn = {ln.get_label(): to_hex(ln.get_color()) for ln in fig.axes[0].get_lines()
             if not ln.get_label().startswith("_")}
    assert drawn == {"b": to_hex("tab:red"), "a": to_hex("tab:cyan")}  # no choice; b is decode_labels[0]


def test_psychometric_axis_label_is_the_evidence_coords_long_name():
    e = np.arange(2)
    p = xr.DataArray(np.tile([0.2, 0.8], (2, 1)), dims=("epoch", "evidence"),
                     coords={"epoch": e, "evidence": ("evidence", [-0.5, 0.5], {"long_name": "signed motion"})})
    assert plots.plot_psychometric(new_ax(), p).get_xlabel() == "signed motion"
    assert plots.plot_psychometric(new_ax(), p.drop_vars("evidence")
                                   .assign_coords(evidence=[-0.5, 0.5])).get_xlabel() == "evidence toward the right choice"


def test_the_choice_vs_stimulus_figure_is_named_after_the_stimulus():
    info = _info_ds(("target",))
    info["error_information"] = (("layer", "error_variable", "epoch"), np.zeros((1, 2, 3)))
    info = info.assign_coords(error_variable=["target", "choice"])
    names = [n for n, _ in plots.run_figures(info)]
    assert "choice_vs_target.png" in names and not any("direction" in n for n in names)
