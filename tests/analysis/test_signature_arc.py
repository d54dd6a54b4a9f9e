"""analysis/signature_arc.py: the arc tests on planted per-seed curves, and a tiny explore-arc sweep end to end."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from decisionnets import sweep

TASKS = Path(__file__).resolve().parents[2] / "tasks"


def _toml(raw: dict) -> str:
    """A sweep spec dict as TOML: tables of scalars, lists and inline tables (JSON is valid TOML there)."""
    def val(v):
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{json.dumps(k)} = {val(x)}" for k, x in v.items()) + " }"
        return "[" + ", ".join(val(x) for x in v) + "]" if isinstance(v, list) else json.dumps(v)

    lines = [f"description = {json.dumps(raw['description'])}", "[sweep]"]
    sw = raw["sweep"]
    lines += [f"{k} = {val(v)}" for k, v in sw.items() if not isinstance(v, dict)]
    for key in ("set", "grid", "analysis"):
        lines += [f"[sweep.{key}]"] + [f"{json.dumps(k)} = {val(v)}" for k, v in sw.get(key, {}).items()]
    for dim, points in sw.get("axes", {}).items():
        for pt in points:
            lines += [f"[[sweep.axes.{dim}]]"] + [f"{k} = {val(v)}" for k, v in pt.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("signature_arc")


def _run(color, direction=0.67, seed=0, gain=0.3, width=100, decoder="linear-raw"):
    epochs = np.arange(len(color)) * 10
    return {"init_gain": gain, "width": width, "seed": seed, "decoder": decoder, "epochs": epochs,
            "color": np.asarray(color, float), "direction": np.full(len(color), direction),
            "ceiling": 0.676, "val_accuracy": 0.89}


def test_planted_arc_passes_and_each_missing_part_fails(script):
    arc = [_run([0.2, 0.6 + s / 100, 0.3, 0.05], seed=s) for s in range(5)]  # rises, then discarded
    st = script.settings(arc)[(0.3, 100, "linear-raw")]
    np.testing.assert_allclose(st["rise"], [0.4, 0.41, 0.42, 0.43, 0.44])
    assert st["peak_epoch"].tolist() == [10] * 5
    assert script.verdict(st) == {**script.verdict(st), "rise": True, "discard": True, "direction": True, "arc": True}
    # no rise: at its peak at epoch 0 (the paper's net)
    flat = script.settings([_run([0.67, 0.66, 0.3, 0.0], seed=s) for s in range(5)])[(0.3, 100, "linear-raw")]
    assert script.verdict(flat)["discard"] and not script.verdict(flat)["rise"] and not script.verdict(flat)["arc"]
    # a rise smaller than 2 standard errors over seeds is no rise
    noisy = [_run([0.4, 0.4 + d, 0.0], seed=s) for s, d in enumerate([0.3, -0.25, 0.02])]
    assert not script.verdict(script.settings(noisy)[(0.3, 100, "linear-raw")])["rise"]
    # a rise of a thousandth of a bit at the ceiling is no rise, however small its spread
    tiny = [_run([0.676, 0.677 + s / 1e5, 0.0], seed=s) for s in range(3)]
    assert not script.verdict(script.settings(tiny)[(0.3, 100, "linear-raw")])["rise"]
    # kept (final / peak 0.5), or direction not learned
    kept = script.settings([_run([0.2, 0.6, 0.3], seed=s) for s in range(3)])[(0.3, 100, "linear-raw")]
    assert script.verdict(kept)["rise"] and not script.verdict(kept)["discard"]
    untrained = script.settings([_run([0.2, 0.6, 0.0], direction=0.1, seed=s) for s in range(3)])
    assert not script.verdict(untrained[(0.3, 100, "linear-raw")])["direction"]


def test_arc_presets_load_and_signature_arc_is_a_point_of_the_exploration():
    """signature-arc's runs are explore-arc's runs at gain 0.5, width 400 (same config), with 5 seeds."""
    explore = {p.run_id: p.config_json for p in sweep.plan(sweep.load_spec("explore-arc"), "/nonexistent")}
    arc = sweep.plan(sweep.load_spec("signature-arc"), "/nonexistent")
    assert len(explore) == 4 * 2 * 2 and len(arc) == 5
    assert sorted(p.coords["seed"] for p in arc) == [0, 1, 2, 3, 4]
    for p in arc:
        cfg = json.loads(p.config_json)
        assert cfg["model"]["init_gain"] == 0.5 and cfg["model"]["hidden_sizes"] == [400, 400, 400]
        assert cfg["train"]["weight_decay"] == 0.01 and cfg["record"]["probe_seed"] == 0
        if p.coords["seed"] < 2:
            assert explore[p.run_id] == p.config_json


def test_tiny_signature_arc_sweep_and_script(script, tmp_path):
    """The shipped preset, shrunk (1 run, 3 epochs, 8 units), runs and the script reads it."""
    raw = tomllib.loads((TASKS / "signature-arc.toml").read_text())
    raw["sweep"]["seeds"] = [0]
    raw["sweep"]["axes"]["width"] = [{"value": 8, "set": {"model.hidden_sizes": [8, 8, 8]}}]
    raw["sweep"]["set"].update({"train.epochs": 3, "train.n_trials": 200, "record.n_per_condition": 3,
                                "record.schedule": [0, 3]})
    raw["sweep"]["analysis"]["folds"] = 3
    path = tmp_path / "arc-tiny.toml"
    path.write_text(_toml(raw))
    text = sweep.run_sweep(path, out=tmp_path, n_workers=1, progress=False)
    sweep_dir = tmp_path / "arc-tiny"
    assert "1 completed" in text
    assert script.main([str(sweep_dir)]) == 0
    rst = (sweep_dir / "arc" / "arc.rst").read_text()
    assert "``linear``" in rst and "``linear-raw``" in rst and rst.count("\n") == 6  # 2 families, 4 rule lines
    assert (sweep_dir / "arc" / "arc.png").stat().st_size > 1000
    runs = script.load_runs([sweep_dir])
    assert {r["decoder"] for r in runs} == {"linear", "linear-raw"}
    assert all(r["epochs"].tolist() == [0, 3] and np.isfinite(r["color"]).all() for r in runs)
