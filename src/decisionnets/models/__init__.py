"""Models: the networks. All take inputs (time, batch, feature) and return ``(logits, activity)``.

Data flow: batches (:mod:`decisionnets.trials`) -> **models** (here) -> training / recording.

Use :func:`build_model` with a config's ``[model]`` section; ``kind`` picks the class.
"""

from __future__ import annotations

import importlib
import inspect

from decisionnets.errors import ConfigError

#: kind -> "module:Class" (imported on demand, so the CNNs cost nothing for RNN runs)
MODELS = {
    "leaky_rnn": "decisionnets.models.rnn:LeakyRNN",
    "gru": "decisionnets.models.rnn:GRU",
    "lstm": "decisionnets.models.rnn:LSTM",
    "multi_area_rnn": "decisionnets.models.multi_area:MultiAreaRNN",
    "two_stage_rnn": "decisionnets.models.two_stage:TwoStageRNN",
    "mlp": "decisionnets.models.mlp:MLP",
    "resnet18": "decisionnets.models.cnn:ResNet18",
    "allcnn": "decisionnets.models.cnn:AllCNNC",
    "small_cnn": "decisionnets.models.cnn:SmallCNN",
}


def model_class(kind: str):
    """The class for a model ``kind``; :class:`ConfigError` naming the valid kinds otherwise."""
    if kind not in MODELS:
        raise ConfigError(f"unknown model kind {kind!r}; valid: {', '.join(MODELS)}")
    mod, _, name = MODELS[kind].partition(":")
    return getattr(importlib.import_module(mod), name)


def build_model(kind: str, n_inputs: int, n_outputs: int, **kwargs):
    """Instantiate model ``kind`` with keyword arguments checked against its signature."""
    cls = model_class(kind)
    params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "n_inputs", "n_outputs")]
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise ConfigError(f"model {kind} has no parameter {', '.join(map(repr, unknown))}; valid: {', '.join(params)}")
    try:
        return cls(n_inputs, n_outputs, **kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model {kind}: invalid parameters {kwargs}: {e}") from None


def accepts(kind: str, name: str) -> bool:
    """Whether model ``kind`` takes constructor argument ``name``."""
    return name in inspect.signature(model_class(kind).__init__).parameters
