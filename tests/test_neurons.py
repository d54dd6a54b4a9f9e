"""Recorded neurons: from_arrays, from_nwb (a small NWB file written here by pynwb, with a planted
color signal), to_nwb (nwbinspector finds no critical issue; the activity reads back), and the
analysis paths (usable information, cross-temporal, analyze_run) on datasets without an epoch dim."""

from __future__ import annotations

import datetime
import json

import numpy as np
import pytest

import decisionnets as dn
from decisionnets.errors import UserError
from decisionnets.neurons import from_arrays, from_nwb, save_recording, to_nwb

pynwb = pytest.importorskip("pynwb")

START = datetime.datetime(2026, 1, 5, 9, 0, tzinfo=datetime.timezone.utc)
LN2 = np.log(2.0)


# ---------------------------------------------------------------------------------- from_arrays
def test_from_arrays_builds_the_activation_dataset():
    act = np.arange(4 * 3 * 2, dtype=float).reshape(4, 3, 2)
    ds = from_arrays(act, {"color": [0, 1, 0, 1], "side": ["R", "L", "L", "R"], "rt": [0.3, 0.5, 0.4, 0.2]},
                     time=[-0.1, 0.0, 0.1], unit=[11, 12], period=["pre", "stim", "stim"], attrs={"subject": "N"})
    assert ds["hidden"].dims == ("trial", "time", "unit")
    np.testing.assert_array_equal(ds["hidden"].values, act)
    assert "epoch" not in ds.dims
    assert ds["color"].dims == ("trial",) and "color" in ds.coords
    # strings become class codes in sorted order, the values kept in attrs
    np.testing.assert_array_equal(ds["side"].values, [1, 0, 0, 1])
    assert json.loads(ds["side"].attrs["classes"]) == ["L", "R"]
    np.testing.assert_array_equal(ds["unit"].values, [11, 12])
    assert list(ds["period"].values) == ["pre", "stim", "stim"]
    # continuous labels are kept but not decoded by default
    assert json.loads(ds.attrs["decode_labels"]) == ["color", "side"]
    assert ds.attrs["subject"] == "N"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(activity=np.zeros((5, 3, 2)), labels={"color": [0, 1, 0, 1]}),
         "'color' has 4 values (shape (4,)), activity has 5 trials"),
        (dict(activity=np.zeros((5, 2)), labels=np.zeros(6)), "'label' has 6 values (shape (6,)), activity has 5 trials"),
        (dict(activity=np.zeros(5), labels={"color": np.zeros(5)}), "got shape (5,)"),
        (dict(activity=np.zeros((5, 3, 2)), labels={"color": np.zeros(5)}, time=[0, 1]), "2 values, activity has 3 bins"),
        (dict(activity=np.zeros((5, 3, 2)), labels={"color": np.zeros(5)}, unit=[0]), "1 ids, activity has 2 units"),
        (dict(activity=np.zeros((5, 2)), labels={"color": np.zeros(5)}, time=[0]), "need activity with a time axis"),
        (dict(activity=np.zeros((5, 2)), labels={"time": np.zeros(5)}), "cannot be named 'time'"),
        (dict(activity=np.zeros((5, 2)), labels={}), "labels are empty"),
    ],
)
def test_from_arrays_errors_name_the_rule_and_the_value(kwargs, message):
    with pytest.raises(UserError) as err:
        from_arrays(**kwargs)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_usable_information_on_trial_by_unit_arrays():
    """No epoch, no time: one number; a separable label gives H(Y) = 1 bit, a shuffled one ~0."""
    rng = np.random.default_rng(np.random.SeedSequence(1))
    y = np.repeat([0, 1], 60)
    act = rng.standard_normal((120, 3))
    act[:, 0] += 8.0 * (2 * y - 1)
    ds = from_arrays(act, {"color": y, "noise": rng.permutation(y)})
    info = dn.usable_information(ds.hidden, ds.color)
    assert info.dims == ()
    assert float(info) > 0.9
    assert abs(float(dn.usable_information(ds.hidden, ds.noise))) < 0.1


