"""A two-stage recurrent network: a leaky RNN whose rates drive a second stage before the readout.

The question it serves: in the fully connected net trained with weight decay, the upper layers
discard the checkerboard's color while the lower layers keep it. A single leaky RNN has one hidden
layer, which computes the XOR of color and target configuration and so keeps color. With a second
stage between that layer and the output, the upper stage can hold direction alone. Both stages are
recorded as separate layers (``stage1``, ``stage2``), so :func:`decisionnets.analyze_run` decodes
each one.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from decisionnets.errors import ConfigError
from decisionnets.models.rnn import _ACTIVATIONS, _Recurrent, check_leaky, leaky_rates

STAGE2_KINDS = ("rnn", "mlp")


class TwoStageRNN(_Recurrent):
    """Two leaky rate RNNs in series (or a leaky RNN then a per-step MLP layer), Euler-discretized.

    Stage 1 gets the inputs ``u``; stage 2 gets stage 1's rates ``r1`` of the same step; the
    readout sees stage 2's rates only, so everything the output uses passes through both stages.
    With ``alpha = dt / tau`` and ``stage2 = "rnn"``::

        x1_t = (1 - alpha) x1_{t-1} + alpha (W_rec1 r1_{t-1} + W_in u_t + b1) + sqrt(2 alpha) sigma xi1_t
        r1_t = f(x1_t)
        x2_t = (1 - alpha) x2_{t-1} + alpha (W_rec2 r2_{t-1} + W_12 r1_t + b2) + sqrt(2 alpha) sigma xi2_t
        r2_t = f(x2_t)
        logits_t = W_out r2_t + b_out

    With ``stage2 = "mlp"`` stage 2 has no dynamics: ``r2_t = f(W_12 r1_t + b2)`` (a readout MLP
    layer applied at every step). There is no feedback from stage 2 to stage 1, so :meth:`forward`
    runs stage 1 over all steps, then stage 2 over all steps (two loops of 3 ops per step, as
    :class:`~decisionnets.models.rnn.LeakyRNN`).

    Recorded layers: ``stage1`` (time, batch, hidden_size), ``stage2`` (time, batch, stage2_size)
    (the default pair) and ``hidden``, both stages side by side (time, batch, hidden_size +
    stage2_size), which is what closed-loop agents give their value head. Recurrent noise is
    applied in training mode only, as in LeakyRNN.

    Parameters
    ----------
    n_inputs, n_outputs : int
        Input channels and output logits.
    hidden_size : int
        Units of stage 1.
    stage2_size : int, optional
        Units of stage 2 (default: ``hidden_size``).
    stage2 : {"rnn", "mlp"}
        A second leaky RNN, or a per-step nonlinear layer.
    tau, dt : float
        Time constant and time step in ms (``dt`` is taken from the task when not given); shared by
        both stages.
    activation : {"tanh", "relu", "softplus"}
        Rate function f of both stages.
    noise : float
        Recurrent noise sigma (in units of x), both stages (none in an MLP stage 2).
    rec_gain : float
        Initial recurrent weights of each leaky stage are N(0, rec_gain^2 / units).
    """

    def __init__(self, n_inputs: int, n_outputs: int, hidden_size: int = 64, stage2_size: int | None = None,
                 stage2: str = "rnn", tau: float = 100.0, dt: float = 20.0, activation: str = "tanh",
                 noise: float = 0.0, rec_gain: float = 1.0):
        super().__init__()
        stage2_size = hidden_size if stage2_size is None else stage2_size
        check_leaky(activation, tau, dt, noise, hidden_size=hidden_size, stage2_size=stage2_size)
        if stage2 not in STAGE2_KINDS:
            raise ConfigError(f"model.stage2 must be one of {', '.join(STAGE2_KINDS)}; got {stage2!r}")
        self.alpha = float(dt) / float(tau)
        self.noise = float(noise)
        self.f = _ACTIVATIONS[activation]
        self.stage2 = stage2
        self.sizes = (hidden_size, stage2_size)
        self.hidden_size = hidden_size + stage2_size
        self.layer_names = ("stage1", "stage2", "hidden")
        self.default_layers = ("stage1", "stage2")
        self.w_in = nn.Linear(n_inputs, hidden_size)
        self.w_rec = nn.Linear(hidden_size, hidden_size, bias=False)
        nn.init.normal_(self.w_rec.weight, 0.0, rec_gain / math.sqrt(hidden_size))
        self.w_12 = nn.Linear(hidden_size, stage2_size)
        if stage2 == "rnn":
            self.w_rec2 = nn.Linear(stage2_size, stage2_size, bias=False)
            nn.init.normal_(self.w_rec2.weight, 0.0, rec_gain / math.sqrt(stage2_size))
        self.readout = nn.Linear(stage2_size, n_outputs)
        #: torch.Generator for the recurrent noise (set by the trainer; None: torch's default)
        self.noise_generator: torch.Generator | None = None

    def _noisy(self, drive: torch.Tensor) -> torch.Tensor:
        if self.training and self.noise > 0:
            xi = torch.randn(drive.shape, generator=self.noise_generator, device=drive.device, dtype=drive.dtype)
            drive = drive + math.sqrt(2 * self.alpha) * self.noise * xi
        return drive

    def initial_state(self, batch: int):
        """``(x1, x2)``: zeros of shape (batch, hidden_size) and (batch, stage2_size)."""
        p = self._param()
        return (p.new_zeros(batch, self.sizes[0]), p.new_zeros(batch, self.sizes[1]))

    def step(self, x_t: torch.Tensor, state):
        """One Euler step; ``state`` is ``(x1, x2)`` (pre-activations); see :meth:`_Recurrent.step`.

        As :meth:`LeakyRNN.step`: one noise draw per step, so in training mode with ``noise > 0`` the
        noise sequence differs from :meth:`forward`'s; the noise-free dynamics are identical. With
        ``stage2 = "mlp"`` the returned ``x2`` is stage 2's pre-activation of this step.
        """
        x1, x2 = state
        a = self.alpha
        x1 = torch.addmm(torch.add(self._noisy(a * self.w_in(x_t)), x1, alpha=1 - a), self.f(x1),
                         a * self.w_rec.weight.t())
        r1 = self.f(x1)
        if self.stage2 == "rnn":
            x2 = torch.addmm(torch.add(self._noisy(a * self.w_12(r1)), x2, alpha=1 - a), self.f(x2),
                             a * self.w_rec2.weight.t())
        else:
            x2 = self.w_12(r1)
        r2 = self.f(x2)
        return self.readout(r2), (x1, x2), {"stage1": r1, "stage2": r2, "hidden": torch.cat([r1, r2], -1)}

    def forward(self, x: torch.Tensor, layers=None):
        a = self.alpha
        r1 = leaky_rates(self._noisy(a * self.w_in(x)), a * self.w_rec.weight.t(), self.f, a)
        if self.stage2 == "rnn":
            r2 = leaky_rates(self._noisy(a * self.w_12(r1)), a * self.w_rec2.weight.t(), self.f, a)
        else:
            r2 = self.f(self.w_12(r1))
        logits = self.readout(r2)
        if layers is not None and len(layers) == 0:
            return logits, {}
        want = self.default_layers if layers is None else tuple(layers)
        activity = {"stage1": r1, "stage2": r2}
        if "hidden" in want:
            activity["hidden"] = torch.cat([r1, r2], -1)
        return logits, self._select(activity, layers)
