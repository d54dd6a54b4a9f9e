"""Representational similarity: linear CKA's closed-form properties, RDMs on planted condition means,
the cross-check against rsatoolbox."""

import numpy as np
import pytest
import xarray as xr
from scipy.stats import ortho_group

from decisionnets.errors import UserError
from decisionnets.representation.similarity import linear_cka, plot_similarity, rdm, similarity


def _rng(k=0):
    return np.random.default_rng(np.random.SeedSequence([2024, k]))


# ------------------------------------------------------------------------------------------- CKA
def test_cka_of_a_representation_with_itself_is_one():
    x = _rng().normal(size=(50, 7))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)


def test_cka_is_invariant_to_orthogonal_transforms_and_isotropic_scaling():
    rng = _rng(1)
    x, y = rng.normal(size=(60, 6)), rng.normal(size=(60, 4))
    q = ortho_group.rvs(6, random_state=3)
    assert linear_cka(x, 3.7 * x @ q + 5.0) == pytest.approx(1.0, abs=1e-12)  # offset: removed by centering
    assert linear_cka(0.2 * x @ q, y) == pytest.approx(linear_cka(x, y), abs=1e-12)
    # not invariant to an anisotropic scaling (CKA is not CCA)
    assert abs(linear_cka(x * np.array([10, 1, 1, 1, 1, 1]), y) - linear_cka(x, y)) > 1e-3


