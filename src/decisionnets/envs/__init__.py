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

:func:`make_env` builds an env from its config name: a decisionnets env (``ColorDirection``), a
short neurogym name (``PerceptualDecisionMaking``) or any neurogym env id, with or without the
``neurogym:`` prefix (``neurogym:DelayMatchSample-v0``). :func:`task_class` gives the class
that declares an env's task protocol: the env class's ``task_class``, else
:class:`~decisionnets.envs.neurogym_envs.NeurogymTask`.
"""

import gymnasium

from decisionnets.errors import ConfigError

from decisionnets.envs.color_direction import (
    COHERENCES,
    LABEL_NAMES,
    ColorDirection,
    ColorDirectionStatic,
    sample_color_direction,
)
from decisionnets.envs.color_direction_rt import ColorDirectionRT, sample_color_direction_rt

from decisionnets.registration import ENV_IDS, register_envs

register_envs()  # the same registration as ``import decisionnets`` and Gymnasium's entry point

#: Short names accepted in configs for envs outside decisionnets.
NEUROGYM_ENVS = {
    "PerceptualDecisionMaking": "PerceptualDecisionMaking-v0",
    "ContextDecisionMaking": "ContextDecisionMaking-v0",
}
#: Prefix that names a neurogym env id explicitly (``neurogym:GoNogo-v0``).
NEUROGYM_PREFIX = "neurogym:"


def make_env_class(name: str, other_names=()):
    """The env class for config name ``name``; :class:`ConfigError` naming the valid ones otherwise.

    ``other_names``: more valid ``[env]`` names to list in that error (the image datasets, which
    :mod:`decisionnets.build` serves without an env class here).
    """
    import importlib

    if name in ENV_IDS:
        env_id = ENV_IDS[name]
    else:
        import neurogym  # noqa: F401  (registers its envs)

        bare = name.removeprefix(NEUROGYM_PREFIX)
        env_id = NEUROGYM_ENVS.get(bare, bare)
        if env_id not in gymnasium.registry:
            valid = sorted(ENV_IDS) + sorted(NEUROGYM_ENVS) + list(other_names)
            raise ConfigError(
                f"unknown env {name!r}; valid: {', '.join(valid)} (or any neurogym env id, e.g. "
                f"GoNogo-v0 or neurogym:DelayMatchSample-v0)"
            )
    cls = gymnasium.spec(env_id).entry_point
    if isinstance(cls, str):
        mod, _, attr = cls.partition(":")
        cls = getattr(importlib.import_module(mod), attr)
    return cls


def make_env(name: str, kwargs: dict):
    """Build an env by config name, with a clear error for bad names or arguments.

    A class is built unwrapped; a neurogym *collection* id (``yang19.go-v0``,
    ``perceptualdecisionmaking.roitman02-v0``) names a factory function taking ``**kwargs`` that
    returns its env wrapped (its keyword arguments pass through to the env inside).
    """
    import inspect

    cls = make_env_class(name)
    dt = kwargs.get("dt")
    if dt is not None and not (isinstance(dt, (int, float)) and not isinstance(dt, bool) and 0 < dt < float("inf")):
        raise ConfigError(f"env.dt must be a positive number of ms; got {dt!r}")
    init = cls.__init__ if inspect.isclass(cls) else cls
    sig = inspect.signature(init).parameters
    params = [p for p in sig if p != "self" and sig[p].kind not in (inspect.Parameter.VAR_POSITIONAL,
                                                                     inspect.Parameter.VAR_KEYWORD)]
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.values())
    unknown = sorted(set(kwargs) - set(params))
    if unknown and not takes_any:
        if unknown == ["dt"]:  # the neurogym preset gives every env a dt; one without the parameter has its own
            return _without_dt(name, cls, kwargs)
        raise ConfigError(f"env {name} has no parameter {', '.join(map(repr, unknown))}; valid: {', '.join(params)}")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError) as e:
        raise ConfigError(f"env {name}: invalid parameters {kwargs}: {e} (set the env's parameters with "
                          f"--set env.NAME=VALUE; valid: {', '.join(params) or 'see its docstring'})") from None


def _without_dt(name: str, cls, kwargs: dict):
    """An env whose constructor takes no ``dt``, built without it: accepted when its own time step
    is the ``dt`` asked for, else a :class:`ConfigError` that gives the value to set."""
    env = cls(**{k: v for k, v in kwargs.items() if k != "dt"})
    own = getattr(getattr(env, "unwrapped", env), "dt", None)
    if own is None or float(own) != float(kwargs["dt"]):
        raise ConfigError(f"env {name} has no parameter 'dt': its time step is fixed at {own} ms, not "
                          f"{kwargs['dt']}; set env.dt={own}")
    return env


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
