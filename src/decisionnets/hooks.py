"""Record any PyTorch model: forward hooks on chosen submodules -> the activation dataset.

Data flow: a user's own ``torch.nn.Module`` and inputs -> **hooks** (here) -> the activation
dataset of DESIGN.md section 3 -> :func:`decisionnets.usable_information`, ``decisionnets
analyze``. No decisionnets model, task or config is needed.

* :func:`record` runs the model once on ``inputs`` (no gradients, eval mode) and returns one
  variable per recorded layer, dims (trial[, time], ``<layer>_unit``), with the trial labels as
  coordinates on ``trial``.
* :class:`RunRecorder` is the same recording called from a user's own training loop once per
  epoch: it fills a run directory (``config.json``, ``status.json``,
  ``activations/epoch_XXXXX.nc``, written atomically by :mod:`decisionnets.io`) that
  :func:`decisionnets.open_activations`, :func:`decisionnets.open_run` and ``decisionnets
  analyze RUN_DIR`` read like any other run.

What each kind of module gives (``n`` trials, ``T`` steps):

=====================================  ===========================================================
``nn.RNN``, ``nn.GRU``, ``nn.LSTM``    the output sequence (the first element of the returned
                                       tuple: every step's hidden state of the last layer), time
                                       kept: (trial, time, unit); ``batch_first`` is honoured
``nn.Linear``, activations, any        the output; when the inputs have a time axis
module returning a tensor              (``time_dim``), the output is read with the inputs'
                                       layout (time and trial on the same axes)
``nn.Conv1d/2d/3d`` and any output     ``spatial="flatten"`` (default): every non-trial,
with more than one unit axis           non-time axis flattened into units (channels x positions);
                                       ``spatial="mean"``: the channels (the first axis after
                                       trial/time) are the units, averaged over positions
a module called several times in one   (an ``nn.RNNCell`` in a loop, a readout applied per step):
forward                                its calls are the time steps, (trial, time, unit)
=====================================  ===========================================================
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np
import xarray as xr

from decisionnets.errors import DataFileError, UserError
from decisionnets.io import FORMAT_VERSION, IDENTITY_ATTR, epoch_path, read_status, run_identity, write_epoch, write_json

__all__ = ["record", "RunRecorder", "layer_names"]

SPATIAL = ("flatten", "mean")


def layer_names(model) -> list[str]:
    """The names :func:`record` accepts for ``model``: its submodules' dotted names (``named_modules``)."""
    return [name for name, _ in model.named_modules() if name]


def _layer_map(model, layers) -> dict[str, str]:
    """{variable name: submodule name}; a layer not in the model is a :class:`UserError` listing them all."""
    if isinstance(layers, str):
        layers = [layers]
    if isinstance(layers, Mapping):
        pairs = {str(k): str(v) for k, v in layers.items()}
    else:
        pairs = {str(name).replace(".", "_"): str(name) for name in layers}
    if not pairs:
        raise UserError(f"layers must name at least one submodule; available: {', '.join(layer_names(model))}")
    modules = dict(model.named_modules())
    for name in pairs.values():
        if not name or name not in modules:
            raise UserError(f"model {type(model).__name__} has no layer {name!r}; available: "
                            f"{', '.join(layer_names(model)) or '(no submodules)'}")
    return pairs


def _labels(labels, n: int, where: str) -> dict[str, np.ndarray]:
    out = {}
    for k, v in dict(labels or {}).items():
        a = np.asarray(v)
        if a.ndim != 1 or len(a) != n:
            raise UserError(f"label {k!r} must have one value per trial ({n} trials {where}); got shape {a.shape}")
        out[str(k)] = a
    return out


def _as_tensor(inputs):
    import torch

    if isinstance(inputs, torch.Tensor):
        return inputs.detach()
    a = np.asarray(inputs)
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.float() if t.is_floating_point() else t


