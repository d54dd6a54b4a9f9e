"""Shared test setup: one torch thread (two shared cores are noisier with two), tiny configs."""

import importlib.util
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)


def tiny_overrides(task: str) -> list[str]:
    """--set overrides that make a preset train in about a second."""
    common = ["epochs=2", "n_trials=96", "batch_size=16"]
    per_task = {
        "color-direction": ["model.hidden_size=8", "n_per_condition=1"],
        "color-direction-3area": ["model.area_size=10", "n_per_condition=1",
                                  'env.timing={fixation = 40, targets = ["uniform", [100, 200]], stimulus = 100, '
                                  'decision = 60}'],
        "color-direction-static": ["model.hidden_sizes=[8, 8]", "n_per_condition=1"],
        "perceptual-dm": ["model.hidden_size=8", "n_per_condition=2"],
        "context-dm": ["model.hidden_size=8", "n_per_condition=1"],
        "neurogym": ["model.hidden_size=8", "n_per_condition=2"],
        "color-direction-rl": ["model.hidden_size=8", "n_per_condition=1"],
        "color-direction-rt": ["model.hidden_size=8", "n_per_condition=1"],
        "digits-coarse": ["model.channels=4", "model.hidden=8", "n_trials=64"],
        "cifar10-coarse": ["model.width=2", "n_trials=40", "env.n_probe=20", "env.augment=true"],
        "cifar100-coarse": ["model.width=2", "n_trials=40", "env.n_probe=100"],
    }
    return common + per_task.get(task, [])


@pytest.fixture
def tiny():
    return tiny_overrides


@pytest.fixture
def fake_cifar(tmp_path_factory, monkeypatch):
    """A tiny fake CIFAR-10/100 folder in the standard layout, found through DECISIONNETS_CIFAR_DIR."""
    from fake_images import write_fake_cifar

    root = tmp_path_factory.getbasetemp() / "fake_cifar"
    if not root.exists():
        write_fake_cifar(root, "cifar10", n_train=60, n_test=40)
        write_fake_cifar(root, "cifar100", n_train=60, n_test=200)
    monkeypatch.setenv("DECISIONNETS_CIFAR_DIR", str(root))
    return root


def _load_analysis_script(name: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "analysis" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def load_script():
    """``load_script(name)`` imports the figure script ``analysis/<name>.py`` (not a package) as a module.

    Here, not in a ``tests/analysis/conftest.py``: a second module named ``conftest`` would shadow this
    one for the tests that import :func:`tiny_overrides` from it.
    """
    return _load_analysis_script


# ---- shared by the sweep tests (tests/sweep/): a tiny config and a spec on the static checkerboard preset
SWEEP_TINY = {"train.epochs": 2, "train.n_trials": 200, "model.hidden_sizes": [8], "record.n_per_condition": 2,
              "record.schedule": "all"}


@pytest.fixture
def tiny_set():
    """Overrides that make a color-direction-static run train in about a second."""
    return dict(SWEEP_TINY)


@pytest.fixture
def sweep_spec():
    """A factory: a SweepSpec on ``color-direction-static`` with the given ``[sweep]`` table."""

    def make(**sweep_table):
        from decisionnets import sweep

        return sweep.parse_spec({"description": "t", "sweep": {"base": "color-direction-static", **sweep_table}})

    return make
