"""Fully connected network for static tasks (the ICLR 2021 FC checkerboard setting)."""

from __future__ import annotations

import torch
from torch import nn

from decisionnets.errors import ConfigError

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


class MLP(nn.Module):
    """Multi-layer perceptron applied to each time step independently.

    Inputs (time, batch, feature) with time = 1 for static tasks. Activity of
    hidden layer ``k`` (1-based, after the nonlinearity) is available as
    ``layer{k}``; ``hidden`` is the last hidden layer (recorded by default).

    Parameters
    ----------
    n_inputs, n_outputs : int
        Input features and output logits.
    hidden_sizes : list of int
        Width of each hidden layer, e.g. [100, 100, 100] for 4-100-100-100-2.
    activation : {"relu", "tanh"}
        Nonlinearity after each hidden layer.
    init_gain : float
        Every weight matrix of torch's default initialization (uniform, Kaiming with a = sqrt(5))
        is multiplied by this factor (biases are left as they are). 1 is torch's default; a small
        gain (e.g. 0.1) starts near the origin, where the first updates must build the features
        (a "rich" start), a large one starts where random features already suffice ("lazy").
    """

    default_layers = ("hidden",)

    def __init__(self, n_inputs: int, n_outputs: int, hidden_sizes=(100, 100, 100), activation: str = "relu",
                 init_gain: float = 1.0):
        super().__init__()
        hidden_sizes = list(hidden_sizes)
        if not hidden_sizes or not all(isinstance(h, int) and h >= 1 for h in hidden_sizes):
            raise ConfigError(f"model.hidden_sizes must be a non-empty list of integers >= 1; got {hidden_sizes!r}")
        if activation not in _ACTIVATIONS:
            raise ConfigError(f"model.activation must be one of {', '.join(_ACTIVATIONS)}; got {activation!r}")
        if isinstance(init_gain, bool) or not isinstance(init_gain, (int, float)) or not init_gain > 0:
            raise ConfigError(f"model.init_gain must be a number > 0; got {init_gain!r}")
        sizes = [n_inputs, *hidden_sizes]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.act = _ACTIVATIONS[activation]()
        self.readout = nn.Linear(sizes[-1], n_outputs)
        if init_gain != 1.0:
            with torch.no_grad():
                for lin in (*self.layers, self.readout):
                    lin.weight.mul_(float(init_gain))
        self.layer_names = ("hidden", *(f"layer{k}" for k in range(1, len(hidden_sizes) + 1)))

    def forward(self, x: torch.Tensor, layers=None):
        layers = self.default_layers if layers is None else tuple(layers)
        bad = [name for name in layers if name not in self.layer_names]
        if bad:
            raise ConfigError(f"MLP has no layer {bad}; valid: {', '.join(self.layer_names)}")
        activity = {}
        h = x
        for k, lin in enumerate(self.layers, start=1):
            h = self.act(lin(h))
            if f"layer{k}" in layers:
                activity[f"layer{k}"] = h
        if "hidden" in layers:
            activity["hidden"] = h
        return self.readout(h), {name: activity[name] for name in layers}
