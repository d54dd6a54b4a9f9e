"""The checkerboard's own analyses, declared in its env file: psychometric curve, choice vs direction."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from decisionnets.analyses import ANALYSES, AnalysisJob, choice_vs_stimulus, task_analyses
from decisionnets.analysis_config import AnalysisConfig
from decisionnets.build import make_task
from decisionnets.envs.color_direction_analyses import (CHOICE_VS_DIRECTION, PSYCHOMETRIC, choice_vs_direction,
                                                        psychometric, psychometric_curve)
from decisionnets.task import declaration_attrs


def _run(n=120, seed=0):
    """One epoch, no time: unit 0 carries the choice, unit 1 the direction; 25 % errors; planted P(right)."""
    rng = np.random.default_rng(seed)
    coh = np.tile([-0.5, -0.1, 0.1, 0.5], n // 4)
    cfg = np.repeat([0, 1], n // 2)
    evidence = coh * (2 * cfg - 1)  # toward the right target
    direction = (evidence > 0).astype(int)
    choice = np.where(rng.random(n) < 0.25, 1 - direction, direction)
    act = rng.standard_normal((1, n, 3)).astype(np.float32)
    act[0, :, 0] += 3.0 * (2 * choice - 1)
    act[0, :, 1] += 3.0 * (2 * direction - 1)
    return xr.Dataset({"hidden": (("epoch", "trial", "unit"), act), "choice": (("epoch", "trial"), choice[None])},
                      coords={"epoch": [2], "coherence": ("trial", coh), "target_config": ("trial", cfg),
                              "direction": ("trial", direction), "catch": ("trial", np.zeros(n, int))},
                      attrs={"target": "color"})  # a target other than direction: the analysis names its own


def test_psychometric_signs_the_evidence_by_the_target_configuration():
    choice = xr.DataArray([[1, 1, 0, 0, 1]], dims=("epoch", "trial"), coords={"epoch": [0]})
    coh = xr.DataArray([0.5, -0.5, 0.5, -0.5, 0.5], dims="trial")
    cfg = xr.DataArray([1, 0, 0, 1, 1], dims="trial")
    p = psychometric(choice, coh, cfg)
    assert p.dims == ("epoch", "evidence") and p["evidence"].values.tolist() == [-0.5, 0.5]
    np.testing.assert_allclose(p.sel(epoch=0).values, [0.0, 1.0])  # every choice follows the evidence
    valid = np.array([True, True, True, True, False])
    np.testing.assert_allclose(psychometric(choice, coh, None, valid=valid).sel(epoch=0).values, [0.5, 0.5])


def test_the_registered_analyses_are_the_ones_the_checkerboard_declares():
    task = make_task("ColorDirectionStatic", {}, n_per_condition=1)
    assert task.analyses == (CHOICE_VS_DIRECTION, PSYCHOMETRIC)
    assert json.loads(declaration_attrs(task)["analyses"]) == ["choice_vs_direction", "psychometric"]
    assert ANALYSES["choice_vs_direction"] is CHOICE_VS_DIRECTION and ANALYSES["psychometric"] is PSYCHOMETRIC
    assert CHOICE_VS_DIRECTION.needs == ("choice", "direction") and PSYCHOMETRIC.needs == ("choice", "coherence")
    ds = _run()
    ds.attrs["analyses"] = json.dumps(["psychometric"])
    assert task_analyses(ds) == ["psychometric"]


def test_the_declared_analyses_run_on_a_planted_run_and_report_their_problems():
    ds = _run()
    job = AnalysisJob(ds, {}, None, AnalysisConfig(folds=3), cross_temporal_epoch=2)
    done = []
    job.progress = done.append
    err = CHOICE_VS_DIRECTION.run(job, ds["hidden"])
    assert sum(done) == CHOICE_VS_DIRECTION.problems(job, ds["hidden"]) == 2  # 2 labels x 1 epoch x 1 step
    assert list(err["error_variable"].values) == ["choice", "direction"]
    assert (err["error_information"] > 0.5).all()  # each coded by its own unit on the balanced errors
    same = choice_vs_direction(ds["hidden"], ds, folds=3)
    np.testing.assert_allclose(same["error_information"].values, err["error_information"].values)
    np.testing.assert_allclose(choice_vs_stimulus(ds["hidden"], ds, stimulus="direction", folds=3)
                               ["error_information"].values, err["error_information"].values)
    p = PSYCHOMETRIC.run(job)["p_right"]
    assert PSYCHOMETRIC.problems(job) == 0
    xr.testing.assert_identical(p, psychometric_curve(ds)["p_right"])
    right = p.sel(epoch=2, evidence=0.5).item()
    assert right > 0.5 > p.sel(epoch=2, evidence=-0.5).item()  # 75 % of choices follow the evidence


def test_the_checkerboard_declares_its_figure_colours_evidence_and_axis_labels():
    from decisionnets.envs.color_direction_analyses import BEHAVIOUR_EVIDENCE, EVIDENCE_LABEL
    from decisionnets.plots import label_colors

    task = make_task("ColorDirectionStatic", {}, n_per_condition=1)
    attrs = declaration_attrs(task)
    # the colours the checkerboard's figures always had: color red, direction blue, target_config green
    assert label_colors(attrs, ["color", "direction", "target_config", "choice"]) == {
        "color": "tab:red", "direction": "tab:blue", "target_config": "tab:green", "choice": "tab:purple"}
    assert json.loads(attrs["label_colors"]) == task.label_colors
    assert task.behaviour_evidence == BEHAVIOUR_EVIDENCE and BEHAVIOUR_EVIDENCE[0] in task.label_names
    p = psychometric_curve(_run())["p_right"]
    assert p["evidence"].attrs["long_name"] == EVIDENCE_LABEL
