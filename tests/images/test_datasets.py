"""Image datasets: digits split, CIFAR "python version" files (fake), preprocessing, groupings."""

import pickle

import numpy as np
import pytest
import torch

from decisionnets.errors import ConfigError, DataFileError
from decisionnets.images import datasets as D
from decisionnets.images.labels import CIFAR10_NAMES, cifar100_superclasses, get_grouping

from fake_images import CIFAR100_FINE_TO_COARSE, write_fake_cifar

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_fake_cifar(root, "cifar10", n_train=40, n_test=20, seed=1)
    write_fake_cifar(root, "cifar100", n_train=200, n_test=100, seed=2)
    return root


# ------------------------------------------------------------------ digits

def test_digits_fixed_stratified_split():
    a, b = D.load_digits(), D.load_digits()
    assert a.train_images.shape == (1297, 1, 8, 8) and a.probe_images.shape == (500, 1, 8, 8)
    assert a.input_shape == (1, 8, 8)
    assert np.bincount(a.probe_fine).tolist() == [50] * 10
    np.testing.assert_array_equal(a.probe_images, b.probe_images)
    np.testing.assert_array_equal(a.train_fine, b.train_fine)
    assert a.train_images.max() * a.scale == pytest.approx(1.0)


def test_unknown_dataset_names_valid_ones():
    with pytest.raises(ConfigError, match="valid: digits, cifar10, cifar100"):
        D.load_dataset("mnist")


# ------------------------------------------------------------------ CIFAR files

def test_fake_cifar10_has_the_standard_layout(fake_root):
    folder = fake_root / "cifar-10-batches-py"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["batches.meta", "data_batch_1", "data_batch_2", "data_batch_3",
                     "data_batch_4", "data_batch_5", "readme.html", "test_batch"]
    with open(folder / "data_batch_1", "rb") as fo:  # the reader from the CIFAR web page
        d = pickle.load(fo, encoding="bytes")
    assert set(d) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert d[b"data"].dtype == np.uint8 and d[b"data"].shape == (8, 3072)
    with open(folder / "batches.meta", "rb") as fo:
        assert pickle.load(fo, encoding="bytes")[b"label_names"][0] == b"airplane"


def test_fake_cifar100_has_the_standard_layout(fake_root):
    folder = fake_root / "cifar-100-python"
    assert sorted(p.name for p in folder.iterdir()) == ["meta", "test", "train"]
    with open(folder / "train", "rb") as fo:
        d = pickle.load(fo, encoding="bytes")
    assert {b"fine_labels", b"coarse_labels", b"data", b"filenames", b"batch_label"} == set(d)
    fine = np.array(d[b"fine_labels"])
    np.testing.assert_array_equal(np.array(d[b"coarse_labels"]), CIFAR100_FINE_TO_COARSE[fine])


def test_load_cifar10_reads_every_batch(fake_root):
    ds = D.load_cifar10(fake_root)
    assert ds.train_images.shape == (40, 3, 32, 32) and ds.train_images.dtype == np.uint8
    assert ds.probe_images.shape == (20, 3, 32, 32)
    assert ds.fine_names == CIFAR10_NAMES
    labels = []
    for i in range(1, 6):
        with open(fake_root / "cifar-10-batches-py" / f"data_batch_{i}", "rb") as fo:
            d = pickle.load(fo, encoding="bytes")
        labels += d[b"labels"]
        if i == 1:  # channel-major rows: first 1024 values are the red plane
            np.testing.assert_array_equal(ds.train_images[0, 0].ravel(), d[b"data"][0, :1024])
    np.testing.assert_array_equal(ds.train_fine, labels)


def test_load_cifar100_keeps_superclasses(fake_root):
    ds = D.load_cifar100(fake_root)
    assert len(ds.fine_names) == 100 and len(ds.coarse_names) == 20
    assert ds.coarse_names[0] == "aquatic_mammals" and ds.fine_names[0] == "apple"
    f2c = cifar100_superclasses(ds.train_fine, ds.train_coarse)
    np.testing.assert_array_equal(f2c, CIFAR100_FINE_TO_COARSE)


def test_root_may_be_the_batches_folder_itself(fake_root):
    ds = D.load_cifar10(fake_root / "cifar-10-batches-py")
    assert ds.train_fine.size == 40


def test_root_from_environment_variable(fake_root, monkeypatch):
    monkeypatch.setenv("DECISIONNETS_CIFAR_DIR", str(fake_root))
    assert D.load_dataset("cifar100").train_fine.size == 200


def test_missing_cifar_names_expected_path(tmp_path):
    with pytest.raises(DataFileError, match=r"CIFAR-10 not found at .*cifar-10-batches-py/data_batch_1"
                                            r".*DECISIONNETS_CIFAR_DIR"):
        D.load_cifar10(tmp_path)