def _arrange(out, module, trial_axis: int, time_axis: int | None, n: int, name: str, spatial: str) -> np.ndarray:
    """One call's output as (trial, time, unit) or (trial, unit) float array."""
    import torch

    if isinstance(out, (tuple, list)):  # RNN/GRU/LSTM: (output, h_n) / (output, (h_n, c_n))
        out = out[0]
    if isinstance(out, torch.nn.utils.rnn.PackedSequence):
        raise UserError(f"layer {name!r} returned a PackedSequence; record padded sequences instead "
                        "(torch.nn.utils.rnn.pad_packed_sequence)")
    if not isinstance(out, torch.Tensor):
        raise UserError(f"layer {name!r} returned {type(out).__name__}, not a tensor; record a submodule that "
                        "returns one")
    a = out.detach().float().cpu().numpy()
    if isinstance(module, torch.nn.RNNBase) and a.ndim == 3:
        trial_axis, time_axis = (0, 1) if module.batch_first else (1, 0)
    if time_axis is not None and a.ndim >= 3:  # sequence output, laid out as the inputs
        a = np.moveaxis(a, (trial_axis, time_axis), (0, 1))
        lead = 2
    else:  # one value set per trial: (trial, ...)
        if a.ndim < 1:
            raise UserError(f"layer {name!r} returned a scalar; it has no trial axis")
        lead = 1
    if a.shape[0] != n:
        raise UserError(f"layer {name!r} output of shape {tuple(out.shape)} has no trial axis of length {n} "
                        f"where it was read (set time_dim to the inputs' time axis)")
    rest = a.shape[lead:]
    if spatial == "mean" and len(rest) >= 2:
        a = a.mean(axis=tuple(range(lead + 1, a.ndim)))
        rest = a.shape[lead:]
    return a.reshape(a.shape[:lead] + (int(np.prod(rest)) if rest else 1,))


