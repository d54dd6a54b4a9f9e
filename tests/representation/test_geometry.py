"""Population geometry on synthetic populations with known dimensionality and marginal variances."""

import itertools
import json

import numpy as np
import pytest
import xarray as xr

from decisionnets.errors import UserError
from decisionnets.representation.geometry import geometry, marginalize, participation_ratio, plot_geometry

T, U = 6, 8


def _orthonormal(rng, n, k):
    q, _ = np.linalg.qr(rng.normal(size=(n, k)))
    return q.T  # (k, n) orthonormal rows


def _exact_samples(rng, n, lam):
    """n samples whose covariance (ddof 0) is exactly diag(lam) in a random rotation of len(lam) + 3 dims."""
    d = len(lam)
    Z = rng.normal(size=(n, d))
    Z -= Z.mean(0)
    q, _ = np.linalg.qr(Z)  # orthonormal, zero-mean columns
    Z = q * np.sqrt(n * np.asarray(lam))
    return Z @ _orthonormal(rng, d + 3, d)


@pytest.mark.parametrize("lam", [[1.0], [1.0, 1.0, 1.0], [4.0, 2.0, 1.0, 0.5]])
def test_participation_ratio_closed_form(lam):
    rng = np.random.default_rng(0)
    X = _exact_samples(rng, 200, lam)
    expected = sum(lam) ** 2 / sum(v * v for v in lam)
    assert participation_ratio(X) == pytest.approx(expected, rel=1e-10)
    # fewer samples than features (the samples' Gram matrix is used): the eigenvalue formula
    few = X[:3] - X[:3].mean(0)
    ev = np.linalg.eigvalsh(few.T @ few / 3)
    assert participation_ratio(X[:3]) == pytest.approx(ev.sum() ** 2 / (ev ** 2).sum(), rel=1e-10)


def _planted(rng, reps=2):
    """Trials on a color (2) x direction (2) x target_config (= XOR) grid with planted marginals.

    Condition mean = m(t) u0 + a(color) u1 + b(direction, t) u2 + g(color, direction) u3, each term
    with zero mean over its own axes; noise +-eps per pair of trials (within-condition variance |eps|^2).
    """
    u = _orthonormal(rng, U, 5)
    m = rng.normal(size=T); m -= m.mean()
    a = np.array([-0.7, 0.7])
    b = rng.normal(size=(2, T)); b -= b.mean(0); b -= b.mean(1, keepdims=True)  # direction x time
    b += np.array([[-0.5], [0.5]])  # and a direction main effect
    g = np.array([[0.4, -0.4], [-0.4, 0.4]])
    eps = 0.3 * u[4]
    rows, labels = [], []
    for c, d in itertools.product(range(2), range(2)):
        mean = m[:, None] * u[0] + a[c] * u[1] + b[d][:, None] * u[2] + g[c, d] * u[3]  # (T, U)
        for r in range(reps):
            sign = 1 if r % 2 == 0 else -1
            rows.append(mean + sign * eps + 5.0)
            labels.append((c, d, c ^ d))
    truth = {"time": np.mean(m ** 2), "color": np.mean(a ** 2), "direction": np.mean(b ** 2),
             "color:direction": np.mean(g ** 2), "noise": 0.09,
             "amplitudes_t0": (0.7, abs(b[1, 0]), 0.4)}  # +- amplitudes of color, direction, interaction at t=0
    return np.array(rows), np.array(labels), truth


def _dataset(act, labels, epochs=(0, 1)):
    E = len(epochs)
    data = np.stack([act * (1 + e) for e in range(E)])  # later epochs: the same geometry, scaled
    return xr.Dataset(
        {"hidden": (("epoch", "trial", "time", "unit"), data)},
        coords={"epoch": list(epochs), "trial": np.arange(len(act)), "time": np.arange(T) * 10.0,
                "period": ("time", ["early"] * 3 + ["late"] * 3),
                "color": ("trial", labels[:, 0]), "direction": ("trial", labels[:, 1]),
                "target_config": ("trial", labels[:, 2])},
        attrs={"decode_labels": json.dumps(["color", "direction", "target_config"])})


def test_marginal_variances_match_the_planted_ones():
    rng = np.random.default_rng(1)
    act, labels, truth = _planted(rng)
    r = geometry(_dataset(act, labels))
    # target_config (the XOR of the others) is left out of the default grid: it is color:direction
    assert json.loads(r.attrs["variables"]) == ["color", "direction"]
    mv = r["marginal_variance"].sel(layer="hidden", epoch=0)
    truth.pop("amplitudes_t0")
    for k, v in truth.items():
        assert float(mv.sel(marginalization=k)) == pytest.approx(v, rel=1e-9, abs=1e-12), k
    total = sum(truth.values())
    np.testing.assert_allclose(r["variance_fraction"].sel(epoch=0).squeeze().values,
                               [truth[k] / total for k in ["time", "color", "direction", "color:direction", "noise"]],
                               rtol=1e-9)
    np.testing.assert_allclose(r["variance_fraction"].sum("marginalization"), 1.0)
    # epoch 1 is epoch 0 scaled by 2: the same fractions, 4 x the variances
    np.testing.assert_allclose(r["marginal_variance"].sel(epoch=1), 4 * r["marginal_variance"].sel(epoch=0))


