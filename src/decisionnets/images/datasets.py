"""Image datasets: scikit-learn's digits (embedded) and CIFAR-10/100 (local files).

Nothing is downloaded at run time.

* ``digits``: scikit-learn's ``load_digits`` (1,797 grey 8x8 images of the
  digits 0-9, values 0-16, shipped inside scikit-learn). A fixed, stratified
  train/probe split: 50 images of each digit (500) form the probe split, the
  other 1,297 the training split. The split is the same on every machine and
  in every run (it is drawn once from the constant seed
  :data:`DIGITS_SPLIT_SEED`), so runs with different seeds share probe images.
* ``cifar10`` / ``cifar100``: read from a local directory in the standard
  "python version" layout (``cifar-10-batches-py/data_batch_1..5``,
  ``test_batch``, ``batches.meta``; ``cifar-100-python/train``, ``test``,
  ``meta``), as extracted from ``cifar-10-python.tar.gz`` /
  ``cifar-100-python.tar.gz`` (https://www.cs.toronto.edu/~kriz/cifar.html).
  The directory is the ``root`` argument (``[env] root`` in a config) or else
  the environment variable ``DECISIONNETS_CIFAR_DIR``; ``root`` may be the
  folder that holds ``cifar-10-batches-py/`` or that folder itself. The
  training split is CIFAR's training set; probe images come from its test set.

Pixels are scaled to [0, 1] and normalized per channel with the mean and
standard deviation of the training split (:func:`channel_stats`,
:func:`normalize`). :func:`flip_crop` is the standard CIFAR augmentation
(random horizontal flip, zero-pad by 4 and random 32x32 crop), drawn from an
explicit ``torch.Generator``.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from decisionnets.errors import ConfigError, DataFileError

#: Names accepted by :func:`load_dataset`.
DATASETS = ("digits", "cifar10", "cifar100")

#: Environment variable naming the folder that holds the CIFAR files.
CIFAR_ENV_VAR = "DECISIONNETS_CIFAR_DIR"

#: Constant seed of the fixed digits train/probe split (not a run seed).
DIGITS_SPLIT_SEED = 20210211
#: Probe images per digit in the fixed digits split.
DIGITS_PROBE_PER_CLASS = 50

CIFAR10_DIR = "cifar-10-batches-py"
CIFAR100_DIR = "cifar-100-python"
_CIFAR_FILES = {
    "cifar10": (CIFAR10_DIR, ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                              "data_batch_5", "test_batch", "batches.meta"]),
    "cifar100": (CIFAR100_DIR, ["train", "test", "meta"]),
}
_PRETTY = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}


@dataclass(frozen=True)
class ImageDataset:
    """Images and labels of one dataset, split into train and probe parts.

    Attributes
    ----------
    name : str
        ``"digits"``, ``"cifar10"`` or ``"cifar100"``.
    train_images, probe_images : np.ndarray, shape (n, C, H, W)
        Raw pixels (uint8 for CIFAR, float32 0-16 for digits); multiply by
        ``scale`` to get [0, 1].
    train_fine, probe_fine : np.ndarray, shape (n,), int64
        Original class of each image.
    fine_names : tuple of str
        Name of each fine class.
    scale : float
        Factor from raw pixel values to [0, 1].
    train_coarse, probe_coarse : np.ndarray (n,) int64 or None
        Coarse labels stored in the files (CIFAR-100 superclasses), else None.
    coarse_names : tuple of str or None
        Names of the stored coarse labels, else None.
    source : str
        Where the data came from (a path, or "sklearn.datasets.load_digits").
    """

    name: str
    train_images: np.ndarray
    train_fine: np.ndarray
    probe_images: np.ndarray
    probe_fine: np.ndarray
    fine_names: tuple[str, ...]
    scale: float
    train_coarse: np.ndarray | None = None
    probe_coarse: np.ndarray | None = None
    coarse_names: tuple[str, ...] | None = None
    source: str = ""

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.train_images.shape[1:]
        return int(c), int(h), int(w)


def load_dataset(name: str, root: str | os.PathLike | None = None) -> ImageDataset:
    """Load an image dataset by name.

    Parameters
    ----------
    name : {"digits", "cifar10", "cifar100"}
    root : path, optional
        CIFAR folder (ignored for digits); default ``$DECISIONNETS_CIFAR_DIR``.

    Raises
    ------
    ConfigError
        Unknown dataset name.
    DataFileError
        CIFAR files missing or malformed.
    """
    if name == "digits":
        return load_digits()
    if name == "cifar10":
        return load_cifar10(root)
    if name == "cifar100":
        return load_cifar100(root)
    raise ConfigError(f"unknown image dataset {name!r}; valid: {', '.join(DATASETS)}")


# --------------------------------------------------------------------------- digits

def load_digits() -> ImageDataset:
    """scikit-learn's digits with the fixed stratified train/probe split."""
    from sklearn.datasets import load_digits as _sk_load_digits

    d = _sk_load_digits()
    images = d.images.astype(np.float32)[:, None]  # (1797, 1, 8, 8), values 0..16
    fine = d.target.astype(np.int64)
    rng = np.random.default_rng(DIGITS_SPLIT_SEED)
    probe = np.zeros(fine.size, dtype=bool)
    for c in range(10):
        idx = np.flatnonzero(fine == c)
        probe[rng.choice(idx, size=DIGITS_PROBE_PER_CLASS, replace=False)] = True
    return ImageDataset(
        name="digits",
        train_images=images[~probe], train_fine=fine[~probe],
        probe_images=images[probe], probe_fine=fine[probe],
        fine_names=tuple(str(i) for i in range(10)), scale=1.0 / 16.0,
        source="sklearn.datasets.load_digits",
    )


