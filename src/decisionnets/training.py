"""Training: one readable SGD loop: fixed training set, phases, recording, checkpoints, resume.

Data flow: task -> batches -> model -> **training** (the loss of :mod:`decisionnets.metrics`)
-> recording (the probe set, every recorded epoch) -> netCDF.

Read :func:`train` top to bottom. The run's single seed is split with
:class:`numpy.random.SeedSequence` into independent streams (:func:`seed_streams`):
training data, probe set, model initialization, batch order, recurrent noise.
Nothing touches the global numpy/random state; torch's global generator is
used only inside :func:`torch.random.fork_rng` for the initialization, so it
is left as it was. Same config and seed => bit-identical activations on CPU.

A checkpoint (a plain dict) is written atomically after every epoch, holding
model, optimizer and every generator's state, so ``train(..., resume=True)``
continues exactly where a killed run stopped. The run directory's bookkeeping
(config, status, log, checkpoints, resume checks, the writer lock) is
:mod:`decisionnets.rundir`; :func:`setup_run` builds what a run starts from.
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
from decisionnets.errors import ConfigError, DataFileError, TrainingDiverged
from decisionnets.io import IDENTITY_ATTR, write_epoch
from decisionnets.metrics import masked_cross_entropy as masked_loss  # noqa: F401  (the name tests patch)
from decisionnets.metrics import n_correct_choices
from decisionnets.recording import Recorder, record_epochs
from decisionnets.rundir import RunDir, RunLog, note_write_failure, read_log, restore, snapshot, writing
from decisionnets.threads import thread_info
from decisionnets.weights import save_weights

STREAMS = ("data", "probe", "init", "order", "noise")
#: ``[agent] algorithm`` -> "module:function" of its trainer (imported on use, as the model registry)
TRAINERS = {"a2c": "decisionnets.agents.a2c:train_agent", "reinforce": "decisionnets.agents.a2c:train_agent"}
LOG_FIELDS = ("epoch", "step", "lr", "batch_size", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
              "probe_loss", "probe_accuracy", "seconds", "threads")


#: A training loss above ``DIVERGENCE_FACTOR`` x the cross-entropy of a uniform guess (ln of the number
#: of outputs, about what an untrained network scores) is a divergence, as a NaN or infinite loss is.
DIVERGENCE_FACTOR = 1e4


def divergence_bound(n_outputs: int) -> float:
    """The largest training loss that is not a divergence: ``DIVERGENCE_FACTOR * ln(max(n_outputs, 2))``."""
    return DIVERGENCE_FACTOR * float(np.log(max(int(n_outputs), 2)))


def seed_streams(seed: int) -> dict:
    """Independent child seeds of ``seed``, one per stream in :data:`STREAMS`."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return dict(zip(STREAMS, children))


def probe_stream(config: Config) -> np.random.SeedSequence:
    """The probe set's seed: ``record.probe_seed``'s probe stream (shared by every run seed), or the run's own.

    ``probe_seed = s`` gives the probe stream of run seed ``s``, so a seed-``s`` run with the
    default draws the same probe set as before the option existed.
    """
    ps = config.record.probe_seed
    return seed_streams(ps if ps >= 0 else config.seed)["probe"]


def _torch_seed(ss: np.random.SeedSequence) -> int:
    return int(ss.generate_state(1, dtype=np.uint64)[0] % (2**63 - 1))


def phase_settings(train_cfg, epoch: int) -> dict:
    """lr, batch_size, momentum and weight_decay in force at (1-based) ``epoch``."""
    base = {k: getattr(train_cfg, k) for k in ("lr", "batch_size", "momentum", "weight_decay")}
    end = 0
    for p in train_cfg.phases:
        end += p.epochs
        if epoch <= end:
            return {k: (getattr(p, k) if getattr(p, k) is not None else v) for k, v in base.items()}
    return base


