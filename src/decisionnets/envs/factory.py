"""Build an env from its config name: a decisionnets env, a short neurogym name or any neurogym id.

The factory knows envs only through Gymnasium's registry (:data:`decisionnets.registration.ENV_IDS`
for the decisionnets envs, neurogym's registrations for the others), so the task protocol
(:mod:`decisionnets.task`) and the env files can use it without importing each other.
"""

from __future__ import annotations

import gymnasium

from decisionnets.errors import ConfigError
from decisionnets.registration import ENV_IDS

__all__ = ["NEUROGYM_ENVS", "NEUROGYM_PREFIX", "make_env_class", "make_env"]

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
