"""From a :class:`~decisionnets.config.Config` to the objects a run needs: task and model.

The task (:mod:`decisionnets.task`: :class:`~decisionnets.task.EnvTask` for envs,
:class:`~decisionnets.images.ImageTask` for image datasets) and the model sized for it
(:mod:`decisionnets.models`).
"""

from __future__ import annotations

import importlib

from decisionnets.errors import ConfigError

#: [env] names served by the image family (decisionnets.images.ImageTask)
IMAGE_DATASETS = ("digits", "cifar10", "cifar100")


def env_class(name: str):
    """The class whose constructor takes the ``[env]`` parameters of env ``name``."""
    if name in IMAGE_DATASETS:
        return importlib.import_module("decisionnets.images").ImageTask
    from decisionnets.envs import make_env_class

    return make_env_class(name, other_names=IMAGE_DATASETS)


def build_task(config):
    """The task (:class:`decisionnets.task.Task`) for ``config``: an EnvTask or an ImageTask."""
    env = dict(config.env)
    name = env.pop("name")
    if name in IMAGE_DATASETS:
        ImageTask = importlib.import_module("decisionnets.images").ImageTask
        return ImageTask(dataset=name, **env)
    from decisionnets.task import EnvTask

    env_class(name)  # an unknown name: the error lists every valid one, image datasets included
    return EnvTask(name, env, n_per_condition=config.record.n_per_condition)


def build_model(config, task):
    """The model for ``config`` sized for ``task`` (dt filled in from the task when the model takes it)."""
    from decisionnets import models

    kw = dict(config.model)
    kind = kw.pop("kind")
    if models.accepts(kind, "dt") and "dt" not in kw and getattr(task, "dt", None):
        kw["dt"] = task.dt
    return models.build_model(kind, task.n_inputs, task.n_outputs, **kw)
