"""Training: one readable loop for every trainer; phases, recording, checkpoints, resume.

Data flow: task -> batches -> model -> **training** (an objective's loss) -> recording (the probe
set, every recorded epoch) -> netCDF.

Read :func:`fit` top to bottom: it is the one training loop. Every trainer runs through it:
supervised runs (:func:`train`), ensembles of supervised runs (:func:`decisionnets.ensemble.train_ensemble`)
and agents trained by reward (:func:`decisionnets.agents.a2c.train_agent`). What differs between
them is the *objective* (:mod:`decisionnets.objectives`): its batches, the loss and metrics of a
batch, and what it writes at the end of an epoch. The loop owns what they share: the epochs and
their progress bar, the phase settings put into the optimizer
(:func:`decisionnets.optimization.apply_settings`, the one place), the divergence rule, the backward pass, gradient clipping and the optimizer step.

The run's single seed is split into independent streams by :mod:`decisionnets.seeding`: training
data, probe set, model initialization, batch order, recurrent noise. Nothing touches the global
numpy/random state; torch's global generator is used only inside :func:`torch.random.fork_rng`
for the initialization, so it is left as it was. Same config and seed => bit-identical
activations on CPU.

A checkpoint (a plain dict) is written atomically after every epoch, holding model, optimizer
and every generator's state, so ``train(..., resume=True)`` continues exactly where a killed run
stopped. The run directory's bookkeeping (config, status, log, checkpoints, resume checks, the
writer lock) is :mod:`decisionnets.rundir`; :class:`Member` is one run's share of it.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from pathlib import Path

import numpy as np
import torch

from decisionnets import __version__
from decisionnets.build import build_model, build_task
from decisionnets.config import Config
from decisionnets.errors import ConfigError, DataFileError
from decisionnets.io import IDENTITY_ATTR, write_epoch
from decisionnets import metrics
from decisionnets.optimization import apply_settings, clip_grad_norm, make_optimizer, phase_settings
from decisionnets.recording import Recorder, record_epochs
from decisionnets.rundir import RunDir, restore, snapshot, writing
from decisionnets.seeding import probe_stream, seed_streams, torch_generator, torch_seed
from decisionnets.threads import thread_info
from decisionnets.weights import save_weights

#: ``[agent] algorithm`` -> "module:function" of its trainer (imported on use, as the model registry)
TRAINERS = {"a2c": "decisionnets.agents.a2c:train_agent", "reinforce": "decisionnets.agents.a2c:train_agent"}
LOG_FIELDS = ("epoch", "step", "lr", "batch_size", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
              "probe_loss", "probe_accuracy", "seconds", "threads")


def load_init_weights(model, source: str) -> None:
    """Initialize ``model`` from a checkpoint file or a run directory's final (or last) checkpoint."""
    p = Path(source)
    if p.is_dir():
        p = next((c for c in (p / "checkpoints" / "final.pt", p / "checkpoints" / "last.pt") if c.is_file()), p)
    if not p.is_file():
        raise ConfigError(f"train.init_from: no checkpoint at {source} (give a .pt file or a run directory)")
    from decisionnets.rundir import load_checkpoint

    ckpt = load_checkpoint(p, require=())
    try:
        state = ckpt["model"] if "model" in ckpt else {k: v for k, v in ckpt.items() if k not in ("checkpoint_meta", "checksum")}
        own = model.state_dict()
        # copy every tensor whose name and shape match (e.g. a readout of another size is left as initialized)
        loadable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        if not loadable:
            raise ConfigError(f"train.init_from: {p} shares no parameters with this model")
        model.load_state_dict({**own, **loadable})
    except (RuntimeError, KeyError, EOFError, OSError, AttributeError) as e:
        raise DataFileError(f"train.init_from: cannot read checkpoint {p}: {e}") from None


