import csv
import json
import os
import subprocess
import sys
import time

import pytest
import torch

from decisionnets import threads
from decisionnets.cli import main
from decisionnets.errors import UserError
from decisionnets.threads import ENV_VAR, available_cpus, choose_threads, job_for_model


@pytest.fixture(autouse=True)
def _one_thread_after():
    yield
    torch.set_num_threads(1)  # tests here change torch's threads; leave them as conftest set them


def test_small_models_get_one_thread_large_jobs_the_available_cpus():
    assert job_for_model("leaky_rnn") == "small" and job_for_model("mlp") == "small"
    assert job_for_model("resnet18") == "large"
    assert choose_threads("small", environ={}) == (1, "auto: small model, 1 thread per process")
    n, source = choose_threads("large", environ={})
    assert n == available_cpus() and source == "auto: large job, the available CPUs"


def test_override_order_flag_then_env_then_omp():
    env = {ENV_VAR: "3", "OMP_NUM_THREADS": "1"}
    assert choose_threads("small", override=2, environ=env) == (2, "--threads")
    assert choose_threads("small", environ=env) == (3, ENV_VAR)
    n, source = choose_threads("large", environ={"OMP_NUM_THREADS": "1"})
    if available_cpus() > 1:
        assert n == 1 and "OMP_NUM_THREADS" in source


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_bad_thread_counts_name_the_rule_and_value(value):
    with pytest.raises(UserError, match=rf"--threads must be an integer >= 1 .*got '{value}'"):
        choose_threads("small", override=value, environ={})
    with pytest.raises(UserError, match=rf"{ENV_VAR} must be an integer >= 1"):
        choose_threads("small", environ={ENV_VAR: value})


