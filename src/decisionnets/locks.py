"""One writer per run (or sweep) directory: an exclusive lock file holding host, PID and start time.

:func:`run_lock` takes ``DIR/writer.lock`` before anything in ``DIR`` is written and removes it
when done. The lock is an ``flock`` on that file, so it is atomic, and the kernel drops it when the
holder dies, ``kill -9`` included; the file's content (JSON: host, pid, the process's start time,
boot id, command line) names the holder in the refusal, and lets a later writer tell a lock left
by a dead process from a live one:

- the file is ``flock``-ed by a live process: refused (:class:`~decisionnets.errors.RunLocked`,
  one line naming the holder);
- the file is left by a process that no longer exists (same host, and its PID is gone, is a
  zombie, belongs to a process started later, or the machine rebooted since): taken over, with one
  warning line on stderr;
- the holder is on another host (a shared file system), so whether it still runs cannot be
  checked: refused unless ``force=True`` (``--force``);
- the holder's process is alive on this host although the file was not ``flock``-ed (a file system
  without working ``flock``): refused unless ``force=True``.

A process may take the same lock again while it holds it (the sweep's worker, then :func:`train`
inside it); another thread of the same process may not.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

from decisionnets.errors import RunLocked, WriteFailed

LOCK_NAME = "writer.lock"
#: The lock of analysis outputs (information.nc, figures, rollouts), taken by ``analyze`` and
#: ``rollout`` in the folder they write; apart from the trainer's, so a running training can be analysed.
ANALYSIS_LOCK = "analysis.lock"

_HELD: dict = {}  # (real path of the lock file, thread id) -> [fd, depth, folders acquire created]
_GUARD = threading.Lock()


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/PID/stat (state, ppid, ..., starttime at index 19); None if unavailable."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def _start_ticks(pid: int) -> int | None:
    f = _proc_stat(pid)
    return int(f[19]) if f and len(f) > 19 else None


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def holder_info() -> dict:
    """What this process writes into a lock file."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": _start_ticks(os.getpid()),
            "boot_id": _boot_id(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300] if sys.argv else ""}


def holder_alive(holder: dict) -> bool | None:
    """Whether the process named in a lock file still runs: True/False on this host, None on another."""
    if holder.get("host") != socket.gethostname():
        return None
    boot = _boot_id()
    if holder.get("boot_id") and boot and holder["boot_id"] != boot:
        return False  # the machine rebooted since
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    stat = _proc_stat(pid)
    if stat is not None and stat[0] in ("Z", "X"):
        return False  # killed, not yet reaped by its parent
    start = int(stat[19]) if stat and len(stat) > 19 else None
    if start is not None and holder.get("pid_start") is not None and start != holder["pid_start"]:
        return False  # the PID was reused by a process started later
    return True


def _describe(holder: dict) -> str:
    if not holder:
        return "another process (its lock file is being written)"
    cmd = f" ({holder['command']})" if holder.get("command") else ""
    return f"pid {holder.get('pid')} on host {holder.get('host')} since {holder.get('started')}{cmd}"


def _read_holder(fd=None, path=None, tries: int = 20) -> dict:
    """The JSON in the lock file; {} if none.

    With ``path`` (a refused writer naming the holder), retried briefly while the file still names
    a dead process or is being rewritten: the new holder writes its own line just after its flock.
    """
    last = {}
    tries = tries if fd is None else 1  # the holder of fd reads once: nobody else can be rewriting it
    for k in range(tries):
        try:
            data = os.pread(fd, 65536, 0) if fd is not None else Path(path).read_bytes()
        except OSError:
            data = b""
        try:
            obj = json.loads(data) if data.strip() else None
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            last = obj
            if fd is not None or holder_alive(obj) is not False:
                return obj
        if k < tries - 1:
            time.sleep(0.05)
    return last


