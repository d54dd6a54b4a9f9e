import numpy as np
import pytest

from decisionnets.trials import TrialBatch, common_period, condition_grid


def test_condition_grid_is_balanced():
    g = condition_grid({"a": [0, 1], "b": [5, 6, 7]}, 3)
    assert len(g["a"]) == 18
    pairs = list(zip(g["a"], g["b"]))
    assert all(pairs.count(p) == 3 for p in set(pairs)) and len(set(pairs)) == 6


def test_common_period_only_for_shared_timing():
    same = np.array([["a", "a"], ["b", "b"]])
    np.testing.assert_array_equal(common_period(same), ["a", "b"])
    assert common_period(np.array([["", "a"], ["b", "b"]])) is None


def test_names_that_moved_still_resolve():
    import decisionnets.trials as trials
    from decisionnets.envs import make_env
    from decisionnets.task import EnvTask as Moved

    assert trials.EnvTask is Moved and trials.make_env is make_env
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        trials.nope  # noqa: B018


def test_trial_batch_validates_shapes():
    with pytest.raises(ValueError, match="targets must have shape"):
        TrialBatch(np.zeros((3, 2, 1), np.float32), np.zeros((3, 3), np.int64), np.zeros((3, 2), np.float32))
