"""Gymnasium registration: through the entry point (no import of decisionnets) and on ``import decisionnets``.

Each check runs in a fresh interpreter (a subprocess), since registration happens at import time.
"""

from __future__ import annotations

import subprocess
import sys

from decisionnets.registration import ENV_IDS


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_gymnasium_make_in_a_fresh_interpreter():
    ids = sorted(ENV_IDS.values())
    out = _run(f"import gymnasium\nfor i in {ids!r}:\n    env = gymnasium.make(i)\n    env.reset(seed=0)\n"
               "    print(type(env.unwrapped).__name__)")
    assert out.split() == [i.split("/")[1].removesuffix("-v0") for i in ids]


def test_entry_point_registers_on_import_gymnasium():
    # gymnasium.spec resolves the id without importing the env: only the entry point can have registered it
    out = _run("import sys, gymnasium\n"
               "from importlib.metadata import entry_points\n"
               "print([e.value for e in entry_points(group='gymnasium.envs') if e.name == 'decisionnets'])\n"
               "print(gymnasium.spec('decisionnets/ColorDirection-v0').entry_point)\n"
               "print('torch' in sys.modules, 'decisionnets.envs' in sys.modules)")
    lines = out.splitlines()
    assert lines[0] == "['decisionnets.registration:register_envs']"
    assert lines[1] == "decisionnets.envs.color_direction:ColorDirection"
    assert lines[2] == "False False"


def test_import_decisionnets_registers_without_torch():
    # with the entry-point plugins off, only `import decisionnets` can register the ids
    out = _run("import sys, importlib.metadata as md\n"
               "_eps = md.entry_points\n"
               "md.entry_points = lambda **kw: [] if kw.get('group') == 'gymnasium.envs' else _eps(**kw)\n"
               "import gymnasium.envs.registration as reg\n"
               "print(any(k.startswith('decisionnets/') for k in reg.registry))\n"
               "import decisionnets\n"
               "print(sorted(k for k in reg.registry if k.startswith('decisionnets/')))\n"
               "print('torch' in sys.modules, 'neurogym' in sys.modules, 'decisionnets.envs' in sys.modules)")
    lines = out.splitlines()
    assert lines[0] == "False"  # the plugin is off
    assert lines[1] == str(sorted(ENV_IDS.values()))
    assert lines[2] == "False False False"


def test_load_env_modules_imports_each_env_file_once_which_registers_its_analyses():
    from decisionnets.analyses import ANALYSES
    from decisionnets.registration import ENTRY_POINTS, load_env_modules

    mods = load_env_modules()
    assert mods == list(dict.fromkeys(ep.partition(":")[0] for ep in ENTRY_POINTS.values()))
    assert all(m in sys.modules for m in mods) and load_env_modules() == mods
    assert {"choice_vs_direction", "psychometric"} <= set(ANALYSES)  # registered by the checkerboard's file
