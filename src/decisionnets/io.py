"""Run directories on disk: atomic writes, activation files, status, and :func:`open_activations`.

Data flow: recording -> **netCDF** (here: one file per recorded epoch) -> decoding -> analyses.

A run directory holds::

    config.json           the resolved config
    status.json           {"status": "running" | "completed" | "diverged", "epoch", "step", ...}
    log.csv               one row per training epoch
    checkpoints/last.pt   the newest checkpoint (a plain dict), final.pt at the end
    activations/epoch_00000.nc, epoch_00001.nc, ...   one netCDF4 file per recorded epoch
    weights/epoch_0000.pt, ...                         the model's state_dict per recorded epoch
                                                       (``decisionnets.weights``)
    information.nc, figures/                           written by ``decisionnets analyze``

Every file is written to a temporary name in the same folder, flushed to disk
and renamed, so a crash never leaves a half-written file under its real name.
A write that fails (disk full, I/O error, permission) raises
:class:`~decisionnets.errors.WriteFailed` naming the file and the operating
system's reason, and leaves nothing under the real name.

Every activation file carries its run's identity (attribute ``run_identity``, see
:func:`run_identity`); :func:`open_activations` refuses a folder whose files come
from different runs.
"""

from __future__ import annotations

import collections
import errno as _errno
import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import xarray as xr

from decisionnets.errors import DataFileError, WriteFailed

#: Version of the on-disk activation format; :func:`open_activations` refuses other versions.
FORMAT_VERSION = 1

ACTIVATIONS = "activations"
_MAGIC = (b"\x89HDF\r\n\x1a\n", b"CDF\x01", b"CDF\x02", b"CDF\x05")


def describe_os_error(e: OSError) -> str:
    """``"No space left on device (ENOSPC)"``: the reason of an :class:`OSError`, on one line."""
    code = e.errno
    if code is None and len(e.args) == 1 and isinstance(e.args[0], int):  # OSError(errno.ENOSPC)
        code = e.args[0]
    if code is None:
        return str(e) or type(e).__name__
    return f"{e.strerror or os.strerror(code)} ({_errno.errorcode.get(code, code)})"


def _probe_cause(tmp, err: Exception) -> str:
    """The OS reason behind a library's write error (netCDF/HDF5 and torch report none): try 1 MiB more."""
    said = f"{type(err).__name__}: {err}"
    try:
        with open(tmp, "ab") as f:
            for _ in range(16):
                f.write(b"\0" * 65536)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        return f"{describe_os_error(e)} (the writer said {said!r})"
    return said


def _umask() -> int:
    """The process's umask, read without changing it (``/proc/self/status``; else set and restored)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a new file gets as the umask allows (``0o666 & ~umask``; 0o644 under umask 022).

    Temporary files are created 0600; :func:`atomic_path` sets this mode before the rename, so run
    files are as readable by the group and others as any file the user creates.
    """
    return 0o666 & ~_umask()


@contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; on success, fsync it and rename it to ``path``.

    The file gets the mode the umask allows (:func:`file_mode`), as a file opened for writing would.

    Raises
    ------
    WriteFailed
        When creating, writing, flushing or renaming the file fails (the writer in the ``with``
        block raised :class:`OSError`, or a library's :class:`RuntimeError` such as netCDF's
        "HDF error"); the temporary file is removed, ``path`` is left as it was.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise WriteFailed(path, describe_os_error(e)) from e
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fchmod(f.fileno(), file_mode())  # mkstemp made it 0600
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except WriteFailed:
        raise
    except OSError as e:
        raise WriteFailed(path, describe_os_error(e)) from e
    except RuntimeError as e:  # netCDF4/HDF5 ("HDF error") and torch.save ("enforce fail") drop errno
        raise WriteFailed(path, _probe_cause(tmp, e)) from e
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


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
    ds = encode_float16(ds)
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, format="NETCDF4", engine="netcdf4")
    return path


#: Attribute marking a variable stored as the bits of float16 values in uint16 (netCDF has no 16-bit float).
FLOAT16_ATTR = "decisionnets_stored_as"