# --------------------------------------------------------------------------- CIFAR

def resolve_cifar_root(dataset: str, root: str | os.PathLike | None = None) -> Path:
    """Folder holding the files of ``dataset`` ("cifar10" or "cifar100").

    ``root`` (or ``$DECISIONNETS_CIFAR_DIR``) may be the parent of
    ``cifar-10-batches-py/`` / ``cifar-100-python/`` or that folder itself.

    Raises
    ------
    DataFileError
        No root given, or a required file is missing; the message names the
        expected path and how to set it.
    """
    sub, files = _CIFAR_FILES[dataset]
    pretty = _PRETTY[dataset]
    if root is None or str(root) == "":
        root = os.environ.get(CIFAR_ENV_VAR) or None
    if root is None:
        raise DataFileError(
            f"{pretty} location not set: set {CIFAR_ENV_VAR} or env.root to the folder holding "
            f"{sub}/ (the extracted 'python version' from https://www.cs.toronto.edu/~kriz/cifar.html)")
    root = Path(root).expanduser()
    folder = root if (root / files[0]).is_file() else root / sub
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise DataFileError(
            f"{pretty} not found at {root}: expected {root / sub / files[0]} ... "
            f"(missing {', '.join(missing)}; set {CIFAR_ENV_VAR} or env.root)")
    return folder


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler that only builds numpy arrays (the CIFAR files hold nothing else)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _read_pickle(path: Path) -> dict[str, object]:
    try:
        with open(path, "rb") as fh:
            obj = _CifarUnpickler(fh, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError) as exc:
        raise DataFileError(f"{path} is not a CIFAR 'python version' pickle ({exc})") from None
    if not isinstance(obj, dict):
        raise DataFileError(f"{path} is not a CIFAR 'python version' pickle (holds a "
                            f"{type(obj).__name__}, expected a dict)")
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def _names(values) -> tuple[str, ...]:
    return tuple(v.decode("latin1") if isinstance(v, bytes) else str(v) for v in values)


def _get(d: dict, key: str, path: Path):
    if key not in d:
        raise DataFileError(f"{path} lacks key {key!r}; expected keys like {sorted(d)[:6]} "
                            f"plus {key!r} (a CIFAR 'python version' file)")
    return d[key]


