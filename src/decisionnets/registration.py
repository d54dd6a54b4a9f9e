"""Gymnasium registration of the decisionnets envs, cheap: it imports neither torch nor the envs.

:func:`register_envs` registers each env id with a lazy ``"module:Class"`` entry point, so
importing the env's module (and neurogym) waits for :func:`gymnasium.make`. It runs

* on ``import gymnasium``, through the ``gymnasium.envs`` entry point of the installed package
  (``pyproject.toml``), so ``gymnasium.make("decisionnets/ColorDirection-v0")`` works in a fresh
  interpreter with no ``import decisionnets``;
* on ``import decisionnets`` (for a source tree on ``sys.path`` that is not installed);
* on ``import decisionnets.envs``.

Registering twice is harmless: an id already registered is left as it is.

The same registry lets the analysis find what each env's file declares: :func:`load_env_modules`
imports those files (on demand: :func:`decisionnets.analyses.analyses_for` calls it), which register
the analyses their tasks declare; :data:`UNDECLARED_LABELS` says which labels ``analyze`` decodes in
datasets recorded before tasks declared them.
"""

from __future__ import annotations

#: Config name -> Gymnasium id of each decisionnets env.
ENV_IDS = {
    "ColorDirection": "decisionnets/ColorDirection-v0",
    "ColorDirectionStatic": "decisionnets/ColorDirectionStatic-v0",
    "ColorDirectionRT": "decisionnets/ColorDirectionRT-v0",
}

#: Gymnasium entry point ("module:Class") of each env (one task per file).
ENTRY_POINTS = {
    "ColorDirection": "decisionnets.envs.color_direction:ColorDirection",
    "ColorDirectionStatic": "decisionnets.envs.color_direction:ColorDirectionStatic",
    "ColorDirectionRT": "decisionnets.envs.color_direction_rt:ColorDirectionRT",
}

__all__ = ["ENV_IDS", "ENTRY_POINTS", "register_envs", "UNDECLARED_LABELS", "load_env_modules"]


def register_envs() -> list[str]:
    """Register every decisionnets env with Gymnasium (ids of :data:`ENV_IDS`); returns the ids.

    Imports only :mod:`gymnasium.envs.registration` (no torch, no neurogym, no env module).
    """
    from gymnasium.envs.registration import register, registry

    for name, env_id in ENV_IDS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=ENTRY_POINTS[name])
    return list(ENV_IDS.values())


#: Labels of datasets recorded before the tasks declared them (no ``decode_labels`` attr), as groups
#: in order: ``decisionnets analyze`` decodes those of the first group the dataset holds any of
#: (the checkerboard's and the image tasks' labels, else a neurogym env's ``ground_truth``), as it
#: did for them then. Runs recorded since declare their labels; no new env adds to this.
UNDECLARED_LABELS = (("color", "direction", "target_config", "fine_label", "coarse_label"), ("ground_truth",))


def load_env_modules() -> list[str]:
    """Import the module of every env of :data:`ENTRY_POINTS`; returns their names.

    An env's file declares its task protocol and registers the analyses that task declares
    (:mod:`decisionnets.analyses`), so this makes them known by name, e.g. to analyze an existing
    run in a fresh interpreter. Modules already imported cost nothing.
    """
    import importlib

    modules = list(dict.fromkeys(ep.partition(":")[0] for ep in ENTRY_POINTS.values()))
    for mod in modules:
        importlib.import_module(mod)
    return modules
