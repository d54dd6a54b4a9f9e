"""Envs: the Gymnasium environments of decisionnets, one task per file, and the env registry.

Data flow: ``tasks/<name>.toml`` -> config -> **env** (here) -> trial batches
(:mod:`decisionnets.trials`, through the task protocol of :mod:`decisionnets.task`) -> models.

Each env file declares its own task protocol (:class:`decisionnets.task.Task`: probe conditions,
labels, target, periods, analyses, ceiling) as an :class:`~decisionnets.task.EnvTask` subclass
that its env class names as ``task_class``: ``color_direction.py`` (fixed-duration and static
checkerboard, :class:`~decisionnets.envs.color_direction.CheckerboardTask`; its ideal observer in
``color_direction_ideal.py``), ``color_direction_rt.py`` (reaction time, the same task class);
``neurogym_envs.py`` declares it for any neurogym env
(:class:`~decisionnets.envs.neurogym_envs.NeurogymTask`); ``timing.py`` parses the period
durations of every env. Importing this package registers the decisionnets envs with
Gymnasium, as neurogym does for its own::

    gymnasium.make("decisionnets/ColorDirection-v0")
    gymnasium.make("decisionnets/ColorDirectionStatic-v0")
    gymnasium.make("decisionnets/ColorDirectionRT-v0")      # reaction-time version

:func:`make_env` (:mod:`decisionnets.envs.factory`) builds an env from its config name: a decisionnets env (``ColorDirection``), a
short neurogym name (``PerceptualDecisionMaking``) or any neurogym env id, with or without the
``neurogym:`` prefix (``neurogym:DelayMatchSample-v0``). :func:`task_class` gives the class
that declares an env's task protocol: the env class's ``task_class``, else
:class:`~decisionnets.envs.neurogym_envs.NeurogymTask`.
"""

from decisionnets.envs.color_direction import (
    COHERENCES,
    LABEL_NAMES,
    ColorDirection,
    ColorDirectionStatic,
    sample_color_direction,
)
from decisionnets.envs.color_direction_rt import ColorDirectionRT, sample_color_direction_rt

from decisionnets.envs.factory import NEUROGYM_ENVS, NEUROGYM_PREFIX, make_env, make_env_class
from decisionnets.registration import ENV_IDS, register_envs

register_envs()  # the same registration as ``import decisionnets`` and Gymnasium's entry point

def task_class(name: str):
    """The :class:`~decisionnets.task.EnvTask` subclass that declares the task protocol of env ``name``.

    The env class's ``task_class`` (declared in the env's own file, e.g. the checkerboard envs'
    :class:`~decisionnets.envs.color_direction.CheckerboardTask`), else
    :class:`~decisionnets.envs.neurogym_envs.NeurogymTask` (any neurogym env or collection id).
    Raises :class:`ConfigError` for an unknown name, as :func:`make_env_class` does.
    """
    declared = getattr(make_env_class(name), "task_class", None)
    if declared is not None:
        return declared
    from decisionnets.envs.neurogym_envs import NeurogymTask

    return NeurogymTask


def task_for(env, n_per_condition: int = 36):
    """The task (:class:`decisionnets.task.Task`) of an env instance, by the rule of :func:`task_class`
    (the env class's ``task_class``, else :class:`~decisionnets.envs.neurogym_envs.NeurogymTask`)."""
    cls = getattr(type(getattr(env, "unwrapped", env)), "task_class", None)
    if cls is None:
        from decisionnets.envs.neurogym_envs import NeurogymTask as cls
    return cls(env, n_per_condition=n_per_condition)


__all__ = [
    "COHERENCES",
    "ENV_IDS",
    "NEUROGYM_ENVS",
    "NEUROGYM_PREFIX",
    "make_env",
    "make_env_class",
    "task_class",
    "task_for",
    "LABEL_NAMES",
    "ColorDirection",
    "ColorDirectionRT",
    "ColorDirectionStatic",
    "sample_color_direction",
    "sample_color_direction_rt",
]
