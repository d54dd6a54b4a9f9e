"""Run-directory bookkeeping: config, status, log, checkpoints, resume, the writer lock.

Every trainer (:func:`decisionnets.training.train`, the ensemble members of
:mod:`decisionnets.ensemble`, :func:`decisionnets.agents.a2c.train_agent`) keeps its run
directory through one :class:`RunDir`, so the layout and its guarantees are defined once::

    RUN_DIR/
      config.json          resolved config (written once, by a fresh run)
      status.json          running | completed | diverged | write_failed (+ epoch, step, ...)
      log.csv              one row per epoch, rewritten atomically (never a half row)
      checkpoints/last.pt  a plain dict after every epoch (resume continues exactly from it), with
                           its checksum and the run id (:func:`save_checkpoint_file`)
      checkpoints/final.pt the final weights (likewise)
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
import hashlib
import io as _io
import uuid
from pathlib import Path

import numpy as np
import torch

from decisionnets import __version__
from decisionnets.errors import DataFileError, WriteFailed
from decisionnets.io import (ACTIVATIONS, IDENTITY_ATTR, atomic_path, check_run_files, clean_temporaries, epoch_path,
                             read_status, run_identity, write_json, write_text)

CHECKPOINT = Path("checkpoints") / "last.pt"
FINAL = Path("checkpoints") / "final.pt"
FORMAT_VERSION = 1  #: of the checkpoint dict
#: Keys every checkpoint dict gets from :func:`save_checkpoint_file` (besides what the trainer saved).
CHECKSUM_KEY = "checksum"
META_KEY = "checkpoint_meta"


def new_run_id() -> str:
    """A random run id (32 hex digits): unlike the config hash, two runs of one config differ."""
    return uuid.uuid4().hex


def _feed(h, obj) -> None:
    """Feed a canonical byte form of ``obj`` (nested dicts, lists, tensors, arrays, scalars) to ``h``."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, np.ndarray):
        h.update(f"A{obj.dtype.str}{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}".encode())
        for k, v in obj.items():
            _feed(h, k)
            _feed(h, v)
    elif isinstance(obj, (list, tuple)):
        h.update(f"{'L' if isinstance(obj, list) else 'U'}{len(obj)}".encode())
        for v in obj:
            _feed(h, v)
    elif isinstance(obj, (str, bytes)):
        data = obj.encode() if isinstance(obj, str) else obj
        h.update(f"{'S' if isinstance(obj, str) else 'B'}{len(data)}:".encode())
        h.update(data)
    elif isinstance(obj, float):
        h.update(f"F{float(obj).hex()};".encode())
    else:  # bool, int, None, numpy scalars, torch.dtype ...: their repr is canonical
        h.update(f"O{type(obj).__name__}:{obj!r};".encode())


def checkpoint_digest(ckpt: dict) -> str:
    """SHA-256 (hex) of a checkpoint dict's content, every key but ``checksum``.

    It is computed from the values (tensors' bytes, dtypes and shapes, nested dicts, numbers), not
    from the file, so it is the same after ``torch.load`` with any ``map_location``, and a changed
    byte in any stored value changes it.
    """
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in ckpt.items() if k != CHECKSUM_KEY})
    return h.hexdigest()


def save_checkpoint_file(path, ckpt: dict, **meta) -> None:
    """Write ``ckpt`` (a plain dict) atomically to ``path`` with its checksum and run id.

    The file is ``torch.save`` of ``ckpt`` plus ``checkpoint_meta`` (``meta``: the run id, the
    run identity, epoch, step and the epochs recorded so far) and ``checksum``
    (:func:`checkpoint_digest` of everything else), so it stays a plain dict (``torch.load(...)
    ["model"]`` works) and :func:`load_checkpoint` finds a changed byte.
    """
    out = {**ckpt, META_KEY: {k: v for k, v in meta.items() if v is not None}}
    out[CHECKSUM_KEY] = checkpoint_digest(out)
    with atomic_path(path) as tmp:
        torch.save(out, tmp)