def record(model, inputs, *, layers, labels=None, time_dim: int | None = None, spatial: str = "flatten",
           batch_size: int | None = None, device=None, dtype: str = "float32", dt: float | None = None,
           period=None, attrs: Mapping | None = None) -> xr.Dataset:
    """Record chosen submodules of any ``torch.nn.Module`` on ``inputs``, as an activation dataset.

    Runs ``model(inputs)`` in eval mode without gradients (in chunks of ``batch_size`` trials)
    with a forward hook on each recorded submodule; the model's training mode is restored after.

    Parameters
    ----------
    model : torch.nn.Module
    inputs : Tensor or np.ndarray
        The trials. Without time (``time_dim=None``): shape (trial, ...) (e.g. (trial, feature)
        or images (trial, C, H, W)). With time: the time axis is ``time_dim`` and the trial
        axis the other one of the first two: (time, trial, feature) for ``time_dim=0`` (the
        PyTorch RNN default and decisionnets' own layout), (trial, time, feature) for
        ``time_dim=1`` (``batch_first``).
    layers : str, sequence of str, or dict
        Submodule names (``model.named_modules()``, e.g. ``"rnn"``, ``"encoder.0"``); each gives
        a variable named after it (dots become ``_``) with unit dim ``<name>_unit``. A dict
        ``{variable: submodule}`` names the variables.
    labels : dict of str to array (trial,), optional
        Per-trial labels (class labels to decode: integers), stored as coordinates on ``trial``
        and declared as the labels ``decisionnets analyze`` decodes (attr ``decode_labels``).
    time_dim : int, optional
        The inputs' time axis (0 or 1); None for inputs without time.
    spatial : {"flatten", "mean"}
        Outputs with several unit axes (convolutions): flatten them all into units, or keep the
        channels as units averaged over positions.
    batch_size : int, optional
        Trials per forward pass (default: all at once).
    device : str or torch.device, optional
        Where to run the model (default: where its parameters are).
    dtype : str
        Storage dtype of the activations.
    dt : float, optional
        Time step in ms: the ``time`` coordinate is ``step * dt`` (ms); else the step index.
    period : array of str (time,), optional
        Task period of each time step (coordinate ``period`` on ``time``).
    attrs : dict, optional
        More dataset attributes (strings and numbers).

    Returns
    -------
    xr.Dataset
        One variable per layer, dims (trial, time, ``<layer>_unit``) or (trial,
        ``<layer>_unit``); labels as coordinates on ``trial``; ``time`` (and ``period``) on
        ``time``.

    Raises
    ------
    UserError
        A layer that is not in the model (the available names are listed), labels whose length
        differs from the number of trials, an unknown ``spatial``, a layer without a trial axis.
    """
    import torch

    if spatial not in SPATIAL:
        raise UserError(f"spatial must be one of {', '.join(SPATIAL)}; got {spatial!r}")
    if time_dim not in (None, 0, 1):
        raise UserError(f"time_dim must be 0, 1 or None; got {time_dim!r}")
    pairs = _layer_map(model, layers)
    x = _as_tensor(inputs)
    if time_dim is not None and x.ndim < 2:
        raise UserError(f"inputs with a time axis need at least 2 dims (time and trial); got shape {tuple(x.shape)}")
    trial_axis = 1 if time_dim == 0 else 0
    n = int(x.shape[trial_axis])
    labs = _labels(labels, n, f"along inputs axis {trial_axis}")
    modules = dict(model.named_modules())
    if device is None:
        p = next(iter(model.parameters()), None)
        device = p.device if p is not None else torch.device("cpu")
    chunk = int(batch_size) if batch_size else max(n, 1)
    if chunk < 1:
        raise UserError(f"batch_size must be >= 1; got {batch_size!r}")

    calls: dict[str, list] = {}
    handles = []
    for var, mod_name in pairs.items():
        def hook(module, args, output, var=var):
            calls[var].append(output)
        handles.append(modules[mod_name].register_forward_hook(hook))
    parts: dict[str, list] = {var: [] for var in pairs}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for lo in range(0, n, chunk):
                size = min(chunk, n - lo)
                for var in pairs:
                    calls[var] = []
                model(x.narrow(trial_axis, lo, size).to(device))
                for var, mod_name in pairs.items():
                    got = calls[var]
                    if not got:
                        raise UserError(f"layer {mod_name!r} was not called by the model's forward")
                    if len(got) == 1:
                        parts[var].append(_arrange(got[0], modules[mod_name], trial_axis, time_dim, size, mod_name,
                                                   spatial))
                    else:  # called once per step: the calls are the time axis
                        steps = [_arrange(o, modules[mod_name], 0, None, size,
                                          mod_name, spatial) for o in got]
                        parts[var].append(np.stack(steps, axis=1))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    data, n_time = {}, None
    for var, chunks in parts.items():
        a = np.concatenate(chunks, axis=0).astype(dtype)
        unit = f"{var}_unit"
        if a.ndim == 3:
            if n_time is not None and a.shape[1] != n_time:
                raise UserError(f"layers have different numbers of time steps ({n_time} and {a.shape[1]} in {var!r}); "
                                "record them separately")
            n_time = a.shape[1]
            data[var] = (("trial", "time", unit), a)
        else:
            data[var] = (("trial", unit), a)
    coords = {"trial": np.arange(n)}
    coords.update({k: ("trial", v) for k, v in labs.items()})
    if n_time is not None:
        t = np.arange(n_time, dtype=float) * (float(dt) if dt else 1.0)
        coords["time"] = ("time", t, {"units": "ms" if dt else "steps", "long_name": "time from the first input step"})
        if period is not None:
            per = np.asarray(period).astype(str)
            if per.shape != (n_time,):
                raise UserError(f"period must have one value per time step ({n_time}); got shape {per.shape}")
            coords["period"] = ("time", per)
    base = {"format_version": FORMAT_VERSION, "model": type(model).__name__,
            "decode_labels": json.dumps(list(labs)), "analyses": json.dumps([]),
            "dt": float(dt) if dt else 0.0, "time_units": "ms" if dt else "steps",
            "recorded_layers": json.dumps(pairs)}
    return xr.Dataset(data, coords=coords, attrs={**base, **dict(attrs or {})})


