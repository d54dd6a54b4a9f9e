"""Envs: the Gymnasium environments of decisionnets, one task per file, and the env registry.

Data flow: ``tasks/<name>.toml`` -> config -> **env** (here) -> trial batches
(:mod:`decisionnets.trials`, through the task protocol of :mod:`decisionnets.task`) -> models.

Each env file declares its own task protocol (probe conditions, labels, target, time, periods):
``color_direction.py`` (fixed-duration and static checkerboard), ``color_direction_rt.py``
(reaction time); ``neurogym_envs.py`` declares it for any neurogym env; ``timing.py`` parses the
period durations of every env. Importing this package registers the decisionnets envs with
Gymnasium, as neurogym does for its own::

    gymnasium.make("decisionnets/ColorDirection-v0")
    gymnasium.make("decisionnets/ColorDirectionStatic-v0")
    gymnasium.make("decisionnets/ColorDirectionRT-v0")      # reaction-time version

:func:`make_env` builds an env from its config name: a decisionnets env (``ColorDirection``), a
short neurogym name (``PerceptualDecisionMaking``) or any neurogym env id, with or without the
``neurogym:`` prefix (``neurogym:DelayMatchSample-v0``). :func:`trial_source` gives the object
that declares an env's task protocol: the env itself when it implements it, else
:class:`~decisionnets.envs.neurogym_envs.NeurogymSource`.
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
    """Build an env by config name, unwrapped, with a clear error for bad names or arguments."""
    import inspect

    cls = make_env_class(name)
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise ConfigError(f"env {name} has no parameter {', '.join(map(repr, unknown))}; valid: {', '.join(params)}")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError, AttributeError) as e:
        raise ConfigError(f"env {name}: invalid parameters {kwargs}: {e}") from None


def trial_source(env, env_kwargs: dict | None = None):
    """The object that declares ``env``'s task protocol (:class:`decisionnets.task.TrialSource`).

    An env that implements the protocol itself (``sample``, ``probe_conditions``, ...: the
    checkerboard envs) is its own source; any other neurogym env is wrapped by
    :class:`~decisionnets.envs.neurogym_envs.NeurogymSource`.
    """
    if all(hasattr(env, a) for a in ("sample", "probe_conditions", "decode_labels", "target_label")):
        return env
    from decisionnets.envs.neurogym_envs import NeurogymSource

    return NeurogymSource(env, env_kwargs)


__all__ = [
    "COHERENCES",
    "ENV_IDS",
    "NEUROGYM_ENVS",
    "make_env",
    "make_env_class",
    "trial_source",
    "LABEL_NAMES",
    "ColorDirection",
    "ColorDirectionRT",
    "ColorDirectionStatic",
    "sample_color_direction",
    "sample_color_direction_rt",
]
