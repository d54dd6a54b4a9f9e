"""The gallery scripts in examples/ run on tiny settings (DECISIONNETS_EXAMPLE_QUICK=1, Agg backend)."""

from __future__ import annotations

import runpy
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setenv("DECISIONNETS_EXAMPLE_QUICK", "1")
    yield
    plt.close("all")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # tiny probe sets: unreliable-estimate warnings
def test_own_training_loop_is_recorded_and_analyzed(quick):
    import decisionnets as dn

    ns = runpy.run_path(str(EXAMPLES / "plot_own_training_loop.py"), run_name="__main__")
    run = dn.open_run(ns["run_dir"])
    assert run.recorded_epochs() == list(range(ns["EPOCHS"] + 1)) and run.status["status"] == "completed"
    info = run.information()
    assert set(info["variable"].values) >= {"color", "direction", "target_config"}
    assert list(info["epoch"].values) == run.recorded_epochs()
    assert plt.get_fignums()  # it ends in a figure


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_own_env_is_a_probe_source(quick):
    ns = runpy.run_path(str(EXAMPLES / "plot_own_env.py"), run_name="__main__")
    info = ns["info"]
    assert info.dims == ("variable", "epoch", "time") and list(info["variable"].values) == ["side", "loud"]
    # the side is unknowable before the first pulse and carried by the units once pulses arrived
    assert float(info.sel(variable="side").isel(time=0).max()) < 0.2
    assert float(info.sel(variable="side", epoch=ns["EPOCHS"]).isel(time=slice(3, None)).mean()) > 0.2
    assert plt.get_fignums()
