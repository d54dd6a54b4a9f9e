"""Sphinx configuration of the decisionnets documentation (offline build: no network use).

The API reference is generated from ``decisionnets.__all__`` at build time (``api.rst`` is
written here, then autosummary writes one page per name), so a public name added to the package
appears in the reference without editing the docs. The user guide and the results are picked up
by glob toctrees over ``guide/*`` and ``results/*``; the gallery is ``../examples/plot_*.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")   # gallery scripts on shared cores: one thread each
os.environ.setdefault("DECISIONNETS_THREADS", "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))   # trial_structure.py (the ``.. plot::`` figures), gallery_order.py

import decisionnets  # noqa: E402

project = "decisionnets"
author = "the decisionnets authors"
copyright = "2026, the decisionnets authors"
release = version = decisionnets.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "matplotlib.sphinxext.plot_directive",
]

root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.json", "auto_examples/*.md5", "sg_execution_times.rst"]
templates_path = ["_templates"]
default_role = "literal"        # `x` in the pages is code, as in the docstrings
nitpicky = True
# No intersphinx (the build is offline): references to other projects' objects cannot resolve,
# so they are ignored by name; references to decisionnets objects must resolve.
_EXTERNAL = (r"(xr|xarray|np|numpy|torch|pathlib|os|typing|collections|sklearn|matplotlib|mpl|dask|"
             r"distributed|gymnasium|gym|neurogym|pynwb|pd|pandas|scipy|abc|io)(\..*)?")
nitpick_ignore_regex = [
    # modules and helpers the docstrings mention that are not part of the public reference
    (r"py:.*", r"decisionnets\.(locks|analyses|analysis_config|report|io|config|training|rundir|trials|task|envs|models|"
               r"recording|metrics|threads|build|ensemble|errors|sweep|agents|images|"
               r"decoding|seeding|objectives|optimization)(\..*)?"),
    # bare names (no module) in docstrings: helpers and constants of the docstring's own module
    (r"py:.*", r"(?!decisionnets\b)[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?"),
    (r"py:.*", _EXTERNAL),
    (r"py:.*", r"(Path|PathLike|Sequence|Mapping|Iterable|Callable|Any|Literal|Optional|Union|ArrayLike|"
               r"DataArray|Dataset|ndarray|Tensor|Module|Figure|Axes|Generator|SeedSequence|Client|"
               r"array-like|array_like|path-like|path|optional|default|callable|iterable|mapping|"
               r"sequence|scalar|dict-like|file-like|str|int|float|bool|dict|list|tuple|None|bytes|"
               r"object|type|set|frozenset|self|.* of .*|\{.*\}|.*\}|\{.*)"),
]

# --- autodoc / autosummary / numpydoc ------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"      # the numpydoc "Parameters" section states types (and dims)
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set = set()


#: Public submodules documented name by name (their ``__all__`` functions and classes).
PUBLIC_MODULES = ("representation", "representation.selectivity", "representation.geometry",
                  "representation.similarity", "representation.fixed_points", "weights")


def _module_sections() -> list[str]:
    """One autosummary per module of :data:`PUBLIC_MODULES`: its public functions and classes."""
    import importlib
    import inspect

    lines = []
    for name in PUBLIC_MODULES:
        mod = importlib.import_module(f"decisionnets.{name}")
        members = [m for m in mod.__all__
                   if inspect.isfunction(getattr(mod, m)) or inspect.isclass(getattr(mod, m))]
        lines += [f".. currentmodule:: decisionnets.{name}", "", ".. autosummary::",
                  "   :toctree: generated", "   :nosignatures:", "", *[f"   {m}" for m in members], ""]
    return [*lines, ".. currentmodule:: decisionnets", ""]


def _write_api_page() -> None:
    """``api.rst``: an autosummary list of every name in ``decisionnets.__all__`` (at build time)."""
    names = [n for n in decisionnets.__all__ if not n.startswith("_")]
    lines = [
        ".. This file is written by conf.py from decisionnets.__all__ at every build; do not edit.",
        "",
        "API reference",
        "=============",
        "",
        "Every public name of ``import decisionnets as dn`` (``decisionnets.__all__``), in the order the",
        "package lists them. Names are imported on first use, so ``import decisionnets`` stays light.",
        "Plotting functions live in :mod:`decisionnets.plots` (each takes an ``ax`` and returns it);",
        "the command line is ``decisionnets.cli.main([...])`` (see :doc:`guide/command_line`).",
        "",
        ".. currentmodule:: decisionnets",
        "",
        ".. autosummary::",
        "   :toctree: generated",
        "   :nosignatures:",
        "",
        *[f"   {n}" for n in names],
        "",
        "Modules",
        "-------",
        "",
        ".. autosummary::",
        "   :toctree: generated",
        "",
        "   plots",
        "",
        "Representation analyses",
        "-----------------------",
        "",
        "The functions behind ``decisionnets analyze RUN --analyses NAME`` (see :doc:`guide/representation`",
        "and :doc:`guide/representation_dynamics`), and the per-epoch weights that fixed points need.",
        "",
        *_module_sections(),
        "The command line",
        "----------------",
        "",
        ".. autosummary::",
        "   :toctree: generated",
        "",
        "   cli.main",
        "",
    ]
    text = "\n".join(lines)
    path = HERE / "api.rst"
    if not path.exists() or path.read_text() != text:   # unchanged: keep the mtime (no rebuild)
        path.write_text(text)


_write_api_page()

# --- sphinx-gallery -------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r".*\.py",
    "ignore_pattern": r"__init__\.py|/_",
    "within_subsection_order": "gallery_order.example_order",
    "download_all_examples": False,
    "remove_config_comments": True,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "reset_modules": ("matplotlib",),
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "show_memory": False,
    "write_computation_times": True,
}

# --- the ``.. plot::`` directive (trial structure figures) -----------------------------------------
plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 100)]
plot_rcparams = {"figure.figsize": (7.5, 3.2)}

# --- HTML -----------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = "decisionnets"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 5,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False
html_last_updated_fmt = None
