"""Fixed points: systems whose fixed points are known (linear, bistable tanh, a line attractor),
the map built from a model, and a tiny trained run end to end."""

import numpy as np
import pytest
import torch
import xarray as xr
from scipy.optimize import brentq

from decisionnets.config import load_config
from decisionnets.errors import UserError
from decisionnets.io import open_activations
from decisionnets.models.mlp import MLP
from decisionnets.models.rnn import GRU, LSTM, LeakyRNN
from decisionnets.representation.fixed_points import (batch_jacobian, find_fixed_points, fixed_points,
                                                      plot_fixed_points, recurrent_map)
from decisionnets.training import train
from decisionnets.weights import load_model


def _rng(k=0):
    return np.random.default_rng(np.random.SeedSequence([24, k]))


def _linear(radius, d=5, k=0):
    rng = _rng(k)
    a = rng.normal(size=(d, d))
    a = radius * a / np.abs(np.linalg.eigvals(a)).max()
    return a, rng.normal(size=d)


@pytest.mark.parametrize("radius", [0.8, 1.3])
def test_linear_system_unique_fixed_point_and_its_eigenvalues(radius):
    a, b = _linear(radius)
    at, bt = torch.tensor(a), torch.tensor(b)
    fp = find_fixed_points(lambda h: h @ at.T + bt, _rng(1).normal(size=(30, 5)) * 3)
    assert len(fp.points) == 1 and fp.n_converged == 30  # every start reaches the one point
    np.testing.assert_allclose(fp.points[0], np.linalg.solve(np.eye(5) - a, b), atol=1e-10)
    expect = np.linalg.eigvals(a)
    np.testing.assert_allclose(np.sort_complex(fp.eigenvalues[0]), np.sort_complex(expect), atol=1e-10)
    assert np.all(np.diff(np.abs(fp.eigenvalues[0])) <= 1e-12)  # by decreasing modulus
    assert bool(fp.stable[0]) is (radius < 1) and not fp.slow[0]


def test_bistable_tanh_network_two_stable_points_and_a_saddle():
    # h' = tanh(W h), W = diag(2, 0.5): stable at (+-h*, 0) with h* = tanh(2 h*), a saddle at 0
    # (eigenvalues 2 and 0.5); at +-h*: 2 (1 - h*^2) and 0.5
    w = torch.tensor([[2.0, 0.0], [0.0, 0.5]], dtype=torch.float64)
    hstar = brentq(lambda h: np.tanh(2 * h) - h, 0.5, 1.0)
    grid = np.stack(np.meshgrid(np.linspace(-1.5, 1.5, 7), np.linspace(-1, 1, 3)), -1).reshape(-1, 2)
    fp = find_fixed_points(lambda h: torch.tanh(h @ w.T), grid, dedup_tol=1e-3)
    order = np.argsort(fp.points[:, 0])
    pts, ev, stable = fp.points[order], fp.eigenvalues[order], fp.stable[order]
    np.testing.assert_allclose(pts, [[-hstar, 0], [0, 0], [hstar, 0]], atol=1e-10)
    assert stable.tolist() == [True, False, True]
    np.testing.assert_allclose(ev[1], [2.0, 0.5], atol=1e-10)  # the saddle: one unstable, one stable direction
    np.testing.assert_allclose(ev[0], [0.5, 2 * (1 - hstar**2)][::-1] if 2 * (1 - hstar**2) > 0.5
                               else [0.5, 2 * (1 - hstar**2)], atol=1e-10)


def test_line_attractor_gives_several_slow_points():
    # h' = A h, A = diag(1, 0.5): every point of the first axis is fixed (eigenvalues 1, 0.5)
    a = torch.tensor([[1.0, 0.0], [0.0, 0.5]], dtype=torch.float64)
    starts = np.stack([np.linspace(-1, 1, 9), _rng(2).normal(size=9)], 1)
    fp = find_fixed_points(lambda h: h @ a.T, starts)
    assert len(fp.points) == 9 and fp.slow.all() and not fp.stable.any()  # |1| is not < 1
    np.testing.assert_allclose(fp.points[:, 1], 0.0, atol=1e-10)
    np.testing.assert_allclose(np.sort(fp.points[:, 0]), np.linspace(-1, 1, 9), atol=1e-10)