# ---------------------------------------------------------------------------------- NWB fixtures
RATE_PRE = 15.0  # Hz, every unit before the event
RATE_POST = {0: (10.0, 22.0), 1: (20.0, 9.0)}  # Hz after the event, for color 0 / 1 (units 0 and 1)
RATE_FLAT = 15.0  # units 2 and 3: no color signal
BIN = 0.25
N_TRIALS = 800


def _write_planted_nwb(path, *, n_trials=N_TRIALS, seed=0, trials=True, units=True):
    """Trials 2 s apart, stimulus onset 0.5 s into each; after it, units 0 and 1 fire at a rate set
    by the trial's color (Poisson), units 2 and 3 do not care. Returns the colors."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    color = rng.permutation(np.arange(n_trials) % 2)
    onset = np.arange(n_trials) * 2.0 + 0.5
    nwb = pynwb.NWBFile(session_description="planted color signal", identifier=f"planted-{seed}",
                        session_start_time=START)
    if trials:
        nwb.add_trial_column("color", "dominant color: 0 red, 1 green")
        nwb.add_trial_column("side", "side of the red target")
        nwb.add_trial_column("stim_on", "checkerboard onset (s)")
        for i in range(n_trials):
            nwb.add_trial(start_time=i * 2.0, stop_time=i * 2.0 + 1.8, color=int(color[i]),
                          side=["left", "right"][i % 2], stim_on=float(onset[i]))
    if units:
        for u in range(4):
            spikes = []
            for i in range(n_trials):
                post = RATE_POST[u][color[i]] if u in RATE_POST else RATE_FLAT
                for lo, hi, rate in ((onset[i] - 0.5, onset[i], RATE_PRE), (onset[i], onset[i] + 0.5, post)):
                    k = rng.poisson(rate * (hi - lo))
                    spikes.append(rng.uniform(lo, hi, k))
            nwb.add_unit(spike_times=np.sort(np.concatenate(spikes)))
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return color


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    path = tmp_path_factory.mktemp("nwb") / "planted.nwb"
    color = _write_planted_nwb(path)
    return path, color


def _sklearn_reference_bits(X, y, folds=5, seed=0):
    """Held-out usable information (bits) from scikit-learn: LogisticRegressionCV on standardized
    counts, stratified K-fold; H(training prior) - held-out cross-entropy, pooled over the trials."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ce_dec = ce_pri = 0.0
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
        clf = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=np.logspace(-3, 2, 6), cv=4, scoring="neg_log_loss", l1_ratios=(0.0,), use_legacy_attributes=False)).fit(X[tr], y[tr])
        p = clf.predict_proba(X[te])[np.arange(len(te)), y[te]]
        prior = np.bincount(y[tr], minlength=2) / len(tr)
        ce_dec -= np.log(p).sum()
        ce_pri -= np.log(prior[y[te]]).sum()
    return (ce_pri - ce_dec) / len(y) / LN2


def _model_bits(rng, n=200_000):
    """I(color; counts of one post-onset bin) of the generative model, by Monte Carlo with the exact
    posterior (independent Poisson units): the Bayes decoder is linear in the counts."""
    lam = np.array([[RATE_POST[u][c] * BIN for u in (0, 1)] for c in (0, 1)])  # (color, unit)
    c = rng.integers(0, 2, n)
    x = rng.poisson(lam[c])
    loglik = (x[:, None, :] * np.log(lam)[None] - lam[None]).sum(-1)  # (n, color)
    logpost = loglik - np.logaddexp(loglik[:, 0], loglik[:, 1])[:, None]
    return 1.0 + logpost[np.arange(n), c].mean() / LN2


