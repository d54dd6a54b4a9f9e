"""The tests mirror the package: one test file per module, and tests patch public seams only.

How module names map to test files:

- ``src/decisionnets/<path>/<module>.py`` is tested by ``tests/<path>/test_<module>.py``, e.g.
  ``sweep/plan.py`` by ``tests/sweep/test_plan.py`` and ``seeding.py`` by ``tests/test_seeding.py``;
- pytest imports test files by their basename (``tests/`` has no ``__init__.py`` files and the
  default "prepend" import mode), so two test files may not share a basename. Where two modules
  share a name, the test of the one in a subpackage takes the subpackage's name as a prefix:
  ``decoding/estimator.py`` is tested by ``tests/decoding/test_decoding_estimator.py`` (``estimator.py``
  by ``tests/test_estimator.py``), ``images/task.py`` by ``tests/images/test_images_task.py``. The
  prefixed form is accepted for any module in a subpackage. Tests of what is not a module
  (``tests/docs/``, ``tests/bench/``) are prefixed likewise (``test_docs_build.py``), so that the
  plain names stay free for modules;
- a private module drops its leading underscore: ``representation/_data.py`` is tested by
  ``tests/representation/test_data.py``;
- ``__init__.py`` and ``__main__.py`` need no test file of their own.

Tests may have more files than modules (``test_science.py``, ``test_rnn_step.py``); each module needs
one. Tests patch public names only (``monkeypatch.setattr(a2c, "play_trials", ...)``): a patched
private name (``training._Log``) ties the tests to an implementation detail and keeps shims alive.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "decisionnets"
TESTS = ROOT / "tests"
NO_TEST = {"__init__.py", "__main__.py"}


def expected_test_files(module: Path, package: Path = PACKAGE, tests: Path = TESTS) -> list[Path]:
    """The test files accepted for ``module`` (a path under ``package``), the plain one first."""
    rel = module.relative_to(package)
    stem = rel.stem.lstrip("_")
    folder = tests / rel.parent
    names = [f"test_{stem}.py"]
    if rel.parent != Path("."):
        names.append(f"test_{rel.parent.name}_{stem}.py")
    return [folder / n for n in names]


def modules_without_tests(package: Path = PACKAGE, tests: Path = TESTS) -> list[str]:
    """``module -> expected test file`` of each module of ``package`` without a test file in ``tests``."""
    missing = []
    for module in sorted(package.rglob("*.py")):
        if module.name in NO_TEST:
            continue
        candidates = expected_test_files(module, package, tests)
        if not any(c.is_file() for c in candidates):
            missing.append(f"{module.relative_to(package).as_posix()} -> "
                           f"{candidates[0].relative_to(tests.parent).as_posix()}")
    return missing


def test_every_module_has_its_test_file():
    missing = modules_without_tests()
    assert not missing, "modules without a test file (see this file's docstring for the names):\n" + "\n".join(missing)


def test_test_file_basenames_are_unique():
    """Two files with one basename break pytest's default import of tests/ (no __init__ files)."""
    files = [p for p in TESTS.rglob("*.py") if p.name != "conftest.py"]
    counts = Counter(p.name for p in files)
    clashes = sorted(str(p.relative_to(ROOT)) for p in files if counts[p.name] > 1)
    assert not clashes, f"test modules sharing a basename: {clashes}"


# --------------------------------------------------------------------------------------------------
# patched private names
# --------------------------------------------------------------------------------------------------
PATCHERS = {"setattr", "delattr", "patch", "object"}  # monkeypatch.setattr/delattr, mock.patch(.object), setattr


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _root(node) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.value if not isinstance(node, ast.Call) else node.func
    return node.id if isinstance(node, ast.Name) else None


