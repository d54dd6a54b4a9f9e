"""A multi-area recurrent rate network with excitatory and inhibitory units (Dale's law).

The model of Kleinman, Chandrasekaran & Kao ("A mechanistic multi-area recurrent network model
of decision-making", NeurIPS 2021), built as in Song, Yang & Wang (2016, PLoS Comput Biol):
a chain of areas, each with its own excitatory (E) and inhibitory (I) units, dense recurrence
inside an area and sparse excitatory projections between neighbouring areas. The input reaches
area 1 only and the readout sees only the E units of the last area, so everything the output
uses has to pass through every area.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from decisionnets.errors import ConfigError
from decisionnets.models.rnn import _ACTIVATIONS, _Recurrent, leaky_rates


class MultiAreaRNN(_Recurrent):
    """Continuous-time rate network of ``n_areas`` areas with Dale's law, Euler-discretized.

    ``tau dx/dt = -x + W_rec r + W_in u + b + noise``, ``r = f(x)``; with ``alpha = dt / tau``::

        x_t = (1 - alpha) x_{t-1} + alpha (W_rec r_{t-1} + W_in u_t + b) + sqrt(2 alpha) sigma xi_t

    as :class:`~decisionnets.models.rnn.LeakyRNN`, with a structured ``W_rec``:

    - units are ordered area by area; in each area the first ``round(e_fraction * area_size)``
      units are excitatory (E), the rest inhibitory (I);
    - within an area every unit connects to every other (no self-connections);
    - between areas only E units project: from area ``k`` to area ``k + 1`` (feedforward) each
      E -> unit connection exists with probability ``ff``, from area ``k + 1`` back to area ``k``
      (feedback) with probability ``fb``. These masks are drawn once, at construction, from
      torch's generator (the trainer seeds it from the run's ``init`` stream), and are stored as
      buffers, so they are saved with every checkpoint;
    - with ``dale=True`` the effective weight is ``W_rec = |W| * mask * sign`` where ``sign`` is
      +1 for columns of E units and -1 for columns of I units (Song et al. 2016): the trained
      parameter ``W`` sets magnitudes only, so every unit keeps its sign whatever the optimizer
      does. With ``dale=False`` (the control) ``W_rec = W * mask``: same connectivity, free signs;
    - ``W_in`` reaches area 1 only; the readout reads the rates of the last area's E units only.

    Recorded layers: ``area1`` ... ``areaN`` (rates of each area, (time, batch, area_size)) and
    ``hidden`` (all units, (time, batch, n_areas * area_size)). :meth:`unit_coords` gives each
    layer's ``cell_type`` ("E"/"I") for the activation dataset.

    Parameters
    ----------
    n_inputs, n_outputs : int
        Input channels and output logits.
    n_areas : int
        Number of areas in the chain.
    area_size : int
        Units per area.
    e_fraction : float
        Fraction of excitatory units in each area (0.8 in cortex and in the reference model).
    ff, fb : float
        Connection probability of the feedforward (area k -> k+1) and feedback (k+1 -> k)
        projections, from E units of the sending area to any unit of the receiving one.
    dale : bool
        Fixed E/I signs (True) or unconstrained signs (False, the control).
    tau, dt : float
        Time constant and time step in ms (``dt`` is taken from the task when not given).
    activation : {"relu", "softplus", "tanh"}
        Rate function f (tanh gives negative rates, which Dale's law does not mean to allow).
    noise : float
        Recurrent noise sigma (training mode only, as in LeakyRNN).
    rec_gain : float
        The initial ``W_rec`` (masked, signed) is scaled to this spectral radius.
    """

    def __init__(self, n_inputs: int, n_outputs: int, n_areas: int = 3, area_size: int = 100,
                 e_fraction: float = 0.8, ff: float = 0.1, fb: float = 0.05, dale: bool = True,
                 tau: float = 50.0, dt: float = 20.0, activation: str = "relu", noise: float = 0.05,
                 rec_gain: float = 1.0):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ConfigError(f"model.activation must be one of {', '.join(_ACTIVATIONS)}; got {activation!r}")
        for name, v in (("n_areas", n_areas), ("area_size", area_size)):
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                raise ConfigError(f"model.{name} must be an integer >= 1; got {v!r}")
        n_e = int(round(e_fraction * area_size))
        if not (0 < e_fraction <= 1 and n_e >= 1):
            raise ConfigError(f"model.e_fraction must be in (0, 1] and leave >= 1 E unit per area; got "
                              f"e_fraction={e_fraction!r} with area_size={area_size}")
        for name, v in (("ff", ff), ("fb", fb)):
            if not 0 <= v <= 1:
                raise ConfigError(f"model.{name} is a connection probability and must be in [0, 1]; got {v!r}")
        if not isinstance(dale, bool):
            raise ConfigError(f"model.dale must be true or false; got {dale!r}")
        if not (tau > 0 and dt > 0 and dt <= tau):
            raise ConfigError(f"model needs 0 < dt <= tau (ms); got dt={dt!r}, tau={tau!r}")
        if noise < 0:
            raise ConfigError(f"model.noise must be >= 0; got {noise!r}")
        if rec_gain <= 0:
            raise ConfigError(f"model.rec_gain must be > 0; got {rec_gain!r}")
        self.n_areas, self.area_size, self.n_e = n_areas, area_size, n_e
        self.dale = dale
        self.alpha = float(dt) / float(tau)
        self.noise = float(noise)
        self.f = _ACTIVATIONS[activation]
        self.hidden_size = N = n_areas * area_size
        self.layer_names = ("hidden", *(f"area{k + 1}" for k in range(n_areas)))
        self.default_layers = self.layer_names[1:]

        area = torch.arange(N) // area_size
        is_e = (torch.arange(N) % area_size) < n_e
        # connectivity mask (post, pre): dense within areas, sparse E-only projections between neighbours
        post, pre = area[:, None], area[None, :]
        draw = torch.rand(N, N)
        mask = (post == pre) & ~torch.eye(N, dtype=torch.bool)
        mask |= (post == pre + 1) & is_e[None, :] & (draw < ff)
        mask |= (post == pre - 1) & is_e[None, :] & (draw < fb)
        sign = torch.where(is_e, 1.0, -1.0)
        self.register_buffer("mask", mask.float())
        self.register_buffer("sign", sign)  # sign of each presynaptic unit (column)
        self.register_buffer("is_excitatory", is_e)
        self.register_buffer("area", area)

        # initial magnitudes: |N(0, 1/n)| (Dale) or N(0, 1/n) (control); I columns scaled by n_E / n_I
        # so each unit's mean E and I drive within its area balance (Song et al. 2016), then the whole
        # effective matrix scaled to spectral radius rec_gain
        w = torch.randn(N, N) / math.sqrt(area_size)
        if dale:
            w = w.abs()
            if n_e < area_size:
                w[:, ~is_e] *= n_e / (area_size - n_e)
        w_eff = self._effective(w)
        radius = float(torch.linalg.eigvals(w_eff.double()).abs().max())
        if radius > 0:
            w = w * (rec_gain / radius)
        self.w_rec = nn.Parameter(w)
        self.w_in = nn.Linear(n_inputs, N)
        with torch.no_grad():  # input reaches area 1 only
            self.w_in.weight[area_size:] = 0
        self.register_buffer("in_mask", (area == 0).float()[:, None].expand(N, n_inputs).contiguous())
        self.readout = nn.Linear(n_e, n_outputs)
        self._out_units = slice((n_areas - 1) * area_size, (n_areas - 1) * area_size + n_e)
        #: torch.Generator for the recurrent noise (set by the trainer; None: torch's default)
        self.noise_generator: torch.Generator | None = None

    def _effective(self, w):
        return (w.abs() * self.sign[None, :] if self.dale else w) * self.mask

    def effective_weights(self) -> torch.Tensor:
        """The recurrent matrix the dynamics use, shape (post, pre) = (hidden_size, hidden_size)."""
        return self._effective(self.w_rec)

    def input_weights(self) -> torch.Tensor:
        """The input matrix the dynamics use (zero outside area 1), shape (hidden_size, n_inputs)."""
        return self.w_in.weight * self.in_mask

    def unit_coords(self, layer: str) -> dict:
        """Coordinates on the unit dim of ``layer``: ``cell_type`` ("E"/"I") and, for ``hidden``, ``area``."""
        types = np.where(self.is_excitatory.cpu().numpy(), "E", "I")
        if layer == "hidden":
            return {"cell_type": types, "area": self.area.cpu().numpy() + 1}
        k = int(layer[4:]) - 1
        return {"cell_type": types[k * self.area_size:(k + 1) * self.area_size]}

    def forward(self, x: torch.Tensor, layers=None):
        # state-independent terms for all steps at once: alpha (W_in u_t + b) + noise
        w_in = self.w_in.weight * self.in_mask
        drive = self.alpha * nn.functional.linear(x, w_in, self.w_in.bias)  # every unit has a bias
        if self.training and self.noise > 0:
            xi = torch.randn(drive.shape, generator=self.noise_generator, device=x.device, dtype=x.dtype)
            drive = drive + math.sqrt(2 * self.alpha) * self.noise * xi
        hidden = leaky_rates(drive, self.alpha * self.effective_weights().t(), self.f, self.alpha)
        logits = self.readout(hidden[..., self._out_units])
        if layers is not None and len(layers) == 0:
            return logits, {}
        s = self.area_size
        activity = {"hidden": hidden, **{f"area{k + 1}": hidden[..., k * s:(k + 1) * s] for k in range(self.n_areas)}}
        return logits, self._select(activity, layers)
