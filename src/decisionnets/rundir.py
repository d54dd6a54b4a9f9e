"""Run-directory bookkeeping: config, status, log, checkpoints, resume, the writer lock.

Every trainer (:func:`decisionnets.training.train`, the ensemble members of
:mod:`decisionnets.ensemble`, :func:`decisionnets.agents.a2c.train_agent`) keeps its run
directory through one :class:`RunDir`, so the layout and its guarantees are defined once::

    RUN_DIR/
      config.json          resolved config (written once, by a fresh run)
      status.json          running | completed | diverged | write_failed (+ epoch, step, ...)
      log.csv              one row per epoch, rewritten atomically (never a half row)
      checkpoints/last.pt  a plain dict after every epoch (resume continues exactly from it)
      checkpoints/final.pt the final weights
      writer.lock          held by the one process writing here (:mod:`decisionnets.locks`)

A trainer's life with it, top to bottom::

    run = RunDir(run_dir, config, resume=resume, log_fields=LOG_FIELDS)
    ckpt = run.open(device)          # fresh: config.json; resumed: checks, the last checkpoint (or None)
    if ckpt is not None: restore(ckpt, model=model, optimizer=opt, ...generators...)
    run.start(epoch, step)           # status.json "running", the log read back to that epoch
    for epoch in ...:
        ...train, record...
        run.end_epoch(row, {**snapshot(model=model, ...), "epoch": epoch, "step": step})
    run.finish(weights, epoch, step) # final.pt, status "completed"

:func:`writing` holds the writer lock around all of it and turns a failed write into a
``write_failed`` status with a note on how to resume.
"""

from __future__ import annotations

import contextlib
import csv
import io as _io
from pathlib import Path

import numpy as np
import torch

from decisionnets import __version__
from decisionnets.errors import DataFileError, WriteFailed
from decisionnets.io import (IDENTITY_ATTR, atomic_path, check_run_files, clean_temporaries, epoch_path, read_status,
                             run_identity, write_json, write_text)

CHECKPOINT = Path("checkpoints") / "last.pt"
FINAL = Path("checkpoints") / "final.pt"
FORMAT_VERSION = 1  #: of the checkpoint dict


class RunLog:
    """The CSV training log with columns ``fields``, rewritten atomically (so a kill never leaves a half row)."""

    def __init__(self, path: Path, fields, rows: list[dict]):
        self.path, self.fields, self.rows = Path(path), tuple(fields), rows

    def append(self, row: dict) -> None:
        """Add one epoch's row and rewrite the file."""
        self.rows.append(row)
        buf = _io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.fields)
        w.writeheader()
        w.writerows(self.rows)
        write_text(self.path, buf.getvalue())


def read_log(path, upto_epoch: int) -> list[dict]:
    """The rows of a log.csv up to ``upto_epoch`` (those of a resumed run's checkpoint); [] when absent."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if int(r["epoch"]) <= upto_epoch]


class RunDir:
    """The bookkeeping of one run directory (see the module docstring for the life cycle).

    Parameters
    ----------
    path : path
    config : Config
    resume : bool
        Continue the run in ``path`` (its config.json gives the run identity).
    log_fields : sequence of str
        Columns of log.csv.
    identity : bool
        Give files and checkpoints the run identity and refuse another run's files on resume
        (agent runs do not, as before this module existed).

    Attributes
    ----------
    identity : str or None
        16 hex digits (:func:`decisionnets.io.run_identity`): of config.json when resuming, so a
        resumed run keeps the identity it began with.
    status : dict
        What status.json says.
    """

    def __init__(self, path, config, *, resume: bool, log_fields, identity: bool = True):
        self.path, self.config, self.resume, self.log_fields = Path(path), config, resume, tuple(log_fields)
        stored = self.path / "config.json"
        self.identity = (run_identity(stored.read_text() if resume and stored.is_file() else config.to_json())
                         if identity else None)
        self.checkpoint_path = self.path / CHECKPOINT
        self.status: dict = {}
        self.log: RunLog | None = None

    def open(self, device) -> dict | None:
        """Fresh run: create the folder and write config.json; returns None.

        Resumed run: refuse activation files of another run, remove temporaries left by a killed
        writer, and return the last checkpoint (None when there is none yet).

        Raises
        ------
        DataFileError
            For another run's files or checkpoint, or an unreadable checkpoint.
        """
        if not self.resume:
            self.path.mkdir(parents=True, exist_ok=True)
            write_text(self.path / "config.json", self.config.to_json())
            return None
        if self.identity is not None:
            check_run_files(self.path, self.identity)  # no epoch file of another run in the folder
        clean_temporaries(self.path)
        if not self.checkpoint_path.is_file():
            return None
        try:
            ckpt = torch.load(self.checkpoint_path, map_location=device, weights_only=False)
        except (RuntimeError, EOFError, OSError) as e:
            raise DataFileError(f"cannot read checkpoint {self.checkpoint_path}: {e}") from None
        if self.identity is not None and ckpt.get(IDENTITY_ATTR, self.identity) != self.identity:
            raise DataFileError(f"{self.checkpoint_path} comes from another run (run identity {ckpt[IDENTITY_ATTR]}; "
                                f"this run's is {self.identity}); move it out of this folder")
        return ckpt

    def start(self, epoch: int, step: int, **extra) -> None:
        """Status "running" at ``epoch``/``step`` (``extra``: more status keys, e.g. threads); the log
        read back up to ``epoch`` when resuming."""
        rows = read_log(self.path / "log.csv", epoch) if self.resume else []
        self.log = RunLog(self.path / "log.csv", self.log_fields, rows)
        self.status = {"status": "running", "epoch": epoch, "step": step, "run_dir": str(self.path),
                       "decisionnets_version": __version__, **extra}
        write_json(self.path / "status.json", self.status)

    def has_epoch(self, epoch: int) -> bool:
        """Whether epoch ``epoch``'s activation file exists (e.g. epoch 0 of a run killed before its checkpoint)."""
        return epoch_path(self.path, epoch).is_file()

    def update_status(self, **kw) -> None:
        """Change status.json's fields."""
        self.status.update(kw)
        write_json(self.path / "status.json", self.status)

    def save_checkpoint(self, state: dict) -> None:
        """``state`` (model, optimizer, epoch, step, generators...) plus config, versions and identity, atomically."""
        ckpt = {**state, "config": self.config.to_json(), "format_version": FORMAT_VERSION,
                "decisionnets_version": __version__}
        if self.identity is not None:
            ckpt[IDENTITY_ATTR] = self.identity
        with atomic_path(self.checkpoint_path) as tmp:
            torch.save(ckpt, tmp)

    def end_epoch(self, row: dict, state: dict) -> None:
        """The end of an epoch: its log row, the checkpoint ``state``, status.json at the state's epoch and step."""
        self.log.append(row)
        self.save_checkpoint(state)
        self.update_status(epoch=state["epoch"], step=state["step"])

    def diverged(self, epoch: int, step: int, loss: float) -> None:
        """Status "diverged" with where and the loss (recorded epochs stay)."""
        self.update_status(status="diverged", epoch=epoch, step=step, loss=loss)

    def finish(self, weights: dict, epoch: int, step: int) -> dict:
        """Write checkpoints/final.pt (``weights`` plus epoch, step, config, version); status "completed"; returns it."""
        with atomic_path(self.path / FINAL) as tmp:
            torch.save({**weights, "epoch": epoch, "step": step, "config": self.config.to_json(),
                        "decisionnets_version": __version__}, tmp)
        self.update_status(status="completed", epoch=epoch, step=step)
        return self.status


