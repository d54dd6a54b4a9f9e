"""Run-directory bookkeeping (decisionnets.rundir) on its own: life cycle, resume, foreign checkpoints."""

import copy
import json
import re

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


# --- checksums and run identity of checkpoints, through `train --resume` -------------------------------
STATIC = ["--set", "epochs=3", "--set", "n_trials=96", "--set", "batch_size=16", "--set", "model.hidden_sizes=[8]",
          "--set", "n_per_condition=1", "--set", "schedule=all"]


def _train(run, *extra):
    from decisionnets.cli import main

    return main(["train", "--task", "color-direction-static", "--run-dir", str(run), "--no-progress", *STATIC, *extra])


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """A run killed after its epoch-1 checkpoint, and a copy of it resumed to the end."""
    import shutil

    import decisionnets.rundir as rd
    from decisionnets.cli import main

    base = tmp_path_factory.mktemp("ckpt")
    real = rd.RunLog.append

    def append(self, row):
        if int(row["epoch"]) == 2:
            raise KeyboardInterrupt
        real(self, row)

    rd.RunLog.append = append
    try:
        assert _train(base / "killed") == 130
    finally:
        rd.RunLog.append = real
    shutil.copytree(base / "killed", base / "finished")
    assert main(["train", "--resume", str(base / "finished"), "--no-progress"]) == 0
    assert _train(base / "other") == 0  # the same config, another run
    return base


def _resume(run, capsys):
    from decisionnets.cli import main

    capsys.readouterr()
    code = main(["train", "--resume", str(run), "--no-progress"])
    return code, capsys.readouterr().err


def _files(run):
    return {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def _flip(data: bytes, n=100, seed=0) -> bytes:
    b = bytearray(data)
    rng = np.random.default_rng(seed)
    for i in rng.choice(np.arange(len(b) // 4, len(b) - 64), n, replace=False):  # past the zip header
        b[i] ^= 0xFF
    return bytes(b)


@pytest.mark.parametrize("damage, match", [
    ("flipped", "fails its checksum|cannot read checkpoint"),
    ("random", "cannot read checkpoint"),
    ("no-model", "checkpoint has no 'model' state"),
    ("empty", "cannot read checkpoint"),
    ("later-same-run", "is of epoch 3, but this run reached epoch 1"),
    ("other-run", r"comes from another run \(run id"),
    ("unchecked", "has no checksum"),
])
def test_resume_refuses_a_corrupt_or_foreign_checkpoint_with_one_line(killed, tmp_path, capsys, damage, match):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(killed / "killed", run)
    ck = run / "checkpoints" / "last.pt"
    if damage == "flipped":
        ck.write_bytes(_flip(ck.read_bytes()))
    elif damage == "random":
        ck.write_bytes(np.random.default_rng(1).bytes(5000))
    elif damage == "empty":
        ck.write_bytes(b"")
    elif damage == "no-model":
        c = torch.load(ck, weights_only=False)
        del c["model"], c["checksum"]
        c["checkpoint_meta"] = None
        torch.save({k: v for k, v in c.items() if k != "checkpoint_meta"}, ck)
        status = json.loads((run / "status.json").read_text())
        del status["run_id"]  # a run from before run ids: unchecked checkpoints are taken, but must be complete
        (run / "status.json").write_text(json.dumps(status))
    elif damage == "later-same-run":
        shutil.copy(killed / "finished" / "checkpoints" / "last.pt", ck)
    elif damage == "other-run":
        shutil.copy(killed / "other" / "checkpoints" / "last.pt", ck)
    elif damage == "unchecked":
        c = torch.load(ck, weights_only=False)
        torch.save({k: v for k, v in c.items() if k not in ("checksum", "checkpoint_meta")}, ck)
    before = _files(run)
    code, err = _resume(run, capsys)
    assert code == 2, err
    assert re.search(match, err) and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    after = _files(run)
    assert after.keys() == before.keys() and all(after[p] == before[p] for p in before if p.name != "status.json")


def test_a_flipped_byte_in_a_value_fails_the_checksum(tmp_path):
    from decisionnets.rundir import load_checkpoint, save_checkpoint_file

    save_checkpoint_file(tmp_path / "c.pt", {"model": {"w": torch.arange(6.0)}, "epoch": 1, "step": 2}, run_id="x")
    assert load_checkpoint(tmp_path / "c.pt")["checkpoint_meta"]["run_id"] == "x"
    c = torch.load(tmp_path / "c.pt", weights_only=False)
    c["model"]["w"][3] = 3.0000002  # one changed value, file rewritten as a valid torch file
    torch.save(c, tmp_path / "c.pt")
    with pytest.raises(DataFileError, match="fails its checksum"):
        load_checkpoint(tmp_path / "c.pt")


def test_an_intact_killed_run_still_resumes(killed, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(killed / "killed", run)
    code, err = _resume(run, capsys)
    assert code == 0, err
    a = torch.load(run / "checkpoints" / "final.pt", weights_only=False)["model"]
    b = torch.load(killed / "finished" / "checkpoints" / "final.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
