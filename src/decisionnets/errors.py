"""Exceptions that the command line turns into one-line messages.

Every error a user can cause (a bad config, a bad file, an unknown name)
raises :class:`UserError` or a subclass; the CLI prints its message on one
line and exits with its ``exit_code`` (2), without a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_DIVERGED = 3


class UserError(ValueError):
    """A problem with what the user asked for: config, names, files."""

    exit_code = EXIT_USAGE


class ConfigError(UserError):
    """A config key, type or value breaks a rule."""


class DataFileError(UserError):
    """A file given to decisionnets is missing, truncated, foreign or from an incompatible version."""


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""

    exit_code = EXIT_DIVERGED

    def __init__(self, epoch: int, step: int, loss: float):
        self.epoch = epoch
        self.step = step
        self.loss = loss
        super().__init__(f"training diverged: loss={loss} at epoch {epoch}, step {step}")
