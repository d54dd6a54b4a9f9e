"""Unit selectivity on synthetic populations whose selectivity is planted."""

import json

import numpy as np
import pytest
import xarray as xr

from decisionnets.errors import UserError
from decisionnets.representation.selectivity import CLASSES, benjamini_hochberg, plot_selectivity, selectivity

N_TRIALS = 160
# unit -> (color gain, direction gain); None = a unit that is exactly zero
PLANTED = [(1.5, 0.0)] * 4 + [(0.0, 1.5)] * 4 + [(1.5, 1.5)] * 4 + [(0.0, 0.0)] * 6 + [None] * 2
EXPECTED = ["pure"] * 8 + ["mixed"] * 4 + ["none"] * 6 + ["silent"] * 2


def _labels(rng, n=N_TRIALS):
    color = np.repeat([0, 1], n // 2)
    direction = np.tile(np.repeat([0, 1], n // 4), 2)
    return color, direction


def _dataset(planted, *, seed=0, epochs=(0, 3), time=True, shuffle_labels=False):
    """An activation dataset (epoch, trial, time, unit) whose units follow ``planted``; periods a, b."""
    rng = np.random.default_rng(seed)
    color, direction = _labels(rng)
    T = 4 if time else 1
    act = np.zeros((len(epochs), N_TRIALS, T, len(planted)))
    for u, gains in enumerate(planted):
        if gains is None:
            continue
        drive = gains[0] * (2 * color - 1) + gains[1] * (2 * direction - 1)
        act[..., u] = drive[None, :, None] + rng.normal(size=(len(epochs), N_TRIALS, T))
    if shuffle_labels:
        color, direction = rng.permutation(color), rng.permutation(direction)
    coords = {"epoch": list(epochs), "trial": np.arange(N_TRIALS), "color": ("trial", color),
              "direction": ("trial", direction)}
    dims = ("epoch", "trial", "time", "unit")
    if time:
        coords["time"] = np.arange(T) * 20.0
        coords["period"] = ("time", ["a", "a", "b", "b"])
        hidden = (dims, act)
    else:
        hidden = (("epoch", "trial", "unit"), act[:, :, 0])
    return xr.Dataset({"hidden": hidden}, coords=coords, attrs={"decode_labels": json.dumps(["color", "direction"])})


def test_planted_classes_and_counts():
    r = selectivity(_dataset(PLANTED), n_permutations=100)
    assert r["unit_class"].dims == ("epoch", "period", "unit")
    assert r["p_value"].dims == ("epoch", "period", "unit", "variable")
    for e in r["epoch"].values:
        for p in r["period"].values:
            assert list(r["unit_class"].sel(epoch=e, period=p).values) == EXPECTED
    sig = r["significant"].sel(epoch=3, period="b")
    assert sig.sel(variable="color").values[:4].all() and not sig.sel(variable="direction").values[:4].any()
    assert not sig.sel(variable="color").values[4:8].any() and sig.sel(variable="direction").values[4:8].all()
    counts = r["class_count"].sel(layer="hidden", epoch=0, period="a")
    assert dict(zip(CLASSES, counts.values.tolist())) == {"pure": 8, "mixed": 4, "none": 6, "silent": 2}
    np.testing.assert_allclose(r["class_fraction"].sum("class"), 1.0)
    assert np.isnan(r["p_value"].isel(unit=-1)).all()  # silent units are not tested


def test_shuffled_labels_give_at_most_the_false_positive_rate():
    planted = [(1.5, 1.5)] * 60
    r = selectivity(_dataset(planted, shuffle_labels=True, seed=1), n_permutations=100)
    # uncorrected: the permutation test is calibrated (5 % expected below 0.05)
    assert float((r["p_value"] < 0.05).mean()) <= 0.1
    # corrected: no selectivity
    assert float(r["selective_fraction"].max()) <= 0.1
    assert float(r["class_fraction"].sel({"class": "none"}).min()) >= 0.9


def test_seeded_and_recorded_neurons_without_epoch_or_time():
    ds = _dataset(PLANTED, time=False).isel(epoch=0, drop=True)
    a = selectivity(ds, n_permutations=400, alpha=0.01, seed=3)
    b = selectivity(ds, n_permutations=400, alpha=0.01, seed=3)
    xr.testing.assert_identical(a, b)
    assert a.sizes["epoch"] == 1 and list(a["period"].values) == ["all"]
    assert list(a["unit_class"].isel(epoch=0, period=0).values) == EXPECTED


def test_a_label_the_others_determine_is_untestable():
    ds = _dataset(PLANTED[:12])
    ds = ds.assign_coords(copy=("trial", ds["direction"].values))
    r = selectivity(ds, variables=["color", "direction", "copy"], n_permutations=20)
    assert np.isnan(r["f_statistic"].sel(variable=["direction", "copy"])).all()
    assert not r["significant"].sel(variable=["direction", "copy"]).any()


def test_benjamini_hochberg_matches_hand_computation():
    p = np.array([0.01, 0.04, 0.03, 0.5, np.nan])
    # sorted 0.01, 0.03, 0.04, 0.5 times m/rank = 0.04, 0.06, 0.0533, 0.5 -> monotone 0.04, 0.0533, 0.0533, 0.5
    np.testing.assert_allclose(benjamini_hochberg(p), [0.04, 0.16 / 3, 0.16 / 3, 0.5, np.nan])


def test_bad_options_and_plot():
    ds = _dataset(PLANTED[:3])
    with pytest.raises(UserError, match="n_permutations"):
        selectivity(ds, n_permutations=0)
    with pytest.raises(UserError, match="layer 'nope' was not recorded"):
        selectivity(ds, layers=["nope"])
    r = selectivity(ds, n_permutations=10)
    ax = plot_selectivity(r)
    assert len(ax.get_lines()) == len(CLASSES)
