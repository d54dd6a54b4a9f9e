"""ImageTask: the task protocol over digits and (fake) CIFAR."""

import json

import numpy as np
import pytest
import torch

from decisionnets.errors import ConfigError
from decisionnets.images import ImageTask
from decisionnets.trials import TrialBatch

from fake_images import CIFAR100_FINE_TO_COARSE, write_fake_cifar

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_fake_cifar(root, "cifar10", n_train=50, n_test=40, seed=3)
    write_fake_cifar(root, "cifar100", n_train=200, n_test=200, seed=4)
    return root


@pytest.fixture(scope="module")
def digits():
    return ImageTask("digits")


def test_digits_task_protocol(digits):
    assert digits.name == "digits-coarse"
    assert (digits.n_inputs, digits.n_outputs) == (64, 2)
    assert digits.choice_actions == [0, 1]
    assert digits.target_label == "coarse_label" and digits.has_time is False
    assert digits.input_shape == (1, 8, 8) and digits.n_probe == 500
    from decisionnets.task import Task, declaration_attrs

    assert isinstance(digits, Task)  # the task protocol, declared by the image task itself
    assert declaration_attrs(digits)["decode_labels"] == '["fine_label", "coarse_label"]'
    # the figures' colours it always had (fine orange, coarse blue), declared by the task
    assert json.loads(declaration_attrs(digits)["label_colors"]) == {"fine_label": "tab:orange", "coarse_label": "tab:blue"}
    assert digits.probe_conditions() == [{"fine_label": k} for k in range(10)]


def test_digits_probe_set_is_fixed_and_labelled(digits):
    a, b = digits.probe_set(np.random.default_rng(0)), digits.probe_set(np.random.default_rng(1))
    assert isinstance(a, TrialBatch)
    assert a.inputs.shape == (1, 500, 64) and a.inputs.dtype == np.float32
    assert a.targets.shape == (1, 500) and a.targets.dtype == np.int64
    assert a.mask.shape == (1, 500) and np.all(a.mask == 1)
    assert a.period is None and a.dt is None
    assert set(a.labels) == {"fine_label", "coarse_label"}
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.labels["coarse_label"], a.labels["fine_label"] >= 5)
    np.testing.assert_array_equal(a.targets[0], a.labels["coarse_label"])


def test_train_set_is_normalized_and_seeded(digits):
    full = digits.train_set(None, None)
    assert full.inputs.shape == (1, 1297, 64)
    assert abs(full.inputs.mean()) < 1e-5 and full.inputs.std() == pytest.approx(1, abs=1e-4)
    a = digits.train_set(100, np.random.default_rng(5))
    b = digits.train_set(100, np.random.default_rng(5))
    c = digits.train_set(100, np.random.default_rng(6))
    np.testing.assert_array_equal(a.inputs, b.inputs)
    assert not np.array_equal(a.labels["fine_label"], c.labels["fine_label"]) or \
        not np.array_equal(a.inputs, c.inputs)
    with pytest.raises(ConfigError, match="1..1297"):
        digits.train_set(5000, np.random.default_rng(0))


@pytest.mark.parametrize("grouping, expected", [("parity", [0, 1, 0, 1]), ("identity", [0, 1, 2, 3])])
def test_digits_other_groupings(grouping, expected):
    t = ImageTask("digits", grouping=grouping)
    assert t.grouping.coarse(np.arange(4)).tolist() == expected


def test_fine_target_trains_on_the_original_class():
    t = ImageTask("digits", target="fine")
    assert t.n_outputs == 10 and t.target_label == "fine_label" and t.name == "digits-fine"
    b = t.probe_set(None)
    np.testing.assert_array_equal(b.targets[0], b.labels["fine_label"])


def test_digits_augment_is_identity(digits):
    x = torch.randn(1, 4, 64)
    assert digits.augment(x, torch.Generator().manual_seed(0)) is x


@pytest.mark.parametrize("kwargs, match", [
    ({"dataset": "mnist"}, "valid: digits, cifar10, cifar100"),
    ({"grouping": "animals-vehicles"}, "valid: small-large, parity, identity"),
    ({"target": "superclass"}, "valid: coarse, fine"),
    ({"augment": True}, "only for CIFAR"),
    ({"n_probe": 501}, "exceeds the 500 images"),
    ({"n_probe": 5}, "smaller than the number of conditions"),
    ({"n_probe": 1.5}, "integer >= 2"),
])
def test_bad_config_is_a_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ImageTask(**{"dataset": "digits", **kwargs})


def test_cifar10_probe_subsample_is_balanced_and_seeded(fake_root):
    t = ImageTask("cifar10", root=str(fake_root), n_probe=20)
    assert (t.n_inputs, t.n_outputs, t.input_shape) == (3072, 2, (3, 32, 32))
    a, b = t.probe_set(np.random.default_rng(0)), t.probe_set(np.random.default_rng(0))
    np.testing.assert_array_equal(a.inputs, b.inputs)
    assert a.inputs.shape == (1, 20, 3072)
    assert np.bincount(a.labels["fine_label"], minlength=10).tolist() == [2] * 10
    vehicle = np.isin(a.labels["fine_label"], [0, 1, 8, 9])
    np.testing.assert_array_equal(a.labels["coarse_label"], (~vehicle).astype(int))


def test_cifar10_default_probe_is_capped_by_the_test_set(fake_root):
    t = ImageTask("cifar10", root=str(fake_root))
    assert t.n_probe == 40


def test_cifar_augment_flips_and_crops_when_enabled(fake_root):
    on = ImageTask("cifar10", root=str(fake_root), augment=True)
    off = ImageTask("cifar10", root=str(fake_root))
    x = torch.from_numpy(on.train_set(8, np.random.default_rng(0)).inputs)
    assert off.augment(x, torch.Generator().manual_seed(0)) is x
    y1 = on.augment(x, torch.Generator().manual_seed(1))
    y2 = on.augment(x, torch.Generator().manual_seed(1))
    assert y1.shape == x.shape
    torch.testing.assert_close(y1, y2)
    assert not torch.equal(y1, x)


def test_cifar100_superclass_labels_come_from_the_files(fake_root):
    t = ImageTask("cifar100", root=str(fake_root), n_probe=100)
    assert t.n_outputs == 20 and t.coarse_names[-1] == "vehicles_2"
    p = t.probe_set(np.random.default_rng(0))
    np.testing.assert_array_equal(p.labels["coarse_label"], CIFAR100_FINE_TO_COARSE[p.labels["fine_label"]])
    assert np.unique(p.labels["fine_label"]).size == 100


def test_attrs_are_netcdf_friendly(fake_root):
    attrs = ImageTask("cifar100", root=str(fake_root)).attrs()
    assert all(isinstance(v, (str, int, float)) for v in attrs.values())
    assert json.loads(attrs["fine_to_coarse"]) == CIFAR100_FINE_TO_COARSE.tolist()
    assert len(json.loads(attrs["normalization_mean"])) == 3
