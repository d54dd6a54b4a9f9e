"""choice_vs_stimulus: the task-neutral name of the choice-vs-direction analysis on error trials."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import decisionnets as dn
from decisionnets.envs.color_direction_analyses import choice_vs_direction
from decisionnets.errors import UserError


def _ds(stimulus="direction", n=200, seed=0):
    """One epoch, no time: unit 0 carries the choice, unit 1 the stimulus; 25 % errors."""
    rng = np.random.default_rng(seed)
    stim = rng.integers(0, 2, n)
    choice = np.where(rng.random(n) < 0.25, 1 - stim, stim)
    act = rng.standard_normal((1, n, 4)).astype(np.float32)
    act[0, :, 0] += 3.0 * (2 * choice - 1)
    act[0, :, 1] += 3.0 * (2 * stim - 1)
    return xr.Dataset({"hidden": (("epoch", "trial", "unit"), act), "choice": (("epoch", "trial"), choice[None])},
                      coords={"epoch": [3], "trial": np.arange(n), stimulus: ("trial", stim)},
                      attrs={"target": stimulus})


def test_any_stimulus_name_and_the_old_name_agree():
    side = _ds("side")
    out = dn.choice_vs_stimulus(side["hidden"], side, folds=3)
    assert list(out["error_variable"].values) == ["choice", "side"]
    assert (out["error_information"] > 0.5).all()  # both coded by their own unit on the balanced errors
    old = _ds("direction")
    same = choice_vs_direction(old["hidden"], old, folds=3)
    np.testing.assert_allclose(same["error_information"].values, out["error_information"].values)


def test_a_missing_stimulus_is_named():
    ds = _ds("side")
    with pytest.raises(UserError, match=r"needs 'coherence'"):
        dn.choice_vs_stimulus(ds["hidden"], ds, stimulus="coherence", folds=3)


def test_the_default_stimulus_is_the_declared_target_and_without_one_it_is_asked_for():
    ds = _ds("side")
    np.testing.assert_allclose(dn.choice_vs_stimulus(ds["hidden"], ds, folds=3)["error_information"].values,
                               dn.choice_vs_stimulus(ds["hidden"], ds, stimulus="side", folds=3)["error_information"].values)
    ds.attrs.pop("target")
    with pytest.raises(UserError, match="declares no target.*stimulus=NAME"):
        dn.choice_vs_stimulus(ds["hidden"], ds, folds=3)
