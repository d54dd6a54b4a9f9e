"""The top-level API: every name of decisionnets.__all__ resolves, is listed by dir() and documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import decisionnets as dn

OVERVIEW = Path(__file__).resolve().parents[1] / "docs" / "guide" / "api_overview.rst"


@pytest.mark.parametrize("name", dn.__all__)
def test_every_exported_name_resolves(name):
    assert getattr(dn, name) is not None
    assert name in dir(dn)


def test_what_scripts_need_is_exported():
    needed = {"open_run", "Run", "open_information", "rerecord", "record", "RunRecorder", "probe_trials",
              "choice_vs_stimulus", "open_activations", "analyze_run", "plot_information_vs_epoch",
              "plot_information_vs_time", "plot_psychometric", "plot_cross_temporal", "plot_learning_curve"}
    assert needed <= set(dn.__all__)
    with pytest.raises(AttributeError, match="no attribute 'setup_run'"):
        dn.setup_run  # noqa: B018


def test_the_overview_page_lists_every_public_name():
    text = OVERVIEW.read_text()
    documented = set(re.findall(r":(?:func|class):`decisionnets\.(\w+)`", text))
    missing = [n for n in dn.__all__ if n != "__version__" and n not in documented]
    assert not missing, f"add a line for each to {OVERVIEW.name}: {missing}"
