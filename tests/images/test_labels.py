"""decisionnets.images.labels: the coarse/fine groupings of the image datasets, with planted maps."""

import numpy as np
import pytest

from decisionnets.errors import ConfigError
from decisionnets.images.labels import (CIFAR10_NAMES, DEFAULT_GROUPING, DIGIT_NAMES, GROUPING_NAMES,
                                        cifar100_superclasses, get_grouping)


def test_digit_groupings_map_each_digit():
    small_large = get_grouping("digits", None, fine_names=DIGIT_NAMES)  # the default
    assert small_large.name == "small-large" and small_large.coarse_names == ("small", "large")
    assert small_large.coarse(np.arange(10)).tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    parity = get_grouping("digits", "parity", fine_names=DIGIT_NAMES)
    assert parity.coarse([[3, 4], [8, 9]]).tolist() == [[1, 0], [0, 1]]  # shape kept
    assert parity.coarse(np.array([7])).dtype == np.int64 and parity.n_coarse == 2


def test_cifar10_vehicles_and_animals():
    g = get_grouping("cifar10", None, fine_names=CIFAR10_NAMES)
    assert g.name == "animals-vehicles" and g.coarse_names == ("vehicle", "animal")
    vehicles = [CIFAR10_NAMES[k] for k in np.flatnonzero(g.fine_to_coarse == 0)]
    assert vehicles == ["airplane", "automobile", "ship", "truck"]


def test_identity_uses_the_fine_classes():
    g = get_grouping("cifar10", "identity", fine_names=CIFAR10_NAMES)
    assert g.coarse_names == CIFAR10_NAMES and g.coarse([9, 0, 4]).tolist() == [9, 0, 4]


def test_cifar100_superclasses_are_read_from_the_data():
    fine = np.array([0, 1, 2, 0, 2, 4])
    coarse = np.array([3, 0, 3, 3, 3, 1])
    f2c = cifar100_superclasses(fine, coarse, n_fine=5)
    assert f2c.tolist() == [3, 0, 3, -1, 1]  # fine class 3 has no image: -1
    g = get_grouping("cifar100", None, fine_names=tuple("abcde"), cifar100_map=f2c,
                     cifar100_coarse_names=("w", "x", "y", "z"))
    assert g.name == "superclass" and g.coarse(fine).tolist() == coarse.tolist()


def test_a_fine_class_with_two_coarse_classes_is_refused():
    with pytest.raises(ValueError, match="fine class 1 has coarse labels \\[0, 2\\]"):
        cifar100_superclasses(np.array([1, 1, 0]), np.array([0, 2, 0]), n_fine=2)
    with pytest.raises(ValueError, match="needs the map"):
        get_grouping("cifar100", "superclass", fine_names=("a",))


@pytest.mark.parametrize("dataset, grouping, match", [
    ("digits", "animals-vehicles", "unknown grouping 'animals-vehicles' for dataset 'digits'; valid: small-large, "
                                   "parity, identity"),
    ("mnist", None, "unknown image dataset 'mnist'; valid: digits, cifar10, cifar100"),
])
def test_unknown_names_are_config_errors_that_list_the_valid_ones(dataset, grouping, match):
    with pytest.raises(ConfigError, match=match):
        get_grouping(dataset, grouping, fine_names=DIGIT_NAMES)


def test_every_default_is_a_valid_grouping():
    assert all(DEFAULT_GROUPING[d] in names and "identity" in names for d, names in GROUPING_NAMES.items())
