"""decisionnets.record / RunRecorder: any torch.nn.Module's submodules through forward hooks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

import decisionnets as dn
from decisionnets.errors import DataFileError, UserError


class SeqNet(nn.Module):
    """GRU -> ReLU -> Linear readout at every step (time-major, as nn.GRU's default)."""

    def __init__(self, n_in=3, n_hidden=5, n_out=2):
        super().__init__()
        self.rnn = nn.GRU(n_in, n_hidden)
        self.act = nn.ReLU()
        self.readout = nn.Linear(n_hidden, n_out)

    def forward(self, x):
        h, _ = self.rnn(x)
        return self.readout(self.act(h))


def _inputs(T=4, n=6, f=3, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((T, n, f)).astype(np.float32))


def test_sequence_layers_keep_time_and_match_the_forward():
    torch.manual_seed(0)
    model, x = SeqNet(), _inputs()
    color = np.array([0, 1, 0, 1, 1, 0])
    ds = dn.record(model, x, layers=["rnn", "act", "readout"], labels={"color": color}, time_dim=0, dt=20.0)
    assert ds["rnn"].dims == ("trial", "time", "rnn_unit") and ds["rnn"].shape == (6, 4, 5)
    assert ds["readout"].dims == ("trial", "time", "readout_unit")
    with torch.no_grad():
        h, _ = model.rnn(x)
    np.testing.assert_allclose(ds["rnn"].values, h.numpy().transpose(1, 0, 2), rtol=1e-6)
    np.testing.assert_allclose(ds["act"].values, np.maximum(ds["rnn"].values, 0), rtol=1e-6)
    assert list(ds["color"].values) == list(color) and ds["color"].dims == ("trial",)
    assert list(ds["time"].values) == [0.0, 20.0, 40.0, 60.0]
    assert json.loads(ds.attrs["decode_labels"]) == ["color"]


def test_batch_first_lstm_chunks_and_restored_state():
    lstm = nn.LSTM(3, 4, batch_first=True)
    model = nn.Sequential()
    model.add_module("lstm", lstm)
    model.train()
    x = _inputs(T=5, n=7).transpose(0, 1).contiguous()  # (trial, time, feature)
    whole = dn.record(model, x, layers="lstm", time_dim=1)
    chunked = dn.record(model, x, layers="lstm", time_dim=1, batch_size=3)
    with torch.no_grad():
        out, _ = lstm(x)
    np.testing.assert_allclose(whole["lstm"].values, out.numpy(), rtol=1e-6)
    xr.testing.assert_allclose(whole, chunked)
    assert model.training and not lstm._forward_hooks  # mode restored, hooks removed


def test_conv_flattened_or_channels_as_units():
    conv = nn.Conv2d(2, 3, kernel_size=3, padding=1)
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
    x = torch.randn(5, 2, 4, 4)
    flat = dn.record(model, x, layers={"conv": "0", "relu": "1"})
    mean = dn.record(model, x, layers={"conv": "0"}, spatial="mean")
    assert flat["conv"].dims == ("trial", "conv_unit") and flat.sizes["conv_unit"] == 3 * 4 * 4
    assert mean.sizes["conv_unit"] == 3
    with torch.no_grad():
        y = conv(x)
    np.testing.assert_allclose(flat["conv"].values, y.reshape(5, -1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(mean["conv"].values, y.mean((2, 3)).numpy(), rtol=1e-5)


def test_a_cell_called_each_step_gives_the_time_axis():
    class Loop(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = nn.RNNCell(3, 4)

        def forward(self, x):  # (time, trial, feature)
            h = torch.zeros(x.shape[1], 4)
            for t in range(x.shape[0]):
                h = self.cell(x[t], h)
            return h

    model, x = Loop(), _inputs(T=6, n=5)
    ds = dn.record(model, x, layers=["cell"], time_dim=0)
    assert ds["cell"].dims == ("trial", "time", "cell_unit") and ds["cell"].shape == (5, 6, 4)
    with torch.no_grad():
        last = model(x)
    np.testing.assert_allclose(ds["cell"].values[:, -1], last.numpy(), rtol=1e-6)


def test_errors_name_the_rule_and_the_value():
    model, x = SeqNet(), _inputs()
    with pytest.raises(UserError, match=r"no layer 'encoder'; available: rnn, act, readout"):
        dn.record(model, x, layers=["encoder"], time_dim=0)
    with pytest.raises(UserError, match=r"label 'color' must have one value per trial \(6 trials.*got shape \(5,\)"):
        dn.record(model, x, layers=["rnn"], labels={"color": [0, 1, 0, 1, 1]}, time_dim=0)
    with pytest.raises(UserError, match="spatial"):
        dn.record(model, x, layers=["rnn"], time_dim=0, spatial="max")


def test_a_planted_signal_is_decoded_from_the_recording():
    rng = np.random.default_rng(1)
    n = 120
    color = rng.integers(0, 2, n)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    x[:, 0] += 4.0 * (2 * color - 1)
    model = nn.Sequential(nn.Linear(4, 6))
    ds = dn.record(model, x, layers={"hidden": "0"}, labels={"color": color})
    bits = float(dn.usable_information(ds["hidden"], ds["color"], feature_dim="hidden_unit", folds=3))
    assert bits > 0.8


def test_run_recorder_fills_a_run_that_analyze_reads(tmp_path):
    rng = np.random.default_rng(2)
    n, T = 40, 3
    side = np.repeat([0, 1], n // 2)
    probe = rng.standard_normal((T, n, 3)).astype(np.float32)
    probe[:, :, 0] += 3.0 * (2 * side - 1)
    torch.manual_seed(0)
    model = SeqNet()
    run = tmp_path / "own"
    rec = dn.RunRecorder(run, model, probe, layers=["rnn"], labels={"side": side}, time_dim=0, dt=10.0,
                         config={"train": {"lr": 0.1}}, attrs={"task": "mine"})
    for epoch in range(3):
        rec.record(epoch, step=5 * epoch, loss=1.0 / (epoch + 1))
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01)
    rec.finish()
    ds = dn.open_activations(run)
    assert ds["rnn"].dims == ("epoch", "trial", "time", "rnn_unit")
    assert list(ds["epoch"].values) == [0, 1, 2] and list(ds["step"].values) == [0, 5, 10]
    assert ds["side"].dims == ("trial",)
    paths = dn.analyze_run(run, folds=3, progress=False, figures=False)
    info = dn.open_information(run)
    assert paths[0] == run / "information.nc"
    assert info["information"].sel(layer="rnn", variable="side").isel(time=-1).min() > 0.5
    r = dn.open_run(run)
    assert r.own and r.config == {"train": {"lr": 0.1}} and r.status["status"] == "completed"
    with pytest.raises(UserError, match="user's own model"):
        r.model()
    with pytest.raises(DataFileError, match="holds another run"):
        dn.RunRecorder(run, model, probe, layers=["rnn"], time_dim=0, config={"train": {"lr": 0.2}})
