"""The estimator on REAL trained layers (tests/data/trained_layers.npz, see make_trained_layers.py).

FC 4-100-100-100-2 on the static checkerboard without weight decay (lr 0.005, batch 512, seed 1;
epochs 1, 30, 60) and with weight decay 1e-2 (lr 0.05, batch 32, seed 0; epochs 20, 45, 60: color
is being discarded, units down to s.d. 2e-8), and the demo RNN (epoch 12, end of the stimulus).
Each estimate must be stable across fold seeds and agree with scikit-learn on the same folds.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch

from decisionnets.decoding import UsableInformation, get_decoder

from decoder_reference import sklearn_information, sklearn_mlp_information, torch_sgd_information

torch.set_num_threads(1)

DATA = np.load(pathlib.Path(__file__).parent / "data" / "trained_layers.npz")
LAYERS = [k for k in DATA.files if "__" not in k]
CASES = [(layer, var) for layer in LAYERS for var in ("color", "direction")]


def load_layer(layer, variable):
    """Activity (trials, units) float32 and labels (trials,) of one stored layer."""
    X = DATA[layer].astype(np.float32) * DATA[f"{layer}__scale"]
    return X, DATA[f"{layer}__{variable}"].astype(np.int64)


def test_fixture_layers_are_real_and_small():
    assert {"nowd_e60", "wd_e60", "rnn_e12"} <= set(LAYERS)
    X, _ = load_layer("wd_e60", "color")
    sd = X.std(0)
    assert sd.min() < 1e-6 < 0.1 < sd.max()  # weight-decayed units near float noise next to live ones
    assert (pathlib.Path(__file__).parent / "data" / "trained_layers.npz").stat().st_size < 400_000


def test_the_034_bit_drop_is_gone():
    """nowd_e60, direction: fold seed 0 gave 0.34 bits (seeds 1, 2: 0.715, 0.708; scikit-learn 0.710).

    Cause: at the strongest penalty (alpha 1e4) the diagonal preconditioner underestimated the
    penalty's curvature (training-fold variances of sparse ReLU units differ), the accelerated
    iteration diverged to NaN / 1e29 nats, and the inner CV, whose argmin reads NaN as the minimum,
    chose that penalty for two outer folds.
    """
    X, y = load_layer("nowd_e60", "direction")
    vals = []
    for seed in range(3):
        est = UsableInformation(seed=seed).fit(X, y)
        assert est.converged_.all()
        assert np.all(est.l2_ < 1e4)
        vals.append(float(est.information_[0, 0]))
    assert np.ptp(vals) <= 0.03
    assert abs(vals[0] - 0.710) <= 0.02  # scikit-learn on the same folds: 0.7104


def test_unconverged_fit_is_reported_not_returned():
    X, y = load_layer("wd_e45", "direction")
    dec = get_decoder("linear", max_iter=3, refit_iter=0)  # no budget, no refit: must say so
    with pytest.warns(RuntimeWarning, match="did not converge"):
        est = UsableInformation(decoder=dec).fit(X, y)
    assert not est.converged_.all()


# scale-invariant probe on the most weight-decayed layer: a unit of s.d. 2e-8 active on 14 trials gets a
# standardized weight that makes one held-out trial cost 28 nats in some fold draws; scikit-learn gives
# the same numbers on the same folds (seeds 0-4: 0.098 0.031 0.038 0.094 0.097 bits). A property of the
# family on float-noise units, not of the solver: reported, not hidden.
UNSTABLE = {("linear", "wd_e60", "color")}


@pytest.mark.slow
@pytest.mark.parametrize("family", ["linear", "linear-raw"])
@pytest.mark.parametrize("layer, variable", CASES)
def test_logistic_family_stable_and_matches_sklearn(family, layer, variable, request):
    if (family, layer, variable) in UNSTABLE:
        request.applymarker(pytest.mark.xfail(strict=True, reason="fold-seed spread 0.067 bits (see UNSTABLE)"))
    X, y = load_layer(layer, variable)
    ests = [UsableInformation(decoder=family, seed=s).fit(X, y) for s in range(3)]
    vals = np.array([e.information_[0, 0] for e in ests])
    assert all(e.converged_.all() for e in ests)
    ref, _ = sklearn_information(X, y, ests[0].folds_[0, 0], standardize=family == "linear")
    assert abs(vals[0] - ref) <= 0.03 if family == "linear" else abs(vals[0] - ref) <= 0.02
    assert np.ptp(vals) <= 0.03


@pytest.mark.slow
@pytest.mark.parametrize("layer, variable", CASES)
def test_mlp_family_stable_and_matches_sklearn_mlp(layer, variable):
    """``mlp`` vs scikit-learn's MLPClassifier (same recipe, own initialisation) on the same folds."""
    X, y = load_layer(layer, variable)
    ests = [UsableInformation(decoder="mlp", seed=s).fit(X, y) for s in range(3)]
    vals = np.array([e.information_[0, 0] for e in ests])
    ref, _ = sklearn_mlp_information(X, y, ests[0].folds_[0, 0])
    assert abs(vals[0] - ref) <= 0.03
    assert np.ptp(vals) <= 0.03