def test_no_root_and_no_environment_variable(monkeypatch):
    monkeypatch.delenv("DECISIONNETS_CIFAR_DIR", raising=False)
    with pytest.raises(DataFileError, match="DECISIONNETS_CIFAR_DIR"):
        D.load_dataset("cifar100")


def test_truncated_file_is_a_data_file_error(tmp_path):
    write_fake_cifar(tmp_path, "cifar10", n_train=10, n_test=5)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataFileError, match="data_batch_3"):
        D.load_cifar10(tmp_path)


def test_pickle_with_foreign_code_is_refused(tmp_path):
    write_fake_cifar(tmp_path, "cifar10", n_train=10, n_test=5)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"

    class Evil:
        def __reduce__(self):
            return (print, ("should not run",))

    path.write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(DataFileError, match="refusing to load .*print"):
        D.load_cifar10(tmp_path)


def test_wrong_data_shape_is_a_data_file_error(tmp_path):
    write_fake_cifar(tmp_path, "cifar10", n_train=10, n_test=5)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(pickle.dumps({b"data": np.zeros((5, 10), np.uint8), b"labels": [0] * 5}, protocol=2))
    with pytest.raises(DataFileError, match=r"expected uint8 \(n, 3072\)"):
        D.load_cifar10(tmp_path)


# ------------------------------------------------------------------ preprocessing

def test_normalized_training_split_has_zero_mean_unit_std(fake_root):
    ds = D.load_cifar10(fake_root)
    mean, std = D.channel_stats(ds.train_images, ds.scale, chunk=7)
    x = D.normalize(ds.train_images, ds.scale, mean, std)
    assert x.dtype == np.float32 and x.shape == ds.train_images.shape
    np.testing.assert_allclose(x.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=(0, 2, 3)), 1, atol=1e-4)


def test_stratified_subsample_is_balanced_and_seeded():
    labels = np.repeat(np.arange(4), [10, 10, 10, 3])
    a = D.stratified_subsample(labels, 12, np.random.default_rng(0))
    b = D.stratified_subsample(labels, 12, np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)
    assert a.size == 12 and np.unique(a).size == 12 and np.all(np.diff(a) > 0)
    assert np.bincount(labels[a], minlength=4).tolist() == [3, 3, 3, 3]
    c = D.stratified_subsample(labels, 20, np.random.default_rng(1))  # class 3 too small: filled
    assert c.size == 20 and np.bincount(labels[c])[3] == 3


def test_flip_crop_returns_shifted_or_flipped_copies():
    x = torch.arange(2 * 2 * 6 * 6, dtype=torch.float32).reshape(2, 2, 6, 6) + 1
    out = D.flip_crop(x, torch.Generator().manual_seed(0), pad=2)
    assert out.shape == x.shape
    again = D.flip_crop(x, torch.Generator().manual_seed(0), pad=2)
    torch.testing.assert_close(out, again)
    for i in range(2):
        found = False
        for img in (x[i], x[i].flip(-1)):
            padded = torch.nn.functional.pad(img, (2, 2, 2, 2))
            for dy in range(5):
                for dx in range(5):
                    found |= torch.equal(padded[:, dy:dy + 6, dx:dx + 6], out[i])
        assert found


# ------------------------------------------------------------------ groupings

@pytest.mark.parametrize("dataset, grouping, expected", [
    ("digits", "small-large", [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]),
    ("digits", "parity", [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]),
    ("digits", None, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]),
    ("cifar10", "animals-vehicles", [0, 0, 1, 1, 1, 1, 1, 1, 0, 0]),
    ("cifar10", "identity", list(range(10))),
])
def test_grouping_maps(dataset, grouping, expected):
    names = CIFAR10_NAMES if dataset == "cifar10" else tuple("0123456789")
    g = get_grouping(dataset, grouping, fine_names=names)
    assert g.coarse(np.arange(10)).tolist() == expected


def test_cifar10_animals_vehicles_names():
    g = get_grouping("cifar10", "animals-vehicles", fine_names=CIFAR10_NAMES)
    vehicles = [n for n, c in zip(CIFAR10_NAMES, g.fine_to_coarse) if g.coarse_names[c] == "vehicle"]
    assert vehicles == ["airplane", "automobile", "ship", "truck"]


def test_unknown_grouping_names_valid_ones():
    with pytest.raises(ConfigError, match="valid: animals-vehicles, identity"):
        get_grouping("cifar10", "superclass", fine_names=CIFAR10_NAMES)


def test_inconsistent_superclasses_are_detected():
    with pytest.raises(ValueError, match="fine class 1"):
        cifar100_superclasses(np.array([0, 1, 1]), np.array([0, 2, 3]), n_fine=3)