# --------------------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------------------
def fit(objective, *, epochs: int, start_epoch: int, step: int, grad_clip: float = 0.0, progress: bool = True,
        desc: str = "train") -> int | None:
    """The training loop of every trainer: epochs ``start_epoch + 1 .. epochs`` of ``objective``.

    Parameters
    ----------
    objective : Objective
        Supplies the optimizer, the phase settings, the batches, the loss and metrics of a batch,
        what happens to a diverged run and the end of an epoch (:mod:`decisionnets.objectives`).
    epochs, start_epoch, step : int
        The last epoch, the epoch already done (0 for a fresh run) and the updates so far.
    grad_clip : float
        Clip the gradient norm to this (0: no clipping); per member for an ensemble.
    progress : bool
        A tqdm bar over epochs.
    desc : str
        The bar's label.

    Returns
    -------
    int or None
        The number of updates at the end, or None when every member of an ensemble diverged.

    Raises
    ------
    TrainingDiverged
        From the objective of a single run whose loss diverged (NaN, infinite or above
        ``objective.max_loss``).
    """
    from tqdm.auto import tqdm

    opt = objective.optimizer
    with tqdm(range(start_epoch + 1, epochs + 1), desc=desc, unit="epoch", disable=not progress,
              initial=start_epoch, total=epochs, dynamic_ncols=True) as bar:
        for epoch in bar:
            t0 = time.perf_counter()
            settings = objective.settings(epoch)
            apply_settings(opt, settings)
            sums = {}  # the metrics summed over the epoch's batches (tensors stay on the device: no sync)
            for batch in objective.batches(epoch, settings["batch_size"]):
                losses, metrics = objective.loss(batch)  # losses: 0-dim, or (member,) for an ensemble
                opt.zero_grad(set_to_none=True)
                losses.sum().backward()  # members are independent: a diverged one's NaNs stay in its rows
                bad = ~torch.isfinite(losses) | (losses > objective.max_loss)
                if bool(bad.any()):  # one sync per step
                    keep = objective.diverged(losses, bad, epoch, step)  # a single run raises here
                    if keep is None:
                        return None
                    sums = {k: _take(v, keep) for k, v in sums.items()}
                    metrics = {k: _take(v, keep) for k, v in metrics.items()}
                if grad_clip > 0:
                    clip_grad_norm(objective.params, grad_clip, per_member=objective.per_member)
                opt.step()
                step += 1
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0) + v
            bar.set_postfix(objective.end_epoch(epoch, step, sums, time.perf_counter() - t0))
    return step


def _take(value, keep):
    """The kept members' entries of a per-member metric; other values as they are."""
    return value[keep] if isinstance(value, torch.Tensor) and value.dim() > 0 else value


# --------------------------------------------------------------------------------------------------
# supervised runs
# --------------------------------------------------------------------------------------------------
def train(config: Config, run_dir, *, progress: bool = True, resume: bool = False, force: bool = False) -> dict:
    """Train ``config`` into ``run_dir``; record the probe set at the scheduled epochs.

    Holds the run directory's writer lock (:mod:`decisionnets.locks`) from before the first
    write to the end, so a second writer is refused before it writes anything.

    Parameters
    ----------
    config : Config
    run_dir : path
        Created if needed. With ``resume=True`` it must hold a run of the same
        config; training continues from its last checkpoint.
    progress : bool
        Show a tqdm bar over epochs (loss, accuracy).
    resume : bool
    force : bool
        Take over a lock whose holder cannot be checked (another host).

    Returns
    -------
    dict
        The final status: ``status`` ("completed"), ``epoch``, ``step``, ``run_dir``.

    Raises
    ------
    TrainingDiverged
        When a training loss is NaN or infinite. Recorded epochs are kept and
        status.json says ``diverged`` with the epoch and step.
    RunLocked
        When another process writes to ``run_dir`` (nothing is written).
    WriteFailed
        When writing an activation file, a checkpoint, the log or status.json fails (disk
        full, I/O error, permission). Nothing half-written is left under a real name;
        status.json says ``write_failed`` with the file and cause (when it can be written);
        the run resumes from its last checkpoint once the cause is fixed.
    """
    with writing(run_dir, force=force):
        return _train(config, Path(run_dir), progress=progress, resume=resume)


def _train(config: Config, run_dir: Path, *, progress: bool, resume: bool) -> dict:
    """The body of :func:`train`, run while holding the run directory's lock."""
    if config.agent.algorithm != "supervised":  # trained by reward: a trainer of TRAINERS
        mod, _, name = TRAINERS[config.agent.algorithm].partition(":")
        return getattr(importlib.import_module(mod), name)(config, run_dir, progress=progress, resume=resume)
    from decisionnets.objectives import Supervised

    member = Member(config, run_dir, resume=resume)
    member.begin()
    objective = Supervised([member])
    fit(objective, epochs=config.train.epochs, start_epoch=member.start_epoch, step=member.step,
        grad_clip=config.train.grad_clip, progress=progress, desc=f"train {config.task}")
    return member.finish()


