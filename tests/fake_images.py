"""Write a tiny fake CIFAR-10 / CIFAR-100 folder in the real "python version" layout.

A test helper, not part of the installed package: the tests import it from this folder
(``from fake_images import write_fake_cifar``; ``tests/conftest.py``'s ``fake_cifar`` fixture), and
``bench/gpu_timings.py`` adds the folder to its path. To check a setup before fetching the real
files, from a checkout::

    import sys; sys.path.insert(0, "tests")
    from fake_images import write_fake_cifar
    root = write_fake_cifar("/tmp/fakecifar", "cifar10")
    # then: DECISIONNETS_CIFAR_DIR=/tmp/fakecifar decisionnets train --task cifar10-coarse ...

The files are pickles (protocol 2, like the originals) of dicts with bytes
keys, uint8 ``data`` arrays of shape (n, 3072) (channel-major: 1024 red,
1024 green, 1024 blue values per row), label lists, bytes file names, and the
real class names in the meta files. Each class has its own mean colour plus
noise, so a network can learn the fake labels.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from decisionnets.errors import ConfigError
from decisionnets.images.datasets import CIFAR10_DIR, CIFAR100_DIR
from decisionnets.images.labels import CIFAR10_NAMES

CIFAR100_FINE_NAMES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)
CIFAR100_COARSE_NAMES = (
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates", "people",
    "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2",
)
#: Superclass of each CIFAR-100 fine class (as in the real files).
CIFAR100_FINE_TO_COARSE = np.array([
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
    6, 11, 5, 10, 7, 6, 13, 15, 3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
    5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
    10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
    16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
], dtype=np.int64)


def _images(labels: np.ndarray, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 (n, 3072): a per-class colour plus noise."""
    colours = np.random.default_rng(12345).uniform(40, 215, size=(n_classes, 3))
    x = colours[labels][:, :, None] + rng.normal(0.0, 30.0, size=(labels.size, 3, 1024))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8).reshape(labels.size, 3072)


def _labels(n: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """n labels cycling through every class (each class present if n >= n_classes), shuffled."""
    return rng.permutation(np.arange(n) % n_classes).astype(np.int64)


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=2)


def _filenames(prefix: str, n: int) -> list[bytes]:
    return [f"{prefix}_{i:05d}.png".encode() for i in range(n)]


def write_fake_cifar(root: str | os.PathLike, dataset: str = "cifar10", *,
                     n_train: int | None = None, n_test: int | None = None,
                     seed: int = 0) -> Path:
    """Write a tiny fake dataset under ``root`` and return ``root``.

    Parameters
    ----------
    root : path
        Folder to create ``cifar-10-batches-py/`` or ``cifar-100-python/`` in.
    dataset : {"cifar10", "cifar100"}
    n_train : int, optional
        Training images in all (CIFAR-10: split over the 5 batches, so a
        multiple of 5 is exact). Default 100 (CIFAR-10) or 200 (CIFAR-100).
    n_test : int, optional
        Test images. Default 50 (CIFAR-10) or 100 (CIFAR-100).
    seed : int
        Seed of the pixel noise and label order.

    Returns
    -------
    pathlib.Path
        ``root``, ready to be passed as ``root=`` / ``DECISIONNETS_CIFAR_DIR``.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    if dataset == "cifar10":
        n_train = 100 if n_train is None else n_train
        n_test = 50 if n_test is None else n_test
        folder = root / CIFAR10_DIR
        folder.mkdir(parents=True, exist_ok=True)
        train_y = _labels(n_train, 10, rng)
        for i, part in enumerate(np.array_split(np.arange(n_train), 5), start=1):
            y = train_y[part]
            _dump(folder / f"data_batch_{i}", {
                b"batch_label": f"training batch {i} of 5".encode(),
                b"labels": [int(v) for v in y],
                b"data": _images(y, 10, rng),
                b"filenames": _filenames(f"train{i}", y.size),
            })
        y = _labels(n_test, 10, rng)
        _dump(folder / "test_batch", {
            b"batch_label": b"testing batch 1 of 1",
            b"labels": [int(v) for v in y],
            b"data": _images(y, 10, rng),
            b"filenames": _filenames("test", y.size),
        })
        _dump(folder / "batches.meta", {
            b"num_cases_per_batch": int(np.ceil(n_train / 5)),
            b"label_names": [n.encode() for n in CIFAR10_NAMES],
            b"num_vis": 3072,
        })
        (folder / "readme.html").write_text("<p>fake CIFAR-10 written by decisionnets</p>\n")
    elif dataset == "cifar100":
        n_train = 200 if n_train is None else n_train
        n_test = 100 if n_test is None else n_test
        folder = root / CIFAR100_DIR
        folder.mkdir(parents=True, exist_ok=True)
        for split, n in (("train", n_train), ("test", n_test)):
            fine = _labels(n, 100, rng)
            _dump(folder / split, {
                b"filenames": _filenames(split, n),
                b"batch_label": f"{split}ing batch 1 of 1".encode(),
                b"fine_labels": [int(v) for v in fine],
                b"coarse_labels": [int(v) for v in CIFAR100_FINE_TO_COARSE[fine]],
                b"data": _images(fine, 100, rng),
            })
        _dump(folder / "meta", {
            b"fine_label_names": [n.encode() for n in CIFAR100_FINE_NAMES],
            b"coarse_label_names": [n.encode() for n in CIFAR100_COARSE_NAMES],
        })
    else:
        raise ConfigError(f"unknown fake dataset {dataset!r}; valid: cifar10, cifar100")
    return root