def test_slow_points_above_tolerance_and_duplicates_are_dropped():
    # h' = h + 0.01: no fixed point, q = 5e-5 everywhere; h' = 0.5 h: every start reaches 0 (one point)
    fp = find_fixed_points(lambda h: h + 0.01, _rng(3).normal(size=(5, 3)), n_iter=50, n_refine=5)
    assert len(fp.points) == 0 and fp.n_converged == 0 and fp.eigenvalues.shape == (0, 3)
    fp = find_fixed_points(lambda h: 0.5 * h, _rng(3).normal(size=(5, 3)))
    assert len(fp.points) == 1 and fp.n_converged == 5
    with pytest.raises(UserError, match="initial states of shape"):
        find_fixed_points(lambda h: h, np.zeros(3))


def test_batch_jacobian_matches_the_closed_form_per_point():
    w = torch.tensor(_rng(4).normal(size=(4, 4)))
    step = lambda h: torch.tanh(h @ w.T)  # noqa: E731
    h = torch.tensor(_rng(5).normal(size=(3, 4)))
    jac = batch_jacobian(step, h)
    for i in range(3):  # d tanh(W h) / dh = diag(1 - tanh(W h)^2) W
        ref = (1 - torch.tanh(w @ h[i]) ** 2)[:, None] * w
        np.testing.assert_allclose(jac[i].numpy(), ref.numpy(), atol=1e-12)


@pytest.mark.parametrize("cls", [LeakyRNN, GRU])
def test_recurrent_map_is_the_models_own_step(cls):
    torch.manual_seed(0)
    model = cls(3, 2, hidden_size=6).eval()
    u = np.array([0.3, -1.0, 0.5])
    fmap = recurrent_map(model, u)
    h = torch.randn(4, 6)
    state = h if cls is LeakyRNN else h[None]
    _, nxt, act = model.step(torch.tensor(u, dtype=torch.float32).expand(4, 3), state)
    nxt = nxt if cls is LeakyRNN else nxt[0]
    np.testing.assert_allclose(fmap.step(h.double()).numpy(), nxt.detach().numpy(), atol=1e-5)
    r = np.tanh(h.numpy()) if cls is LeakyRNN else h.numpy()
    np.testing.assert_allclose(fmap.to_rate(fmap.to_state(r)), r, atol=1e-6)


def test_non_recurrent_models_are_refused_by_name():
    with pytest.raises(UserError, match="'mlp'"):
        recurrent_map(MLP(3, 2, hidden_sizes=[4]), np.zeros(3))
    with pytest.raises(UserError, match="'lstm'.*does not determine"):
        recurrent_map(LSTM(3, 2, hidden_size=4), np.zeros(3))
    ds = xr.Dataset(attrs={"model": "resnet18"})
    with pytest.raises(UserError, match="'resnet18'"):
        fixed_points(ds, run_dir=".")
    with pytest.raises(UserError, match="needs the run directory"):
        fixed_points(ds)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from conftest import tiny_overrides  # the shared tiny config (tests/conftest.py)

    run = tmp_path_factory.mktemp("fp") / "run"
    cfg = load_config("color-direction", overrides=[*tiny_overrides("color-direction"), "model.hidden_size=6"],
                      seed=3)
    train(cfg, run, progress=False)
    return run


