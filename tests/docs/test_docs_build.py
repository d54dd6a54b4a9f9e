"""The documentation builds warning-free (``-W``), without executing the gallery.

A broken cross-reference, a malformed page or a docstring that numpydoc cannot parse fails here.
The API reference is generated from ``decisionnets.__all__``: every public name must get a page.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

for _mod in ("sphinx", "sphinx_gallery", "numpydoc", "pydata_sphinx_theme"):
    pytest.importorskip(_mod, reason="the docs extra is not installed (pip install -e '.[docs]')")

import decisionnets  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BUILD_OUTPUTS = shutil.ignore_patterns("_build", "generated", "auto_examples", "api.rst", "sg_execution_times.rst")


def test_docs_build_warning_free_and_reference_every_public_name(tmp_path):
    # a copy of docs/ and examples/, so that the build's generated sources never touch the checkout
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs, ignore=BUILD_OUTPUTS)
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    out = tmp_path / "html"
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
         "-D", "plot_gallery=0", "-d", str(tmp_path / "doctrees"), str(docs), str(out)],
        cwd=docs, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-5000:]
    for page in ("index", "getting_started", "user_guide", "results", "benchmarks", "developer", "api"):
        assert (out / f"{page}.html").is_file(), page
    names = [n for n in decisionnets.__all__ if not n.startswith("_")]
    missing = [n for n in names if not (out / "generated" / f"decisionnets.{n}.html").is_file()]
    assert not missing, f"public names without an API page: {missing}"
    api = (out / "api.html").read_text()
    assert all(f"decisionnets.{n}.html" in api for n in names)
