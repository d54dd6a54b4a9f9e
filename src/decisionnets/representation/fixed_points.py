"""Fixed points of trained recurrent networks, at every recorded epoch.

Data flow: run directory (activations and per-epoch weights, ``decisionnets.weights``) ->
**fixed points** (here) -> ``fixed-points.nc`` and the figure of :func:`plot_fixed_points`.

The method is Sussillo & Barak (2013): with the input held at a constant ``u``, one step of the
network's recurrent update is a map ``h -> F(h)``; its fixed points and slow points are the
minima of the speed

    q(h) = 1/2 ||F(h) - h||^2

found by descent from many states ``h`` the network visits on the probe trials (the recorded
``hidden`` of that epoch). The core, :func:`find_fixed_points`, takes any batched step function
``F`` (so a known system can be checked without a trained model):

1. Adam on all initial states at once (each row's ``q`` is independent, so the summed loss gives
   each its own gradient), then damped Gauss-Newton (Levenberg-Marquardt) steps per point, which
   reach machine precision at isolated fixed points and stop at a minimum of ``q`` elsewhere;
2. points with ``q < q_tol`` are kept and de-duplicated (greedy, lowest ``q`` first: a point
   closer than ``dedup_tol`` (Euclidean, in state units) to a kept one is dropped);
3. at each kept point the Jacobian ``dF/dh`` (one backward pass per state dimension, batched over
   points) and its eigenvalues.

**Stability follows the network as it is run: a discrete-time map.** The leaky RNN
(:class:`decisionnets.models.rnn.LeakyRNN`) is the Euler step
``x' = (1 - alpha) x + alpha (W_rec f(x) + W_in u + b)`` of ``tau dx/dt = -x + W_rec f(x) + ...``;
its state is the pre-activation ``x``, the recorded ``hidden`` the rate ``f(x)``. A point is
*stable* when every eigenvalue of ``dF/dx`` has modulus < 1. (The continuous-time eigenvalues
are ``(lambda - 1) / alpha`` in units of ``1 / tau``; for small ``alpha`` both criteria agree.)
A point has a *slow mode* when its leading eigenvalue is real and within ``line_tol`` of 1 while
all others have modulus < 1 - its time constant ``-dt / ln|lambda|`` is longer than about
``dt / line_tol`` (1 s at dt = 20 ms and the default 0.02); an epoch shows a *line attractor*
when at least two distinct points have one.

The constant input ``u`` (option ``input``): by default the mean input of the probe set over the
trials and time steps of the *response period* (the one holding the last step: "decision" for the
checkerboard, where the fixation cue is off, the targets' colors average out over the two
configurations and the checkerboard's evidence averages to about 0): the network deciding with no
net evidence, where two choice attractors, if formed, both persist. ``"zero"`` gives no input at all; a period name
that period's mean input; an array (n_inputs,) any input (:func:`period_input` computes one from
chosen probe trials).

Each point is placed on the *decoding axes* of the task's labels (color, direction, ...): the
first linear discriminant (LDA, shrinkage) fitted at that epoch on the trials' mean recorded
activity in the response period, as a unit vector from the mean activity; the point's rates
``f(x*)`` are projected on it and classified by the same discriminant. An epoch has a *choice
attractor* for a label when its stable points fall in at least two classes of it
(``n_stable_classes >= 2``).

Supported models: ``leaky_rnn``, ``multi_area_rnn`` (state: pre-activations; all units, the
areas' layers concatenated) and ``gru`` (state: ``h``). Others raise :class:`UserError`: an MLP
or CNN has no recurrent dynamics, and an LSTM's recorded ``h`` does not give its state ``(h, c)``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import xarray as xr

from decisionnets.analyses import label_variables, trial_labels
from decisionnets.errors import UserError

__all__ = ["RECURRENT_KINDS", "FixedPoints", "find_fixed_points", "batch_jacobian", "recurrent_map",
           "period_input", "fixed_points", "plot_fixed_points"]

#: Model kinds whose fixed points :func:`fixed_points` finds.
RECURRENT_KINDS = ("leaky_rnn", "multi_area_rnn", "gru")


# ---------------------------------------------------------------------------------------- the core
@dataclasses.dataclass
class FixedPoints:
    """What :func:`find_fixed_points` found (``n`` distinct points in a ``d``-dim state space)."""

    points: np.ndarray  #: (n, d) the fixed/slow points, lowest ``q`` first
    q: np.ndarray  #: (n,) speed 1/2 ||F(h) - h||^2 at each point
    eigenvalues: np.ndarray  #: (n, d) complex eigenvalues of dF/dh, by decreasing modulus
    stable: np.ndarray  #: (n,) bool, every |eigenvalue| < 1
    slow: np.ndarray  #: (n,) bool, leading eigenvalue real and within ``line_tol`` of 1, others |.| < 1
    n_starts: int  #: initial states descended from
    n_converged: int  #: of them, how many ended with q < q_tol (before de-duplication)


def batch_jacobian(step: Callable[[torch.Tensor], torch.Tensor], h: torch.Tensor) -> torch.Tensor:
    """Jacobians of a row-wise map at every row of ``h``: ``J[b, i, j] = dF(h)[b, i] / dh[b, j]``.

    ``step`` must act on each row independently (as a network step on a batch of states), so one
    backward pass per output dimension gives that row of every point's Jacobian at once.

    Parameters
    ----------
    step : callable, Tensor (batch, d) -> Tensor (batch, d)
    h : Tensor, shape (batch, d)

    Returns
    -------
    Tensor, shape (batch, d, d)
    """
    h = h.detach().requires_grad_(True)
    with torch.enable_grad():
        out = step(h)
        d = out.shape[1]
        rows = [torch.autograd.grad(out[:, i].sum(), h, retain_graph=i < d - 1)[0] for i in range(d)]
    return torch.stack(rows, dim=1)


def _speed(step, h):
    r = step(h) - h
    return 0.5 * (r * r).sum(dim=1), r


def _dedup(points: np.ndarray, q: np.ndarray, tol: float) -> np.ndarray:
    """Indices of the points kept, lowest ``q`` first, none closer than ``tol`` to another kept."""
    kept: list[int] = []
    for i in np.argsort(q, kind="stable"):
        if not kept or np.min(np.linalg.norm(points[kept] - points[i], axis=1)) > tol:
            kept.append(int(i))
    return np.asarray(kept, dtype=np.int64)


def find_fixed_points(step: Callable[[torch.Tensor], torch.Tensor], initial_states, *, q_tol: float = 1e-7,
                      dedup_tol: float = 1e-2, line_tol: float = 0.02, n_iter: int = 500, lr: float = 0.05,
                      n_refine: int = 30) -> FixedPoints:
    """Fixed and slow points of the map ``h -> step(h)``, by minimizing ``q(h) = 1/2 ||step(h) - h||^2``.

    Parameters
    ----------
    step : callable, Tensor (batch, d) -> Tensor (batch, d)
        One update of the dynamics, acting on each row independently; called with float64
        tensors.
    initial_states : array-like, shape (n_starts, d)
        Where the descent starts (e.g. states on the network's trajectories).
    q_tol : float
        Points whose final ``q`` is at least this are dropped (not fixed or slow enough). The
        default 1e-7 keeps points that move less than ~4.5e-4 state units per step.
    dedup_tol : float
        Points closer than this (Euclidean, state units) to a kept point with lower ``q`` are
        dropped.
    line_tol : float
        A point is ``slow`` when its leading eigenvalue is within this of 1 (imaginary part below
        it too) and every other eigenvalue has modulus < 1.
    n_iter : int
        Adam iterations (learning rate ``lr`` decaying 100-fold), stopped early once every
        point has ``q < q_tol / 1000``.
    lr : float
    n_refine : int
        Levenberg-Marquardt iterations after Adam (0: none).

    Returns
    -------
    FixedPoints
    """
    h0 = torch.as_tensor(np.asarray(initial_states), dtype=torch.float64)
    if h0.ndim != 2 or h0.shape[0] == 0:
        raise UserError(f"find_fixed_points needs initial states of shape (n_starts, d) with n_starts >= 1; "
                        f"got shape {tuple(h0.shape)}")
    if not torch.isfinite(h0).all():
        raise UserError("find_fixed_points: the initial states hold NaN or infinite values")
    n, d = h0.shape
    h = h0.clone()
    # Adam (Kingma & Ba 2015), written out: torch.optim's first step imports torch._dynamo (seconds)
    m, v, b1, b2 = torch.zeros_like(h), torch.zeros_like(h), 0.9, 0.999
    decay = 0.01 ** (1.0 / max(n_iter, 1))
    for t in range(1, n_iter + 1):
        h.requires_grad_(True)
        with torch.enable_grad():
            q, _ = _speed(step, h)
            (g,) = torch.autograd.grad(q.sum(), h)
        h = h.detach()
        if float(q.detach().max()) < q_tol * 1e-3:
            break
        m.mul_(b1).add_(g, alpha=1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        step_size = lr * decay ** (t - 1) * np.sqrt(1 - b2**t) / (1 - b1**t)
        h = h - step_size * m / (v.sqrt() + 1e-12)
    h = h.detach()
    eye = torch.eye(d, dtype=torch.float64)
    lam = torch.full((n,), 1e-3, dtype=torch.float64)
    with torch.no_grad():
        q, r = _speed(step, h)
    for _ in range(n_refine):  # Levenberg-Marquardt on r(h) = F(h) - h, per point, batched
        act = torch.nonzero(q > 1e-28).flatten()  # points not yet at machine precision
        if act.numel() == 0:
            break
        ha, ra, la = h[act], r[act], lam[act]
        a = batch_jacobian(step, ha) - eye  # dr/dh
        ata = a.transpose(1, 2) @ a
        scale = torch.diagonal(ata, dim1=1, dim2=2).mean(1).clamp_min(1e-300)
        g = (a.transpose(1, 2) @ ra.unsqueeze(2)).squeeze(2)
        sol, info = torch.linalg.solve_ex(ata + (la * scale)[:, None, None] * eye, -g.unsqueeze(2))
        sol = torch.where((info == 0)[:, None], torch.nan_to_num(sol.squeeze(2), nan=0.0, posinf=0.0, neginf=0.0), 0.0)
        with torch.no_grad():
            q_new, r_new = _speed(step, ha + sol)
        better = q_new < q[act]
        h[act] = torch.where(better[:, None], ha + sol, ha)
        q[act] = torch.where(better, q_new, q[act])
        r[act] = torch.where(better[:, None], r_new, ra)
        lam[act] = torch.where(better, la * 0.3, la * 10.0).clamp(1e-12, 1e12)
    pts, qs = h.detach().numpy(), q.detach().numpy()
    ok = np.flatnonzero(np.isfinite(qs) & (qs < q_tol))
    keep = ok[_dedup(pts[ok], qs[ok], dedup_tol)] if ok.size else ok
    if keep.size:
        jac = batch_jacobian(step, torch.as_tensor(pts[keep])).detach().numpy()
        ev = np.linalg.eigvals(jac)
        ev = np.take_along_axis(ev, np.argsort(-np.abs(ev), axis=1, kind="stable"), axis=1)
    else:
        ev = np.zeros((0, d), dtype=np.complex128)
    mod = np.abs(ev)
    stable = mod.max(axis=1) < 1 if keep.size else np.zeros(0, bool)
    lead = ev[:, 0] if keep.size else np.zeros(0, complex)
    rest = mod[:, 1] if d > 1 else np.zeros(len(keep))  # the second largest modulus
    slow = (np.abs(lead.real - 1) < line_tol) & (np.abs(lead.imag) < line_tol) & (rest < 1)
    return FixedPoints(points=pts[keep], q=qs[keep], eigenvalues=ev, stable=stable, slow=slow,
                       n_starts=n, n_converged=int(ok.size))


# --------------------------------------------------------------------------- from a trained model
@dataclasses.dataclass
class RecurrentMap:
    """A trained network's recurrent update at a constant input, as :func:`find_fixed_points` needs it."""

    kind: str  #: the model kind
    step: Callable[[torch.Tensor], torch.Tensor]  #: F: state (batch, d) -> next state, float64
    to_state: Callable[[np.ndarray], np.ndarray]  #: recorded rates (n, unit) -> a state giving them
    to_rate: Callable[[np.ndarray], np.ndarray]  #: states (n, d) -> rates (n, unit)
    alpha: float | None  #: dt / tau of a leaky network (None for a GRU)


def _model_kind(model) -> str:
    """The model kind (a key of :data:`decisionnets.models.MODELS`) of ``model``, else its class name."""
    from decisionnets.models import MODELS

    here = f"{type(model).__module__}:{type(model).__name__}"
    return next((kind for kind, where in MODELS.items() if where == here), type(model).__name__)


def _not_recurrent(kind: str) -> UserError:
    why = ("an LSTM's recorded hidden h does not determine its state (h, c)" if kind == "lstm"
           else "it has no recurrent dynamics (no state carried from one time step to the next)")
    return UserError(f"fixed-points needs a recurrent model of kind {', '.join(RECURRENT_KINDS)}; this run's model "
                     f"is {kind!r}: {why}")


def _inverse(f) -> Callable[[np.ndarray], np.ndarray]:
    """A preimage of the rate function: atanh for tanh (rates clipped to +-(1 - 1e-6)),
    log(expm1) for softplus, the identity for relu (f(r) = r for r >= 0)."""
    if f is torch.tanh:
        return lambda r: np.arctanh(np.clip(r, -1 + 1e-6, 1 - 1e-6))
    if f is torch.relu:
        return lambda r: np.asarray(r, dtype=np.float64)
    return lambda r: np.log(np.expm1(np.clip(r, 1e-6, None)))  # softplus


def recurrent_map(model: torch.nn.Module, u) -> RecurrentMap:
    """The update ``h -> F(h)`` of ``model`` with the input held at ``u``, in float64.

    Parameters
    ----------
    model : LeakyRNN, MultiAreaRNN or GRU
    u : array-like, shape (n_inputs,)

    Raises
    ------
    UserError
        For any other model (naming its kind), or an input of the wrong size.
    """
    kind = _model_kind(model)
    if kind not in RECURRENT_KINDS:
        raise _not_recurrent(kind)
    u = torch.as_tensor(np.asarray(u, dtype=np.float64)).reshape(-1)
    with torch.no_grad():
        if kind in ("leaky_rnn", "multi_area_rnn"):
            w_in = model.w_in.weight if kind == "leaky_rnn" else model.input_weights()
            w_rec = model.w_rec.weight if kind == "leaky_rnn" else model.effective_weights()
            if u.numel() != w_in.shape[1]:
                raise UserError(f"fixed-points input must have {w_in.shape[1]} values (the model's inputs); "
                                f"got {u.numel()}")
            w_rec_t = w_rec.detach().double().t().contiguous()
            const = (w_in.detach().double() @ u + model.w_in.bias.detach().double())
            alpha, f = float(model.alpha), model.f

            def step(x):
                return (1 - alpha) * x + alpha * (f(x) @ w_rec_t + const)

            return RecurrentMap(kind, step, _inverse(f), lambda x: f(torch.as_tensor(x)).numpy(), alpha)
    import copy

    rnn = copy.deepcopy(model.rnn).double().eval().requires_grad_(False)
    if u.numel() != rnn.input_size:
        raise UserError(f"fixed-points input must have {rnn.input_size} values (the model's inputs); got {u.numel()}")

    def gru_step(h):
        x = u.expand(1, h.shape[0], -1)
        return rnn(x, h.unsqueeze(0))[1][0]

    ident = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    return RecurrentMap(kind, gru_step, ident, ident, None)


def period_input(run_dir, period: str | None = None, trials=None) -> np.ndarray:
    """The mean input of a run's probe set over one period's time steps (and the chosen trials).

    Parameters
    ----------
    run_dir : path
        A run directory (its config.json rebuilds the probe set, as the trainer drew it).
    period : str, optional
        Default: the response period (the one holding the last step).
    trials : bool or int array (trial,), optional
        Probe trials averaged over (e.g. ``ds.target_config.values == 0``); default all.

    Returns
    -------
    ndarray, shape (n_inputs,)
    """
    from decisionnets.build import build_task
    from decisionnets.rundir import resume_config
    from decisionnets.seeding import probe_stream

    config = resume_config(run_dir)
    probe = build_task(config).probe_set(np.random.default_rng(probe_stream(config)))
    x = np.asarray(probe.inputs, dtype=np.float64)  # (time, trial, input)
    if trials is not None:
        x = x[:, np.asarray(trials)]
    if probe.period is None:
        return x.mean(axis=(0, 1))
    per = np.asarray(probe.period).astype(str)
    period = per[-1] if period is None else period
    if period not in per:
        raise UserError(f"fixed-points input period {period!r} is not a period of this task; "
                        f"periods: {', '.join(dict.fromkeys(per))}")
    return x[per == period].mean(axis=(0, 1))


def _rates(ds: xr.Dataset) -> xr.DataArray:
    """All recurrent units' recorded rates: ``hidden``, or the ``areaK`` layers side by side."""
    if "hidden" in ds.data_vars:
        return ds["hidden"]
    areas = sorted((str(v) for v in ds.data_vars if str(v).startswith("area") and str(v)[4:].isdigit()),
                   key=lambda s: int(s[4:]))
    if not areas:
        raise UserError(f"fixed-points needs the recorded recurrent units ('hidden' or 'area1', ...); "
                        f"the dataset has {sorted(map(str, ds.data_vars))}")
    parts = []
    for a in areas:  # drop per-unit coordinates (cell_type): each area names its own
        da = ds[a]
        da = da.drop_vars([c for c in da.coords if f"{a}_unit" in da[c].dims])
        parts.append(da.rename({f"{a}_unit": "unit"}))
    return xr.concat(parts, dim="unit")


def _axes(pat: np.ndarray, labels: dict, keep: np.ndarray):
    """Per label: (unit axis, center, LDA model, class means on the axis) fitted on (trial, unit) ``pat``."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    out = {}
    center = pat[keep].mean(axis=0)
    for name, y in labels.items():
        ok = keep & (y >= 0)
        classes = np.unique(y[ok])
        if classes.size < 2:
            out[name] = None
            continue
        lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto").fit(pat[ok], y[ok])
        w = np.real(lda.scalings_[:, 0])
        w = w / np.linalg.norm(w)
        means = {c: float((pat[ok & (y == c)] - center).mean(axis=0) @ w) for c in classes}
        if means[classes[-1]] < means[classes[0]]:  # the axis points toward the higher class
            w = -w
            means = {c: -m for c, m in means.items()}
        out[name] = (w, center, lda, means)
    return out


def fixed_points(ds: xr.Dataset, *, run_dir=None, seed: int = 0, progress: bool = False, epochs=None,
                 input="auto", sample_period: str | None = None, n_starts: int = 256, q_tol: float = 1e-7,
                 dedup_tol: float = 1e-2, line_tol: float = 0.02, n_iter: int = 500, n_refine: int = 30,
                 labels=None, axis_period: str | None = None) -> xr.Dataset:
    """Fixed points of a run's recurrent network at each recorded epoch; see the module doc.

    Parameters
    ----------
    ds : xr.Dataset
        The run's activation dataset (recorded ``hidden`` (epoch, trial, time, unit), or the
        areas of a multi-area network).
    run_dir : path
        The run directory: its config and per-epoch weights (:func:`decisionnets.weights.load_model`).
    seed : int
        Seeds the choice of initial states (one child of ``SeedSequence(seed)`` per epoch).
    progress : bool
        A tqdm bar over epochs.
    epochs : list of int, optional
        Default: every recorded epoch of ``ds``.
    input : "auto", "zero", a period name or array (n_inputs,)
        The constant input (default: the mean probe input of the response period).
    sample_period : str, optional
        Initial states are drawn from the recorded time steps of this period; default every step.
    n_starts : int
        Initial states per epoch (drawn without replacement among trials x time steps).
    q_tol, dedup_tol, line_tol, n_iter, n_refine
        As :func:`find_fixed_points`.
    labels : list of str, optional
        Labels whose decoding axes the points are projected on; default the task's declared
        labels (:func:`decisionnets.analyses.label_variables` without ``choice``).
    axis_period : str, optional
        Period whose mean activity the axes are fitted on; default the response period.

    Returns
    -------
    xr.Dataset
        Per epoch, ``fixed_point`` padded with NaN to the largest count:
        ``state`` (epoch, fixed_point, unit): the point in the model's state (pre-activations of
        a leaky network), ``rate`` (epoch, fixed_point, unit): its activity as recorded,
        ``q`` (epoch, fixed_point), ``eigenvalue_real`` / ``eigenvalue_imag`` (epoch,
        fixed_point, eigen) by decreasing modulus, ``stable`` / ``slow`` (epoch, fixed_point,
        int8, -1 for padding), ``projection`` (epoch, fixed_point, variable): position on each
        label's decoding axis, ``point_class`` (epoch, fixed_point, variable): the class the
        discriminant gives the point, ``class_projection`` (epoch, variable, label_class): the
        class means of the trials on the axis; per epoch ``n_points``, ``n_stable``,
        ``n_unstable``, ``n_slow``, ``n_starts``, ``n_converged``, ``line_attractor`` (int8),
        ``n_stable_classes`` (epoch, variable); ``input`` (input_channel): the constant input.
    """
    from tqdm.auto import tqdm

    from decisionnets.weights import load_model

    if run_dir is None:
        raise UserError("fixed-points needs the run directory (the weights of each recorded epoch); give run_dir")
    run_dir = Path(run_dir)
    kind = str(ds.attrs.get("model", ""))
    if kind and kind not in RECURRENT_KINDS:
        raise _not_recurrent(kind)
    if "epoch" not in ds.dims or "time" not in ds.dims:
        raise UserError("fixed-points needs activity recorded per epoch and time step (dims epoch, trial, time, "
                        f"unit); the dataset has dims {dict(ds.sizes)}")
    act = _rates(ds)
    epochs = [int(e) for e in ds["epoch"].values] if epochs is None else [int(e) for e in epochs]
    if not epochs:
        raise UserError("fixed-points needs at least one epoch; got an empty list")
    missing = [e for e in epochs if e not in set(int(v) for v in ds["epoch"].values)]
    if missing:
        raise UserError(f"fixed-points epochs {missing} are not recorded; "
                        f"recorded: {[int(e) for e in ds['epoch'].values]}")
    periods = np.asarray(ds["period"].values).astype(str) if "period" in ds.coords else None
    response = periods[-1] if periods is not None else None

    def steps_of(period, what):
        if period is None or periods is None:
            return np.arange(ds.sizes["time"])
        idx = np.flatnonzero(periods == period)
        if idx.size == 0:
            raise UserError(f"fixed-points {what} {period!r} is not a period of this dataset; "
                            f"periods: {', '.join(dict.fromkeys(periods))}")
        return idx

    sample_steps = steps_of(sample_period, "sample_period")
    axis_steps = steps_of(axis_period or response, "axis_period")

    if isinstance(input, str):
        if input == "zero":
            u = None  # sized from the model below
        else:
            u = period_input(run_dir, None if input == "auto" else input)
    else:
        u = np.asarray(input, dtype=np.float64).reshape(-1)

    if labels is None:
        labels = [n for n in label_variables(ds) if n != "choice" and "epoch" not in ds[n].dims]
    labels = list(labels)
    labs = {n: np.asarray(v.values, dtype=float) for n, v in trial_labels(ds, labels, exclude_catch=True).items()}
    for n, v in labs.items():
        if v.ndim != 1:
            raise UserError(f"fixed-points label {n!r} changes with the epoch; give trial labels")
    valid = ~ds["catch"].values.astype(bool) if "catch" in ds.variables else np.ones(ds.sizes["trial"], bool)
    classes = sorted({float(c) for v in labs.values() for c in np.unique(v[v >= 0])})

    children = np.random.SeedSequence(seed).spawn(len(epochs))
    results = []
    bar = tqdm(epochs, desc="fixed points", disable=not progress, dynamic_ncols=True)
    for e, child in zip(bar, children):
        model = load_model(run_dir, e)
        mkind = _model_kind(model)
        if mkind not in RECURRENT_KINDS:
            raise _not_recurrent(mkind)
        if u is None:
            n_in = model.w_in.in_features if hasattr(model, "w_in") else model.rnn.input_size
            u = np.zeros(n_in)
        fmap = recurrent_map(model, u)
        a = np.asarray(act.sel(epoch=e).transpose("trial", "time", "unit").values, dtype=np.float64)
        cand = a[valid][:, sample_steps].reshape(-1, a.shape[-1])
        rng = np.random.default_rng(child)
        pick = rng.choice(len(cand), size=min(n_starts, len(cand)), replace=False)
        fp = find_fixed_points(fmap.step, fmap.to_state(cand[pick]), q_tol=q_tol, dedup_tol=dedup_tol,
                               line_tol=line_tol, n_iter=n_iter, n_refine=n_refine)
        rates = fmap.to_rate(fp.points) if len(fp.points) else np.zeros((0, a.shape[-1]))
        pat = a[:, axis_steps].mean(axis=1)
        axes = _axes(pat, labs, valid)
        proj = np.full((len(fp.points), len(labels)), np.nan)
        pcls = np.full((len(fp.points), len(labels)), np.nan)
        cproj = np.full((len(labels), len(classes)), np.nan)
        for j, name in enumerate(labels):
            if axes[name] is None:
                continue
            w, center, lda, means = axes[name]
            if len(rates):
                proj[:, j] = (rates - center) @ w
                pcls[:, j] = lda.predict(rates)
            for c, m in means.items():
                cproj[j, classes.index(float(c))] = m
        results.append((fp, rates, proj, pcls, cproj))
    return _assemble(results, epochs, labels, classes, u, fmap, act, dict(
        q_tol=q_tol, dedup_tol=dedup_tol, line_tol=line_tol, n_iter=n_iter, n_refine=n_refine, seed=seed,
        input_kind=input if isinstance(input, str) else "array", sample_period=sample_period or "all",
        axis_period=str(axis_period or response or "all")))


def _assemble(results, epochs, labels, classes, u, fmap, act, attrs) -> xr.Dataset:
    n_max = max([len(r[0].points) for r in results] + [0])
    d = act.sizes["unit"]
    E = len(epochs)
    state = np.full((E, n_max, d), np.nan)
    rate = np.full((E, n_max, d), np.nan)
    q = np.full((E, n_max), np.nan)
    ev_re = np.full((E, n_max, d), np.nan)
    ev_im = np.full((E, n_max, d), np.nan)
    stable = np.full((E, n_max), -1, np.int8)
    slow = np.full((E, n_max), -1, np.int8)
    proj = np.full((E, n_max, len(labels)), np.nan)
    pcls = np.full((E, n_max, len(labels)), np.nan)
    cproj = np.full((E, len(labels), len(classes)), np.nan)
    n_stable_classes = np.zeros((E, len(labels)), np.int64)
    counts = {k: np.zeros(E, np.int64) for k in ("n_points", "n_stable", "n_unstable", "n_slow", "n_starts",
                                                   "n_converged")}
    for i, (fp, rt, pr, pc, cp) in enumerate(results):
        k = len(fp.points)
        state[i, :k], rate[i, :k], q[i, :k] = fp.points, rt, fp.q
        ev_re[i, :k], ev_im[i, :k] = fp.eigenvalues.real, fp.eigenvalues.imag
        stable[i, :k], slow[i, :k] = fp.stable, fp.slow
        proj[i, :k], pcls[i, :k], cproj[i] = pr, pc, cp
        for j in range(len(labels)):
            n_stable_classes[i, j] = len(np.unique(pc[fp.stable, j][np.isfinite(pc[fp.stable, j])]))
        counts["n_points"][i], counts["n_stable"][i] = k, int(fp.stable.sum())
        counts["n_unstable"][i], counts["n_slow"][i] = int(k - fp.stable.sum()), int(fp.slow.sum())
        counts["n_starts"][i], counts["n_converged"][i] = fp.n_starts, fp.n_converged
    ep, fpd = ("epoch",), ("epoch", "fixed_point")
    data = {
        "state": (fpd + ("unit",), state), "rate": (fpd + ("unit",), rate), "q": (fpd, q),
        "eigenvalue_real": (fpd + ("eigen",), ev_re), "eigenvalue_imag": (fpd + ("eigen",), ev_im),
        "stable": (fpd, stable), "slow": (fpd, slow),
        "projection": (fpd + ("variable",), proj), "point_class": (fpd + ("variable",), pcls),
        "class_projection": (("epoch", "variable", "label_class"), cproj),
        "n_stable_classes": (("epoch", "variable"), n_stable_classes),
        "line_attractor": (ep, (counts["n_slow"] >= 2).astype(np.int8)),
        "input": (("input_channel",), np.asarray(u, dtype=np.float64)),
        **{k: (ep, v) for k, v in counts.items()},
    }
    coords = {"epoch": epochs, "fixed_point": np.arange(n_max), "eigen": np.arange(d), "variable": labels,
              "label_class": classes}
    out = xr.Dataset(data, coords=coords, attrs={
        **{k: v for k, v in attrs.items()}, "model": fmap.kind,
        "alpha": float(fmap.alpha) if fmap.alpha is not None else float("nan"),
        "stability": "discrete-time map: stable when every |eigenvalue| of dF/dh < 1",
        "description": "fixed/slow points of h -> F(h) at a constant input (Sussillo & Barak 2013); "
                       "q = 1/2 ||F(h) - h||^2; padding: NaN, -1 in stable/slow",
    })
    out["stable"].attrs["description"] = "1 stable, 0 unstable, -1 padding"
    out["projection"].attrs["description"] = "rate at the point minus the mean activity, on the unit LDA axis"
    return out


# ---------------------------------------------------------------------------------------- figure
def plot_fixed_points(result: xr.Dataset, ax=None, *, epoch=None, x: str | None = None, y: str | None = None):
    """Fixed points on two decoding axes (default the first two labels, e.g. color and direction).

    Stable points are filled circles, unstable ones open, points with a slow mode squares; the
    crosses are the class means of the trials on each axis (the two classes of ``x`` at the
    mean of ``y``, and vice versa).

    Parameters
    ----------
    result : xr.Dataset
        From :func:`fixed_points`.
    ax : Axes or sequence of Axes, optional
        One per epoch drawn; new ones when None.
    epoch : int or list of int, optional
        Default: the first and the last recorded epochs (two panels).
    x, y : str, optional
        Labels on the horizontal and vertical axes.

    Returns
    -------
    Axes for one epoch, ndarray of Axes for several.
    """
    import matplotlib.pyplot as plt

    eps = [int(v) for v in result["epoch"].values]
    if epoch is None:
        chosen = sorted({eps[0], eps[-1]})
    else:
        chosen = [int(e) for e in np.atleast_1d(epoch)]
    bad = [e for e in chosen if e not in eps]
    if bad:
        raise UserError(f"plot_fixed_points: epochs {bad} are not in the result; it has {eps}")
    variables = [str(v) for v in result["variable"].values]
    if len(variables) < 1:
        raise UserError("plot_fixed_points needs at least one label axis in the result")
    x = x or variables[0]
    y = y or (variables[1] if len(variables) > 1 else variables[0])
    if ax is None:
        _, ax = plt.subplots(1, len(chosen), figsize=(4.4 * len(chosen), 4.0), squeeze=False, layout="constrained")
        ax = ax[0]
    axes = np.atleast_1d(np.asarray(ax, dtype=object))
    if len(axes) != len(chosen):
        raise UserError(f"plot_fixed_points draws {len(chosen)} epochs and needs as many Axes; got {len(axes)}")
    for a, e in zip(axes, chosen):
        r = result.sel(epoch=e)
        k = int(r["n_points"])
        px, py = r["projection"].sel(variable=x).values[:k], r["projection"].sel(variable=y).values[:k]
        st, sl = r["stable"].values[:k] == 1, r["slow"].values[:k] == 1
        for sel, style, name in ((st & ~sl, dict(c="k"), "stable"),
                                 (~st & ~sl, dict(facecolors="none", edgecolors="k"), "unstable"),
                                 (sl, dict(marker="s", c="tab:orange"), "slow mode")):
            if sel.any():
                a.scatter(px[sel], py[sel], s=40, label=name, **style)
        cx = r["class_projection"].sel(variable=x).values
        cy = r["class_projection"].sel(variable=y).values
        for c, v in zip(result["label_class"].values, cx):
            if np.isfinite(v):
                a.scatter([v], [0.0], marker="x", c="tab:blue", s=60)
                a.annotate(f"{x}={c:g}", (v, 0.0), fontsize=7, color="tab:blue")
        if y != x:
            for c, v in zip(result["label_class"].values, cy):
                if np.isfinite(v):
                    a.scatter([0.0], [v], marker="x", c="tab:red", s=60)
                    a.annotate(f"{y}={c:g}", (0.0, v), fontsize=7, color="tab:red")
        a.set_xlabel(f"{x} axis")
        a.set_ylabel(f"{y} axis")
        a.set_title(f"epoch {e}: {int(r['n_stable'])} stable, {int(r['n_unstable'])} unstable")
        if k:
            a.legend(fontsize=7, loc="best")
    return axes if len(axes) > 1 else axes[0]
