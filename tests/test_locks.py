"""The run-directory writer lock: refused while a live process holds it, taken over when its holder is gone."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from decisionnets import locks
from decisionnets.errors import RunLocked

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock, /proc")

HOLDER = textwrap.dedent("""
    import sys, time
    from decisionnets.locks import run_lock
    with run_lock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(120)
""")


@pytest.fixture
def holder(tmp_path):
    """Start a process that holds the lock of ``run_dir`` until the test ends."""
    procs = []

    def start(run_dir):
        p = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], stdout=subprocess.PIPE, text=True)
        procs.append(p)
        assert p.stdout.readline().strip() == "held"
        return p

    yield start
    for p in procs:
        p.kill()
        p.wait()


def _snapshot(folder):
    return {p: (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else b"") for p in folder.rglob("*")}


def _write_lock(run_dir, **info):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / locks.LOCK_NAME).write_text(json.dumps({**locks.holder_info(), **info}))


def _sleeper():
    p = subprocess.Popen(["sleep", "60"])
    for _ in range(100):  # until it has exec'd (its start time is then final)
        if locks._proc_stat(p.pid) is not None:
            break
        time.sleep(0.01)
    return p


def test_lock_is_written_held_and_removed(tmp_path):
    run = tmp_path / "run"
    with locks.run_lock(run) as path:
        info = json.loads(path.read_text())
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname() and info["started"]
        assert info["pid_start"] == locks._start_ticks(os.getpid())
        with locks.run_lock(run):  # the same thread may nest (sweep worker -> train)
            pass
        assert path.is_file() and locks.holds(run)
        errors = []

        def other_thread():
            try:
                locks.acquire(run)
            except RunLocked as e:
                errors.append(str(e))

        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        assert len(errors) == 1 and f"pid {os.getpid()}" in errors[0]
    assert not path.exists() and not locks.holds(run)


def test_live_holder_refuses_and_nothing_is_written(tmp_path, holder):
    run = tmp_path / "run"
    p = holder(run)
    before = _snapshot(run)
    with pytest.raises(RunLocked, match=f"run directory {run} is in use by pid {p.pid} on host "):
        locks.acquire(run)
    with pytest.raises(RunLocked, match="in use by"):
        locks.acquire(run, force=True)  # --force never overrides a lock a live process holds
    assert _snapshot(run) == before


def test_lock_of_a_dead_process_is_taken_over_with_a_warning(tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = tmp_path / "run"
    _write_lock(run, pid=dead.pid, pid_start=1, command="decisionnets train")
    with locks.run_lock(run) as path:
        assert json.loads(path.read_text())["pid"] == os.getpid()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "taking over the lock" in err[0] and f"pid {dead.pid}" in err[0]
    assert "no longer running" in err[0]


def test_zombie_reused_pid_and_reboot_count_as_gone(tmp_path):
    z = subprocess.Popen(["sleep", "0.2"])
    start = locks._start_ticks(z.pid)
    for _ in range(200):  # exited but not reaped: a zombie, os.kill(pid, 0) still succeeds
        if (locks._proc_stat(z.pid) or ["?"])[0] == "Z":
            break
        time.sleep(0.02)
    assert locks.holder_alive({"host": socket.gethostname(), "pid": z.pid, "pid_start": start}) is False
    z.wait()
    s = _sleeper()
    try:
        me = {"host": socket.gethostname(), "pid": s.pid, "pid_start": locks._start_ticks(s.pid),
              "boot_id": locks._boot_id()}
        assert locks.holder_alive(me) is True
        assert locks.holder_alive({**me, "pid_start": me["pid_start"] - 1}) is False  # PID reused
        assert locks.holder_alive({**me, "boot_id": "another-boot"}) is False
        assert locks.holder_alive({**me, "host": "elsewhere"}) is None
    finally:
        s.kill()
        s.wait()


def test_other_host_is_respected_unless_forced(tmp_path, capsys):
    run = tmp_path / "run"
    _write_lock(run, host="node-17", pid=4242)
    before = _snapshot(run)
    with pytest.raises(RunLocked, match="pid 4242 on host node-17.*another host.*--force"):
        locks.acquire(run)
    assert _snapshot(run) == before
    with locks.run_lock(run, force=True) as path:
        assert json.loads(path.read_text())["host"] == socket.gethostname()
    assert "--force: taking over" in capsys.readouterr().err


def test_live_holder_without_flock_is_respected(tmp_path):
    """A file system that ignores flock: the PID check alone must refuse a live holder."""
    s = _sleeper()
    try:
        run = tmp_path / "run"
        _write_lock(run, pid=s.pid, pid_start=locks._start_ticks(s.pid))
        with pytest.raises(RunLocked, match=f"pid {s.pid} .*still running"):
            locks.acquire(run)
    finally:
        s.kill()
        s.wait()


def test_folders_the_lock_made_are_removed_when_left_empty(tmp_path):
    run = tmp_path / "a" / "b" / "run"
    with locks.run_lock(run):
        assert run.is_dir()
    assert list(tmp_path.iterdir()) == []  # a writer that wrote nothing leaves nothing
    with locks.run_lock(run):
        (run / "config.json").write_text("{}")
    assert [p.name for p in run.iterdir()] == ["config.json"]


def test_taking_a_free_lock_never_waits(tmp_path, monkeypatch):
    """A new lock file is empty: its taker reads it once and writes itself, without the retry pause
    meant for a refused writer reading a holder's file (it cost every run 50 ms)."""
    slept = []
    monkeypatch.setattr(locks.time, "sleep", lambda s: slept.append(s))
    with locks.run_lock(tmp_path / "run"):
        assert locks.holds(tmp_path / "run")
    assert slept == []
