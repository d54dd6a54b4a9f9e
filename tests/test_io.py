import errno
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import xarray as xr

from decisionnets.errors import DataFileError, WriteFailed
from decisionnets.io import atomic_path, clean_temporaries, open_activations, run_identity, write_epoch


def _epoch_ds(epoch, version=1):
    rng = np.random.default_rng(epoch)
    return xr.Dataset(
        {"hidden": (("epoch", "trial", "time", "unit"), rng.standard_normal((1, 4, 3, 2)).astype("float32")),
         "choice": (("epoch", "trial"), rng.integers(0, 2, (1, 4))),
         "loss": (("epoch",), [0.5])},
        coords={"epoch": [epoch], "trial": np.arange(4), "color": ("trial", [0, 1, 0, 1]),
                "time": ("time", [0.0, 20.0, 40.0]), "period": ("time", ["fixation", "stimulus", "decision"])},
        attrs={"format_version": version, "config": "{}"},
    )


def test_netcdf_round_trip_is_identical(tmp_path):
    parts = [_epoch_ds(e) for e in (0, 1, 3)]
    for d in parts:
        write_epoch(d, tmp_path, int(d.epoch[0]))
    ds = open_activations(tmp_path)
    assert ds.hidden.chunks is not None  # lazy (dask)
    xr.testing.assert_identical(ds.load(), xr.concat(parts, dim="epoch", data_vars="minimal", coords="minimal"))
    assert not list(tmp_path.rglob("*.tmp"))


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "x.nc") as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash while writing")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / ".x.nc.abc.tmp").write_text("left by kill -9")
    assert len(clean_temporaries(tmp_path)) == 1


def test_missing_and_empty_run_dirs(tmp_path):
    with pytest.raises(DataFileError, match="run directory not found"):
        open_activations(tmp_path / "nope")
    with pytest.raises(DataFileError, match="no recorded epochs"):
        open_activations(tmp_path)
    with pytest.raises(DataFileError, match="file not found"):
        open_activations(tmp_path / "epoch_00000.nc")
    (tmp_path / "notes.nc").write_text("not netcdf")
    with pytest.raises(DataFileError, match="is not a netCDF file"):
        open_activations(tmp_path / "notes.nc")


def test_truncated_foreign_and_old_version_files(tmp_path):
    write_epoch(_epoch_ds(0), tmp_path, 0)
    good = tmp_path / "activations" / "epoch_00000.nc"
    bad = tmp_path / "activations" / "epoch_00001.nc"
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 3])
    with pytest.raises(DataFileError, match="epoch_00001.nc"):
        open_activations(tmp_path)
    bad.write_text("epoch,loss\n1,0.5\n")
    with pytest.raises(DataFileError, match="is not a netCDF file"):
        open_activations(tmp_path)
    bad.unlink()
    write_epoch(_epoch_ds(1, version=0), tmp_path, 1)
    with pytest.raises(DataFileError, match="format version 0.*reads version 1"):
        open_activations(tmp_path)


def _with_identity(ds, config=None, ident=None):
    ds = ds.copy()
    if config is not None:
        ds.attrs["config"] = config
    if ident is not None:
        ds.attrs["run_identity"] = ident
    return ds


def test_run_identity_is_canonical_and_depends_on_config_and_seed():
    a = run_identity('{"seed": 1, "train": {"lr": 0.1, "epochs": 3}}')
    assert a == run_identity('{"train": {"epochs": 3, "lr": 0.1},\n "seed": 1}')  # formatting does not matter
    assert a != run_identity('{"seed": 2, "train": {"lr": 0.1, "epochs": 3}}')
    assert a != run_identity('{"seed": 1, "train": {"lr": 0.2, "epochs": 3}}')
    assert len(a) == 16 and int(a, 16) >= 0


