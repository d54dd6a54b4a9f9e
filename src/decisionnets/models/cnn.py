"""Convolutional networks for the image tasks: ResNet-18 (CIFAR), All-CNN-C, a small CNN for digits.

All three follow the model interface of decisionnets: inputs are
(time, batch, C*H*W) with time = 1 (images flattened, as in a
:class:`~decisionnets.trials.TrialBatch`); the model knows its image shape
``input_shape = (C, H, W)`` and reshapes. ``forward(x, layers=None)`` returns
``(logits (time, batch, n_outputs), activity)`` where ``activity`` maps each
requested layer name to a (time, batch, units) tensor; ``layers=None`` means
``default_layers = ("penultimate",)`` and ``layers=()`` computes none.

Recorded activity of a **convolutional** layer is its per-channel global
average (the mean over all spatial positions of the layer's output after its
nonlinearity), so its units are its channels. This is a summary: information
decoded from it is a lower bound on what the full feature map holds, and
spatial layout is discarded. ``penultimate`` is the vector the final linear
classifier reads (for ResNet-18 and All-CNN-C the global average of the last
convolutional stage, so that stage is not listed separately).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from decisionnets.errors import ConfigError


def _input_shape(n_inputs, input_shape) -> tuple[int, int, int]:
    """(C, H, W) from ``input_shape``, or inferred from ``n_inputs`` (3 or 1 channels, square)."""
    if input_shape is not None:
        shape = tuple(input_shape)
        if len(shape) != 3 or not all(isinstance(s, int) and s >= 1 for s in shape):
            raise ConfigError(f"model.input_shape must be 3 positive integers (C, H, W); got {input_shape!r}")
        if n_inputs is not None and math.prod(shape) != n_inputs:
            raise ConfigError(f"model.input_shape {shape} has {math.prod(shape)} values but the task "
                              f"gives {n_inputs} inputs")
        return shape
    if n_inputs is None:
        raise ConfigError("a CNN needs input_shape (C, H, W) or n_inputs")
    for c in (3, 1):
        side = math.isqrt(n_inputs // c)
        if n_inputs % c == 0 and side * side * c == n_inputs:
            return (c, side, side)
    raise ConfigError(f"cannot infer an image shape from {n_inputs} inputs; give model.input_shape = [C, H, W]")


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"model.{name} must be an integer >= 1; got {value!r}")
    return value


def _gap(h: torch.Tensor) -> torch.Tensor:
    """Global average over spatial positions: (n, C, H, W) -> (n, C)."""
    return h.mean(dim=(2, 3))


class _ImageModel(nn.Module):
    """Shared reshaping and layer selection; subclasses implement ``_run(images, want)``."""

    default_layers = ("penultimate",)
    layer_names: tuple[str, ...] = ("penultimate",)

    def _setup(self, n_inputs, n_outputs, input_shape):
        self.input_shape = _input_shape(n_inputs, input_shape)
        self.n_inputs = math.prod(self.input_shape)
        self.n_outputs = _positive_int("n_outputs", n_outputs)

    def forward(self, x: torch.Tensor, layers=None):
        """Logits and activity of the requested layers.

        Parameters
        ----------
        x : torch.Tensor, shape (time, batch, C*H*W)
        layers : sequence of str, optional
            Names from ``layer_names``; None means ``default_layers``.

        Returns
        -------
        logits : torch.Tensor, shape (time, batch, n_outputs)
        activity : dict of str to torch.Tensor, each (time, batch, units)
        """
        layers = self.default_layers if layers is None else tuple(layers)
        bad = [name for name in layers if name not in self.layer_names]
        if bad:
            raise ConfigError(f"{type(self).__name__} has no layer {', '.join(map(repr, bad))}; "
                              f"valid: {', '.join(self.layer_names)}")
        if x.ndim != 3 or x.shape[-1] != self.n_inputs:
            raise ValueError(f"{type(self).__name__} expects inputs (time, batch, {self.n_inputs}); "
                             f"got {tuple(x.shape)}")
        t, b = x.shape[:2]
        logits, acts = self._run(x.reshape(t * b, *self.input_shape), set(layers))
        return (logits.reshape(t, b, -1),
                {name: acts[name].reshape(t, b, -1) for name in layers})


# --------------------------------------------------------------------------- ResNet-18

class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + self.shortcut(x))


class ResNet18(_ImageModel):
    """ResNet-18, CIFAR variant (He et al. 2016): 3x3 stem, no max-pool.

    stem (3x3 conv, ``width`` channels, BN, ReLU) -> layer1..layer4 (two basic
    blocks each; ``width``, 2, 4, 8 x ``width`` channels; stride 1, 2, 2, 2)
    -> global average (``penultimate``, 8 x ``width`` units) -> linear.

    Parameters
    ----------
    n_inputs : int, optional
        C*H*W (checked against ``input_shape``).
    n_outputs : int
        Number of classes.
    input_shape : (C, H, W), optional
        Image shape; inferred from ``n_inputs`` when square with 3 or 1 channels.
    width : int
        Channels of the stem (64 in the standard network; e.g. 4 for tests).

    Layers: ``stem``, ``layer1``, ``layer2``, ``layer3`` (per-channel global
    averages) and ``penultimate`` (global average of layer4).
    """

    layer_names = ("stem", "layer1", "layer2", "layer3", "penultimate")

    def __init__(self, n_inputs: int | None = None, n_outputs: int = 10, *, input_shape=None,
                 width: int = 64):
        super().__init__()
        self._setup(n_inputs, n_outputs, input_shape)
        w = _positive_int("width", width)
        self.width = w
        c = self.input_shape[0]
        self.stem = nn.Sequential(nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        chans = [w, w, 2 * w, 4 * w, 8 * w]
        self.stages = nn.ModuleList(
            nn.Sequential(_BasicBlock(chans[i], chans[i + 1], 1 if i == 0 else 2),
                          _BasicBlock(chans[i + 1], chans[i + 1], 1))
            for i in range(4))
        self.fc = nn.Linear(8 * w, self.n_outputs)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _run(self, img, want):
        acts = {}
        h = self.stem(img)
        if "stem" in want:
            acts["stem"] = _gap(h)
        for k, stage in enumerate(self.stages, start=1):
            h = stage(h)
            if f"layer{k}" in want:
                acts[f"layer{k}"] = _gap(h)
        z = _gap(h)
        acts["penultimate"] = z
        return self.fc(z), acts


# --------------------------------------------------------------------------- All-CNN-C

def _conv(c_in, c_out, k, stride, padding, bn):
    mods = [nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, bias=not bn)]
    if bn:
        mods.append(nn.BatchNorm2d(c_out))
    mods.append(nn.ReLU())
    return mods


class AllCNNC(_ImageModel):
    """All-CNN-C (Springenberg et al. 2015, "Striving for simplicity").

    block1: 3x3 conv ``width`` x2, 3x3 conv stride 2; block2: 3x3 conv
    2 x ``width`` x2, 3x3 conv stride 2; block3: 3x3 conv (no padding), 1x1
    conv, both 2 x ``width``; global average (``penultimate``) -> linear.
    The paper's final 1x1 convolution to the classes followed by global
    averaging is computed in the equivalent order (average, then the same
    linear map), without a nonlinearity on the class scores.

    Parameters
    ----------
    n_inputs, n_outputs, input_shape
        As for :class:`ResNet18`. Images must be at least 9x9 (block3 has an
        unpadded 3x3 convolution after two stride-2 convolutions).
    width : int
        96 in the paper.
    batch_norm : bool
        Batch normalization after every convolution (the paper has none; it
        makes SGD at high learning rates stable).
    dropout, input_dropout : float
        Dropout after each stride-2 convolution and on the input (the paper:
        0.5 and 0.2). Default 0: dropout makes activity stochastic in training mode.

    Layers: ``block1``, ``block2`` (per-channel global averages), ``penultimate``.
    """

    layer_names = ("block1", "block2", "penultimate")

    def __init__(self, n_inputs: int | None = None, n_outputs: int = 10, *, input_shape=None,
                 width: int = 96, batch_norm: bool = True, dropout: float = 0.0,
                 input_dropout: float = 0.0):
        super().__init__()
        self._setup(n_inputs, n_outputs, input_shape)
        w = _positive_int("width", width)
        for name, p in (("dropout", dropout), ("input_dropout", input_dropout)):
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
                raise ConfigError(f"model.{name} must be a number in [0, 1); got {p!r}")
        c, h, wd = self.input_shape
        side = min(h, wd)
        after = (side - 1) // 2 + 1
        after = (after - 1) // 2 + 1
        if after < 3:
            raise ConfigError(f"AllCNNC needs images of at least 9x9 pixels; got {h}x{wd} "
                              f"(use SmallCNN for 8x8 digits)")
        bn = bool(batch_norm)
        self.width = w
        self.input_drop = nn.Dropout(input_dropout)
        self.block1 = nn.Sequential(*_conv(c, w, 3, 1, 1, bn), *_conv(w, w, 3, 1, 1, bn),
                                    *_conv(w, w, 3, 2, 1, bn), nn.Dropout(dropout))
        self.block2 = nn.Sequential(*_conv(w, 2 * w, 3, 1, 1, bn), *_conv(2 * w, 2 * w, 3, 1, 1, bn),
                                    *_conv(2 * w, 2 * w, 3, 2, 1, bn), nn.Dropout(dropout))
        self.block3 = nn.Sequential(*_conv(2 * w, 2 * w, 3, 1, 0, bn), *_conv(2 * w, 2 * w, 1, 1, 0, bn))
        self.fc = nn.Linear(2 * w, self.n_outputs)

    def _run(self, img, want):
        acts = {}
        h = self.block1(self.input_drop(img))
        if "block1" in want:
            acts["block1"] = _gap(h)
        h = self.block2(h)
        if "block2" in want:
            acts["block2"] = _gap(h)
        z = _gap(self.block3(h))
        acts["penultimate"] = z
        return self.fc(z), acts


# --------------------------------------------------------------------------- small CNN

class SmallCNN(_ImageModel):
    """A small CNN for 8x8 digits (runs in seconds per epoch on one CPU core).

    conv1 (3x3, ``channels``, ReLU) -> conv2 (3x3, 2 x ``channels``, ReLU,
    2x2 max-pool) -> flatten -> ``penultimate`` (fully connected, ``hidden``
    units, ReLU) -> linear.

    Parameters
    ----------
    n_inputs, n_outputs, input_shape
        As for :class:`ResNet18` (default shape for 64 inputs: (1, 8, 8)).
    channels : int
        Channels of conv1 (conv2 has twice as many).
    hidden : int
        Units of the penultimate layer.

    Layers: ``conv1``, ``conv2`` (per-channel global averages; conv2 after
    pooling) and ``penultimate`` (fully connected, all units).
    """

    layer_names = ("conv1", "conv2", "penultimate")

    def __init__(self, n_inputs: int | None = None, n_outputs: int = 10, *, input_shape=None,
                 channels: int = 16, hidden: int = 64):
        super().__init__()
        self._setup(n_inputs, n_outputs, input_shape)
        ch = _positive_int("channels", channels)
        hid = _positive_int("hidden", hidden)
        c, h, w = self.input_shape
        if h < 2 or w < 2:
            raise ConfigError(f"SmallCNN needs images of at least 2x2 pixels; got {h}x{w}")
        self.conv1 = nn.Conv2d(c, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, 2 * ch, 3, padding=1)
        self.fc1 = nn.Linear(2 * ch * (h // 2) * (w // 2), hid)
        self.fc = nn.Linear(hid, self.n_outputs)
        for m in (self.conv1, self.conv2, self.fc1):  # He init: learns within an epoch or two
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)

    def _run(self, img, want):
        acts = {}
        h = F.relu(self.conv1(img))
        if "conv1" in want:
            acts["conv1"] = _gap(h)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        if "conv2" in want:
            acts["conv2"] = _gap(h)
        z = F.relu(self.fc1(h.flatten(1)))
        acts["penultimate"] = z
        return self.fc(z), acts
