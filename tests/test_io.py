import numpy as np
import pytest
import xarray as xr

from decisionnets.errors import DataFileError
from decisionnets.io import atomic_path, clean_temporaries, open_activations, write_epoch


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
