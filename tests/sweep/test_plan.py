"""decisionnets.sweep.plan: the grid x axes x seeds product, matched controls, shared pretraining runs."""

import json

from decisionnets import sweep


def test_paper_signatures_controls_are_matched():
    """The matched controls take the steps (and lr x steps) of the paper's regime; one probe set for all seeds."""
    pts = sweep.plan(sweep.load_spec("paper-signatures"), "/nonexistent/sweeps")
    cfg = {(p.coords["regime"], p.coords["weight_decay"], p.coords["seed"]): json.loads(p.config_json) for p in pts}
    n_train = 10000 - round(10000 * 0.1)

    def steps(c):
        return c["train"]["epochs"] * -(-n_train // c["train"]["batch_size"])

    base = cfg["lr0.05-b32", 0.01, 0]
    matched = cfg["lr0.05-b512-steps", 0.01, 0]
    assert steps(matched) == steps(base) == 16920 and matched["train"]["lr"] == base["train"]["lr"]
    lr_steps = cfg["lr0.8-b512", 0.01, 0]
    assert abs(lr_steps["train"]["lr"] * steps(lr_steps) / (base["train"]["lr"] * steps(base)) - 1) < 0.03
    assert len(matched["record"]["schedule"]) == 61  # the b32 run's 61 recorded epochs, in steps
    assert {c["record"]["probe_seed"] for c in cfg.values()} == {0}
    assert cfg["gain0.1", 0.0, 3]["model"]["init_gain"] == 0.1
    assert sum(p.pretrain is not None for p in pts) == 15


def test_plan_is_the_product_of_grid_axes_and_seeds(tmp_path, sweep_spec, tiny_set):
    sp = sweep_spec(seeds=[0, 1], set=tiny_set, grid={"train.lr": [0.01, 0.1], "model.hidden_sizes": [[8], [4, 4]]},
               axes={"k": [{"value": 0}, {"value": 1, "phases": [{"epochs": 1, "lr": 0.5}]}]})
    assert sp.dims == ["lr", "hidden_sizes", "k"]
    pts = sweep.plan(sp, tmp_path)
    assert len(pts) == 2 * 2 * 2 * 2
    assert len({p.run_dir for p in pts}) == len(pts)
    p = next(p for p in pts if p.coords == {"lr": 0.1, "hidden_sizes": "4x4", "k": 1, "seed": 1})
    cfg = json.loads(p.config_json)
    assert cfg["train"]["lr"] == 0.1 and cfg["model"]["hidden_sizes"] == [4, 4] and cfg["seed"] == 1
    assert cfg["train"]["phases"][0]["lr"] == 0.5 and cfg["train"]["epochs"] == 2


def test_pretrain_run_is_shared_and_feeds_init_from(tmp_path, sweep_spec, tiny_set):
    sp = sweep_spec(seeds=[0], set=tiny_set, grid={"train.lr": [0.01, 0.1]},
               axes={"start": [{"value": "scratch"}, {"value": "pre", "pretrain": {"epochs": 1}}]})
    pts = sweep.plan(sp, tmp_path)
    pre = [p for p in pts if p.pretrain is not None]
    assert len(pre) == 2
    # the pretraining config takes the point's overrides, so the two lr values give two pretraining runs
    assert len({p.pretrain.run_id for p in pre}) == 2
    assert all(json.loads(p.config_json)["train"]["init_from"] == p.pretrain.run_dir for p in pre)
