"""Coarse/fine image classification as a decisionnets task.

:class:`ImageTask` implements the task protocol (:class:`decisionnets.task.Task`): each image is one *trial* with a single time step,
its pixels flattened to ``C*H*W`` features (the CNNs in
``decisionnets.models.cnn`` reshape them back). The network is trained on the
coarse label (by default); the probe set carries ``fine_label`` (the original
class) and ``coarse_label`` for every image, so the recorder and the decoders
can follow both over training.
"""

from __future__ import annotations

import json
import os

import numpy as np

from decisionnets.errors import ConfigError, DataFileError
from decisionnets.images.datasets import (
    DATASETS,
    ImageDataset,
    channel_stats,
    flip_crop,
    load_dataset,
    normalize,
    stratified_subsample,
)
from decisionnets.images.labels import Grouping, cifar100_superclasses, get_grouping
from decisionnets.trials import TrialBatch

#: Probe images used when ``n_probe`` is not given (capped by the probe split's size).
DEFAULT_N_PROBE = {"digits": None, "cifar10": 2000, "cifar100": 5000}

_TARGETS = {"coarse": "coarse_label", "fine": "fine_label",
            "coarse_label": "coarse_label", "fine_label": "fine_label"}


class ImageTask:
    """Image classification on coarse (or fine) labels.

    Parameters
    ----------
    dataset : {"digits", "cifar10", "cifar100"}
        ``digits`` needs no files; CIFAR is read from ``root``.
    grouping : str, optional
        Coarse labelling, see :mod:`decisionnets.images.labels`
        (default: ``small-large`` for digits, ``animals-vehicles`` for
        CIFAR-10, ``superclass`` for CIFAR-100).
    target : {"coarse", "fine"}
        Label the network is trained on.
    root : str, optional
        CIFAR folder; default ``$DECISIONNETS_CIFAR_DIR``.
    augment : bool
        Random flip + pad-4 crop of training images (CIFAR only).
    n_probe : int, optional
        Probe images, drawn once per run, balanced over fine classes, from
        the probe split (digits: the fixed 500-image split; CIFAR: the test
        set). Default: all 500 for digits, 2000 for CIFAR-10, 5000 for
        CIFAR-100 (capped by the split's size).
    name : str, optional
        Task name stored in run attributes; default ``"<dataset>-<target>"``.

    Attributes
    ----------
    n_inputs : int
        ``C*H*W``.
    n_outputs : int
        Number of classes of the target label.
    choice_actions : list of int
        ``range(n_outputs)``: every output is a choice; ``choice`` is the
        argmax, comparable with ``coarse_label`` / ``fine_label``.
    target_label : str
        ``"coarse_label"`` or ``"fine_label"``.
    has_time : bool
        False: one time step per image.
    input_shape : tuple of int
        (C, H, W), pass to the CNN as ``input_shape``.
    mean_, std_ : np.ndarray, shape (C,)
        Normalization statistics of the training split (pixels in [0, 1]).
    """

    has_time = False
    dt = None
    periods = ("decision",)
    label_names = ("fine_label", "coarse_label")
    #: both labels are decoded by default (with the network's choice)
    decode_labels = ("fine_label", "coarse_label")
    analyses: tuple[str, ...] = ()
    label_bins: dict = {}  # noqa: RUF012  (read only; no continuous label)
    label_colors = {"fine_label": "tab:orange", "coarse_label": "tab:blue"}  # noqa: RUF012  (the figures' colours)
    #: the data: a fixed set of images (an :class:`~decisionnets.task.EnvTask` is ``"trials"`` an env draws)
    kind = "images"

    def __init__(self, dataset: str = "digits", *, grouping: str | None = None,
                 target: str = "coarse", root: str | os.PathLike | None = None,
                 augment: bool = False, n_probe: int | None = None, name: str | None = None):
        if dataset not in DATASETS:
            raise ConfigError(f"unknown image dataset {dataset!r}; valid: {', '.join(DATASETS)}")
        if target not in _TARGETS:
            raise ConfigError(f"unknown image target {target!r}; valid: coarse, fine")
        if not isinstance(augment, (bool, np.bool_)):
            raise ConfigError(f"env.augment must be true or false, got {augment!r}")
        if augment and dataset == "digits":
            raise ConfigError("env.augment = true is only for CIFAR (flip/crop would change digits); "
                              "set augment = false for dataset 'digits'")
        if n_probe is not None and (isinstance(n_probe, bool) or not isinstance(n_probe, (int, np.integer))
                                    or n_probe < 2):
            raise ConfigError(f"env.n_probe must be an integer >= 2, got {n_probe!r}")

        self.dataset = dataset
        self.data: ImageDataset = load_dataset(dataset, root)
        self.grouping: Grouping = self._grouping(grouping)
        self.target_label = _TARGETS[target]
        self.augment_enabled = bool(augment)
        self.input_shape = self.data.input_shape
        c, h, w = self.input_shape
        self.n_inputs = c * h * w
        self.fine_names = self.data.fine_names
        self.coarse_names = self.grouping.coarse_names
        self.class_names = self.coarse_names if self.target_label == "coarse_label" else self.fine_names
        self.n_outputs = len(self.class_names)
        self.choice_actions = list(range(self.n_outputs))
        self.name = name or f"{dataset}-{'coarse' if self.target_label == 'coarse_label' else 'fine'}"

        n_avail = self.data.probe_fine.size
        if n_probe is not None and n_probe > n_avail:
            raise ConfigError(f"env.n_probe = {n_probe} exceeds the {n_avail} images of the "
                              f"{dataset} probe split")
        if n_probe is not None and n_probe < len(self.fine_names):
            raise ConfigError(f"env.n_probe = {n_probe} is smaller than the number of conditions (fine classes, "
                              f"{len(self.fine_names)}): the probe set must hold every class")
        default = DEFAULT_N_PROBE[dataset]
        self.n_probe = int(n_probe) if n_probe is not None else min(default or n_avail, n_avail)
        self.mean_, self.std_ = channel_stats(self.data.train_images, self.data.scale)

    @classmethod
    def from_config(cls, name: str, env_kwargs: dict | None = None, n_per_condition: int | None = None):
        """The task of ``[env]`` name ``name`` (a dataset of :data:`~decisionnets.images.DATASETS`) with
        the ``[env]`` parameters ``env_kwargs``; ``n_per_condition`` is unused (``n_probe`` sizes the probe set)."""
        return cls(dataset=name, **dict(env_kwargs or {}))

    def ceiling(self) -> dict:
        """No ideal observer is known for images: {}."""
        return {}

    def _grouping(self, grouping: str | None) -> Grouping:
        d = self.data
        if d.name != "cifar100":
            return get_grouping(d.name, grouping, fine_names=d.fine_names)
        try:
            f2c = cifar100_superclasses(np.concatenate([d.train_fine, d.probe_fine]),
                                        np.concatenate([d.train_coarse, d.probe_coarse]),
                                        n_fine=len(d.fine_names))
        except ValueError as exc:
            raise DataFileError(f"CIFAR-100 files at {d.source} are inconsistent: {exc}") from None
        return get_grouping("cifar100", grouping, fine_names=d.fine_names,
                            cifar100_map=f2c, cifar100_coarse_names=d.coarse_names)

    def __repr__(self) -> str:
        return (f"ImageTask(dataset={self.dataset!r}, grouping={self.grouping.name!r}, "
                f"target={self.target_label!r}, n_outputs={self.n_outputs}, n_probe={self.n_probe})")

    def probe_conditions(self) -> list[dict]:
        """The probe set's conditions: the fine classes (the probe images are balanced over them)."""
        return [{"fine_label": k} for k in range(len(self.fine_names))]

    def probe_timing(self) -> None:
        """Images have no time (one step each)."""
        return None

    # ------------------------------------------------------------------ batches

    @property
    def n_train_available(self) -> int:
        """Images in the training split."""
        return int(self.data.train_fine.size)

    def _batch(self, images: np.ndarray, fine: np.ndarray):
        x = normalize(images, self.data.scale, self.mean_, self.std_)
        n = fine.size
        coarse = self.grouping.coarse(fine)
        labels = {"fine_label": fine.astype(np.int64), "coarse_label": coarse.astype(np.int64)}
        return TrialBatch(
            inputs=x.reshape(1, n, self.n_inputs),
            targets=labels[self.target_label].reshape(1, n).copy(),
            mask=np.ones((1, n), dtype=np.float32),
            labels=labels,
            period=None,
            dt=None,
        )

    def train_set(self, n: int | None = None, rng: np.random.Generator | None = None):
        """Training images as a TrialBatch.

        Parameters
        ----------
        n : int, optional
            Number of images, drawn without replacement with ``rng``; None
            takes the whole training split in its stored order.
        rng : np.random.Generator
            Needed when ``n`` is given.

        Returns
        -------
        TrialBatch
            ``inputs`` (1, n, C*H*W) float32 (normalized), ``targets`` (1, n)
            int64 (the target label), ``mask`` (1, n) ones, ``labels``
            ``fine_label``/``coarse_label`` (n,), ``period`` and ``dt`` None.
        """
        total = self.n_train_available
        if n is None:
            idx = np.arange(total)
        else:
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= total:
                raise ConfigError(f"number of training images must be 1..{total} for "
                                  f"{self.dataset}, got {n!r}")
            if rng is None:
                raise ValueError("train_set(n, rng): a np.random.Generator is needed to subsample")
            idx = np.sort(rng.choice(total, size=int(n), replace=False))
        return self._batch(self.data.train_images[idx], self.data.train_fine[idx])

    def probe_set(self, rng: np.random.Generator | None = None):
        """The probe images as a TrialBatch (same layout as :meth:`train_set`).

        ``n_probe`` images of the probe split, balanced over fine classes,
        drawn with ``rng`` (all of them, in stored order, when ``n_probe``
        is the split's size; ``rng`` may then be None).
        """
        fine = self.data.probe_fine
        if self.n_probe >= fine.size:
            idx = np.arange(fine.size)
        else:
            if rng is None:
                raise ValueError("probe_set(rng): a np.random.Generator is needed to subsample")
            idx = stratified_subsample(fine, self.n_probe, rng)
        return self._batch(self.data.probe_images[idx], fine[idx])

    def augment(self, inputs, generator):
        """Random flip + pad-4 crop (CIFAR with ``augment=True``), else identity.

        Parameters
        ----------
        inputs : torch.Tensor, shape (..., C*H*W)
            E.g. a training minibatch (1, batch, C*H*W).
        generator : torch.Generator

        Returns
        -------
        torch.Tensor, same shape as ``inputs``
        """
        if not self.augment_enabled:
            return inputs
        shape = inputs.shape
        x = inputs.reshape(-1, *self.input_shape)
        return flip_crop(x, generator, pad=4).reshape(shape)

    def attrs(self) -> dict[str, str | int | float]:
        """Facts about the task for run attributes (strings and numbers only)."""
        return {
            "image_dataset": self.dataset,
            "image_source": self.data.source,
            "grouping": self.grouping.name,
            "grouping_description": self.grouping.description,
            "fine_names": json.dumps(list(self.fine_names)),
            "coarse_names": json.dumps(list(self.coarse_names)),
            "fine_to_coarse": json.dumps(self.grouping.fine_to_coarse.tolist()),
            "normalization_mean": json.dumps(self.mean_.tolist()),
            "normalization_std": json.dumps(self.std_.tolist()),
            "augment": int(self.augment_enabled),
        }