class RunRecorder:
    """Record a user's own model from a user's own training loop into a decisionnets run directory.

    Call :meth:`record` once per epoch (epoch 0 before training: the untrained network); each call
    writes ``run_dir/activations/epoch_XXXXX.nc`` (atomically, as the built-in trainer does) with
    the activation dataset of :func:`record` plus an ``epoch`` dim, ``step`` and (when given)
    ``loss`` and ``accuracy``. The probe inputs and labels are fixed at construction, so every
    epoch records the same trials. ``decisionnets analyze RUN_DIR``,
    :func:`decisionnets.open_activations` and :func:`decisionnets.open_run` read the folder like
    any other run.

    Parameters
    ----------
    run_dir : path
        Created if needed. A folder that holds another run (a ``config.json`` with another
        content) is refused.
    model : torch.nn.Module
    probe_inputs : Tensor or np.ndarray
        The fixed probe trials (layout as :func:`record`'s ``inputs``).
    layers, labels, time_dim, spatial, batch_size, dt, period, dtype
        As :func:`record`.
    config : dict, optional
        The run's settings (JSON-serializable; e.g. ``{"train": {"lr": 0.05, "batch_size": 32}}``),
        written to ``config.json`` and to every file's ``config`` attribute; it gives the run its
        identity (:func:`decisionnets.io.run_identity`).
    attrs : dict, optional
        More dataset attributes (``task`` names the run in figure titles).

    Examples
    --------
    >>> rec = RunRecorder("runs/mine", model, probe.inputs, layers=["rnn"], labels=probe.labels,
    ...                   time_dim=0)                                    # doctest: +SKIP
    >>> rec.record(0)                                                    # doctest: +SKIP
    >>> for epoch in range(1, 11):                                       # doctest: +SKIP
    ...     step = train_one_epoch(model)
    ...     rec.record(epoch, step=step, loss=val_loss)
    >>> rec.finish()                                                     # doctest: +SKIP
    """

    def __init__(self, run_dir, model, probe_inputs, *, layers, labels=None, time_dim: int | None = None,
                 spatial: str = "flatten", batch_size: int | None = None, dt: float | None = None, period=None,
                 dtype: str = "float32", config: Mapping | None = None, attrs: Mapping | None = None):
        self.run_dir = Path(run_dir)
        self.model = model
        self.inputs = probe_inputs
        self.kw = dict(layers=layers, labels=labels, time_dim=time_dim, spatial=spatial, batch_size=batch_size,
                       dt=dt, period=period, dtype=dtype)
        _layer_map(model, layers)  # fail now, not at the first epoch
        x_shape = tuple(probe_inputs.shape) if hasattr(probe_inputs, "shape") else np.shape(probe_inputs)
        n = x_shape[1 if time_dim == 0 else 0] if x_shape else 0
        _labels(labels, n, "in probe_inputs")
        try:
            self.config_json = json.dumps(dict(config or {}), sort_keys=True, indent=2)
        except (TypeError, ValueError) as e:
            raise UserError(f"config must be JSON-serializable: {e}") from None
        self.identity = run_identity(self.config_json)
        self.attrs = {"task": "own", **dict(attrs or {}), "config": self.config_json, IDENTITY_ATTR: self.identity}
        self._open()

    def _open(self) -> None:
        cfg = self.run_dir / "config.json"
        if cfg.is_file():
            try:
                same = run_identity(cfg.read_text()) == self.identity
            except (OSError, ValueError):
                same = False
            if not same:
                raise DataFileError(f"{self.run_dir} holds another run (its config.json differs from this "
                                    "recorder's config); choose another run_dir")
        else:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_json(cfg, json.loads(self.config_json))
        self.status = {**read_status(self.run_dir), "status": "running", "run_dir": str(self.run_dir),
                       "recorder": "RunRecorder"}
        write_json(self.run_dir / "status.json", self.status)

    def dataset(self, epoch: int, step: int = 0, loss: float | None = None,
                accuracy: float | None = None) -> xr.Dataset:
        """The activation dataset of ``epoch`` (``epoch`` dim of length 1), without writing it."""
        ds = record(self.model, self.inputs, attrs=self.attrs, **self.kw)
        ds = ds.expand_dims(epoch=[int(epoch)])
        ds["step"] = ("epoch", np.array([int(step)], dtype=np.int64))
        if loss is not None:
            ds["loss"] = ("epoch", np.array([float(loss)]))
        if accuracy is not None:
            ds["accuracy"] = ("epoch", np.array([float(accuracy)]))
        return ds

    def record(self, epoch: int, step: int = 0, *, loss: float | None = None,
               accuracy: float | None = None) -> Path:
        """Record the probe trials at ``epoch`` (``step``: optimizer steps so far; ``loss``,
        ``accuracy``: the user's own probe or validation numbers) and write the epoch's file;
        returns its path."""
        if not (isinstance(epoch, (int, np.integer)) and epoch >= 0):
            raise UserError(f"epoch must be an integer >= 0; got {epoch!r}")
        path = write_epoch(self.dataset(epoch, step, loss, accuracy), self.run_dir, int(epoch))
        self.status.update(epoch=int(epoch), step=int(step))
        write_json(self.run_dir / "status.json", self.status)
        return path

    def finish(self) -> dict:
        """Mark the run completed in ``status.json``; returns the status."""
        self.status["status"] = "completed"
        write_json(self.run_dir / "status.json", self.status)
        return self.status

    def has_epoch(self, epoch: int) -> bool:
        """Whether ``epoch`` was recorded already."""
        return epoch_path(self.run_dir, epoch).is_file()
