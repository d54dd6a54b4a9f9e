import csv
import json

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