def test_cgroup_quota_caps_the_cpus(tmp_path):
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU -> 1
    assert threads._cgroup_cpus(tmp_path) == 0.5 and available_cpus(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads._cgroup_cpus(tmp_path) is None
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("150000")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert threads._cgroup_cpus(tmp_path) == 1.5


def _stat(ticks):
    """A /proc/stat text: ``ticks`` maps cpu -> (busy, idle) ticks (busy as user time)."""
    lines = ["cpu  0 0 0 0 0 0 0 0 0 0"]
    lines += [f"cpu{c} {b} 0 0 {i} 0 0 0 0 0 0" for c, (b, i) in ticks.items()]
    return "\n".join(lines + ["intr 1 2 3", "ctxt 5"]) + "\n"


def test_busy_cpus_counts_what_other_processes_used(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text(_stat({0: (100, 900), 1: (500, 500), 2: (0, 1000)}))

    def sleep(_):  # over the interval: cpu0 fully busy, cpu1 half, cpu2 idle (100 ticks each)
        stat.write_text(_stat({0: (200, 900), 1: (550, 550), 2: (0, 1100)}))

    own = iter([3.0, 3.05])  # this process used 0.05 s of CPU in the 0.25 s interval
    b = threads.busy_cpus(0.25, stat, cpus=[0, 1], sleep=sleep, own_cpu_seconds=lambda: next(own))
    assert b == pytest.approx(1.5 - 0.05 / 0.25)  # cpu2 is not in the mask: not counted
    stat.write_text(_stat({0: (1, 1)}))
    assert threads.busy_cpus(0.25, stat, cpus=[0], sleep=lambda _: None, own_cpu_seconds=lambda: 0.0) is None
    assert threads.busy_cpus(0.25, tmp_path / "missing", cpus=[0], sleep=lambda _: None) is None
    stat.write_text("cpu0 1 2 3\n")  # a format not known here: no load, not a crash
    assert threads.busy_cpus(0.25, stat, cpus=[0], sleep=lambda _: None, own_cpu_seconds=lambda: 0.0) is None


def test_decoding_takes_the_idle_cpus(monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: 4)
    assert choose_threads("decode", environ={}, idle=lambda: 3.9)[0] == 4
    n, source = choose_threads("decode", environ={}, idle=lambda: 2.6)
    assert n == 3 and source.startswith("auto: decoding, the idle CPUs (3 of 4 available; 2.6 idle")
    assert choose_threads("decode", environ={}, idle=lambda: 2.4)[0] == 2
    assert choose_threads("decode", environ={}, idle=lambda: 0.0)[0] == 1  # at least one thread
    n, source = choose_threads("decode", environ={}, idle=lambda: None)
    assert n == 4 and "could not be read" in source
    # a quota below the mask caps it: 3 idle CPUs in the mask, 2 allowed -> 2
    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    assert choose_threads("decode", environ={}, idle=lambda: 3.0)[0] == 2

    def never():
        raise AssertionError("the load is not measured when the user chose")

    assert choose_threads("decode", override=2, environ={}, idle=never) == (2, "--threads")
    assert choose_threads("decode", environ={ENV_VAR: "3"}, idle=never) == (3, ENV_VAR)
    n, source = choose_threads("decode", environ={"OMP_NUM_THREADS": "1"}, idle=never)
    assert n == 1 and source == "auto: decoding, capped by OMP_NUM_THREADS of 2 available CPUs"
    assert choose_threads("large", environ={}, idle=never)[0] == 2  # training CNNs ignores the load


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or not os.path.exists("/proc/stat"),
                    reason="reads Linux CPU counters")
def test_busy_cpus_sees_a_spinning_process():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert threads.busy_cpus() >= 0.5  # one core spun the whole interval (others' load only adds)
        assert threads.idle_cpus() <= len(os.sched_getaffinity(0)) - 0.5
    finally:
        spinner.kill()
        spinner.wait()


def _train(tmp_path, tiny, *extra):
    args = ["train", "--task", "color-direction-static", "--run-dir", str(tmp_path / "r"), "--no-progress", *extra]
    for a in tiny("color-direction-static"):
        args += ["--set", a]
    assert main(args) == 0
    status = json.loads((tmp_path / "r" / "status.json").read_text())
    rows = list(csv.DictReader(open(tmp_path / "r" / "log.csv")))
    return status, rows


def test_threads_flag_is_honoured_and_logged(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "1")
    torch.set_num_threads(1)
    status, rows = _train(tmp_path, tiny, "--threads", "2")
    assert torch.get_num_threads() == 2  # the flag wins over DECISIONNETS_THREADS
    assert status["threads"] == 2 and status["threads_source"] == "--threads"
    assert status["available_cpus"] == available_cpus()
    assert [int(r["threads"]) for r in rows] == [2, 2]


def test_env_var_and_automatic_choice_are_logged(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "2")
    status, rows = _train(tmp_path / "a", tiny)
    assert status["threads"] == 2 and status["threads_source"] == ENV_VAR
    monkeypatch.delenv(ENV_VAR)
    torch.set_num_threads(2)  # as torch's default would be on a 2-core machine
    status, rows = _train(tmp_path / "b", tiny)
    assert status["threads"] == 1 and status["threads_source"].startswith("auto: small model")
    assert [int(r["threads"]) for r in rows] == [1, 1]


def test_bad_threads_flag_is_a_one_line_error(tiny, tmp_path, capsys):
    args = ["train", "--task", "color-direction-static", "--run-dir", str(tmp_path / "r"), "--threads", "0"]
    assert main(args) == 2
    assert "--threads must be an integer >= 1" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_train_called_directly_logs_threads_set_by_the_caller(tiny, tmp_path):
    from decisionnets.config import load_config
    from decisionnets.training import train

    threads._choice.clear()
    torch.set_num_threads(1)
    train(load_config("color-direction-static", overrides=tiny("color-direction-static")), tmp_path / "r",
          progress=False)
    status = json.loads((tmp_path / "r" / "status.json").read_text())
    assert status["threads"] == 1 and status["threads_source"].startswith("set by the caller")