def _batch(path: Path, label_keys: tuple[str, ...]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Images (n, 3, 32, 32) uint8 and label arrays (n,) int64 of one batch file."""
    d = _read_pickle(path)
    data = np.asarray(_get(d, "data", path))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataFileError(f"{path}: 'data' is {data.dtype} {data.shape}; expected uint8 (n, 3072)")
    labels = []
    for key in label_keys:
        lab = np.asarray(_get(d, key, path), dtype=np.int64)
        if lab.shape != (data.shape[0],):
            raise DataFileError(f"{path}: {key!r} has shape {lab.shape}; expected "
                                f"({data.shape[0]},) to match 'data'")
        labels.append(lab)
    return data.reshape(-1, 3, 32, 32), labels


def _check_range(path: Path, key: str, labels: np.ndarray, n: int) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= n):
        raise DataFileError(f"{path}: {key!r} holds values {labels.min()}..{labels.max()}; "
                            f"expected 0..{n - 1}")


def load_cifar10(root: str | os.PathLike | None = None) -> ImageDataset:
    """CIFAR-10 from ``root`` (see :func:`resolve_cifar_root`)."""
    folder = resolve_cifar_root("cifar10", root)
    meta_path = folder / "batches.meta"
    names = _names(_get(_read_pickle(meta_path), "label_names", meta_path))
    parts = [_batch(folder / f"data_batch_{i}", ("labels",)) for i in range(1, 6)]
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1][0] for p in parts])
    probe_x, (probe_y,) = _batch(folder / "test_batch", ("labels",))
    _check_range(folder / "data_batch_*", "labels", train_y, len(names))
    _check_range(folder / "test_batch", "labels", probe_y, len(names))
    return ImageDataset("cifar10", train_x, train_y, probe_x, probe_y, names, 1.0 / 255.0,
                        source=str(folder))


def load_cifar100(root: str | os.PathLike | None = None) -> ImageDataset:
    """CIFAR-100 from ``root`` (see :func:`resolve_cifar_root`); keeps the superclasses."""
    folder = resolve_cifar_root("cifar100", root)
    meta_path = folder / "meta"
    meta = _read_pickle(meta_path)
    fine_names = _names(_get(meta, "fine_label_names", meta_path))
    coarse_names = _names(_get(meta, "coarse_label_names", meta_path))
    keys = ("fine_labels", "coarse_labels")
    train_x, (train_f, train_c) = _batch(folder / "train", keys)
    probe_x, (probe_f, probe_c) = _batch(folder / "test", keys)
    for name, f, c in (("train", train_f, train_c), ("test", probe_f, probe_c)):
        _check_range(folder / name, "fine_labels", f, len(fine_names))
        _check_range(folder / name, "coarse_labels", c, len(coarse_names))
    return ImageDataset("cifar100", train_x, train_f, probe_x, probe_f, fine_names, 1.0 / 255.0,
                        train_coarse=train_c, probe_coarse=probe_c, coarse_names=coarse_names,
                        source=str(folder))


# --------------------------------------------------------------------------- preprocessing

def channel_stats(images: np.ndarray, scale: float, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of ``images * scale``.

    Parameters
    ----------
    images : np.ndarray, shape (n, C, H, W)
    scale : float

    Returns
    -------
    mean, std : np.ndarray, shape (C,), float64
        Computed in chunks (no float copy of the whole array); ``std`` is the
        population standard deviation, floored at 1e-8.
    """
    n, c = images.shape[:2]
    total = np.zeros(c)
    total_sq = np.zeros(c)
    for start in range(0, n, chunk):
        x = images[start:start + chunk].astype(np.float64) * scale
        total += x.sum(axis=(0, 2, 3))
        total_sq += (x * x).sum(axis=(0, 2, 3))
    count = n * images.shape[2] * images.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return mean, np.maximum(std, 1e-8)


def normalize(images: np.ndarray, scale: float, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(images * scale - mean) / std`` per channel, as float32 (n, C, H, W)."""
    x = images.astype(np.float32) * np.float32(scale)
    x -= mean.astype(np.float32)[None, :, None, None]
    x /= std.astype(np.float32)[None, :, None, None]
    return x


def stratified_subsample(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` items drawn without replacement, balanced over ``labels``.

    Each class gets ``n // n_classes`` items (fewer if it has fewer; the rest
    is filled at random from the remaining items). Returns sorted indices.
    """
    labels = np.asarray(labels)
    if n >= labels.size:
        return np.arange(labels.size)
    classes = np.unique(labels)
    per = n // classes.size
    chosen = []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        chosen.append(rng.choice(idx, size=min(per, idx.size), replace=False))
    chosen = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    rest = np.setdiff1d(np.arange(labels.size), chosen)
    extra = rng.choice(rest, size=n - chosen.size, replace=False)
    return np.sort(np.concatenate([chosen, extra])).astype(np.int64)


def flip_crop(x, generator, pad: int = 4):
    """Random horizontal flip and zero-pad + random crop, per image.

    Parameters
    ----------
    x : torch.Tensor, shape (batch, C, H, W)
        Normalized images (zero padding is then the training-set mean).
    generator : torch.Generator
        Source of the random flips and offsets (its device is used for the
        draws; results are moved to ``x.device``).
    pad : int
        Padding on each side; offsets are uniform in 0..2*pad.

    Returns
    -------
    torch.Tensor, shape (batch, C, H, W)
    """
    import torch
    import torch.nn.functional as F

    b, _, h, w = x.shape
    gdev = generator.device
    flip = torch.rand(b, generator=generator, device=gdev) < 0.5
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=gdev)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=gdev)
    flip, dy, dx = flip.to(x.device), dy.to(x.device), dx.to(x.device)
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    padded = F.pad(x, (pad, pad, pad, pad)).permute(0, 2, 3, 1)  # (b, H+2p, W+2p, C)
    rows = dy[:, None, None] + torch.arange(h, device=x.device)[None, :, None]
    cols = dx[:, None, None] + torch.arange(w, device=x.device)[None, None, :]
    bidx = torch.arange(b, device=x.device)[:, None, None]
    return padded[bidx, rows, cols].permute(0, 3, 1, 2).contiguous()
