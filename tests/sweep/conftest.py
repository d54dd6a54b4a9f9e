"""Shared by the sweep tests: a tiny config and a spec built on the static color-direction preset."""

import pytest

from decisionnets import sweep

TINY = {"train.epochs": 2, "train.n_trials": 200, "model.hidden_sizes": [8], "record.n_per_condition": 2,
        "record.schedule": "all"}


@pytest.fixture
def tiny_set():
    """Overrides that make a color-direction-static run train in about a second."""
    return dict(TINY)


@pytest.fixture
def sweep_spec():
    """A factory: a SweepSpec on ``color-direction-static`` with the given ``[sweep]`` table."""

    def make(**sweep_table):
        return sweep.parse_spec({"description": "t", "sweep": {"base": "color-direction-static", **sweep_table}})

    return make