def test_weights_of_every_recorded_epoch_reproduce_the_recorded_activity(tiny_run):
    from decisionnets.build import build_task
    from decisionnets.rundir import resume_config
    from decisionnets.seeding import probe_stream

    ds = open_activations(tiny_run)
    assert sorted(p.name for p in (tiny_run / "weights").glob("*.pt")) == ["epoch_0000.pt", "epoch_0001.pt",
                                                                           "epoch_0002.pt"]
    cfg = resume_config(tiny_run)
    probe = build_task(cfg).probe_set(np.random.default_rng(probe_stream(cfg)))
    ti = np.arange(probe.n_time - 1, -1, -cfg.record.time_stride)[::-1]
    for e in (0, 2):
        model = load_model(tiny_run, e)
        assert not model.training
        with torch.no_grad():
            _, act = model(torch.from_numpy(probe.inputs))
        np.testing.assert_allclose(act["hidden"].numpy()[ti].transpose(1, 0, 2), ds.hidden.sel(epoch=e).values,
                                   atol=1e-6)
    from decisionnets.errors import DataFileError

    with pytest.raises(DataFileError, match=r"no weights for epoch 7.*\[0, 1, 2\]"):
        load_model(tiny_run, 7)


def test_fixed_points_of_a_tiny_trained_run(tiny_run):
    import matplotlib

    matplotlib.use("Agg")
    ds = open_activations(tiny_run)
    res = fixed_points(ds, run_dir=tiny_run, n_starts=24, n_iter=100, n_refine=15)
    assert res["state"].dims == ("epoch", "fixed_point", "unit")
    assert res["eigenvalue_real"].dims == ("epoch", "fixed_point", "eigen")
    assert res["projection"].dims == ("epoch", "fixed_point", "variable")
    assert res["variable"].values.tolist() == ["color", "direction", "target_config"]
    assert res["epoch"].values.tolist() == [0, 1, 2] and (res["n_points"] >= 1).all()
    for e in (0, 2):
        r = res.sel(epoch=e)
        k = int(r["n_points"])
        assert (r["q"].values[:k] < 1e-7).all() and np.isnan(r["q"].values[k:]).all()
        np.testing.assert_allclose(r["rate"].values[:k], np.tanh(r["state"].values[:k]), atol=1e-12)
        mod = np.hypot(r["eigenvalue_real"].values[:k], r["eigenvalue_imag"].values[:k])
        np.testing.assert_array_equal(r["stable"].values[:k], (mod.max(1) < 1).astype(np.int8))
        # a fixed point of the network itself: its own step leaves it in place (float32)
        model = load_model(tiny_run, e)
        x = torch.tensor(r["state"].values[:k], dtype=torch.float32)
        u = torch.tensor(res["input"].values, dtype=torch.float32).expand(k, -1)
        _, nxt, _ = model.step(u, x)
        np.testing.assert_allclose(nxt.detach().numpy(), x.numpy(), atol=1e-4)
    assert int(res["n_stable"].sum() + res["n_unstable"].sum()) == int(res["n_points"].sum())
    again = fixed_points(ds, run_dir=tiny_run, n_starts=24, n_iter=100, n_refine=15, epochs=[2])
    xr.testing.assert_allclose(again["state"].sel(epoch=2), res["state"].sel(epoch=2).isel(
        fixed_point=slice(0, again.sizes["fixed_point"])))
    axes = plot_fixed_points(res)
    assert len(axes) == 2 and axes[0].get_title().startswith("epoch 0")
    import matplotlib.pyplot as plt

    plt.close("all")


def test_recurrent_map_of_a_multi_area_network_follows_its_forward_pass():
    from decisionnets.models.multi_area import MultiAreaRNN

    torch.manual_seed(1)
    model = MultiAreaRNN(3, 2, n_areas=2, area_size=5, noise=0.0).eval()
    u = np.array([0.5, -0.2, 1.0])
    fmap = recurrent_map(model, u)
    x = torch.zeros(1, 10, dtype=torch.float64)
    rates = []
    for _ in range(4):
        x = fmap.step(x)
        rates.append(fmap.to_rate(x)[0])
    with torch.no_grad():
        _, act = model(torch.tensor(u, dtype=torch.float32).expand(4, 1, 3), layers=["hidden"])
    np.testing.assert_allclose(np.stack(rates), act["hidden"][:, 0].numpy(), atol=1e-5)
