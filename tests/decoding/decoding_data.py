"""Planted and pinned inputs shared by the decoding tests (a helper module, not a test file)."""

from __future__ import annotations

import json
import pathlib
import warnings

import numpy as np

from decisionnets.decoding import UsableInformation

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"
LAYERS = np.load(DATA / "trained_layers.npz")
PINNED = json.loads((DATA / "trained_layers_information.json").read_text())


def make_data(n_problems=4, n=300, d=10, signal=0.0, n_classes=2, seed=0):
    """Features (P, n, d) with ``signal`` times the class index planted on feature 0."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, size=(n_problems, n))
    X = rng.standard_normal((n_problems, n, d))
    X[..., 0] += signal * y
    return X, y

def gaussian_bayes_information(mu: float) -> float:
    """I(X;Y) in bits for Y ~ Bernoulli(1/2), X | Y ~ N(+-mu, 1)."""
    xs = np.linspace(-12, 12, 40001)
    px = 0.5 * (np.exp(-((xs - mu) ** 2) / 2) + np.exp(-((xs + mu) ** 2) / 2)) / np.sqrt(2 * np.pi)
    p1 = 1 / (1 + np.exp(-2 * mu * xs))
    h = -(p1 * np.log2(p1) + (1 - p1) * np.log2(1 - p1))
    return float(1 - np.trapezoid(px * h, xs))


def trained_layer(name):
    """Features (1, n, d) float32 of a stored trained layer and its labels (1, 2, n): color, direction."""
    X = LAYERS[name].astype(np.float32) * LAYERS[f"{name}__scale"]
    y = np.stack([LAYERS[f"{name}__{v}"].astype(np.int64) for v in ("color", "direction")])
    return X, y[None]


def fit_quietly(X, y, dec="linear", seed=0):
    """:class:`UsableInformation` fitted with its RuntimeWarnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return UsableInformation(decoder=dec, seed=seed).fit(X, y)
