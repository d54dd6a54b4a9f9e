"""Exceptions that the command line turns into one-line messages.

Every error a user can cause (a bad config, a bad file, an unknown name)
raises :class:`UserError` or a subclass; the CLI prints its message on one
line and exits with its ``exit_code`` (2), without a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_DIVERGED = 3
EXIT_WRITE = 4


class UserError(ValueError):
    """A problem with what the user asked for: config, names, files."""

    exit_code = EXIT_USAGE


class ConfigError(UserError):
    """A config key, type or value breaks a rule."""


class DataFileError(UserError):
    """A file given to decisionnets is missing, truncated, foreign or from an incompatible version."""


class RunLocked(UserError):
    """Another process holds the lock of a run (or sweep) directory: one writer at a time."""


class WriteFailed(RuntimeError):
    """Writing a file failed (disk full, I/O error, permission); nothing half-written was left under its name.

    ``path`` is the file that could not be written, ``cause`` the operating system's reason
    (e.g. "No space left on device (ENOSPC)"), ``note`` what was done about it (set by the trainer).
    """

    exit_code = EXIT_WRITE

    def __init__(self, path, cause: str, note: str = ""):
        self.path = path
        self.cause = cause
        self.note = note
        super().__init__(path, cause)

    def __str__(self):
        return f"cannot write {self.path}: {self.cause}" + (f"; {self.note}" if self.note else "")


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite, or grew past its bound (``bound``, when given)."""

    exit_code = EXIT_DIVERGED

    def __init__(self, epoch: int, step: int, loss: float, bound: float | None = None):
        self.epoch = epoch
        self.step = step
        self.loss = loss
        self.bound = bound
        why = f" (above the divergence bound {bound:.4g})" if bound is not None and loss == loss and loss > bound else ""
        super().__init__(f"training diverged: loss={loss:.6g}{why} at epoch {epoch}, step {step}")