def test_trajectories_on_fixed_pcs_and_dimensionality():
    rng = np.random.default_rng(2)
    act, labels, _ = _planted(rng)
    r = geometry(_dataset(act, labels), n_components=4)
    assert r["trajectory"].dims == ("layer", "epoch", "condition", "time", "pc")
    assert list(r["color"].values) == [0, 0, 1, 1] and list(r["condition_trials"].values) == [2, 2, 2, 2]
    # the condition averages span u0..u3: four fixed PCs hold all their variance, at both epochs
    np.testing.assert_allclose(r["pc_variance_explained"].sum("pc"), 1.0, rtol=1e-9)
    # epoch 1 = 2 x epoch 0, so its trajectories are twice as far out on the same PCs
    tr = r["trajectory"].squeeze("layer")
    np.testing.assert_allclose(tr.sel(epoch=1), 2 * tr.sel(epoch=0), atol=1e-9)
    assert r["dimensionality"].dims == ("layer", "epoch", "period")
    # participation ratio of the condition averages in a period, from the same formula on the raw samples
    M = np.stack([act[(labels[:, 0] == c) & (labels[:, 1] == d)].mean(0) for c in range(2) for d in range(2)])
    expected = participation_ratio(M[:, 3:].reshape(-1, U))
    assert float(r["dimensionality"].sel(layer="hidden", epoch=0, period="late")) == pytest.approx(expected)
    axes = plot_geometry(r)
    assert axes.shape == (3,)


def test_static_layers_without_epoch_and_incomplete_grids():
    rng = np.random.default_rng(3)
    act, labels, truth = _planted(rng)
    ds = _dataset(act, labels).isel(time=0, epoch=0, drop=True).drop_vars("period", errors="ignore")
    r = geometry(ds)
    assert r.sizes["epoch"] == 1 and list(r["period"].values) == ["all"]
    assert "time" not in r["marginalization"].values and r["trajectory"].dims == ("layer", "epoch", "condition", "pc")
    # the 2 x 2 condition means are three orthogonal contrasts (+-a, +-b, +-g along orthonormal units):
    # covariance eigenvalues a^2, b^2, g^2; single trials add the noise |eps|^2 = 0.09 along a fourth
    lam = np.array(truth["amplitudes_t0"]) ** 2
    pr = lam.sum() ** 2 / (lam ** 2).sum()
    pr_trials = (lam.sum() + 0.09) ** 2 / ((lam ** 2).sum() + 0.09 ** 2)
    assert float(r["dimensionality"].squeeze()) == pytest.approx(pr, rel=1e-9)
    assert float(r["dimensionality_trials"].squeeze()) == pytest.approx(pr_trials, rel=1e-9)
    np.testing.assert_allclose(r["variance_fraction"].sum("marginalization"), 1.0)
    with pytest.raises(UserError, match="every combination"):
        geometry(ds, variables=["color", "direction", "target_config"])


def test_marginalization_matches_dpca():
    """The ANOVA terms against dPCA's own marginalization (dPCA.dPCA._marginalize) on the same data."""
    dpca_mod = pytest.importorskip("dPCA.dPCA")
    rng = np.random.default_rng(4)
    X = rng.normal(size=(7, 2, 3, 5)) + rng.normal(size=(7, 1, 1, 5))  # (unit, a, b, time)
    ours = marginalize(np.moveaxis(X, 0, -1)[None], n_labels=2, has_time=True)
    theirs = dpca_mod.dPCA(labels="abt")._marginalize(X)
    keys = {"a": (0,), "b": (1,), "t": (2,), "ab": (0, 1), "at": (0, 2), "bt": (1, 2), "abt": (0, 1, 2)}
    diffs = []
    for k, s in keys.items():
        v = float((theirs[k] ** 2).sum(0).mean())
        diffs.append(abs(float(ours[s][0]) - v))
        assert float(ours[s][0]) == pytest.approx(v, rel=1e-10), k
    assert max(diffs) < 1e-12


def test_geometry_marginal_variances_match_dpca_on_the_same_trials():
    """geometry()'s grouped marginal variances against dPCA's marginalization of the same condition averages."""
    dpca_mod = pytest.importorskip("dPCA.dPCA")
    rng = np.random.default_rng(5)
    act, labels, _ = _planted(rng, reps=3)
    act = act + 0.2 * rng.normal(size=act.shape)  # unstructured too: every ANOVA term is non-zero
    r = geometry(_dataset(act, labels, epochs=(0,)))
    X = np.stack([np.stack([act[(labels[:, 0] == c) & (labels[:, 1] == d)].mean(0) for d in range(2)])
                  for c in range(2)])  # (color, direction, time, unit)
    theirs = dpca_mod.dPCA(labels="cdt")._marginalize(np.moveaxis(X, -1, 0))
    var = {k: float((v ** 2).sum(0).mean()) for k, v in theirs.items()}
    expected = {"time": var["t"], "color": var["c"] + var["ct"], "direction": var["d"] + var["dt"],
                "color:direction": var["cd"] + var["cdt"]}
    ours = r["marginal_variance"].sel(layer="hidden", epoch=0)
    diff = max(abs(float(ours.sel(marginalization=k)) - v) for k, v in expected.items())
    assert diff < 1e-12, diff
