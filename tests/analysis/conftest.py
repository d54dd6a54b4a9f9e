"""Shared by the tests of the figure scripts in ``analysis/`` (scripts, not an importable package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ANALYSIS = Path(__file__).resolve().parents[2] / "analysis"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ANALYSIS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def load_script():
    """``load_script(name)`` imports ``analysis/<name>.py`` as a module."""
    return _load
