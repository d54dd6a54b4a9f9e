"""decisionnets.errors: the classes a user can cause, and the exit code the CLI gives each."""

import pytest

from decisionnets import cli
from decisionnets.errors import (EXIT_DIVERGED, EXIT_OK, EXIT_USAGE, EXIT_WRITE, ConfigError, DataFileError,
                                 RunLocked, TrainingDiverged, UserError, WriteFailed)


def test_exit_codes_are_distinct_and_fixed():
    assert (EXIT_OK, EXIT_USAGE, EXIT_DIVERGED, EXIT_WRITE) == (0, 2, 3, 4)


@pytest.mark.parametrize("cls", [ConfigError, DataFileError, RunLocked])
def test_user_errors_are_value_errors_with_the_usage_exit_code(cls):
    assert issubclass(cls, UserError) and issubclass(cls, ValueError)
    assert cls("x").exit_code == EXIT_USAGE


def test_runtime_failures_are_not_user_errors():
    for cls in (WriteFailed, TrainingDiverged):
        assert issubclass(cls, RuntimeError) and not issubclass(cls, UserError)
    assert WriteFailed("a.nc", "disk full").exit_code == EXIT_WRITE
    assert TrainingDiverged(1, 2, float("nan")).exit_code == EXIT_DIVERGED


def test_write_failed_names_the_file_the_cause_and_the_note():
    e = WriteFailed("run/log.csv", "No space left on device (ENOSPC)")
    assert str(e) == "cannot write run/log.csv: No space left on device (ENOSPC)"
    e.note = "the last checkpoint is kept"
    assert str(e) == "cannot write run/log.csv: No space left on device (ENOSPC); the last checkpoint is kept"
    assert (e.path, e.cause) == ("run/log.csv", "No space left on device (ENOSPC)")


def test_training_diverged_says_why_only_past_the_bound():
    past = TrainingDiverged(3, 40, 12.5, bound=10.0)
    assert str(past) == "training diverged: loss=12.5 (above the divergence bound 10) at epoch 3, step 40"
    assert (past.epoch, past.step, past.loss, past.bound) == (3, 40, 12.5, 10.0)
    assert str(TrainingDiverged(3, 40, float("nan"), bound=10.0)) == "training diverged: loss=nan at epoch 3, step 40"
    assert "above" not in str(TrainingDiverged(1, 1, 5.0, bound=10.0))


@pytest.mark.parametrize("error, code, message", [
    (ConfigError("train.lr must be > 0; got -1"), 2, "decisionnets: error: train.lr must be > 0; got -1"),
    (RunLocked("run r is in use by pid 1"), 2, "decisionnets: error: run r is in use by pid 1"),
    (TrainingDiverged(2, 9, float("inf")), 3, "decisionnets: training diverged: loss=inf at epoch 2, step 9"),
    (WriteFailed("x.nc", "EIO"), 4, "decisionnets: cannot write x.nc: EIO"),
])
def test_the_cli_prints_one_line_and_returns_the_errors_exit_code(monkeypatch, capsys, error, code, message):
    def fails(args):
        raise error

    monkeypatch.setitem(cli.COMMANDS, "tasks", fails)
    assert cli.main(["tasks"]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(message)


def test_other_exceptions_are_bugs_and_keep_their_traceback(monkeypatch):
    def fails(args):
        raise KeyError("a bug")

    monkeypatch.setitem(cli.COMMANDS, "tasks", fails)
    with pytest.raises(KeyError):
        cli.main(["tasks"])
