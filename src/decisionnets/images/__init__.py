"""Image datasets (digits embedded; CIFAR-10/100 from local files) and coarse/fine label tasks.

The image side of "tasks -> envs -> batches": :class:`ImageTask` implements the task protocol
(:class:`decisionnets.task.Task`) and hands the trainer :class:`~decisionnets.trials.TrialBatch`es
of one step per image.

>>> from decisionnets.images import ImageTask
>>> task = ImageTask("digits", grouping="small-large")      # no download needed
>>> probe = task.probe_set(rng)          # TrialBatch; labels fine_label, coarse_label
"""

from decisionnets.images.datasets import CIFAR_ENV_VAR, DATASETS, ImageDataset, load_dataset
from decisionnets.images.labels import DEFAULT_GROUPING, GROUPING_NAMES, Grouping, get_grouping
from decisionnets.images.task import ImageTask

__all__ = [
    "CIFAR_ENV_VAR", "DATASETS", "DEFAULT_GROUPING", "GROUPING_NAMES", "Grouping", "ImageDataset",
    "ImageTask", "get_grouping", "load_dataset",
]
