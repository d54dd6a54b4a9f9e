"""Coarse/fine labellings of the image datasets.

Every image has a *fine* label (its original class: the digit, the CIFAR-10
class, the CIFAR-100 class) and a *coarse* label given by a named
*grouping*, a fixed function from fine classes to coarse classes. Networks
are trained on the coarse label; the probe set carries both, so the usable
information about the fine label that the network was never asked for can be
followed over training (Kleinman et al., ICLR 2021, section on images).

Groupings (``[env] grouping = "..."``):

=========  ==================  =====================================================
dataset    grouping            coarse classes (fine classes in each)
=========  ==================  =====================================================
digits     ``small-large``     0 "small" (0-4), 1 "large" (5-9)   [default]
digits     ``parity``          0 "even" (0,2,4,6,8), 1 "odd" (1,3,5,7,9)
cifar10    ``animals-vehicles`` 0 "vehicle" (airplane, automobile, ship, truck),
                               1 "animal" (bird, cat, deer, dog, frog, horse) [default]
cifar100   ``superclass``      the 20 CIFAR-100 superclasses, read from the data
                               files (``coarse_labels``)      [default]
any        ``identity``        coarse = fine (train on the original classes)
=========  ==================  =====================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from decisionnets.errors import ConfigError

DIGIT_NAMES = tuple(str(d) for d in range(10))

CIFAR10_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)


@dataclass(frozen=True)
class Grouping:
    """A named map from fine classes to coarse classes.

    Attributes
    ----------
    name : str
        Name used in configs (``grouping = name``).
    description : str
        One line, shown in error messages and stored in run attributes.
    fine_to_coarse : np.ndarray, shape (n_fine,), int64
        Coarse class of each fine class.
    coarse_names : tuple of str, length n_coarse
        Name of each coarse class.
    """

    name: str
    description: str
    fine_to_coarse: np.ndarray
    coarse_names: tuple[str, ...]

    @property
    def n_coarse(self) -> int:
        return len(self.coarse_names)

    def coarse(self, fine: np.ndarray) -> np.ndarray:
        """Coarse labels (int64, same shape as ``fine``) of fine labels."""
        return self.fine_to_coarse[np.asarray(fine, dtype=np.int64)]


def _digits_groupings() -> dict[str, Grouping]:
    digits = np.arange(10)
    return {
        "small-large": Grouping(
            "small-large", "digits 0-4 (small) vs 5-9 (large)",
            (digits >= 5).astype(np.int64), ("small", "large")),
        "parity": Grouping(
            "parity", "even vs odd digits",
            (digits % 2).astype(np.int64), ("even", "odd")),
    }


def _cifar10_groupings() -> dict[str, Grouping]:
    vehicles = {"airplane", "automobile", "ship", "truck"}
    f2c = np.array([0 if n in vehicles else 1 for n in CIFAR10_NAMES], dtype=np.int64)
    return {
        "animals-vehicles": Grouping(
            "animals-vehicles",
            "vehicles (airplane, automobile, ship, truck) vs animals (the other 6 classes)",
            f2c, ("vehicle", "animal")),
    }


DEFAULT_GROUPING = {"digits": "small-large", "cifar10": "animals-vehicles", "cifar100": "superclass"}

#: Grouping names valid for each dataset (``identity`` is valid for all).
GROUPING_NAMES = {
    "digits": ("small-large", "parity", "identity"),
    "cifar10": ("animals-vehicles", "identity"),
    "cifar100": ("superclass", "identity"),
}


def cifar100_superclasses(fine: np.ndarray, coarse: np.ndarray, n_fine: int = 100) -> np.ndarray:
    """Fine-to-coarse map of CIFAR-100 as stated by the data files.

    Parameters
    ----------
    fine, coarse : np.ndarray, shape (n_images,)
        ``fine_labels`` and ``coarse_labels`` of the same images.
    n_fine : int
        Number of fine classes.

    Returns
    -------
    np.ndarray, shape (n_fine,), int64
        Coarse class of each fine class (-1 for a fine class absent from the
        images). Raises ValueError if a fine class has two coarse classes.
    """
    f2c = np.full(n_fine, -1, dtype=np.int64)
    fine = np.asarray(fine, dtype=np.int64)
    coarse = np.asarray(coarse, dtype=np.int64)
    for f in np.unique(fine):
        cs = np.unique(coarse[fine == f])
        if cs.size != 1:
            raise ValueError(f"fine class {f} has coarse labels {cs.tolist()}; expected one")
        f2c[f] = cs[0]
    return f2c


def get_grouping(dataset: str, grouping: str | None, *, fine_names: tuple[str, ...],
                 cifar100_map: np.ndarray | None = None,
                 cifar100_coarse_names: tuple[str, ...] | None = None) -> Grouping:
    """Look up a grouping by name.

    Parameters
    ----------
    dataset : {"digits", "cifar10", "cifar100"}
    grouping : str or None
        Name from :data:`GROUPING_NAMES`; None picks the dataset's default.
    fine_names : tuple of str
        Names of the fine classes (``identity`` uses them as coarse names).
    cifar100_map, cifar100_coarse_names
        For ``cifar100``/``superclass``: the map and names read from the files.

    Raises
    ------
    ConfigError
        Unknown grouping for this dataset (the message lists the valid ones).
    """
    if dataset not in GROUPING_NAMES:
        raise ConfigError(
            f"unknown image dataset {dataset!r}; valid: {', '.join(GROUPING_NAMES)}")
    if grouping is None:
        grouping = DEFAULT_GROUPING[dataset]
    valid = GROUPING_NAMES[dataset]
    if grouping not in valid:
        raise ConfigError(
            f"unknown grouping {grouping!r} for dataset {dataset!r}; valid: {', '.join(valid)}")
    if grouping == "identity":
        return Grouping("identity", "coarse label = fine label",
                        np.arange(len(fine_names), dtype=np.int64), tuple(fine_names))
    if dataset == "digits":
        return _digits_groupings()[grouping]
    if dataset == "cifar10":
        return _cifar10_groupings()[grouping]
    # cifar100 / superclass
    if cifar100_map is None or cifar100_coarse_names is None:
        raise ValueError("cifar100 superclass grouping needs the map read from the files")
    return Grouping("superclass", "the 20 CIFAR-100 superclasses",
                    np.asarray(cifar100_map, dtype=np.int64), tuple(cifar100_coarse_names))