def snapshot(**objects) -> dict:
    """The checkpointable state of each object, by name: ``state_dict()`` of modules and optimizers,
    ``get_state()`` of torch generators, the bit generator's state of numpy generators. Module and
    optimizer states reference the live tensors (as ``state_dict()`` does): save them before training
    goes on."""
    out = {}
    for name, obj in objects.items():
        if isinstance(obj, np.random.Generator):
            out[name] = obj.bit_generator.state
        elif isinstance(obj, torch.Generator):
            out[name] = obj.get_state().cpu()
        else:
            out[name] = obj.state_dict()
    return out


def restore(ckpt: dict, **objects) -> None:
    """Set each object to its state in ``ckpt`` (the inverse of :func:`snapshot`)."""
    for name, obj in objects.items():
        if isinstance(obj, np.random.Generator):
            obj.bit_generator.state = ckpt[name]
        elif isinstance(obj, torch.Generator):
            obj.set_state(ckpt[name].to(obj.get_state().device))
        else:
            obj.load_state_dict(ckpt[name])


def note_write_failure(run_dir, err: WriteFailed) -> None:
    """Record a failed write in status.json (if it can be written) and say how to go on in ``err.note``."""
    run_dir = Path(run_dir)
    try:
        status = read_status(run_dir)
    except DataFileError:
        status = {}
    where = "training stopped before its first checkpoint"
    try:  # where a resume will continue from
        ckpt = torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=False)
        status.update(epoch=int(ckpt["epoch"]), step=int(ckpt["step"]))
        where = f"training stopped; its last checkpoint is of epoch {status['epoch']} (step {status['step']})"
    except Exception:  # noqa: BLE001 - no (readable) checkpoint yet
        pass
    try:
        rel = str(Path(err.path).relative_to(run_dir))
    except ValueError:
        rel = str(err.path)
    status.update(status="write_failed", file=rel, error=err.cause, run_dir=str(run_dir))
    try:
        write_json(run_dir / "status.json", status)
    except WriteFailed:
        where += " (status.json could not be written either)"
    if (run_dir / "config.json").is_file():
        err.note = f"{where}; fix that, then continue with: decisionnets train --resume {run_dir}"
    else:
        err.note = f"{where}; fix that, then run the same command again"


@contextlib.contextmanager
def writing(run_dir, force: bool = False):
    """Hold ``run_dir``'s writer lock (:func:`decisionnets.locks.run_lock`); a :class:`WriteFailed`
    raised inside is noted in status.json (:func:`note_write_failure`) and raised on."""
    from decisionnets.locks import run_lock

    with run_lock(run_dir, force=force):
        try:
            yield
        except WriteFailed as e:
            note_write_failure(Path(run_dir), e)
            raise