def load_checkpoint(path, map_location="cpu", *, require=("model",)) -> dict:
    """The checkpoint dict in ``path``, its checksum verified.

    A dict without ``checksum`` (written before checkpoints carried one) is returned unverified,
    with ``checkpoint_meta`` None; callers that must trust it check that themselves
    (:meth:`RunDir.open` refuses one in a run that writes checksums).

    Raises
    ------
    DataFileError
        One line naming the file, for a file that is missing, not a checkpoint (random bytes, a
        truncated file), fails its checksum (flipped bytes), or lacks a key of ``require``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # noqa: BLE001 - UnpicklingError, RuntimeError (zip), EOFError, ...: all "unreadable"
        first = str(e).splitlines()[0][:200] if str(e) else ""
        raise DataFileError(f"cannot read checkpoint {path} ({type(e).__name__}: {first}): it is corrupt or "
                            "not a checkpoint") from None
    if not isinstance(ckpt, dict):
        raise DataFileError(f"checkpoint {path} holds a {type(ckpt).__name__}, not a decisionnets checkpoint (a dict)")
    if CHECKSUM_KEY in ckpt:
        try:
            ok = ckpt[CHECKSUM_KEY] == checkpoint_digest(ckpt)
        except Exception:  # noqa: BLE001 - a corrupted value the digest cannot even read
            ok = False
        if not ok:
            raise DataFileError(f"checkpoint {path} fails its checksum (SHA-256 of its content): it was modified or "
                                "corrupted; refusing it (restore it from a backup, or start the run again)")
    else:
        ckpt[META_KEY] = None
    missing = [k for k in require if k not in ckpt]
    if missing:
        keys = ", ".join(str(k) for k in ckpt if k not in (META_KEY, CHECKSUM_KEY)) or "none"
        raise DataFileError(f"checkpoint {path} has no {missing[0]!r} entry (keys: {keys}); "
                            "it is not a complete decisionnets checkpoint")
    return ckpt


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
        self.run_id: str | None = None  # set by open(): new for a fresh run, status.json's when resuming

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
            self.run_id = new_run_id()
            write_text(self.path / "config.json", self.config.to_json())
            return None
        if self.identity is not None:
            check_run_files(self.path, self.identity)  # no epoch file of another run in the folder
        clean_temporaries(self.path)
        status = read_status(self.path)
        self.run_id = status.get("run_id")  # None: a run begun before run ids (its checkpoints are plain dicts)
        if not self.checkpoint_path.is_file():
            self.run_id = self.run_id or new_run_id()
            return None
        ckpt = load_checkpoint(self.checkpoint_path, map_location=device, require=("epoch", "step"))
        self._check_checkpoint(ckpt, status)
        self.run_id = self.run_id or (ckpt[META_KEY] or {}).get("run_id") or new_run_id()
        return ckpt

    def _check_checkpoint(self, ckpt: dict, status: dict) -> None:
        """Refuse a checkpoint of another run, or one the run directory's records do not reach."""
        p, meta = self.checkpoint_path, ckpt[META_KEY]
        if self.identity is not None and ckpt.get(IDENTITY_ATTR, self.identity) != self.identity:
            raise DataFileError(f"{p} comes from another run (run identity {ckpt[IDENTITY_ATTR]}; "
                                f"this run's is {self.identity}); move it out of this folder")
        if self.identity is None:
            return  # agent runs: neither files nor checkpoints carry a run identity
        if self.run_id is not None and meta is None:
            raise DataFileError(f"{p} has no checksum, but this run ({self.run_id}) writes checksummed checkpoints: "
                                "it was put there from elsewhere; move it out of this folder")
        if self.run_id is not None and meta.get("run_id") != self.run_id:
            raise DataFileError(f"{p} comes from another run (run id {meta.get('run_id')}; this run's is {self.run_id}, "
                                "in status.json); move it out of this folder")
        epoch = int(ckpt["epoch"])
        if status.get("epoch") is not None and epoch > int(status["epoch"]) + 1:
            raise DataFileError(f"{p} is of epoch {epoch}, but this run reached epoch {status['epoch']} (status.json): "
                                "a later checkpoint was copied in; move it out of this folder")
        logged = [int(r["epoch"]) for r in read_log(self.path / "log.csv", 10**12)]
        if epoch > 0 and logged and epoch not in logged:
            raise DataFileError(f"{p} is of epoch {epoch}, but log.csv has epochs up to {max(logged)}: "
                                "the checkpoint does not belong to this run's history; move it out of this folder")
        gone = [e for e in (meta or {}).get("recorded_epochs", []) if not epoch_path(self.path, e).is_file()]
        if gone:
            raise DataFileError(f"{p} (epoch {epoch}) says epoch {gone[0]} was recorded, but {epoch_path(self.path, gone[0])} "
                                "is missing: the checkpoint does not match the recorded epochs; move it out of this folder "
                                "(or restore the file)")

    def start(self, epoch: int, step: int, **extra) -> None:
        """Status "running" at ``epoch``/``step`` (``extra``: more status keys, e.g. threads); the log
        read back up to ``epoch`` when resuming."""
        rows = read_log(self.path / "log.csv", epoch) if self.resume else []
        self.log = RunLog(self.path / "log.csv", self.log_fields, rows)
        if self.run_id is None:
            self.run_id = new_run_id()
        self.status = {"status": "running", "epoch": epoch, "step": step, "run_dir": str(self.path),
                       "run_id": self.run_id, "decisionnets_version": __version__, **extra}
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
        save_checkpoint_file(self.checkpoint_path, ckpt, **self._meta(state.get("epoch"), state.get("step")))

    def _meta(self, epoch, step) -> dict:
        """The envelope's meta: run id, identity, epoch, step and the epochs recorded up to ``epoch``."""
        recorded = []
        for f in sorted((self.path / ACTIVATIONS).glob("epoch_*.nc")):
            try:
                e = int(f.stem.split("_")[1])
            except (IndexError, ValueError):
                continue
            if epoch is None or e <= int(epoch):
                recorded.append(e)
        return {"run_id": self.run_id, IDENTITY_ATTR: self.identity,
                "epoch": None if epoch is None else int(epoch), "step": None if step is None else int(step),
                "recorded_epochs": recorded}

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
        final = {**weights, "epoch": epoch, "step": step, "config": self.config.to_json(),
                 "decisionnets_version": __version__}
        if self.identity is not None:
            final[IDENTITY_ATTR] = self.identity
        save_checkpoint_file(self.path / FINAL, final, **self._meta(epoch, step))
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
    """Set each object to its state in ``ckpt`` (the inverse of :func:`snapshot`).

    Raises
    ------
    DataFileError
        When ``ckpt`` lacks an object's state or it does not fit (another model's checkpoint).
    """
    for name, obj in objects.items():
        if name not in ckpt:
            raise DataFileError(f"the checkpoint has no {name!r} state (keys: {', '.join(map(str, ckpt))}); "
                                "it is not a complete checkpoint of this run")
        try:
            if isinstance(obj, np.random.Generator):
                obj.bit_generator.state = ckpt[name]
            elif isinstance(obj, torch.Generator):
                obj.set_state(ckpt[name].to(obj.get_state().device))
            else:
                obj.load_state_dict(ckpt[name])
        except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as e:
            raise DataFileError(f"the checkpoint's {name!r} state does not fit this run: "
                                f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def note_write_failure(run_dir, err: WriteFailed) -> None:
    """Record a failed write in status.json (if it can be written) and say how to go on in ``err.note``."""
    run_dir = Path(run_dir)
    try:
        status = read_status(run_dir)
    except DataFileError:
        status = {}
    where = "training stopped before its first checkpoint"
    try:  # where a resume will continue from
        ckpt = load_checkpoint(run_dir / CHECKPOINT, require=("epoch", "step"))
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


def resume_config(run_dir):
    """The :class:`~decisionnets.config.Config` stored in ``run_dir`` (for ``--resume``, and to rebuild a
    run's model)."""
    from decisionnets.config import config_from_json
    from decisionnets.io import read_status

    p = Path(run_dir) / "config.json"
    if not p.is_file():
        raise DataFileError(f"{run_dir} is not a run directory (no config.json)")
    try:
        text = p.read_text()
        cfg = config_from_json(text)
    except ValueError as e:
        raise DataFileError(f"{p} is not a valid decisionnets config: {e}") from None
    st = read_status(run_dir)
    if st.get("decisionnets_version", __version__).split(".")[0] != __version__.split(".")[0]:
        raise DataFileError(f"{run_dir} was made by decisionnets {st.get('decisionnets_version')}; "
                            f"this is {__version__} (incompatible major version)")
    return cfg
