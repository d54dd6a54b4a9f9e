"""Recurrent networks for time-resolved tasks: a continuous-time leaky RNN, GRU and LSTM.

All models share one interface: inputs of shape (time, batch, feature) and
``forward(x, layers=None) -> (logits, activity)`` with ``logits`` of shape
(time, batch, n_outputs) and ``activity`` a dict of the requested layers, each
of shape (time, batch, units).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from decisionnets.errors import ConfigError

_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "softplus": nn.functional.softplus}


class _Recurrent(nn.Module):
    """Shared bits: layer selection and the readout."""

    default_layers = ("hidden",)
    layer_names = ("hidden",)

    def _select(self, activity: dict, layers) -> dict:
        layers = self.default_layers if layers is None else tuple(layers)
        bad = [name for name in layers if name not in activity]
        if bad:
            raise ConfigError(f"{type(self).__name__} has no layer {bad}; valid: {', '.join(self.layer_names)}")
        return {name: activity[name] for name in layers}


class LeakyRNN(_Recurrent):
    """Continuous-time ("leaky") rate RNN, Euler-discretized.

    ``tau dx/dt = -x + W_rec r + W_in u + b + noise``, ``r = f(x)``, so with
    ``alpha = dt / tau``::

        x_t = (1 - alpha) x_{t-1} + alpha (W_rec r_{t-1} + W_in u_t + b) + sqrt(2 alpha) sigma xi_t

    The recorded ``hidden`` activity is the rate ``r`` (time, batch, hidden_size).
    Recurrent noise is applied in training mode only (``model.train()``); the
    probe set is run with ``model.eval()``, so recorded activity is noise-free
    given the (noisy) inputs.

    Parameters
    ----------
    n_inputs, n_outputs : int
        Input channels and output logits.
    hidden_size : int
        Number of recurrent units.
    tau : float
        Time constant in ms.
    dt : float
        Time step in ms (taken from the task when not given).
    activation : {"tanh", "relu", "softplus"}
        Rate function f.
    noise : float
        Recurrent noise sigma (in units of x).
    rec_gain : float
        Initial recurrent weights are N(0, rec_gain^2 / hidden_size).
    """

    def __init__(self, n_inputs: int, n_outputs: int, hidden_size: int = 64, tau: float = 100.0,
                 dt: float = 20.0, activation: str = "tanh", noise: float = 0.0, rec_gain: float = 1.0):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ConfigError(f"model.activation must be one of {', '.join(_ACTIVATIONS)}; got {activation!r}")
        if not (isinstance(hidden_size, int) and hidden_size >= 1):
            raise ConfigError(f"model.hidden_size must be an integer >= 1; got {hidden_size!r}")
        if not (tau > 0 and dt > 0 and dt <= tau):
            raise ConfigError(f"model needs 0 < dt <= tau (ms); got dt={dt!r}, tau={tau!r}")
        if noise < 0:
            raise ConfigError(f"model.noise must be >= 0; got {noise!r}")
        self.alpha = float(dt) / float(tau)
        self.noise = float(noise)
        self.f = _ACTIVATIONS[activation]
        self.hidden_size = hidden_size
        self.w_in = nn.Linear(n_inputs, hidden_size)
        self.w_rec = nn.Linear(hidden_size, hidden_size, bias=False)
        nn.init.normal_(self.w_rec.weight, 0.0, rec_gain / math.sqrt(hidden_size))
        self.readout = nn.Linear(hidden_size, n_outputs)
        #: torch.Generator for the recurrent noise (set by the trainer; None: torch's default)
        self.noise_generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor, layers=None):
        T, B, _ = x.shape
        # Everything that does not depend on the state is computed for all steps at once:
        # alpha * (W_in u_t + b) plus the recurrent noise. The loop then costs 3 ops per step.
        drive = self.alpha * self.w_in(x)  # (time, batch, hidden)
        if self.training and self.noise > 0:
            xi = torch.randn(drive.shape, generator=self.noise_generator, device=x.device, dtype=x.dtype)
            drive = drive + math.sqrt(2 * self.alpha) * self.noise * xi
        w_rec = self.alpha * self.w_rec.weight.t()
        state = x.new_zeros(B, self.hidden_size)
        rate = self.f(state)
        rates = []
        for t in range(T):
            # state = (1 - alpha) state + alpha (W_rec rate + W_in u_t + b) + noise
            state = torch.addmm(torch.add(drive[t], state, alpha=1 - self.alpha), rate, w_rec)
            rate = self.f(state)
            rates.append(rate)
        hidden = torch.stack(rates)
        return self.readout(hidden), self._select({"hidden": hidden}, layers)


class GRU(_Recurrent):
    """Gated recurrent unit network (``torch.nn.GRU``) with a linear readout.

    ``hidden`` is the GRU's output sequence h_t, shape (time, batch, hidden_size).
    """

    def __init__(self, n_inputs: int, n_outputs: int, hidden_size: int = 64):
        super().__init__()
        self.rnn = nn.GRU(n_inputs, hidden_size)
        self.readout = nn.Linear(hidden_size, n_outputs)

    def forward(self, x, layers=None):
        hidden, _ = self.rnn(x)
        return self.readout(hidden), self._select({"hidden": hidden}, layers)


class LSTM(_Recurrent):
    """Long short-term memory network (``torch.nn.LSTM``) with a linear readout.

    ``hidden`` is the LSTM's output sequence h_t, shape (time, batch, hidden_size).
    """

    def __init__(self, n_inputs: int, n_outputs: int, hidden_size: int = 64):
        super().__init__()
        self.rnn = nn.LSTM(n_inputs, hidden_size)
        self.readout = nn.Linear(hidden_size, n_outputs)

    def forward(self, x, layers=None):
        hidden, _ = self.rnn(x)
        return self.readout(hidden), self._select({"hidden": hidden}, layers)