def _same_file(fd, path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _warn(msg: str) -> None:
    print(f"decisionnets: warning: {msg}", file=sys.stderr, flush=True)


def acquire(directory, *, force: bool = False, what: str = "run directory", name: str = LOCK_NAME) -> Path:
    """Take the exclusive lock of ``directory`` (created if needed); returns the lock file's path.

    ``name``: the lock file's name (default ``writer.lock``; ``analysis.lock``: :data:`ANALYSIS_LOCK`,
    the lock of the outputs ``analyze`` and ``rollout`` write, apart from the trainer's).

    Raises
    ------
    RunLocked
        When another live process holds it, or a holder on another host cannot be checked and
        ``force`` is False. Nothing is written then.
    WriteFailed
        When the folder or the lock file cannot be created or written.
    """
    from decisionnets.io import describe_os_error

    directory = Path(directory)
    path = directory / name
    key = (os.path.realpath(path), threading.get_ident())
    with _GUARD:
        if key in _HELD:
            _HELD[key][1] += 1
            return path
    created = [d for d in (directory, *directory.parents) if not d.exists()]  # removed again if left empty
    for attempt in range(100):
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise WriteFailed(directory, describe_os_error(e)) from e
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            continue  # a writer that gave up removed the empty folder just now: make it again
        except OSError as e:
            raise WriteFailed(path, describe_os_error(e)) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(path=path)
            os.close(fd)
            raise RunLocked(f"{what} {directory} is in use by {_describe(holder)}: one writer at a time "
                            f"(lock file {path})") from None
        except OSError as e:
            if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                os.close(fd)
                raise
            # no flock on this file system: the holder check below is all there is
        if _same_file(fd, path):
            break
        os.close(fd)  # the holder removed that file as we opened it: take the new one
    else:
        raise WriteFailed(path, "the lock file kept vanishing while it was being taken")

    try:
        holder = _read_holder(fd=fd)
        mine = holder.get("host") == socket.gethostname() and holder.get("pid") == os.getpid()
        if holder and not mine:
            alive = holder_alive(holder)
            if alive is False:
                _warn(f"taking over the lock of {what} {directory} left by {_describe(holder)}, "
                      "which is no longer running")
            elif not force:
                why = ("it runs on another host, so decisionnets cannot check whether it still runs"
                       if alive is None else "it is still running (this file system ignored the lock)")
                raise RunLocked(f"{what} {directory} is locked by {_describe(holder)}; {why}; if it is no "
                                f"longer running, rerun with --force (lock file {path})")
            else:
                _warn(f"--force: taking over the lock of {what} {directory} held by {_describe(holder)}")
        data = (json.dumps(holder_info(), sort_keys=True) + "\n").encode()
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
            os.fsync(fd)
        except OSError as e:
            from decisionnets.io import describe_os_error

            raise WriteFailed(path, describe_os_error(e)) from e
    except BaseException:
        os.close(fd)
        raise
    with _GUARD:
        _HELD[key] = [fd, 1, created]
    return path


def release(directory, name: str = LOCK_NAME) -> None:
    """Drop one hold of the lock of ``directory``; the last one removes the lock file and unlocks it.

    Folders that :func:`acquire` created are removed too when they are left empty, so a writer that
    stopped before writing anything (e.g. on a bad config value) leaves nothing behind.
    """
    path = Path(directory) / name
    key = (os.path.realpath(path), threading.get_ident())
    with _GUARD:
        entry = _HELD.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _HELD[key]
    fd, _, created = entry
    try:
        if _same_file(fd, path):
            os.unlink(path)  # while still locked, so no one can take a file that is about to vanish
        for d in created:  # folders this lock made and nothing else filled (e.g. a run refused by its config)
            os.rmdir(d)
    except OSError:
        pass
    finally:
        os.close(fd)


def holds(directory) -> bool:
    """Whether this thread holds the lock of ``directory``."""
    key = (os.path.realpath(Path(directory) / LOCK_NAME), threading.get_ident())
    with _GUARD:
        return key in _HELD


@contextlib.contextmanager
def run_lock(directory, *, force: bool = False, what: str = "run directory", name: str = LOCK_NAME):
    """Hold the exclusive writer lock of ``directory`` for the ``with`` block (see :func:`acquire`)."""
    path = acquire(directory, force=force, what=what, name=name)
    try:
        yield path
    finally:
        release(directory, name)