@pytest.mark.parametrize("s", [0.5, 1.0, 2.0])
def test_cka_planted_value(s):
    # X = a (one unit), Y = [a, s b] with a, b centered, orthonormal: ||Y'X||^2 = 1, ||X'X|| = 1,
    # ||Y'Y|| = sqrt(1 + s^4), so CKA = 1 / sqrt(1 + s^4)
    n = 40
    a = np.tile([1.0, -1.0], n // 2)
    b = np.repeat([1.0, -1.0], n // 2) * np.tile([1.0, 1.0, -1.0, -1.0], n // 4)
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    assert abs(a @ b) < 1e-12
    assert linear_cka(a[:, None], np.stack([a, s * b], 1)) == pytest.approx(1 / np.sqrt(1 + s**4), abs=1e-12)
    assert linear_cka(a[:, None], b[:, None]) == pytest.approx(0.0, abs=1e-12)  # orthogonal: 0


def test_cka_gram_form_for_wide_layers_equals_feature_form():
    rng = _rng(2)
    x, y = rng.normal(size=(12, 40)), rng.normal(size=(12, 3))  # x wider than its trials: Gram path
    xc, yc = x - x.mean(0), y - y.mean(0)
    expect = np.sum((yc.T @ xc) ** 2) / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    assert linear_cka(x, y) == pytest.approx(expect, rel=1e-10)
    assert linear_cka(y, x) == pytest.approx(expect, rel=1e-10)
    assert linear_cka(x, x + 0) == pytest.approx(1.0, abs=1e-12)


# ------------------------------------------------------------------------------------------- RDMs
MEANS = np.eye(4)  # four conditions, one-hot patterns over 4 units
# 1 - Pearson r of two one-hot patterns in 4 dims: r = -1/3; Euclidean distance sqrt(2)


def _dataset(noise=0.0, epochs=(0, 1), period=True, seed=0):
    """Planted condition means MEANS in the decision period; 2 labels x 2 values = 4 conditions.

    Trials of a condition are the mean +- the same deviation (pairs), so the condition mean is exact.
    Epoch 1's activity is epoch 0's rotated (orthogonal) and scaled: CKA 1 between them.
    """
    rng = _rng(seed)
    color = np.repeat([0, 0, 1, 1], 6)
    direction = np.repeat([0, 1, 0, 1], 6)
    cond = 2 * color + direction
    dev = rng.normal(size=(12, 4)) * noise
    dev = np.concatenate([dev, -dev])[np.argsort(np.tile(np.arange(12), 2), kind="stable")]  # +d, -d pairs
    dec = MEANS[cond] + dev  # (trial, unit)
    T = 5
    act = np.repeat(dec[:, None], T, axis=1)
    act[:, :3] = rng.normal(size=(24, 3, 4)) * 5  # other periods: unrelated
    q = ortho_group.rvs(4, random_state=1)
    acts = np.stack([act if e == 0 else 2.0 * act @ q for e in epochs])
    ds = xr.Dataset({"hidden": (("epoch", "trial", "time", "unit"), acts)},
                    coords={"epoch": list(epochs), "color": ("trial", color), "direction": ("trial", direction),
                            "period": ("time", ["stimulus"] * 3 + ["decision"] * 2)},
                    attrs={"decode_labels": '["color", "direction"]'})
    return ds if period else ds.drop_vars("period")


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_rdms_on_planted_condition_means(noise):
    res = similarity(_dataset(noise))
    assert res.attrs["period"] == "decision" and res["rdm"].dims == ("layer", "epoch", "condition", "condition2")
    assert res["color"].values.tolist() == [0, 0, 1, 1] and res["direction"].values.tolist() == [0, 1, 0, 1]
    expect = np.where(np.eye(4, dtype=bool), 0.0, 4.0 / 3.0)
    np.testing.assert_allclose(res["rdm"].sel(layer="hidden", epoch=0).values, expect, atol=1e-12)
    # correlation distance is not rotation-invariant across units in general, but the Euclidean one is
    euc = similarity(_dataset(noise), metric="euclidean")["rdm"].sel(layer="hidden")
    np.testing.assert_allclose(euc.sel(epoch=0).values, np.where(np.eye(4, dtype=bool), 0, np.sqrt(2)), atol=1e-12)
    np.testing.assert_allclose(euc.sel(epoch=1).values, 2 * euc.sel(epoch=0).values, atol=1e-12)
    np.testing.assert_array_equal(res["condition_trials"].values, [6, 6, 6, 6])


def test_cka_between_epochs_and_layers_planted():
    ds = _dataset(0.3, epochs=(0, 1, 2))
    ds["hidden"][dict(epoch=2)] = _rng(9).normal(size=ds["hidden"].shape[1:])  # unrelated
    ds["other"] = ds["hidden"].rename(unit="other_unit") * 3.0  # a second layer: a scaled copy
    res = similarity(ds)
    c = res["cka_epochs"].sel(layer="hidden").values
    assert c[0, 1] == pytest.approx(1.0, abs=1e-12) and c[1, 0] == pytest.approx(1.0, abs=1e-12)
    assert c[0, 2] < 0.9 and np.allclose(np.diag(c), 1.0)
    np.testing.assert_allclose(res["cka_layers"].values, 1.0, atol=1e-12)
    assert res["cka_layers"].dims == ("epoch", "layer", "layer2")


def test_rdm_against_rsatoolbox():
    """Both metrics agree with rsatoolbox's calc_rdm; its 'euclidean' is squared and divided by the units."""
    rsd = pytest.importorskip("rsatoolbox.data")
    from rsatoolbox.rdm import calc_rdm

    rng = _rng(4)
    n, p = 90, 11
    a, b = rng.integers(0, 3, n), rng.integers(0, 2, n)
    x = rng.normal(size=(n, p)) + (a[:, None] == np.arange(p) % 3) + 0.5 * b[:, None]
    ds = xr.Dataset({"hidden": (("trial", "unit"), x)}, coords={"a": ("trial", a), "b": ("trial", b)})
    worst = 0.0
    for metric in ("correlation", "euclidean"):
        ours = similarity(ds, labels=["a", "b"], metric=metric)
        assert "epoch" not in ours.dims
        mine = ours["rdm"].sel(layer="hidden").values
        data = rsd.Dataset(x, obs_descriptors={"conds": [f"{i}{j}" for i, j in zip(a, b)]})
        ref = calc_rdm(data, method=metric, descriptor="conds")
        names = [f"{int(i)}{int(j)}" for i, j in zip(ours["a"].values, ours["b"].values)]
        order = [list(ref.pattern_descriptors["conds"]).index(c) for c in names]
        theirs = ref.get_matrices()[0][np.ix_(order, order)]
        if metric == "euclidean":
            mine = mine**2 / p
        worst = max(worst, float(np.max(np.abs(mine - theirs))))
        np.testing.assert_allclose(mine, theirs, atol=1e-10)
    assert worst < 1e-10


def test_without_epoch_or_time_and_catch_trials_left_out():
    ds = _dataset(0.3, epochs=(0,)).isel(epoch=0).mean("time")
    catch = np.zeros(24, np.int8)
    catch[0] = 1
    ds = ds.assign_coords(catch=("trial", catch))
    ds["hidden"][0] = 100.0  # a catch trial: left out
    res = similarity(ds)
    assert res["rdm"].dims == ("layer", "condition", "condition2") and res["cka_layers"].dims == ("layer", "layer2")
    assert res["condition_trials"].values.tolist() == [5, 6, 6, 6] and res.attrs["n_trials"] == 23
    assert "cka_epochs" not in res


def test_rdm_function_and_errors():
    m = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [3.0, 2.0, 1.0]])
    np.testing.assert_allclose(rdm(m), [[0, 0, 2], [0, 0, 2], [2, 2, 0]], atol=1e-12)
    with pytest.raises(UserError, match="metric must be one of"):
        similarity(_dataset(), metric="cosine")
    with pytest.raises(UserError, match="'response' is not a period"):
        similarity(_dataset(), period="response")
    ds = _dataset().assign_coords(choice=(("epoch", "trial"), np.zeros((2, 24), int)))
    with pytest.raises(UserError, match="changes with the epoch"):
        similarity(ds, labels=["choice"])
    assert "rdm" not in similarity(_dataset(), labels=[])  # no labels: CKA only


def test_plot_similarity_returns_its_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = similarity(_dataset(0.3))
    axes = plot_similarity(res)
    assert len(axes) == 2 and "CKA" in axes[0].get_title() and "RDM" in axes[1].get_title()
    _, ax = plt.subplots()
    assert plot_similarity(res, ax, kind="rdm", epoch=0) is ax
    plt.close("all")
