"""decisionnets.agents.behaviour: psychometric and chronometric curves of a planted rollout."""

import matplotlib
import numpy as np
import pytest
import xarray as xr

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from decisionnets.agents.behaviour import (accuracy_by_evidence, behaviour_summary, chronometric,  # noqa: E402
                                           plot_accuracy, plot_chronometric)

NAN = np.nan


def _rollout(epochs=False):
    """Eight trials at coherences -0.5, 0.2 and 0.5 with planted outcomes and reaction times (ms)."""
    coherence = [-0.5, -0.5, 0.2, 0.2, 0.2, 0.5, 0.5, 0.5]
    correct = [1, 0, 1, 1, 0, 1, 1, 0]
    rt = [300.0, 500.0, 400.0, 600.0, 700.0, 200.0, 300.0, NAN]  # the last trial made no reach
    responded = [1, 1, 1, 1, 1, 1, 1, 0]
    ds = xr.Dataset({"correct": ("trial", correct), "reaction_time": ("trial", rt),
                     "responded": ("trial", responded)}, coords={"coherence": ("trial", coherence)})
    if epochs:  # an earlier epoch of nonsense before the planted last one
        ds = xr.concat([xr.full_like(ds, 0).assign_coords(coherence=ds["coherence"]), ds], dim="epoch")
        ds["coherence"] = ("trial", coherence)
    return ds


@pytest.mark.parametrize("epochs", [False, True])
def test_chronometric_mean_rt_per_outcome_and_coherence(epochs):
    rt = chronometric(_rollout(epochs), "coherence")
    assert rt.dims == ("outcome", "coherence") and rt["coherence"].values.tolist() == [-0.5, 0.2, 0.5]
    np.testing.assert_allclose(rt.sel(outcome="correct").values, [300.0, 500.0, 250.0])
    np.testing.assert_allclose(rt.sel(outcome="error").values, [500.0, 700.0, NAN])  # no reach: left out
    assert rt["n_trials"].values.tolist() == [[1, 2, 2], [1, 1, 0]]
    assert rt.attrs["units"] == "ms"


def test_accuracy_counts_no_reach_as_wrong():
    acc = accuracy_by_evidence(_rollout(), "coherence")
    np.testing.assert_allclose(acc.values, [0.5, 2 / 3, 2 / 3])
    assert acc["coherence"].values.tolist() == [-0.5, 0.2, 0.5]


def test_summary_of_a_planted_rollout():
    s = behaviour_summary(_rollout(), "coherence")
    assert s["accuracy"] == 5 / 8 and s["reach_rate"] == 7 / 8 and s["n_trials"] == 8
    assert s["mean_reaction_time_ms"] == pytest.approx(3000 / 7)
    coh, rt = np.array([0.5, 0.2, 0.2, 0.5, 0.5]), np.array([300.0, 400.0, 600.0, 200.0, 300.0])
    assert s["corr_abs_coherence_rt_correct"] == pytest.approx(np.corrcoef(coh, rt)[0, 1])
    assert s["corr_abs_coherence_rt_correct"] < 0  # easier trials are faster here


def test_plots_draw_on_the_given_axes_and_return_them():
    ds = _rollout()
    ax = Figure().subplots()
    assert plot_chronometric(ax, chronometric(ds, "coherence", long_name="signed evidence (a.u.)")) is ax
    assert ax.get_xlabel() == "signed evidence (a.u.)"  # the task's axis label, kept on the coord
    assert [line.get_label() for line in ax.get_lines()[:2]] == ["correct", "error"]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [300.0, 500.0, 250.0])
    ax = Figure().subplots()
    assert plot_accuracy(ax, accuracy_by_evidence(ds, "coherence"), ceiling={0.5: 0.9, -0.5: 0.8}) is ax
    assert ax.get_xlabel() == "signed coherence"  # no axis label declared: the variable's name
    agent, ceiling = ax.get_lines()[:2]
    np.testing.assert_allclose(ceiling.get_xdata(), [-0.5, 0.5])
    np.testing.assert_allclose(ceiling.get_ydata(), [0.8, 0.9])
    assert agent.get_label() == "agent" and ax.get_title() == "accuracy"


def test_summary_without_evidence_has_no_correlation():
    s = behaviour_summary(_rollout())
    assert s["accuracy"] == 5 / 8 and not any(k.startswith("corr_") for k in s)


def test_the_curves_take_any_evidence_variable():
    ds = _rollout().rename(coherence="evidence")
    assert accuracy_by_evidence(ds, "evidence").dims == ("evidence",)
    assert chronometric(ds, "evidence").dims == ("outcome", "evidence")
