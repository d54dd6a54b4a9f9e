"""decisionnets.representation._data: what the representation analyses read from an activation dataset.

The module is private to :mod:`decisionnets.representation` (its functions are public names
within it); it is tested here directly, under its name without the underscore.
"""

import json

import numpy as np
import pytest
import xarray as xr

from decisionnets.errors import DataFileError, UserError
from decisionnets.representation._data import (ALL_PERIOD, default_labels, label_matrix, layer_array, layer_names,
                                               period_groups, with_epoch)


def _ds(epochs=(0, 5)):
    """2 epochs x 4 trials x 3 time steps (fixation, stimulus, stimulus) x 2 units; activity = planted index."""
    E, N, T, U = len(epochs), 4, 3, 2
    act = np.arange(E * N * T * U, dtype=float).reshape(E, N, T, U)
    return xr.Dataset(
        {"hidden": (("epoch", "trial", "time", "unit"), act),
         "readout": (("epoch", "trial", "readout_unit"), act[:, :, -1, :1]),
         "color": ("trial", [0, 1, -1, 1]),
         "direction": ("trial", [1, 0, 1, 0]),
         "choice": (("epoch", "trial"), [[0, 0, 1, -1], [1, 1, 0, 0]]),
         "catch": ("trial", [0, 0, 0, 1])},
        coords={"epoch": list(epochs), "period": ("time", ["fixation", "stimulus", "stimulus"])},
        attrs={"decode_labels": json.dumps(["direction", "color", "not_recorded"])})


def test_with_epoch_gives_a_dataset_without_epochs_epoch_0():
    ds = _ds().isel(epoch=1, drop=True)
    out = with_epoch(ds)
    assert out["hidden"].dims[0] == "epoch" and out["epoch"].values.tolist() == [0]
    np.testing.assert_array_equal(out["hidden"].values[0], ds["hidden"].values)
    assert out["color"].dims == ("trial",)  # labels are left as they are
    recorded = _ds()
    assert with_epoch(recorded) is recorded  # a dataset with epochs is returned as it is


def test_layer_names_checks_against_the_recorded_layers():
    ds = _ds()
    assert layer_names(ds, None) == ["hidden", "readout"] == layer_names(ds, [])
    assert layer_names(ds, "readout") == ["readout"]
    with pytest.raises(UserError, match="layer 'output' was not recorded; recorded: hidden, readout"):
        layer_names(ds, ["hidden", "output"])
    with pytest.raises(DataFileError, match="no activation variable"):
        layer_names(ds[["color"]], None)


def test_default_labels_are_the_declared_trial_labels_present():
    assert default_labels(_ds()) == ["direction", "color"]
    undeclared = _ds()
    del undeclared.attrs["decode_labels"]
    assert "choice" not in default_labels(undeclared) and "color" in default_labels(undeclared)
    with pytest.raises(UserError, match="declares no trial label"):
        default_labels(_ds()[["hidden"]].assign_attrs(decode_labels='["color"]'))


def test_label_matrix_leaves_out_negative_labels_and_catch_trials():
    m = label_matrix(_ds(), ["color", "choice"])
    assert m.shape == (2, 4, 2)
    nan = np.nan
    np.testing.assert_array_equal(m[..., 0], [[0, 1, nan, nan], [0, 1, nan, nan]])  # -1 and the catch trial
    np.testing.assert_array_equal(m[..., 1], [[0, 0, 1, nan], [1, 1, 0, nan]])  # per epoch
    kept = label_matrix(_ds(), ["color"], exclude_catch=False)
    assert kept[0, 3, 0] == 1


@pytest.mark.parametrize("name, match", [("speed", "'speed' is not in the activation dataset"),
                                         ("hidden", "must have dims \\(trial\\) or \\(epoch, trial\\)")])
def test_label_matrix_names_what_is_wrong(name, match):
    with pytest.raises(UserError, match=match):
        label_matrix(_ds(), [name])


def test_period_groups_in_order_of_first_appearance():
    groups = period_groups(_ds())
    assert [g[0] for g in groups] == ["fixation", "stimulus"]
    assert [g[1].tolist() for g in groups] == [[0], [1, 2]]
    no_period = period_groups(_ds().drop_vars("period"))
    assert no_period[0][0] == ALL_PERIOD and no_period[0][1].tolist() == [0, 1, 2]
    assert period_groups(_ds()[["readout"]]) == [(ALL_PERIOD, None)]


def test_layer_array_is_epoch_trial_time_unit():
    ds = _ds()
    a = layer_array(ds.transpose("unit", "time", "trial", "epoch", ...), "hidden")
    np.testing.assert_array_equal(a, ds["hidden"].values)
    r = layer_array(ds, "readout", dtype=np.float32)
    assert r.shape == (2, 4, 1, 1) and r.dtype == np.float32
    ds["hidden"][0, 0, 0, 0] = np.inf
    with pytest.raises(UserError, match="non-finite"):
        layer_array(ds, "hidden")