@pytest.mark.slow
@pytest.mark.parametrize("family", ["sgd-mlp", "sgd-linear"])
def test_sgd_family_matches_per_problem_torch_loop(family):
    """Batched SGD decoder vs an nn.Sequential per fold (own random draws), a short budget."""
    X, y = load_layer("rnn_e12", "color")
    dec = get_decoder(family, iterations=300)
    vals = [UsableInformation(decoder=dec, seed=s).fit(X, y).information_[0, 0] for s in range(2)]
    est = UsableInformation(decoder=dec, seed=0).fit(X, y)
    ref = torch_sgd_information(X, y, est.folds_[0, 0], dec, seed=0)
    assert abs(np.mean(vals) - ref) <= 0.03
    assert np.ptp(vals) <= 0.03


def test_sgd_decoder_learns_and_is_seeded():
    rng = np.random.default_rng(0)
    n = 200
    y = rng.integers(0, 2, n)
    X = rng.standard_normal((n, 5)).astype(np.float32)
    X[:, 0] += 3.0 * (2 * y - 1)
    dec = get_decoder("sgd-mlp", iterations=200)
    a = UsableInformation(decoder=dec, seed=1).fit(X, y)
    b = UsableInformation(decoder=dec, seed=1).fit(X, y)
    np.testing.assert_array_equal(a.information_, b.information_)
    assert a.information_[0, 0] > 0.7
    assert np.isnan(a.l2_).all() and a.converged_.all()
    hold = UsableInformation(decoder=dec, split="holdout", train_fraction=0.25).fit(X, y)
    assert hold.information_folds_.shape == (1, 1, 1) and hold.information_[0, 0] > 0.6
    with pytest.raises(Exception, match="train_fraction"):
        UsableInformation(decoder=dec, split="holdout", train_fraction=0.3).fit(X, y)


def test_sgd_decoder_divergence_on_large_raw_units_is_named_with_its_cause():
    """The authors' recipe (lr 0.05, raw units) diverges on rates of tens (an untrained Dale
    multi-area net reached 62): the warning names the scale and the step size, and a smaller
    step on the same data converges without it."""
    import warnings

    rng = np.random.default_rng(0)
    n = 200
    y = rng.integers(0, 2, n)
    X = np.abs(rng.standard_normal((n, 5))).astype(np.float32) * 10.0
    X[:, 0] += 60.0 * y  # rates of tens, up to 91
    with pytest.warns(RuntimeWarning, match=r"did not converge \(sgd-linear; their inputs reach \|x\| = .*fixed-step "
                                            r"SGD diverged.*lr 0.05 is too large") as rec:
        est = UsableInformation(decoder=get_decoder("sgd-linear", iterations=100), seed=0).fit(X, y)
    assert not est.converged_.all() and not np.isfinite(est.information_).all()
    msg = next(str(w.message) for w in rec if "fixed-step" in str(w.message))
    scale = float(msg.split("|x| = ")[1].split(")")[0])
    assert scale == pytest.approx(np.abs(X).max(), rel=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        ok = UsableInformation(decoder=get_decoder("sgd-linear", iterations=100, lr=0.01), seed=0).fit(X, y)
    assert ok.converged_.all() and ok.information_[0, 0] > 0.5


def test_registry_accepts_a_user_decoder_and_lists_give_a_decoder_dim():
    import xarray as xr

    from decisionnets.decoding import Decoder, LogisticDecoder, decoder_names, register_decoder
    from decisionnets.decoding import decoding_scores
    from decisionnets.errors import UserError

    class StrongRidge(LogisticDecoder):
        """A user family: raw-unit logistic regression with one fixed, strong penalty."""

        def __init__(self):
            super().__init__(standardize=False, l2_grid=[100.0])
            self.name = "strong-ridge"

    register_decoder("strong-ridge", StrongRidge, overwrite=True)
    assert "strong-ridge" in decoder_names() and isinstance(StrongRidge(), Decoder)
    with pytest.raises(UserError, match="already registered"):
        register_decoder("strong-ridge", StrongRidge)
    X, y = load_layer("rnn_e12", "direction")
    act = xr.DataArray(X[None].repeat(2, 0), dims=("epoch", "trial", "unit"))
    lab = xr.DataArray(y, dims="trial")
    ds = decoding_scores(act, {"direction": lab}, decoder=["linear", "strong-ridge"])
    assert ds["information"].dims == ("decoder", "variable", "epoch")
    assert list(ds["decoder"].values) == ["linear", "strong-ridge"]
    assert ds["converged"].all()
    assert np.all(ds["l2"].sel(decoder="strong-ridge").values == 100.0)
    with pytest.raises(UserError, match="decoder must be one of"):
        decoding_scores(act, lab, decoder="svm")
    with pytest.raises(UserError, match="holdout"):
        UsableInformation(decoder="linear", split="holdout").fit(X, y)
