"""open_run / Run: a run directory's config, activations, information and model; re-recording."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import xarray as xr

import decisionnets as dn
from decisionnets.errors import DataFileError, UserError

HAS_EPOCH_WEIGHTS = importlib.util.find_spec("decisionnets.weights") is not None


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from conftest import tiny_overrides

    run_dir = tmp_path_factory.mktemp("runs") / "cd"
    dn.train(dn.load_config("color-direction", overrides=tiny_overrides("color-direction"), seed=0), run_dir,
             progress=False)
    return run_dir


def test_config_status_and_activations(run):
    r = dn.open_run(run)
    assert not r.own and r.config.task == "color-direction" and r.status["status"] == "completed"
    assert r.recorded_epochs() == [0, 1, 2] and r.trained_epoch() == 2
    assert r.activations()["hidden"].dims == ("epoch", "trial", "time", "unit")
    with pytest.raises(DataFileError, match="no information.nc"):
        r.information()
    with pytest.raises(DataFileError, match="no config.json"):
        dn.open_run(run / "activations")


def test_rerecord_reproduces_the_recorded_epochs(run):
    r = dn.open_run(run)
    rec = r.activations()
    last = r.rerecord()  # the run's own probe set and the trained network: the last recorded epoch
    assert int(last["epoch"][0]) == 2 and int(last["step"][0]) == int(rec["step"].sel(epoch=2))
    np.testing.assert_allclose(last["hidden"].isel(epoch=0).values, rec["hidden"].sel(epoch=2).values, atol=1e-6)
    init = dn.rerecord(run, epoch=0)  # rebuilt from the run's seed: the untrained network
    np.testing.assert_allclose(init["hidden"].isel(epoch=0).values, rec["hidden"].sel(epoch=0).values, atol=1e-6)
    more = r.rerecord(n_per_condition=2, probe_seed=5)
    assert more.sizes["trial"] == 2 * rec.sizes["trial"]
    assert not np.allclose(more["hidden"].values[0, : rec.sizes["trial"]], last["hidden"].values[0])


def test_model_at_an_epoch(run):
    import torch

    r = dn.open_run(run)
    model = r.model()
    assert not model.training
    probe = r.rerecord()
    ds = r.activations()
    assert probe["logits"].shape[1:] == ds["logits"].shape[1:]
    if HAS_EPOCH_WEIGHTS:  # weights kept per recorded epoch
        assert isinstance(r.model(epoch=1), torch.nn.Module)
    else:
        with pytest.raises(UserError, match=r"keeps no weights of epoch 1: only epoch 0 .* and epoch 2"):
            r.model(epoch=1)


def test_open_information_of_a_run_or_its_file(run):
    written = xr.Dataset({"information": (("variable", "epoch"), np.array([[0.1, 0.9]]))},
                         coords={"variable": ["direction"], "epoch": [0, 2]})
    written.to_netcdf(run / "information.nc")
    try:
        info = dn.open_information(dn.open_run(run))
        xr.testing.assert_identical(info, written)
        xr.testing.assert_identical(dn.open_information(run / "information.nc"), written)
    finally:
        (run / "information.nc").unlink()