# ------------------------------------------------------------------------------------- from_nwb
def test_from_nwb_bins_spikes_around_the_event_with_trial_labels(planted):
    path, color = planted
    ds = from_nwb(path, event="stim_on", window=(-0.5, 0.5), bin_size=BIN)
    assert ds["hidden"].dims == ("trial", "time", "unit")
    assert ds.sizes == {"trial": N_TRIALS, "time": 4, "unit": 4}
    np.testing.assert_allclose(ds["time"].values, [-375, -125, 125, 375])  # ms, as a run's time
    assert ds.attrs["dt"] == 250.0
    np.testing.assert_array_equal(ds["color"].values, color)
    assert json.loads(ds["side"].attrs["classes"]) == ["left", "right"]
    assert "stim_on" not in ds.coords and "event_time" in ds.coords  # the event is a time, not a label
    # mean rates come back: before onset 15 Hz everywhere; after, unit 0 is 10 / 22 Hz by color
    pre = ds["hidden"].isel(time=[0, 1]).mean(("trial", "time")).values
    np.testing.assert_allclose(pre, RATE_PRE, rtol=0.06)
    post0 = ds["hidden"].isel(time=[2, 3], unit=0).groupby("color").mean(...).values
    np.testing.assert_allclose(post0, RATE_POST[0], rtol=0.06)
    only = from_nwb(path, event="stim_on", window=(-0.5, 0.5), bin_size=BIN, units=[3, 1], labels=["color"])
    np.testing.assert_array_equal(only["unit"].values, [3, 1])
    np.testing.assert_array_equal(only["hidden"].values, ds["hidden"].sel(unit=[3, 1]).values)
    assert sorted(c for c in only.coords if only[c].dims == ("trial",)) == ["color", "event_time", "trial"]


def test_planted_color_decodes_to_its_known_information(planted):
    """The post-onset bins carry the planted information (scikit-learn reference on the same trials,
    within 0.03 bits; the generative model's, within sampling error); the pre-onset bins ~0 bits."""
    path, _ = planted
    ds = from_nwb(path, event="stim_on", window=(-0.5, 0.5), bin_size=BIN, labels=["color"])
    info = dn.usable_information(ds.hidden, ds.color)
    assert info.dims == ("time",)
    y = ds["color"].values.astype(int)
    truth = _model_bits(np.random.default_rng(np.random.SeedSequence(7)))
    for t in (2, 3):
        ref = _sklearn_reference_bits(ds["hidden"].isel(time=t).values, y)
        assert abs(float(info[t]) - ref) < 0.03, (t, float(info[t]), ref)
        # sampling s.d. of a held-out estimate on 800 trials is ~0.02 bits; 4 units decoded, 2 carry it
        assert abs(float(info[t]) - truth) < 0.07, (t, float(info[t]), truth)
    assert np.all(np.abs(info.values[:2]) < 0.03)
    # temporal generalization runs unchanged: the post-onset code is the same in both bins
    ct = dn.cross_temporal_information(ds.hidden, ds.color)
    assert ct.dims == ("train_time", "test_time") and ct.shape == (4, 4)
    np.testing.assert_allclose(np.diag(ct.values)[2:], info.values[2:], atol=1e-6)
    assert ct.values[2, 3] > 0.5 * truth and ct.values[3, 2] > 0.5 * truth


def test_from_nwb_errors(tmp_path, planted):
    no_trials = tmp_path / "no_trials.nwb"
    _write_planted_nwb(no_trials, n_trials=4, trials=False)
    with pytest.raises(UserError, match="has no trials table"):
        from_nwb(no_trials)
    no_units = tmp_path / "no_units.nwb"
    _write_planted_nwb(no_units, n_trials=4, units=False)
    with pytest.raises(UserError, match="has no units"):
        from_nwb(no_units)
    path, _ = planted
    with pytest.raises(UserError, match="event 'onset' is not a column of the trials table"):
        from_nwb(path, event="onset")
    with pytest.raises(UserError, match=r"labels \['reward'\] are not columns"):
        from_nwb(path, labels=["reward"])
    with pytest.raises(UserError, match=r"units \[9\] are not in the units table"):
        from_nwb(path, units=[9])
    with pytest.raises(UserError, match="whole number of bins"):
        from_nwb(path, window=(0, 0.3), bin_size=0.25)
    with pytest.raises(UserError, match="timeseries 'lfp' is not in the NWB file"):
        from_nwb(path, timeseries="lfp")
    foreign = tmp_path / "foreign.nwb"
    foreign.write_text("not an nwb file")
    with pytest.raises(UserError, match="cannot read NWB file"):
        from_nwb(foreign)


def test_nwb_functions_say_how_to_install_pynwb(monkeypatch, planted):
    import sys

    monkeypatch.setitem(sys.modules, "pynwb", None)
    with pytest.raises(UserError, match=r"pip install 'decisionnets\[nwb\]'"):
        from_nwb(planted[0])