def make_optimizer(kind: str, params, settings: dict):
    """``torch.optim.SGD`` (kind "sgd") or ``torch.optim.Adam`` ("adam") with a phase's ``settings``."""
    if kind == "adam":
        return torch.optim.Adam(params, lr=settings["lr"], weight_decay=settings["weight_decay"])
    if kind == "sgd":
        return torch.optim.SGD(params, lr=settings["lr"], momentum=settings["momentum"],
                               weight_decay=settings["weight_decay"])
    raise ConfigError(f"train.optimizer must be sgd or adam; got {kind!r}")


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


_Log = RunLog  # the names used before run-directory bookkeeping moved to decisionnets.rundir
_read_log = read_log
_note_write_failure = note_write_failure


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


@dataclasses.dataclass
class RunSetup:
    """What a run is built from, each part from its own seed stream (:func:`seed_streams`)."""

    task: object
    data_rng: np.random.Generator  #: the training-data stream (fresh_trials draw from it)
    train_set: object  #: TrialBatch
    val_set: object  #: TrialBatch or None
    probe: object  #: TrialBatch, from :func:`probe_stream`
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
        torch.manual_seed(_torch_seed(streams["init"]))
        model = build_model(config, task)
    if tc.init_from:
        load_init_weights(model, tc.init_from)
    model.to(device)
    layers = rc.layers or model.default_layers
    bad = [name for name in layers if name not in model.layer_names]
    if bad:
        raise ConfigError(f"record.layers: model {config.model['kind']} has no layer {bad[0]!r}; "
                          f"valid: {', '.join(model.layer_names)}")
    order_gen = torch.Generator().manual_seed(_torch_seed(streams["order"]))
    noise_gen = torch.Generator(device=device).manual_seed(_torch_seed(streams["noise"]))
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


