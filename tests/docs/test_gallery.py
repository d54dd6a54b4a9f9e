"""The example gallery: every ``examples/*.py`` runs to the end and draws its figure.

Each script runs in a fresh interpreter (MPLBACKEND=Agg, cwd a temporary folder, one thread), as
sphinx-gallery runs it during ``make docs``. The whole gallery takes minutes on two shared cores,
so the default run executes the fastest script and checks the form of every script; all scripts
run under ``pytest -m slow``.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
FAST = {"plot_cross_temporal.py"}   # run by default (about 10 s of CPU)


def _run(script: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "DECISIONNETS_THREADS": "1"}
    # the script's figures are saved by a wrapper (sphinx-gallery scrapes them from pyplot)
    code = ("import runpy, sys, matplotlib.pyplot as plt\n"
            f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
            "n = len(plt.get_fignums())\n"
            "for i in plt.get_fignums(): plt.figure(i).savefig(f'figure_{i}.png')\n"
            "print('FIGURES', n)\n")
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)


def test_there_are_gallery_scripts():
    assert len([s for s in SCRIPTS if s.name.startswith("plot_")]) >= 8


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_form(script):
    """A sphinx-gallery title docstring, public imports only, and a figure at the end."""
    tree = ast.parse(script.read_text())
    doc = ast.get_docstring(tree)
    assert doc, f"{script.name}: no module docstring (the gallery's title and text)"
    title, underline = doc.strip().splitlines()[:2]
    assert len(set(underline)) == 1 and underline[0] in "=-~^*#" and len(underline) >= len(title), \
        f"{script.name}: the docstring does not open with an underlined title"
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("decisionnets"):
            for alias in node.names:
                assert not alias.name.startswith("_"), f"{script.name} imports a private name {alias.name}"


@pytest.mark.parametrize("script", [s for s in SCRIPTS if s.name in FAST], ids=lambda p: p.name)
def test_fast_script_runs(script, tmp_path):
    res = _run(script, tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "FIGURES" in res.stdout and int(res.stdout.split("FIGURES")[-1]) >= 1
    assert any(p.stat().st_size > 1000 for p in tmp_path.glob("figure_*.png"))


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_script_runs(script, tmp_path):
    res = _run(script, tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert int(res.stdout.split("FIGURES")[-1]) >= 1, f"{script.name} drew no figure"
