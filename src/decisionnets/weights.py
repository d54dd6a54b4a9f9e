"""The weights of every recorded epoch: kept in the run directory, loaded back as a model.

Data flow: training -> recording (activations) **and weights** (here) -> analyses that need the
network itself, such as the fixed points of its recurrent dynamics
(:mod:`decisionnets.representation.fixed_points`).

A run directory holds, next to ``activations/epoch_XXXXX.nc``::

    weights/epoch_0000.pt, epoch_0001.pt, ...   the model's ``state_dict()`` at each recorded epoch

Each file is the model's ``state_dict`` only (tensors moved to the CPU), written atomically
(:func:`decisionnets.io.atomic_path`) from bytes serialized in memory, so the same weights always
give the same bytes: a resumed run that records an epoch again rewrites an identical file. They are
written before the epoch's activations, so a run killed between the two records the epoch again.
For the demo preset (``color-direction``: a 64-unit leaky RNN, 5 inputs, 3 outputs, 4,675 float32
parameters) a file is 21 KB, 0.19 MB for its 9 recorded epochs (one epoch's activations: about 5 MB).

:func:`load_model` rebuilds the model from the run's ``config.json`` as the trainer does
(:func:`decisionnets.build.build_model` for the task it declares) and loads one epoch's weights.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import torch

from decisionnets.errors import DataFileError
from decisionnets.io import atomic_path

__all__ = ["WEIGHTS", "weights_path", "save_weights", "weight_epochs", "load_weights", "load_model"]

#: The folder of a run directory holding the per-epoch weights.
WEIGHTS = "weights"


def weights_path(run_dir, epoch: int) -> Path:
    """Where epoch ``epoch``'s weights live: ``run_dir/weights/epoch_XXXX.pt``."""
    return Path(run_dir) / WEIGHTS / f"epoch_{int(epoch):04d}.pt"


def save_weights(run_dir, epoch: int, model: torch.nn.Module) -> Path:
    """Write ``model.state_dict()`` (on the CPU) as epoch ``epoch``'s weights, atomically; returns the path.

    The bytes depend on the weights only (serialized in memory under a fixed archive name), so
    writing the same weights again gives the same file.

    Raises
    ------
    WriteFailed
        When the file cannot be written (nothing is left under its name).
    """
    state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    path = weights_path(run_dir, epoch)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(buf.getvalue())
    return path


def weight_epochs(run_dir) -> list[int]:
    """The epochs whose weights ``run_dir`` holds, sorted."""
    folder = Path(run_dir) / WEIGHTS
    out = []
    for p in folder.glob("epoch_*.pt") if folder.is_dir() else []:
        try:
            out.append(int(p.stem.split("_", 1)[1]))
        except ValueError:
            continue
    return sorted(out)


def load_weights(run_dir, epoch: int) -> dict:
    """The ``state_dict`` saved for epoch ``epoch`` (CPU tensors).

    Raises
    ------
    DataFileError
        When the run holds no weights for that epoch (the message lists those it holds) or the
        file cannot be read.
    """
    path = weights_path(run_dir, epoch)
    if not path.is_file():
        have = weight_epochs(run_dir)
        hint = (f"it holds weights for epochs {have}" if have else
                "it holds no weights (runs trained before weights were kept per epoch have none; retrain)")
        raise DataFileError(f"no weights for epoch {epoch} in {Path(run_dir)}: {hint}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DataFileError(f"cannot read weights {path}: {first} (truncated or corrupt?)") from None


def load_model(run_dir, epoch: int) -> torch.nn.Module:
    """The run's model with the weights of recorded epoch ``epoch``, in eval mode, on the CPU.

    The model is rebuilt from ``run_dir/config.json`` as the trainer builds it (task first, so the
    input/output sizes and ``dt`` are the task's), without touching torch's global generator.

    Raises
    ------
    DataFileError
        No config.json, no weights for ``epoch``, or weights that do not fit the rebuilt model.
    """
    from decisionnets.build import build_model, build_task
    from decisionnets.rundir import resume_config

    config = resume_config(run_dir)
    state = load_weights(run_dir, epoch)
    with torch.random.fork_rng(devices=[]):
        model = build_model(config, build_task(config))
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise DataFileError(f"weights {weights_path(run_dir, epoch)} do not fit the model of "
                            f"{Path(run_dir)}/config.json ({config.model['kind']}): {e}") from None
    return model.eval()
