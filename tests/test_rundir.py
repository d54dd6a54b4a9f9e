"""Run-directory bookkeeping (decisionnets.rundir) on its own: life cycle, resume, foreign checkpoints."""

import copy
import json

import numpy as np
import pytest
import torch

from decisionnets.config import load_config
from decisionnets.errors import DataFileError
from decisionnets.rundir import RunDir, read_log, restore, snapshot

FIELDS = ("epoch", "step", "loss")


def _cfg(seed=0):
    return load_config("color-direction-static", overrides=["epochs=3", "model.hidden_sizes=[4]"], seed=seed)


def test_fresh_run_life_cycle_writes_config_status_log_checkpoints(tmp_path):
    run = RunDir(tmp_path / "r", _cfg(), resume=False, log_fields=FIELDS)
    assert run.open("cpu") is None
    assert json.loads((tmp_path / "r" / "config.json").read_text()) == json.loads(_cfg().to_json())
    run.start(0, 0, threads=1)
    assert json.loads((tmp_path / "r" / "status.json").read_text())["status"] == "running"
    for e in (1, 2):
        run.end_epoch({"epoch": e, "step": 10 * e, "loss": 1.0 / e}, {"epoch": e, "step": 10 * e, "w": torch.ones(2) * e})
    ckpt = torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=False)
    assert ckpt["epoch"] == 2 and ckpt["run_identity"] == run.identity and ckpt["config"] == _cfg().to_json()
    assert [int(r["epoch"]) for r in read_log(tmp_path / "r" / "log.csv", 99)] == [1, 2]
    status = run.finish({"model": {"w": torch.zeros(1)}}, 3, 30)
    assert status["status"] == "completed" and status["threads"] == 1
    assert json.loads((tmp_path / "r" / "status.json").read_text()) == status
    assert torch.load(tmp_path / "r" / "checkpoints" / "final.pt", weights_only=False)["step"] == 30


def test_resume_returns_the_checkpoint_and_the_log_up_to_it(tmp_path):
    run = RunDir(tmp_path / "r", _cfg(), resume=False, log_fields=FIELDS)
    run.open("cpu")
    run.start(0, 0)
    run.end_epoch({"epoch": 1, "step": 5, "loss": 0.5}, {"epoch": 1, "step": 5})
    run.log.append({"epoch": 2, "step": 10, "loss": 0.4})  # killed after the log row, before the checkpoint
    again = RunDir(tmp_path / "r", _cfg(), resume=True, log_fields=FIELDS)
    ckpt = again.open("cpu")
    assert (ckpt["epoch"], ckpt["step"]) == (1, 5) and again.identity == run.identity
    again.start(ckpt["epoch"], ckpt["step"])
    assert [int(r["epoch"]) for r in again.log.rows] == [1]


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    other = RunDir(tmp_path / "o", _cfg(seed=1), resume=False, log_fields=FIELDS)
    other.open("cpu")
    other.save_checkpoint({"epoch": 1, "step": 1})
    run = RunDir(tmp_path / "r", _cfg(), resume=False, log_fields=FIELDS)
    run.open("cpu")
    (tmp_path / "r" / "checkpoints").mkdir()
    (tmp_path / "o" / "checkpoints" / "last.pt").rename(tmp_path / "r" / "checkpoints" / "last.pt")
    with pytest.raises(DataFileError, match="comes from another run"):
        RunDir(tmp_path / "r", _cfg(), resume=True, log_fields=FIELDS).open("cpu")
    # without run identities (agent runs) the checkpoint is taken as it is
    assert RunDir(tmp_path / "r", _cfg(), resume=True, log_fields=FIELDS, identity=False).open("cpu")["epoch"] == 1


def test_snapshot_and_restore_round_trip_every_kind_of_state():
    model, gen, rng = torch.nn.Linear(2, 1), torch.Generator().manual_seed(3), np.random.default_rng(4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    state = copy.deepcopy(snapshot(model=model, optimizer=opt, gen=gen, rng=rng))  # state_dict() is by reference
    expect = (torch.rand(3, generator=gen), rng.random(3))
    with torch.no_grad():
        model.weight.zero_()
    restore(state, model=model, optimizer=opt, gen=gen, rng=rng)
    assert torch.equal(torch.rand(3, generator=gen), expect[0]) and np.array_equal(rng.random(3), expect[1])
    assert torch.equal(model.state_dict()["weight"], state["model"]["weight"]) and model.weight.abs().sum() > 0
