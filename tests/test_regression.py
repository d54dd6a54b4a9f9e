"""Pinned numbers: a tiny fixed run's activations and information.nc must not drift.

``tests/data/regression_run.json`` was written by ``tests/data/make_regression_run.py`` (first with
the code before the issue-14 refactor, which the refactor reproduced exactly; then for
the L-BFGS decoder solver and for its L2 path search, see that script); the same runs trained and analyzed by the current code
must give the same numbers (same seed, one thread, CPU).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"


def _maker():
    spec = importlib.util.spec_from_file_location("make_regression_run", DATA / "make_regression_run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("preset", ["color-direction", "color-direction-static"])
def test_tiny_run_and_its_analysis_are_unchanged(tmp_path, preset):
    maker = _maker()
    pinned = json.loads((DATA / "regression_run.json").read_text())[preset]
    now = maker.run_numbers(preset, maker.RUNS[preset], tmp_path)
    assert sorted(now) == sorted(pinned)
    assert now["variables"] == pinned["variables"]
    assert now["choice"] == pinned["choice"]
    for key in sorted(set(pinned) - {"variables", "choice"}):
        np.testing.assert_allclose(np.asarray(now[key]), np.asarray(pinned[key]), rtol=1e-6, atol=1e-9,
                                   err_msg=f"{preset}: {key} changed")
