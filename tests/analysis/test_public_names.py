"""The scripts in analysis/ use only decisionnets' public names (parsed, not run).

Allowed: ``import decisionnets as dn`` then ``dn.NAME`` with NAME in ``decisionnets.__all__``;
``from decisionnets import NAME`` likewise; ``from decisionnets.MODULE import NAME`` where no
part of MODULE starts with ``_`` and NAME is in that module's ``__all__``. Anything else (a
private name, a module without ``__all__``, a name it does not export, ``import decisionnets.x``)
fails, naming the script, the line and the name.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import decisionnets

SCRIPTS = sorted((Path(__file__).resolve().parents[2] / "analysis").glob("*.py"))


def violations(source: str, name: str = "<script>") -> list[str]:
    """Every use of a non-public decisionnets name in ``source``, as "name:line: what"."""
    tree = ast.parse(source)
    bad, aliases = [], set()

    def exported(module: str, attr: str) -> bool:
        if attr.startswith("_") or any(p.startswith("_") for p in module.split(".")):
            return False
        if module == "decisionnets":
            return attr in decisionnets.__all__
        try:
            mod = importlib.import_module(module)
        except ImportError:
            return False
        return attr in getattr(mod, "__all__", ())

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "decisionnets":
                    aliases.add(a.asname or a.name)
                elif a.name.startswith("decisionnets."):
                    bad.append(f"{name}:{node.lineno}: import {a.name} (use `import decisionnets as dn` or "
                               "`from decisionnets.module import public_name`)")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "decisionnets":
            for a in node.names:
                if not exported(node.module, a.name):
                    bad.append(f"{name}:{node.lineno}: {node.module}.{a.name} is not exported "
                               f"(not in {node.module}.__all__, or private)")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            if not exported("decisionnets", node.attr):
                bad.append(f"{name}:{node.lineno}: {node.value.id}.{node.attr} is not in decisionnets.__all__")
    return bad


def test_there_are_scripts():
    assert len(SCRIPTS) >= 5


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_script_uses_only_public_names(script):
    assert violations(script.read_text(), script.name) == []


@pytest.mark.parametrize("source, n_bad", [
    ("import decisionnets as dn\ndn.open_run('x')\ndn.plot_psychometric", 0),
    ("from decisionnets import open_activations, usable_information", 0),
    ("from decisionnets.analyses import choice_vs_stimulus", 0),
    ("from decisionnets.envs.color_direction import _period_steps", 1),   # private
    ("from decisionnets.training import setup_run", 1),                    # module without __all__
    ("from decisionnets.report import _select", 1),
    ("import decisionnets as dn\ndn._API", 1),
    ("import decisionnets as dn\ndn.training", 1),                         # a module, not an export
    ("import decisionnets.io", 1),
])
def test_the_check_catches_private_names(source, n_bad):
    assert len(violations(source)) == n_bad
