"""Recording: run the fixed probe set through a network and return the activation dataset of one epoch.

Data flow: training -> **recording** (here) -> netCDF (:mod:`decisionnets.io`) -> decoding ->
analyses. The loss and the choice are those of :mod:`decisionnets.metrics`; the task's
declarations (:func:`decisionnets.task.declaration_attrs`: its target, the labels ``analyze``
decodes by default, its task-specific analyses) go into the dataset's attributes, so the
analysis needs nothing but the dataset.

The dataset follows DESIGN.md §3 (dims given for one recorded epoch; the
``epoch`` dim has length 1 and :func:`decisionnets.io.open_activations`
concatenates the epochs):

========================  ==================================================
``hidden``                (epoch, trial, time, unit) — or (epoch, trial, unit)
                          for tasks without time; other recorded layers
                          ``L`` have their own unit dim ``L_unit``; models
                          with ``unit_coords`` (multi-area) add coordinates
                          on it, e.g. ``L_cell_type`` ("E"/"I") on ``L_unit``
``logits``                (epoch, trial, time, action) / (epoch, trial, action)
``choice``, ``correct``   (epoch, trial): option chosen at the response step
                          (index among the choice actions), and whether it
                          was right (catch trials: whether it kept fixating)
``loss``, ``accuracy``    (epoch): masked cross-entropy (nats) and accuracy on
                          the probe set's non-catch trials
``step``                  (epoch): SGD steps taken so far
labels                    coordinates on ``trial``
``period``                coordinate on ``time``
========================  ==================================================
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from decisionnets.io import FORMAT_VERSION
from decisionnets.metrics import choice_index, masked_cross_entropy_sum
from decisionnets.task import declaration_attrs
from decisionnets.trials import TrialBatch


def record_epochs(schedule, epochs: int) -> list[int]:
    """Epochs to record for ``schedule`` ("log", "all" or explicit list), always with 0 and the last.

    "log" is dense early and sparse late: 0, 1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64, ...
    (each step about x sqrt(2)), so the early transient of training is seen.
    """
    if schedule == "all":
        out = set(range(epochs + 1))
    elif schedule == "log":
        out, e = {0, 1, 2, 3, 4}, 4
        while e < epochs:
            e = max(e + 1, int(round(e * 2**0.5)))
            out.add(e)
    else:
        out = {0, *schedule}
    out.add(epochs)
    return sorted(x for x in out if x <= epochs)


class Recorder:
    """Runs the probe set without gradients and builds one epoch's :class:`xarray.Dataset`.

    Parameters
    ----------
    probe : TrialBatch
        The fixed probe set (fixed timing).
    task : Task
        Gives ``choice_actions``, ``target_label``, ``has_time`` and the declarations written to
        the attrs (:func:`decisionnets.task.declaration_attrs`).
    layers : sequence of str
        Layers to record (names from the model's ``layer_names``).
    time_stride : int
        Keep every ``time_stride``-th time step, counted back from the last.
    dtype : str
        Storage dtype of activity and logits.
    attrs : dict
        Dataset attributes (task, env, model, seed, dt, config JSON, ...); the task's
        declarations are added to them.
    chunk : int
        Probe trials per forward pass.
    """

    def __init__(self, probe: TrialBatch, task, layers, time_stride=1, dtype="float32", attrs=None, chunk=1024):
        self.probe = probe
        self.task = task
        self.layers = tuple(layers)
        self.dtype = dtype
        self.attrs = {**declaration_attrs(task), **dict(attrs or {})}
        self.chunk = chunk
        T = probe.n_time
        self.time_index = np.arange(T - 1, -1, -time_stride)[::-1].copy()
        self.resp = probe.response_step()
        labels = probe.labels
        self.target = np.asarray(labels[task.target_label])
        self.catch = np.asarray(labels.get("catch", np.zeros(probe.n_trials, np.int8))).astype(bool)
        self._inputs = torch.from_numpy(probe.inputs)
        self._targets = torch.from_numpy(probe.targets)
        self._mask = torch.from_numpy(probe.mask)

    @torch.no_grad()
    def forward(self, model, device="cpu"):
        """Probe activity and metrics.

        Returns
        -------
        dict
            ``logits`` (time, trial, action), one array (time, trial, unit) per
            layer, ``loss`` (float, nats), ``choice``, ``correct`` (trial,),
            ``accuracy`` (float).
        """
        was_training = model.training
        model.eval()
        logits, acts = [], {name: [] for name in self.layers}
        loss_sum, n_mask = 0.0, 0.0
        for lo in range(0, self.probe.n_trials, self.chunk):
            sl = slice(lo, lo + self.chunk)
            x = self._inputs[:, sl].to(device)
            out, activity = model(x, layers=self.layers)
            y, m = self._targets[:, sl].to(device), self._mask[:, sl].to(device)
            loss_sum += float(masked_cross_entropy_sum(out, y, m))
            n_mask += float(m.sum())
            logits.append(out.cpu().numpy())
            for name in self.layers:
                acts[name].append(activity[name].cpu().numpy())
        model.train(was_training)
        logits = np.concatenate(logits, axis=1)
        trial = np.arange(self.probe.n_trials)
        at_resp = logits[self.resp, trial]  # (trial, action)
        choice = choice_index(at_resp, self.task.choice_actions)
        correct = np.where(self.catch, np.argmax(at_resp, axis=1) == 0, choice == self.target)
        valid = ~self.catch
        out = {
            "logits": logits,
            "loss": loss_sum / max(n_mask, 1.0),
            "choice": choice.astype(np.int64),
            "correct": correct.astype(np.int8),
            "accuracy": float(np.mean(correct[valid])) if valid.any() else float("nan"),
        }
        out.update({name: np.concatenate(a, axis=1) for name, a in acts.items()})
        return out

    def dataset(self, model, epoch: int, step: int, device="cpu") -> xr.Dataset:
        """The activation dataset of one epoch (``epoch`` dim of length 1); see the module doc."""
        r = self.forward(model, device)
        ti = self.time_index
        has_time = self.task.has_time
        lead = ("epoch", "trial", "time") if has_time else ("epoch", "trial")

        def arrange(a):  # (time, trial, k) -> (1, trial, time, k) or (1, trial, k)
            a = a[ti] if has_time else a[-1:]
            a = np.moveaxis(a, 0, 1)
            a = a if has_time else a[:, 0]
            return a[None].astype(self.dtype)

        data = {"logits": (lead + ("action",), arrange(r["logits"]))}
        for name in self.layers:
            unit = "unit" if name == "hidden" else f"{name}_unit"
            data[name] = (lead + (unit,), arrange(r[name]))
        data["choice"] = (("epoch", "trial"), r["choice"][None])
        data["correct"] = (("epoch", "trial"), r["correct"][None])
        data["loss"] = (("epoch",), np.array([r["loss"]]))
        data["accuracy"] = (("epoch",), np.array([r["accuracy"]]))
        data["step"] = (("epoch",), np.array([step], dtype=np.int64))
        coords = {"epoch": [int(epoch)], "trial": np.arange(self.probe.n_trials)}
        for k, v in self.probe.labels.items():
            coords[k] = ("trial", np.asarray(v))
        if has_time:
            dt = self.probe.dt or 1.0
            coords["time"] = ("time", ti * dt, {"units": "ms", "long_name": "time from trial start"})
            if self.probe.period is not None:
                coords["period"] = ("time", np.asarray(self.probe.period)[ti].astype(str))
        for name in self.layers:  # per-unit coordinates (e.g. multi-area models: cell_type E/I)
            if hasattr(model, "unit_coords"):
                unit = "unit" if name == "hidden" else f"{name}_unit"
                coords.update({f"{k}" if name == "hidden" else f"{name}_{k}": (unit, np.asarray(v))
                               for k, v in model.unit_coords(name).items()})
        ds = xr.Dataset(data, coords=coords, attrs={**self.attrs, "format_version": FORMAT_VERSION})
        ds["loss"].attrs["units"] = "nats"
        ds["choice"].attrs["description"] = "index of the chosen option among the choice actions"
        return ds
