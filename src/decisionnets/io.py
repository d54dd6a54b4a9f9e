"""Run directories on disk: atomic writes, activation files, status, and :func:`open_activations`.

A run directory holds::

    config.json           the resolved config
    status.json           {"status": "running" | "completed" | "diverged", "epoch", "step", ...}
    log.csv               one row per training epoch
    checkpoints/last.pt   the newest checkpoint (a plain dict), final.pt at the end
    activations/epoch_00000.nc, epoch_00001.nc, ...   one netCDF4 file per recorded epoch
    information.nc, figures/                           written by ``decisionnets analyze``

Every file is written to a temporary name in the same folder, flushed to disk
and renamed, so a crash never leaves a half-written file under its real name.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import xarray as xr

from decisionnets.errors import DataFileError

#: Version of the on-disk activation format; :func:`open_activations` refuses other versions.
FORMAT_VERSION = 1

ACTIVATIONS = "activations"
_MAGIC = (b"\x89HDF\r\n\x1a\n", b"CDF\x01", b"CDF\x02", b"CDF\x05")


@contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; on success, fsync it and rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def write_json(path, obj) -> None:
    """Write ``obj`` as JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True))


def clean_temporaries(run_dir) -> list[Path]:
    """Remove temporary files a killed process left behind; returns what was removed."""
    removed = []
    for p in Path(run_dir).rglob(".*.tmp"):
        p.unlink()
        removed.append(p)
    return removed


def epoch_path(run_dir, epoch: int) -> Path:
    """Where epoch ``epoch``'s activations live."""
    return Path(run_dir) / ACTIVATIONS / f"epoch_{epoch:05d}.nc"


def write_epoch(ds: xr.Dataset, run_dir, epoch: int) -> Path:
    """Write one recorded epoch's dataset atomically (netCDF4, uncompressed); returns its path.

    Uncompressed on purpose: zlib cost 5x the time of the probe forward pass and saves little on
    float activity; use ``record.dtype = "float16"`` or ``record.time_stride`` to shrink runs.
    """
    path = epoch_path(run_dir, epoch)
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, format="NETCDF4", engine="netcdf4")
    return path


def check_netcdf(path) -> None:
    """Raise :class:`DataFileError` unless ``path`` exists and starts like a netCDF/HDF5 file."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"file not found: {path}")
    with open(path, "rb") as f:
        head = f.read(8)
    if not any(head.startswith(m) for m in _MAGIC):
        raise DataFileError(f"{path} is not a netCDF file (it starts with {head[:4]!r})")


def open_dataset(path, what: str = "dataset") -> xr.Dataset:
    """Open one netCDF file with a one-line :class:`DataFileError` for missing, truncated or foreign files."""
    check_netcdf(path)
    try:
        return xr.open_dataset(path, engine="netcdf4")
    except (OSError, ValueError, RuntimeError) as e:
        raise DataFileError(f"cannot read {what} {path}: {e} (truncated or corrupt?)") from None


def _check_version(ds: xr.Dataset, path) -> None:
    v = ds.attrs.get("format_version")
    v = v.item() if hasattr(v, "item") else v
    if v != FORMAT_VERSION:
        raise DataFileError(
            f"{path} has activation format version {v!r}; this decisionnets reads version {FORMAT_VERSION} "
            "(re-record the run with this version)"
        )


def open_activations(run_dir) -> xr.Dataset:
    """All recorded epochs of a run as one lazily loaded dataset (DESIGN.md §3).

    Parameters
    ----------
    run_dir : path
        A run directory, its ``activations`` folder, or one epoch's ``.nc`` file.

    Returns
    -------
    xr.Dataset
        ``hidden`` (epoch, trial, time, unit), ``logits`` (epoch, trial, time,
        action), ``choice``/``correct`` (epoch, trial), ``loss``/``accuracy``/
        ``step`` (epoch); trial labels as coordinates on ``trial``; dask-backed.
    """
    run_dir = Path(run_dir)
    if run_dir.is_file() or run_dir.suffix == ".nc":  # one epoch's file
        ds = open_dataset(run_dir, "activation file")
        _check_version(ds, run_dir)
        return ds
    folder = run_dir if run_dir.name == ACTIVATIONS else run_dir / ACTIVATIONS
    if not run_dir.exists():
        raise DataFileError(f"run directory not found: {run_dir}")
    files = sorted(folder.glob("epoch_*.nc")) if folder.is_dir() else []
    if not files:
        raise DataFileError(f"no recorded epochs in {folder} (expected activations/epoch_*.nc; is this a run directory?)")
    for f in files:
        check_netcdf(f)
        with open_dataset(f, "activation file") as ds:
            _check_version(ds, f)
    try:
        ds = xr.open_mfdataset(
            [str(f) for f in files], engine="netcdf4", combine="nested", concat_dim="epoch",
            data_vars="minimal", coords="minimal", compat="override", join="override",
        )
    except (OSError, ValueError, RuntimeError) as e:
        raise DataFileError(f"cannot combine the activation files in {folder}: {e}") from None
    return ds


def read_status(run_dir) -> dict:
    """The run's status.json ({} when absent)."""
    p = Path(run_dir) / "status.json"
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise DataFileError(f"{p} is not valid JSON: {e}") from None
