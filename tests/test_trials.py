import numpy as np
import pytest

from decisionnets.trials import TrialBatch, common_period


def test_common_period_only_for_shared_timing():
    same = np.array([["a", "a"], ["b", "b"]])
    np.testing.assert_array_equal(common_period(same), ["a", "b"])
    assert common_period(np.array([["", "a"], ["b", "b"]])) is None


def test_trial_batch_validates_shapes():
    with pytest.raises(ValueError, match="targets must have shape"):
        TrialBatch(np.zeros((3, 2, 1), np.float32), np.zeros((3, 3), np.int64), np.zeros((3, 2), np.float32))
