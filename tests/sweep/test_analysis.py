"""decisionnets.sweep.analysis: each run analysed as `decisionnets analyze` would; new options
re-analyse finished runs without retraining; summaries of runs as they are."""

from pathlib import Path

import numpy as np

from decisionnets import sweep


def test_raw_linear_decoder_writes_information(tmp_path, sweep_spec, tiny_set):
    sp = sweep_spec(seeds=[0], set={**tiny_set, "train.n_trials": 100})
    (p,) = sweep.plan(sp, tmp_path)
    analysis = sweep.parse_spec({"sweep": {"base": "color-direction-static", "analysis": {"decoder": "linear-raw", "folds": 3}}}).analysis
    assert sweep.run_point(p, analysis)["status"] == "completed"
    import xarray as xr

    with xr.open_dataset(Path(p.run_dir) / "information.nc") as ds:
        assert ds["information"].dims == ("layer", "variable", "epoch")  # the layout of `decisionnets analyze`
        assert ds.attrs["analysis_decoder"] == "linear-raw"
        info, flags = ds["information"].values, ds["unreliable"].values
        # a label with one class at an epoch (a tiny net that always makes the same choice) has no
        # estimate: NaN, flagged; every other problem has a finite number of bits
        assert np.isfinite(ds["information"].sel(variable=["color", "direction", "target_config"]).values).all()
        assert ((flags & 1) != 0)[~np.isfinite(info)].all()
        assert (info[np.isfinite(info)] <= 1.0).all()

# --- one analysis: new options re-analyse finished runs without retraining; summaries of runs as they are --
def test_new_analysis_options_reanalyse_without_retraining_and_summary_only(tmp_path):
    import xarray as xr

    from decisionnets.sweep.analysis import is_analyzed
    from decisionnets.sweep.summary import run_information

    spec = tmp_path / "re.toml"
    spec.write_text('[sweep]\nbase = "color-direction-static"\nseeds = [0]\n[sweep.set]\n"train.epochs" = 2\n'
                    '"train.n_trials" = 100\n"model.hidden_sizes" = [8]\n"record.n_per_condition" = 2\n'
                    '"record.schedule" = "all"\n[sweep.analysis]\nvariables = ["color", "direction"]\nfolds = 3\n')
    sp = sweep.load_spec(spec)
    (p,) = sweep.plan(sp, tmp_path / "out" / sp.name)
    assert sweep.run_point(p, sp.analysis)["action"] == "trained+analyzed"
    run = Path(p.run_dir)
    trained = {f: f.stat().st_mtime_ns for f in [run / "log.csv", *run.glob("checkpoints/*"), *run.glob("activations/*")]}
    two = sp.analysis.replace(decoder=["linear", "linear-raw"])
    assert is_analyzed(run, sp.analysis) and not is_analyzed(run, two)
    assert sweep.run_point(p, two)["action"] == "analyzed"  # decoded again, not retrained
    assert trained == {f: f.stat().st_mtime_ns for f in trained}
    info = xr.load_dataset(run / "information.nc")
    assert list(info["decoder"].values) == ["linear", "linear-raw"]
    assert sweep.run_point(p, two)["action"] == "skipped"
    # the former sweep-only layout (no layer dim, `accuracy`) is read by the summary and analysed again by a rerun
    old = info.isel(layer=0).sel(decoder="linear").rename(decoding_accuracy="accuracy")
    old = old[["information", "information_sd", "accuracy"]]
    old.attrs = {"analysis": "decisionnets.sweep.analyze_information"}
    old.to_netcdf(run / "information.nc")
    assert not is_analyzed(run, sp.analysis)
    assert run_information(run)["information"].dims == ("variable", "epoch")
    text = sweep.run_sweep(spec, out=tmp_path / "out", summary_only=True, summary_dir=tmp_path / "summary")
    assert "nothing trained or analysed" in text
    assert not (tmp_path / "out" / sp.name / "summary.nc").exists()  # the sweep folder is left as it was
    summary = xr.load_dataset(tmp_path / "summary" / "summary.nc")
    np.testing.assert_array_equal(summary["information"].sel(seed=0).transpose("variable", "epoch").values,
                                  old["information"].values)
    assert (tmp_path / "summary" / "summary.txt").read_text().startswith("regime | n | color:")