# ---------------------------------------------------------------------------------------- to_nwb
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from conftest import tiny_overrides

    from decisionnets.config import load_config
    from decisionnets.training import train

    run = tmp_path_factory.mktemp("run") / "run"
    train(load_config("color-direction", overrides=tiny_overrides("color-direction")), run, progress=False)
    return run


def test_to_nwb_passes_nwbinspector_and_reads_back(tiny_run, tmp_path):
    nwbinspector = pytest.importorskip("nwbinspector")
    Importance, inspect_nwbfile = nwbinspector.Importance, nwbinspector.inspect_nwbfile

    ds = dn.open_activations(tiny_run)
    epoch = int(ds["epoch"].values[0])
    out = to_nwb(tiny_run, tmp_path / "net.nwb", epoch=epoch)
    critical = [m for m in inspect_nwbfile(nwbfile_path=str(out)) if m.importance == Importance.CRITICAL]
    assert critical == [], [m.message for m in critical]
    # run -> to_nwb -> from_nwb: the same activity, labels and choices
    e = ds.sel(epoch=epoch).load()
    step = float(e["time"][1] - e["time"][0]) / 1000.0
    back = from_nwb(out, timeseries="network/hidden", event="start_time", window=(0, e.sizes["time"] * step),
                    bin_size=step)
    np.testing.assert_array_equal(back["hidden"].values, e["hidden"].transpose("trial", "time", "unit").values)
    for name in ("color", "direction", "target_config"):
        np.testing.assert_array_equal(back[name].values, e[name].values)
    np.testing.assert_array_equal(back["choice"].values, e["choice"].values)
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        assert set(nwb.processing["network"].data_interfaces) == {"hidden"}
        assert f"epoch {epoch}" in nwb.session_description
    # the default epoch is the last recorded; an epoch not recorded is a one-line error
    to_nwb(tiny_run, tmp_path / "last.nwb")
    with pynwb.NWBHDF5IO(str(tmp_path / "last.nwb"), "r") as io:
        assert f"epoch {int(ds['epoch'].values[-1])}" in io.read().session_description
    with pytest.raises(UserError, match="epoch 99 was not recorded"):
        to_nwb(tiny_run, tmp_path / "x.nwb", epoch=99)
    assert not (tmp_path / "x.nwb").exists()


def test_to_nwb_of_a_recording_without_time(tmp_path):
    rng = np.random.default_rng(np.random.SeedSequence(3))
    ds = from_arrays(rng.standard_normal((10, 3)).astype(np.float32), {"color": np.arange(10) % 2})
    out = to_nwb(ds, tmp_path / "static.nwb")
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        np.testing.assert_array_equal(nwb.processing["network"]["hidden"].data[:], ds["hidden"].values)
        np.testing.assert_array_equal(nwb.trials["color"].data[:], ds["color"].values)


# ---------------------------------------------------------------------------- analyze a recording
def test_a_saved_recording_is_analyzed_like_a_run(planted, tmp_path):
    """save_recording -> a run directory that open_activations and analyze_run read unchanged."""
    from decisionnets.report import load_information

    path, _ = planted
    ds = from_nwb(path, event="stim_on", window=(-0.5, 0.5), bin_size=BIN)
    ds = ds.isel(trial=slice(0, 200))
    written = save_recording(ds, tmp_path / "rec")
    assert written == tmp_path / "rec" / "activations" / "epoch_00000.nc"
    again = dn.open_activations(tmp_path / "rec")
    assert again["hidden"].dims == ("epoch", "trial", "time", "unit")
    paths = dn.analyze_run(tmp_path / "rec", progress=False, figures=False)
    info = load_information(tmp_path / "rec")
    assert paths[0].name == "information.nc"
    assert list(info["variable"].values) == ["color", "side"]
    direct = dn.usable_information(ds.hidden, ds.color)
    np.testing.assert_allclose(info["information"].sel(layer="hidden", variable="color", epoch=0).values,
                               direct.values, atol=1e-6)
    with pytest.raises(UserError, match="already has an epoch dim"):
        save_recording(again, tmp_path / "rec2")