def test_files_of_different_runs_are_refused_naming_the_odd_one(tmp_path):
    for e in (0, 1, 2):
        write_epoch(_with_identity(_epoch_ds(e), ident="aaaa"), tmp_path, e)
    open_activations(tmp_path).close()
    write_epoch(_with_identity(_epoch_ds(3), ident="bbbb"), tmp_path, 3)
    with pytest.raises(DataFileError, match=r"epoch_00003.nc comes from another run \(run identity bbbb; "
                                            r"this run's is aaaa, held by 3 other files"):
        open_activations(tmp_path)
    # files without the attribute (older runs) are identified by their config attribute
    (tmp_path / "activations" / "epoch_00003.nc").unlink()
    write_epoch(_with_identity(_epoch_ds(3), config='{"seed": 4}'), tmp_path, 3)
    with pytest.raises(DataFileError, match="epoch_00003.nc comes from another run"):
        open_activations(tmp_path)


def test_config_json_decides_which_file_is_foreign(tmp_path):
    mine = run_identity('{"seed": 0}')
    write_epoch(_with_identity(_epoch_ds(0), ident="ffff"), tmp_path, 0)
    write_epoch(_with_identity(_epoch_ds(1), ident=mine), tmp_path, 1)
    with pytest.raises(DataFileError, match="epoch_00001.nc comes from another run"):  # tie: the earliest file
        open_activations(tmp_path)
    (tmp_path / "config.json").write_text('{"seed": 0}')
    with pytest.raises(DataFileError, match="epoch_00000.nc comes from another run.*and by config.json"):
        open_activations(tmp_path)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO, errno.EACCES])
def test_atomic_path_turns_os_errors_into_one_named_write_failure(tmp_path, code):
    target = tmp_path / "x.nc"
    target.write_text("the old version")
    with pytest.raises(WriteFailed) as info:
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise OSError(code, os.strerror(code))
    assert str(info.value) == f"cannot write {target}: {os.strerror(code)} ({errno.errorcode[code]})"
    assert target.read_text() == "the old version" and list(tmp_path.iterdir()) == [target]


def test_library_error_without_errno_is_diagnosed_by_a_probe(tmp_path):
    """netCDF says only 'HDF error': the probe write finds the OS's reason (here a 20 kB file size limit)."""
    code = textwrap.dedent(f"""
        import resource, signal
        import numpy as np, xarray as xr
        from decisionnets.errors import WriteFailed
        from decisionnets.io import write_epoch
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
        ds = xr.Dataset({{"hidden": (("epoch", "x"), np.zeros((1, 50000)))}}, coords={{"epoch": [0]}})
        try:
            write_epoch(ds, {str(tmp_path)!r}, 0)
        except WriteFailed as e:
            print(e)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.startswith(f"cannot write {tmp_path}/activations/epoch_00000.nc: File too large (EFBIG) "
                               "(the writer said 'RuntimeError: NetCDF: HDF error')"), r.stdout + r.stderr
    assert list((tmp_path / "activations").iterdir()) == []


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_files_are_as_readable_as_the_umask_allows(tmp_path, umask, expected):
    import stat

    import torch

    from decisionnets.io import write_json

    old = os.umask(umask)
    try:
        write_json(tmp_path / "status.json", {"a": 1})
        write_epoch(_epoch_ds(0), tmp_path, 0)
        with atomic_path(tmp_path / "checkpoints" / "last.pt") as tmp:
            torch.save({"x": 1}, tmp)
    finally:
        os.umask(old)
    for p in (tmp_path / "status.json", tmp_path / "activations" / "epoch_00000.nc",
              tmp_path / "checkpoints" / "last.pt"):
        assert stat.S_IMODE(p.stat().st_mode) == expected, p


def test_float16_activations_are_stored_in_two_bytes_and_read_back_exactly(tmp_path):
    d = _epoch_ds(0)
    d["hidden"] = d["hidden"].astype("float16")
    write_epoch(d, tmp_path, 0)
    with xr.open_dataset(tmp_path / "activations" / "epoch_00000.nc") as raw:
        assert raw["hidden"].dtype == np.uint16  # netCDF has no 16-bit float: the bits, losslessly
    back = open_activations(tmp_path)
    assert back["hidden"].dtype == np.float16
    np.testing.assert_array_equal(back["hidden"].values, d["hidden"].values)
    one = open_activations(tmp_path / "activations" / "epoch_00000.nc")
    assert one["hidden"].dtype == np.float16
