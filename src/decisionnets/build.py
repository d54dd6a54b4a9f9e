"""From a :class:`~decisionnets.config.Config` to the objects a run needs: task and model.

The task (:class:`decisionnets.task.Task`) is served by the class one lookup gives for the
``[env]`` name (:func:`task_class`): :class:`~decisionnets.images.ImageTask` for an image dataset
(:data:`decisionnets.images.DATASETS`), else the task class the env's own file declares
(:func:`decisionnets.envs.task_class`); the model is sized for it (:mod:`decisionnets.models`).
"""

from __future__ import annotations

import json


def _lookup(name: str) -> tuple:
    """(the class whose constructor takes the ``[env]`` parameters, the task class) of ``[env]`` ``name``."""
    from decisionnets.images import DATASETS, ImageTask

    if name in DATASETS:
        return ImageTask, ImageTask
    from decisionnets.envs import make_env_class, task_class as env_task_class

    return make_env_class(name, other_names=tuple(DATASETS)), env_task_class(name)


def env_class(name: str):
    """The class whose constructor takes the ``[env]`` parameters of env ``name`` (an env class, or
    :class:`~decisionnets.images.ImageTask`); :class:`~decisionnets.errors.ConfigError` naming
    every valid name, image datasets included, for an unknown one."""
    return _lookup(name)[0]


def task_class(name: str):
    """The task class (:class:`decisionnets.task.Task`) that serves ``[env]`` name ``name``; it is
    built by its ``from_config(name, env_params, n_per_condition)``."""
    return _lookup(name)[1]


def make_task(name: str, env_kwargs: dict | None = None, n_per_condition: int = 36):
    """The task (:class:`decisionnets.task.Task`) of ``[env]`` name ``name`` with the ``[env]``
    parameters ``env_kwargs`` and ``n_per_condition`` probe trials per condition (env tasks)."""
    return task_class(name).from_config(name, dict(env_kwargs or {}), n_per_condition=n_per_condition)


def build_task(config):
    """The task (:class:`decisionnets.task.Task`) for ``config`` (:func:`make_task`)."""
    env = dict(config.env)
    name = env.pop("name")
    return make_task(name, env, n_per_condition=config.record.n_per_condition)


def build_model(config, task):
    """The model for ``config`` sized for ``task`` (dt filled in from the task when the model takes it)."""
    from decisionnets import models

    kw = dict(config.model)
    kind = kw.pop("kind")
    if models.accepts(kind, "dt") and "dt" not in kw and getattr(task, "dt", None):
        kw["dt"] = task.dt
    return models.build_model(kind, task.n_inputs, task.n_outputs, **kw)


def ceilings_from_attrs(attrs) -> dict:
    """``{label: bits}`` from an activation dataset's attrs: its ``ceiling`` attribute, else (runs
    recorded before it existed) the ceiling of the task its ``config`` names, when that task's
    class declares one ({} otherwise)."""
    text = attrs.get("ceiling")
    if text:
        try:
            return {str(k): float(v) for k, v in json.loads(str(text)).items()}
        except (ValueError, TypeError, AttributeError):
            return {}
    try:
        env = dict(json.loads(str(attrs["config"]))["env"])
    except (KeyError, ValueError, TypeError):
        return {}
    from decisionnets.errors import UserError
    from decisionnets.task import EnvTask

    try:
        name = str(env.pop("name"))
        cls = task_class(name)
        if getattr(cls, "ceiling", None) is EnvTask.ceiling or not issubclass(cls, EnvTask):
            return {}  # no ideal observer declared: nothing to build
        return dict(cls.from_config(name, env, 1).ceiling())
    except (UserError, TypeError, ValueError, KeyError):
        return {}