def encode_float16(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with every float16 variable stored losslessly as its bits in uint16 (2 bytes per value).

    netCDF4 has no 16-bit float type; :func:`decode_float16` (called by :func:`open_activations`)
    gives the float16 values back exactly.
    """
    names = [n for n in ds.data_vars if ds[n].dtype == "float16"]
    if not names:
        return ds
    ds = ds.copy()
    for n in names:
        ds[n] = ds[n].copy(data=ds[n].values.view("uint16"))
        ds[n].attrs[FLOAT16_ATTR] = "float16 bits in uint16"
    return ds


def decode_float16(ds: xr.Dataset) -> xr.Dataset:
    """The inverse of :func:`encode_float16`: uint16-stored variables as float16 again (lazily for dask)."""
    names = [n for n in ds.data_vars if FLOAT16_ATTR in ds[n].attrs and ds[n].dtype == "uint16"]
    for n in names:
        attrs = {k: v for k, v in ds[n].attrs.items() if k != FLOAT16_ATTR}
        ds[n] = ds[n].copy(data=ds[n].data.view("float16"))
        ds[n].attrs = attrs
    return ds


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


#: Dataset attribute holding the run identity (:func:`run_identity`).
IDENTITY_ATTR = "run_identity"


def run_identity(config_json: str) -> str:
    """The identity of a run: 16 hex digits of the SHA-256 of its resolved config and the format version.

    The resolved config holds the seed. The JSON is parsed and re-serialized canonically, so the
    identity depends on the config's content only, not on its formatting: a resumed run (which
    reads its ``config.json``) has the identity of the run that started it.
    """
    blob = json.dumps({"config": json.loads(config_json), "format_version": FORMAT_VERSION},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def dataset_identity(ds: xr.Dataset) -> str | None:
    """The run identity of an activation dataset (files without the attribute: from their ``config``)."""
    ident = ds.attrs.get(IDENTITY_ATTR)
    if ident is not None:
        return str(ident)
    try:
        return run_identity(ds.attrs["config"])
    except (KeyError, TypeError, ValueError):
        return None


def check_same_run(files, identities, expected: str | None = None) -> None:
    """Raise :class:`DataFileError` naming the first file whose identity differs from the run's.

    The run's identity is ``expected`` when some file has it (e.g. the one of the folder's
    ``config.json``), else the one most files share (ties: the earliest file's).
    """
    identities = list(identities)
    if len(set(identities)) <= 1:
        return
    counts = collections.Counter(identities)
    ref = expected if expected in counts else max(counts, key=lambda i: (counts[i], -identities.index(i)))
    odd = next(k for k, i in enumerate(identities) if i != ref)
    n = counts[ref]
    whose = (f"{n} other file{'s' if n != 1 else ''} in the folder" if n else "no file in the folder")
    raise DataFileError(
        f"{files[odd]} comes from another run (run identity {identities[odd]}; this run's is {ref}, "
        f"held by {whose}{' and by config.json' if ref == expected else ''}): move it out of this folder"
    )


def _config_identity(run_dir) -> str | None:
    p = Path(run_dir) / "config.json"
    try:
        return run_identity(p.read_text()) if p.is_file() else None
    except (OSError, ValueError):
        return None


def check_run_files(run_dir, identity: str) -> None:
    """Raise :class:`DataFileError` naming the first activation file in ``run_dir`` not from run ``identity``."""
    for f in sorted((Path(run_dir) / ACTIVATIONS).glob("epoch_*.nc")):
        with open_dataset(f, "activation file") as ds:
            _check_version(ds, f)
            ident = dataset_identity(ds)
        if ident is not None and ident != identity:
            raise DataFileError(f"{f} comes from another run (run identity {ident}; this run's is {identity}): "
                                "move it out of this folder before resuming")


def open_activations(run_dir) -> xr.Dataset:
    """All recorded epochs of a run as one lazily loaded dataset (the activation dataset).

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

    Raises
    ------
    DataFileError
        For a missing, truncated or foreign file, another format version, or a folder whose
        files come from different runs (the odd file is named).
    """
    run_dir = Path(run_dir)
    if run_dir.is_file() or run_dir.suffix == ".nc":  # one epoch's file
        ds = open_dataset(run_dir, "activation file")
        _check_version(ds, run_dir)
        return decode_float16(ds)
    folder = run_dir if run_dir.name == ACTIVATIONS else run_dir / ACTIVATIONS
    if not run_dir.exists():
        raise DataFileError(f"run directory not found: {run_dir}")
    files = sorted(folder.glob("epoch_*.nc")) if folder.is_dir() else []
    if not files:
        raise DataFileError(f"no recorded epochs in {folder} (expected activations/epoch_*.nc; is this a run directory?)")
    identities = []
    for f in files:
        check_netcdf(f)
        with open_dataset(f, "activation file") as ds:
            _check_version(ds, f)
            identities.append(dataset_identity(ds))
    check_same_run(files, identities, _config_identity(folder.parent))
    try:
        ds = xr.open_mfdataset(
            [str(f) for f in files], engine="netcdf4", combine="nested", concat_dim="epoch",
            data_vars="minimal", coords="minimal", compat="override", join="override",
        )
    except (OSError, ValueError, RuntimeError) as e:
        raise DataFileError(f"cannot combine the activation files in {folder}: {e}") from None
    return decode_float16(ds)


def read_status(run_dir) -> dict:
    """The run's status.json ({} when absent)."""
    p = Path(run_dir) / "status.json"
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise DataFileError(f"{p} is not valid JSON: {e}") from None


def write_netcdf(ds: xr.Dataset, path) -> None:
    """Write an analysis result (``information.nc``, ``analyses/NAME.nc``) atomically.

    Object and unicode variables are stored as netCDF strings; the file appears under ``path`` only
    once it is complete (:func:`atomic_path`).
    """
    ds = ds.copy()
    for name in list(ds.coords) + list(ds.data_vars):
        if ds[name].dtype.kind in "OU":
            ds[name] = ds[name].astype(str)
    with atomic_path(Path(path)) as tmp:
        ds.to_netcdf(tmp)