def _train(config: Config, run_dir: Path, *, progress: bool, resume: bool) -> dict:
    """The body of :func:`train`, run while holding the run directory's lock."""
    if config.agent.algorithm != "supervised":  # trained by reward: a trainer of TRAINERS
        mod, _, name = TRAINERS[config.agent.algorithm].partition(":")
        return getattr(importlib.import_module(mod), name)(config, run_dir, progress=progress, resume=resume)
    from tqdm.auto import tqdm

    tc, rc = config.train, config.record
    device = torch.device(config.device)

    # --- task, data, probe set, model, optimizer, generators, recorder --------
    r = setup_run(config, device)
    task, model, train_set, data_rng, order_gen = r.task, r.model, r.train_set, r.data_rng, r.order_gen
    opt = make_optimizer(tc.optimizer, model.parameters(), phase_settings(tc, 1))
    run = RunDir(run_dir, config, resume=resume, log_fields=LOG_FIELDS)
    recorder = Recorder(r.probe, task, r.layers, rc.time_stride, rc.dtype, dataset_attrs(config, task, run.identity))
    schedule = set(record_epochs(rc.schedule, tc.epochs))

    # --- run directory: fresh, or resumed from its last checkpoint -----------
    start_epoch, step = 0, 0
    ckpt = run.open(device)
    if ckpt is not None:
        restore(ckpt, model=model, optimizer=opt, order_gen=order_gen, noise_gen=r.noise_gen, data_rng=data_rng)
        start_epoch, step = ckpt["epoch"], ckpt["step"]
        # with fresh_trials, epoch start_epoch + 1 >= 2 draws its own set from the restored stream
    run.start(start_epoch, step, **thread_info())  # threads: explains a slow run

    def record(epoch):
        ds = recorder.dataset(model, epoch, step, device)
        # the network itself, for analyses that need it (fixed points); before the activations, so a
        # run killed in between re-records the epoch (epoch 0 is re-recorded only when its file is missing)
        save_weights(run_dir, epoch, model)
        write_epoch(ds, run_dir, epoch)
        return float(ds.loss[0]), float(ds.accuracy[0])

    def state(epoch):
        return {**snapshot(model=model, optimizer=opt, order_gen=order_gen, noise_gen=r.noise_gen, data_rng=data_rng),
                "epoch": epoch, "step": step}

    if start_epoch == 0 and not run.has_epoch(0):
        record(0)
    if start_epoch == 0:
        run.save_checkpoint(state(0))

    # --- the loop -------------------------------------------------------------
    max_loss = divergence_bound(task.n_outputs)
    choices = torch.as_tensor(task.choice_actions, device=device)
    x_all, y_all, m_all = (torch.from_numpy(a).to(device) for a in (train_set.inputs, train_set.targets, train_set.mask))
    bar = tqdm(range(start_epoch + 1, tc.epochs + 1), desc=f"train {config.task}", unit="epoch",
               disable=not progress, initial=start_epoch, total=tc.epochs, dynamic_ncols=True)
    for epoch in bar:
        t0 = time.perf_counter()
        s = phase_settings(tc, epoch)
        for g in opt.param_groups:
            g["lr"], g["weight_decay"] = s["lr"], s["weight_decay"]
            if "momentum" in g:  # sgd only
                g["momentum"] = s["momentum"]
        if tc.fresh_trials and epoch > 1:
            train_set = task.train_set(train_set.n_trials, data_rng)
            x_all, y_all, m_all = (torch.from_numpy(a).to(device)
                                   for a in (train_set.inputs, train_set.targets, train_set.mask))
        model.train()
        perm = torch.randperm(train_set.n_trials, generator=order_gen).to(device)
        loss_sum, n_correct, n_seen = torch.zeros((), device=device), torch.zeros((), device=device), 0
        for lo in range(0, len(perm), s["batch_size"]):
            idx = perm[lo:lo + s["batch_size"]]
            x = task.augment(x_all[:, idx], order_gen)
            y, m = y_all[:, idx], m_all[:, idx]
            logits, _ = model(x, layers=())
            loss = masked_loss(logits, y, m)
            if not torch.isfinite(loss) or loss > max_loss:  # one sync per step, as the finiteness check had
                run.diverged(epoch, step, loss.item())
                bar.close()
                raise TrainingDiverged(epoch, step, loss.item(), max_loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            opt.step()
            step += 1
            with torch.no_grad():  # accumulated on the device: no sync per step
                loss_sum += loss.detach() * len(idx)
                n_correct += n_correct_choices(logits, y, m, choices)
            n_seen += len(idx)
        row = {"epoch": epoch, "step": step, "lr": s["lr"], "batch_size": s["batch_size"],
               "train_loss": float(loss_sum) / n_seen, "train_accuracy": float(n_correct) / n_seen}
        if r.val_set is not None:
            row["val_loss"], row["val_accuracy"] = _evaluate(model, r.val_set, task, device)
        if epoch in schedule:
            row["probe_loss"], row["probe_accuracy"] = record(epoch)
        row["seconds"] = round(time.perf_counter() - t0, 4)
        row["threads"] = torch.get_num_threads()
        run.end_epoch(row, state(epoch))
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", acc=f"{row['train_accuracy']:.3f}",
                        val=f"{row.get('val_accuracy', float('nan')):.3f}")
    bar.close()
    return run.finish({"model": model.state_dict()}, tc.epochs, step)


@torch.no_grad()
def _evaluate(model, batch, task, device, chunk=2048):
    model.eval()
    loss_sum, acc_sum = 0.0, 0.0
    for lo in range(0, batch.n_trials, chunk):
        sub = batch.subset(slice(lo, lo + chunk))
        x = torch.from_numpy(sub.inputs).to(device)
        y = torch.from_numpy(sub.targets).to(device)
        m = torch.from_numpy(sub.mask).to(device)
        logits, _ = model(x, layers=())
        loss_sum += float(masked_loss(logits, y, m)) * sub.n_trials
        acc_sum += float(n_correct_choices(logits, y, m, torch.as_tensor(task.choice_actions, device=device)))
    model.train()
    return loss_sum / batch.n_trials, acc_sum / batch.n_trials
