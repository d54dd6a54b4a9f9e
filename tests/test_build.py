"""decisionnets.build: one lookup from an [env] name to the task class that serves it."""

import pytest

from decisionnets.build import env_class, make_task, task_class
from decisionnets.envs import ColorDirection, ColorDirectionRT
from decisionnets.envs.color_direction import CheckerboardTask
from decisionnets.envs.neurogym_envs import NeurogymTask
from decisionnets.errors import ConfigError
from decisionnets.images import ImageTask


@pytest.mark.parametrize("name,params,task", [
    ("ColorDirection", ColorDirection, CheckerboardTask),
    ("ColorDirectionRT", ColorDirectionRT, CheckerboardTask),  # declared by its own file: the same task class
    ("digits", ImageTask, ImageTask),
    ("cifar100", ImageTask, ImageTask),
])
def test_every_name_resolves_to_its_declared_task_class(name, params, task):
    assert env_class(name) is params and task_class(name) is task


def test_neurogym_ids_are_served_by_the_neurogym_task():
    assert task_class("GoNogo-v0") is task_class("neurogym:yang19.dm1-v0") is NeurogymTask
    assert task_class("PerceptualDecisionMaking").kind == "trials" and task_class("digits").kind == "images"


def test_an_unknown_name_lists_envs_and_image_datasets():
    with pytest.raises(ConfigError, match=r"unknown env 'Nope'; valid: ColorDirection.*digits, cifar10, cifar100"):
        task_class("Nope")


def test_make_task_passes_the_env_parameters():
    task = make_task("ColorDirection", {"dt": 10, "report": "color"}, n_per_condition=2)
    assert task.dt == 10.0 and task.target_label == "color" and task.n_per_condition == 2
    digits = make_task("digits", {"target": "fine"})
    assert isinstance(digits, ImageTask) and digits.target_label == "fine_label"