def _package_names(tree) -> set[str]:
    """Names a test module binds to decisionnets or something imported from it."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "decisionnets" or a.name.startswith("decisionnets."):
                    names.add(a.asname or "decisionnets")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and (
                node.module == "decisionnets" or node.module.startswith("decisionnets.")):
            names.update(a.asname or a.name for a in node.names)
    return names


def private_patches(source: str) -> list[str]:
    """``line: target`` of each patch of a private decisionnets name in ``source`` (a test module)."""
    tree = ast.parse(source)
    ours = _package_names(tree)
    found = []

    def flag(node, target):
        found.append(f"{node.lineno}: {target}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
            if name not in PATCHERS or not node.args:
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):  # "decisionnets.mod._name"
                dotted = first.value
                if dotted.split(".")[0] == "decisionnets" and any(_private(p) for p in dotted.split(".")[1:]):
                    flag(node, dotted)
            elif len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
                attr = node.args[1].value
                if _private(attr) and _root(first) in ours:
                    flag(node, f"{ast.unparse(first)}.{attr}")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for t in targets:
                if isinstance(t, ast.Attribute) and _private(t.attr) and _root(t.value) in ours:
                    flag(node, ast.unparse(t))
    return found


def test_no_test_patches_a_private_name():
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        offenders += [f"{path.relative_to(ROOT)}:{hit}" for hit in private_patches(path.read_text())]
    assert not offenders, "tests patch private decisionnets names (patch a public seam instead):\n" + "\n".join(offenders)


@pytest.mark.parametrize("source, hits", [
    ("from decisionnets import training\ndef t(monkeypatch):\n    monkeypatch.setattr(training, '_Log', 1)\n",
     ["3: training._Log"]),
    ("import decisionnets.sweep as sweep\ndef t(monkeypatch):\n    monkeypatch.setattr(sweep.execute, '_client', 1)\n",
     ["3: sweep.execute._client"]),
    ("def t(monkeypatch):\n    monkeypatch.setattr('decisionnets.training._Log', 1)\n",
     ["2: decisionnets.training._Log"]),
    ("from unittest import mock\ndef t():\n    with mock.patch('decisionnets.sweep._ensemble_units'):\n        pass\n",
     ["3: decisionnets.sweep._ensemble_units"]),
    ("from unittest import mock\nfrom decisionnets import trials\ndef t():\n"
     "    with mock.patch.object(trials, '_MOVED', {}):\n        pass\n", ["4: trials._MOVED"]),
    ("from decisionnets import config\ndef t():\n    config._read_toml = None\n", ["3: config._read_toml"]),
    # public names, and private names of other libraries, pass
    ("from decisionnets.agents import a2c\ndef t(monkeypatch):\n    monkeypatch.setattr(a2c, 'play_trials', 1)\n", []),
    ("import torch\ndef t(monkeypatch):\n    monkeypatch.setattr(torch, '_C', 1)\n", []),
    ("def t(monkeypatch):\n    monkeypatch.setattr('os._exit', 1)\n", []),
    ("from decisionnets import cli\ndef t(monkeypatch):\n    monkeypatch.setitem(cli.COMMANDS, 'tasks', 1)\n", []),
])
def test_the_scan_finds_each_form_of_private_patch(source, hits):
    assert private_patches(source) == hits


def test_the_mapping_of_names(tmp_path):
    """The rules of the docstring on a planted package and its tests."""
    pkg, tests = tmp_path / "src" / "pkg", tmp_path / "tests"
    for rel in ("__init__.py", "__main__.py", "a.py", "sub/__init__.py", "sub/b.py", "sub/_c.py", "sub/a.py"):
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).touch()
    assert [p.relative_to(tests).as_posix() for p in expected_test_files(pkg / "sub" / "_c.py", pkg, tests)] == \
        ["sub/test_c.py", "sub/test_sub_c.py"]
    assert modules_without_tests(pkg, tests) == ["a.py -> tests/test_a.py", "sub/_c.py -> tests/sub/test_c.py",
                                                 "sub/a.py -> tests/sub/test_a.py", "sub/b.py -> tests/sub/test_b.py"]
    for rel in ("test_a.py", "sub/test_sub_a.py", "sub/test_c.py", "test_b.py"):  # test_b.py: in the wrong folder
        (tests / rel).parent.mkdir(parents=True, exist_ok=True)
        (tests / rel).touch()
    assert modules_without_tests(pkg, tests) == ["sub/b.py -> tests/sub/test_b.py"]


def test_one_conftest_only():
    """``tests/`` has no ``__init__.py``, so every ``conftest.py`` is imported as the module ``conftest``:
    a second one shadows the first, and ``from conftest import tiny_overrides`` breaks in whichever
    tests run after it. Shared fixtures go in ``tests/conftest.py``."""
    tests = Path(__file__).resolve().parent
    extra = sorted(str(p.relative_to(tests)) for p in tests.rglob("conftest.py") if p.parent != tests)
    assert not extra, f"conftest.py files below tests/ shadow tests/conftest.py: {extra}"
