"""Recurrent networks for time-resolved tasks: a continuous-time leaky RNN, GRU and LSTM.

All models share one interface: inputs of shape (time, batch, feature) and
``forward(x, layers=None) -> (logits, activity)`` with ``logits`` of shape
(time, batch, n_outputs) and ``activity`` a dict of the requested layers, each
of shape (time, batch, units).

They also act one step at a time (closed loop, :mod:`decisionnets.agents`)::

    state = model.initial_state(batch)
    logits_t, state, activity_t = model.step(x_t, state)    # x_t (batch, feature)

``logits_t`` has shape (batch, n_outputs), ``activity_t`` maps each layer name to
(batch, units), and ``state`` is whatever the model carries (a tensor or a tuple
of tensors). Running ``step`` over the time steps of ``x`` from
``initial_state`` gives ``forward(x)`` to float tolerance (tests/models/test_rnn_step.py);
``forward`` keeps its own loop only because it precomputes the input drive of all steps at once.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from decisionnets.errors import ConfigError

_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "softplus": nn.functional.softplus}


def check_leaky(activation: str, tau: float, dt: float, noise: float, **sizes) -> None:
    """The rules every leaky recurrent model checks: a known activation, each of ``sizes`` an integer
    >= 1, 0 < dt <= tau (ms) and noise >= 0; :class:`ConfigError` naming the rule and the value."""
    if activation not in _ACTIVATIONS:
        raise ConfigError(f"model.activation must be one of {', '.join(_ACTIVATIONS)}; got {activation!r}")
    for name, v in sizes.items():
        if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
            raise ConfigError(f"model.{name} must be an integer >= 1; got {v!r}")
    if not (tau > 0 and dt > 0 and dt <= tau):
        raise ConfigError(f"model needs 0 < dt <= tau (ms); got dt={dt!r}, tau={tau!r}")
    if noise < 0:
        raise ConfigError(f"model.noise must be >= 0; got {noise!r}")


def leaky_rates(drive: torch.Tensor, w_rec: torch.Tensor, f, alpha: float, dim: int = 0) -> torch.Tensor:
    """The Euler loop of the leaky rate RNNs, from a zero state.

    ``x_t = (1 - alpha) x_{t-1} + drive_t + r_{t-1} @ w_rec``, ``r_t = f(x_t)``.

    Parameters
    ----------
    drive : Tensor, shape (time, batch, hidden) (``dim=0``) or (member, time, batch, hidden) (``dim=1``)
        The state-independent input, ``alpha (W_in u_t + b)`` plus noise, for every step.
    w_rec : Tensor, shape (hidden, hidden) or (member, hidden, hidden)
        ``alpha W_rec^T``, applied as ``r @ w_rec`` (one matmul, or a batched one over members).
    f : callable
        The rate function.
    alpha : float
        ``dt / tau``.
    dim : int
        The time dim of ``drive``.

    Returns
    -------
    Tensor
        The rates ``r_t``, the shape of ``drive``.
    """
    mm = torch.addmm if w_rec.dim() == 2 else torch.baddbmm
    state = drive.new_zeros(drive.shape[:dim] + drive.shape[dim + 1:])
    rate = f(state)
    rates = []
    # unbind, not drive[t]: the backward of T indexing ops zero-fills a full-size gradient T times
    # (measured: half of a training step at batch 512)
    for drive_t in drive.unbind(dim):
        state = mm(torch.add(drive_t, state, alpha=1 - alpha), rate, w_rec)
        rate = f(state)
        rates.append(rate)
    return torch.stack(rates, dim)


class _Recurrent(nn.Module):
    """Shared bits: layer selection, the readout and the step API."""

    default_layers = ("hidden",)
    layer_names = ("hidden",)

    def _param(self) -> torch.Tensor:
        return self.readout.weight

    def initial_state(self, batch: int):
        """The state before the first step of a trial, for ``batch`` trials (zeros)."""
        p = self._param()
        return p.new_zeros(batch, self.hidden_size)

    def step(self, x_t: torch.Tensor, state):
        """Advance one time step.

        Parameters
        ----------
        x_t : Tensor, shape (batch, n_inputs)
        state : the previous state (from :meth:`initial_state` or the last ``step``)

        Returns
        -------
        logits_t : Tensor, shape (batch, n_outputs)
        state : the new state
        activity : dict ``{"hidden": Tensor (batch, hidden_size)}``
        """
        raise NotImplementedError

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
        check_leaky(activation, tau, dt, noise, hidden_size=hidden_size)
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

    def step(self, x_t: torch.Tensor, state: torch.Tensor):
        """One Euler step; ``state`` is the pre-activation x (batch, hidden_size); see :meth:`_Recurrent.step`.

        In training mode with ``noise > 0`` the recurrent noise is drawn from ``noise_generator``
        (one (batch, hidden) draw per step, so the noise sequence differs from :meth:`forward`'s
        single (time, batch, hidden) draw; the noise-free dynamics are identical).
        """
        drive = self.alpha * self.w_in(x_t)
        if self.training and self.noise > 0:
            xi = torch.randn(drive.shape, generator=self.noise_generator, device=x_t.device, dtype=x_t.dtype)
            drive = drive + math.sqrt(2 * self.alpha) * self.noise * xi
        state = torch.addmm(torch.add(drive, state, alpha=1 - self.alpha), self.f(state),
                            self.alpha * self.w_rec.weight.t())
        rate = self.f(state)
        return self.readout(rate), state, {"hidden": rate}

    def forward(self, x: torch.Tensor, layers=None):
        # Everything that does not depend on the state is computed for all steps at once:
        # alpha * (W_in u_t + b) plus the recurrent noise. The loop then costs 3 ops per step.
        drive = self.alpha * self.w_in(x)  # (time, batch, hidden)
        if self.training and self.noise > 0:
            xi = torch.randn(drive.shape, generator=self.noise_generator, device=x.device, dtype=x.dtype)
            drive = drive + math.sqrt(2 * self.alpha) * self.noise * xi
        hidden = leaky_rates(drive, self.alpha * self.w_rec.weight.t(), self.f, self.alpha)
        return self.readout(hidden), self._select({"hidden": hidden}, layers)


class GRU(_Recurrent):
    """Gated recurrent unit network (``torch.nn.GRU``) with a linear readout.

    ``hidden`` is the GRU's output sequence h_t, shape (time, batch, hidden_size).
    """

    def __init__(self, n_inputs: int, n_outputs: int, hidden_size: int = 64):
        super().__init__()
        self.hidden_size = hidden_size
        self.rnn = nn.GRU(n_inputs, hidden_size)
        self.readout = nn.Linear(hidden_size, n_outputs)

    def initial_state(self, batch: int):
        """Zeros of shape (1, batch, hidden_size) (``torch.nn.GRU``'s h_0)."""
        return self._param().new_zeros(1, batch, self.hidden_size)

    def step(self, x_t, state):
        """One GRU step; ``state`` is h (1, batch, hidden_size); see :meth:`_Recurrent.step`."""
        out, state = self.rnn(x_t[None], state)
        return self.readout(out[0]), state, {"hidden": out[0]}

    def forward(self, x, layers=None):
        hidden, _ = self.rnn(x)
        return self.readout(hidden), self._select({"hidden": hidden}, layers)


class LSTM(_Recurrent):
    """Long short-term memory network (``torch.nn.LSTM``) with a linear readout.

    ``hidden`` is the LSTM's output sequence h_t, shape (time, batch, hidden_size).
    """

    def __init__(self, n_inputs: int, n_outputs: int, hidden_size: int = 64):
        super().__init__()
        self.hidden_size = hidden_size
        self.rnn = nn.LSTM(n_inputs, hidden_size)
        self.readout = nn.Linear(hidden_size, n_outputs)

    def initial_state(self, batch: int):
        """``(h, c)``, zeros of shape (1, batch, hidden_size) each (``torch.nn.LSTM``'s h_0, c_0)."""
        z = self._param().new_zeros(1, batch, self.hidden_size)
        return (z, z.clone())

    def step(self, x_t, state):
        """One LSTM step; ``state`` is ``(h, c)``; see :meth:`_Recurrent.step`."""
        out, state = self.rnn(x_t[None], state)
        return self.readout(out[0]), state, {"hidden": out[0]}

    def forward(self, x, layers=None):
        hidden, _ = self.rnn(x)
        return self.readout(hidden), self._select({"hidden": hidden}, layers)
