"""Gymnasium registration of the decisionnets envs, cheap: it imports neither torch nor the envs.

:func:`register_envs` registers each env id with a lazy ``"module:Class"`` entry point, so
importing the env's module (and neurogym) waits for :func:`gymnasium.make`. It runs

* on ``import gymnasium``, through the ``gymnasium.envs`` entry point of the installed package
  (``pyproject.toml``), so ``gymnasium.make("decisionnets/ColorDirection-v0")`` works in a fresh
  interpreter with no ``import decisionnets``;
* on ``import decisionnets`` (for a source tree on ``sys.path`` that is not installed);
* on ``import decisionnets.envs``.

Registering twice is harmless: an id already registered is left as it is.
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

__all__ = ["ENV_IDS", "ENTRY_POINTS", "register_envs"]


def register_envs() -> list[str]:
    """Register every decisionnets env with Gymnasium (ids of :data:`ENV_IDS`); returns the ids.

    Imports only :mod:`gymnasium.envs.registration` (no torch, no neurogym, no env module).
    """
    from gymnasium.envs.registration import register, registry

    for name, env_id in ENV_IDS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=ENTRY_POINTS[name])
    return list(ENV_IDS.values())