@dataclasses.dataclass
class RunSetup:
    """What a run is built from, each part from its own seed stream (:func:`decisionnets.seeding.seed_streams`)."""

    task: object
    data_rng: np.random.Generator  #: the training-data stream (fresh_trials draw from it)
    train_set: object  #: TrialBatch
    val_set: object  #: TrialBatch or None
    probe: object  #: TrialBatch, from :func:`decisionnets.seeding.probe_stream`
    model: torch.nn.Module  #: initialized (or from ``train.init_from``), on the device
    layers: tuple  #: recorded layers
    order_gen: torch.Generator  #: batch order (and augmentation)
    noise_gen: torch.Generator  #: recurrent noise


def setup_run(config: Config, device) -> RunSetup:
    """Task, training/validation split, probe set, initialized model and generators of a run.

    Shared by :func:`train` and the members of :func:`decisionnets.ensemble.train_ensemble`, so
    a member is built exactly as its solo run.
    """
    tc, rc = config.train, config.record
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda asked for, but torch sees no CUDA GPU; use --device cpu")
    streams = seed_streams(config.seed)
    task = build_task(config)
    data_rng = np.random.default_rng(streams["data"])
    n_val = round(tc.n_trials * tc.val_fraction)
    data = task.train_set(tc.n_trials, data_rng)
    order = data_rng.permutation(data.n_trials)
    probe = task.probe_set(np.random.default_rng(probe_stream(config)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed(streams["init"]))
        model = build_model(config, task)
    if tc.init_from:
        load_init_weights(model, tc.init_from)
    model.to(device)
    layers = rc.layers or model.default_layers
    bad = [name for name in layers if name not in model.layer_names]
    if bad:
        raise ConfigError(f"record.layers: model {config.model['kind']} has no layer {bad[0]!r}; "
                          f"valid: {', '.join(model.layer_names)}")
    order_gen = torch_generator(streams["order"])
    noise_gen = torch_generator(streams["noise"], device)
    if hasattr(model, "noise_generator"):
        model.noise_generator = noise_gen
    return RunSetup(task, data_rng, data.subset(order[n_val:]), data.subset(order[:n_val]) if n_val else None,
                    probe, model, tuple(layers), order_gen, noise_gen)


def dataset_attrs(config: Config, task, identity: str) -> dict:
    """The attributes of every recorded activation file of a run (DESIGN.md section 3)."""
    attrs = {"task": config.task, "env": config.env["name"], "model": config.model["kind"], "seed": config.seed,
             IDENTITY_ATTR: identity,
             "dt": float(task.dt) if getattr(task, "dt", None) else 0.0, "config": config.to_json(),
             "decisionnets_version": __version__, "target": task.target_label,
             "choice_actions": np.asarray(task.choice_actions, dtype=np.int64), "time_units": "ms"}
    if hasattr(task, "attrs"):  # e.g. image tasks: class names, fine -> coarse map, normalization
        attrs.update(task.attrs())
    from decisionnets.task import ceiling_attrs

    attrs.update(ceiling_attrs(task))  # the ideal observer's bits per label, where known
    return attrs


class Member:
    """One supervised run: what it is built from, its run directory, recorder and checkpoints.

    A solo run (:func:`train`) is one member; an ensemble (:func:`decisionnets.ensemble.train_ensemble`)
    has one per run, each writing the solo layout. Built in the solo run's order:
    :func:`setup_run`, the optimizer of ``train.optimizer`` on the member's own module (its
    ``state_dict`` is the checkpoint format), :class:`~decisionnets.rundir.RunDir`, the
    :class:`~decisionnets.recording.Recorder`, then the last checkpoint when resuming.

    Attributes
    ----------
    config, run_dir, device, task, model, train_set, val_set, data_rng, order_gen, noise_gen
        As :class:`RunSetup` names them.
    opt : torch.optim.Optimizer
        The member's optimizer (the one that trains a solo run; a checkpoint format for an ensemble's member).
    run : RunDir
    start_epoch, step : int
        Where the run starts (0, 0 or its last checkpoint's) and the updates so far.
    """

    def __init__(self, config: Config, run_dir, *, resume: bool, **status):
        tc, rc = config.train, config.record
        self.config, self.run_dir = config, Path(run_dir)
        self.device = device = torch.device(config.device)
        r = setup_run(config, device)
        self.task, self.model, self.layers, self.val_set = r.task, r.model, r.layers, r.val_set
        self.train_set, self.data_rng, self.order_gen, self.noise_gen = r.train_set, r.data_rng, r.order_gen, r.noise_gen
        self.opt = make_optimizer(tc.optimizer, self.model.parameters(), phase_settings(tc, 1))
        self.run = RunDir(self.run_dir, config, resume=resume, log_fields=LOG_FIELDS)
        self.recorder = Recorder(r.probe, self.task, self.layers, rc.time_stride, rc.dtype,
                                 dataset_attrs(config, self.task, self.run.identity))
        self.schedule = set(record_epochs(rc.schedule, tc.epochs))
        self.start_epoch, self.step = 0, 0
        ckpt = self.run.open(device)
        if ckpt is not None:
            restore(ckpt, model=self.model, optimizer=self.opt, order_gen=self.order_gen, noise_gen=self.noise_gen,
                    data_rng=self.data_rng)
            self.start_epoch, self.step = ckpt["epoch"], ckpt["step"]
            # with fresh_trials, epoch start_epoch + 1 >= 2 draws its own set from the restored stream
        self.run.start(self.start_epoch, self.step, **thread_info(), **status)  # threads: explains a slow run

    def begin(self) -> None:
        """Epoch 0 of a fresh run: record the untrained network (unless already there) and checkpoint it."""
        if self.start_epoch == 0 and not self.run.has_epoch(0):
            self.record(0)
        if self.start_epoch == 0:
            self.run.save_checkpoint(self.state(0))

    def record(self, epoch: int) -> tuple[float, float]:
        """Record the probe set at ``epoch``; returns its loss and accuracy."""
        ds = self.recorder.dataset(self.model, epoch, self.step, self.device)
        # the network itself, for analyses that need it (fixed points); before the activations, so a
        # run killed in between re-records the epoch (epoch 0 is re-recorded only when its file is missing)
        save_weights(self.run_dir, epoch, self.model)
        write_epoch(ds, self.run_dir, epoch)
        return float(ds.loss[0]), float(ds.accuracy[0])

    def state(self, epoch: int) -> dict:
        """The checkpoint state at the end of ``epoch`` (a plain dict)."""
        return {**snapshot(model=self.model, optimizer=self.opt, order_gen=self.order_gen, noise_gen=self.noise_gen,
                           data_rng=self.data_rng), "epoch": epoch, "step": self.step}

    def end_epoch(self, epoch: int, step: int, row: dict, seconds: float) -> None:
        """Complete the epoch's log row (validation, probe set when scheduled, time) and checkpoint."""
        t0 = time.perf_counter()
        self.step = step
        if self.val_set is not None:
            row["val_loss"], row["val_accuracy"] = evaluate(self.model, self.val_set, self.task, self.device)
        if epoch in self.schedule:
            row["probe_loss"], row["probe_accuracy"] = self.record(epoch)
        row["seconds"] = round(seconds + time.perf_counter() - t0, 4)
        row["threads"] = torch.get_num_threads()
        self.run.end_epoch(row, self.state(epoch))

    def finish(self) -> dict:
        """checkpoints/final.pt and status "completed"; returns the status."""
        return self.run.finish({"model": self.model.state_dict()}, self.config.train.epochs, self.step)


@torch.no_grad()
def evaluate(model, batch, task, device, chunk: int = 2048) -> tuple[float, float]:
    """Loss (nats, the training loss) and accuracy (the training accuracy) of ``model`` on ``batch``."""
    model.eval()
    loss_sum, acc_sum = 0.0, 0.0
    choices = torch.as_tensor(task.choice_actions, device=device)
    for lo in range(0, batch.n_trials, chunk):
        sub = batch.subset(slice(lo, lo + chunk))
        x = torch.from_numpy(sub.inputs).to(device)
        y = torch.from_numpy(sub.targets).to(device)
        m = torch.from_numpy(sub.mask).to(device)
        logits, _ = model(x, layers=())
        loss_sum += float(metrics.masked_cross_entropy(logits, y, m)) * sub.n_trials
        acc_sum += float(metrics.n_correct_choices(logits, y, m, choices))
    model.train()
    return loss_sum / batch.n_trials, acc_sum / batch.n_trials
