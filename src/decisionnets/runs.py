"""A run directory as one object: its config, activations, information, trained model; re-recording.

Data flow: a run directory (written by ``decisionnets train``, a sweep, or
:class:`decisionnets.RunRecorder`) -> **Run** (here) -> analyses and scripts.

:func:`open_run` reads nothing heavy: each part is opened when asked for::

    run = dn.open_run("runs/color-direction_seed0")
    run.config                      # Config (a RunRecorder run: its config dict)
    ds = run.activations()          # xr.Dataset (epoch, trial, time, unit), DESIGN.md section 3
    info = run.information()        # information.nc (after `decisionnets analyze`)
    model = run.model()             # the trained network (eval mode, CPU)
    new = run.rerecord(n_per_condition=72, probe_seed=1)   # the trained network on new trials

Torch is imported only by :meth:`Run.model` and :meth:`Run.rerecord`.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import xarray as xr

from decisionnets.errors import DataFileError, UserError
from decisionnets.io import open_activations, read_status

__all__ = ["Run", "open_run", "open_information", "rerecord"]


class Run:
    """One run directory (see :func:`open_run`).

    Attributes
    ----------
    path : Path
    config : Config or dict
        The resolved config of a decisionnets run (:class:`decisionnets.config.Config`); for a
        run recorded by :class:`decisionnets.RunRecorder`, its ``config`` dict.
    status : dict
        What ``status.json`` says ({} when absent).
    """

    def __init__(self, path):
        self.path = Path(path)
        cfg = self.path / "config.json"
        if not self.path.is_dir():
            raise DataFileError(f"run directory not found: {self.path}")
        if not cfg.is_file():
            raise DataFileError(f"{self.path} is not a run directory (no config.json)")
        text = cfg.read_text()
        try:
            raw = json.loads(text)
        except ValueError as e:
            raise DataFileError(f"{cfg} is not valid JSON: {e}") from None
        self.own = not (isinstance(raw, dict) and {"task", "env", "model", "train"} <= set(raw))
        if self.own:
            self.config = raw
        else:
            from decisionnets.config import config_from_json

            try:
                self.config = config_from_json(text)
            except ValueError as e:
                raise DataFileError(f"{cfg} is not a valid decisionnets config: {e}") from None
        self.status = read_status(self.path)

    def __repr__(self) -> str:
        task = self.config.get("task", "own") if self.own else self.config.task
        return f"Run({str(self.path)!r}, task={task!r}, status={self.status.get('status', '?')!r})"

    # ------------------------------------------------------------------ data on disk
    def activations(self) -> xr.Dataset:
        """Every recorded epoch as one lazily loaded dataset (:func:`decisionnets.open_activations`)."""
        return open_activations(self.path)

    def information(self) -> xr.Dataset:
        """``information.nc`` written by ``decisionnets analyze`` (:func:`open_information`)."""
        return open_information(self.path)

    def recorded_epochs(self) -> list[int]:
        """The epochs whose activations were recorded, sorted."""
        folder = self.path / "activations"
        return sorted(int(p.stem.split("_")[1]) for p in folder.glob("epoch_*.nc")) if folder.is_dir() else []

    # ------------------------------------------------------------------ the network
    def _require_config(self, what: str):
        if self.own:
            raise UserError(f"{self.path} was recorded from a user's own model (RunRecorder): decisionnets cannot "
                            f"rebuild it for {what}; load its weights into your model yourself")
        return self.config

    def _checkpoint(self) -> tuple[Path | None, dict | None]:
        for p in (self.path / "checkpoints" / "final.pt", self.path / "checkpoints" / "last.pt"):
            if p.is_file():
                import torch

                try:
                    return p, torch.load(p, map_location="cpu", weights_only=False)
                except (RuntimeError, EOFError, OSError) as e:
                    raise DataFileError(f"cannot read checkpoint {p}: {e}") from None
        return None, None

    def _initial_model(self):
        """The network as initialized from the run's seed (``train.init_from`` included): epoch 0."""
        import torch

        from decisionnets.training import setup_run

        return setup_run(self.config, torch.device("cpu")).model

    def model(self, epoch: int | None = None):
        """The run's network (``torch.nn.Module``, eval mode, CPU) with the weights of ``epoch``.

        Parameters
        ----------
        epoch : int, optional
            None: the trained network (``checkpoints/final.pt``, else the last checkpoint). An
            epoch: its saved weights (``weights/epoch_XXXX.pt``, where the run keeps them); without
            them, epoch 0 is rebuilt from the run's seed (the network as initialized) and the
            checkpoint's own epoch is read from the checkpoint.

        Raises
        ------
        UserError
            For a run of a user's own model, or an epoch whose weights the run did not keep
            (the epochs it has are named).
        """
        cfg = self._require_config("model()")
        if epoch is not None and importlib.util.find_spec("decisionnets.weights") is not None:
            from decisionnets.weights import load_model

            try:
                return load_model(self.path, int(epoch))
            except DataFileError:
                pass  # no per-epoch weights for it: the checkpoint or the initialization below
        path, ckpt = self._checkpoint()
        if epoch is not None and int(epoch) == 0 and (ckpt is None or int(ckpt.get("epoch", -1)) != 0):
            return self._initial_model().eval()
        if ckpt is None:
            raise DataFileError(f"no checkpoint in {self.path / 'checkpoints'} (final.pt or last.pt)")
        if epoch is not None and int(epoch) != int(ckpt.get("epoch", -1)):
            raise UserError(f"{self.path} keeps no weights of epoch {epoch}: only epoch 0 (rebuilt from its seed) "
                            f"and epoch {ckpt.get('epoch')} ({path.name}); record weights per epoch to load others")
        import torch

        from decisionnets.build import build_model, build_task

        with torch.random.fork_rng(devices=[]):
            model = build_model(cfg, build_task(cfg))
        try:
            model.load_state_dict(ckpt["model"])
        except (RuntimeError, KeyError) as e:
            raise DataFileError(f"cannot load {path} into the model {cfg.model['kind']}: {e}") from None
        return model.eval()

    def trained_epoch(self) -> int:
        """The epoch of the trained network (:meth:`model` with no epoch): the checkpoint's."""
        _, ckpt = self._checkpoint()
        if ckpt is None:
            raise DataFileError(f"no checkpoint in {self.path / 'checkpoints'} (final.pt or last.pt)")
        return int(ckpt.get("epoch", 0))

    def rerecord(self, *, epoch: int | None = None, n_per_condition: int | None = None,
                 probe_seed: int | None = None, layers=None, device: str = "cpu") -> xr.Dataset:
        """The run's network recorded on a new probe set, as the trainer records it.

        Parameters
        ----------
        epoch : int, optional
            Whose weights (:meth:`model`); default: the trained network.
        n_per_condition : int, optional
            Trials per probe condition (default: the run's ``record.n_per_condition``).
        probe_seed : int, optional
            The probe set's seed (``record.probe_seed``: run seed ``s`` gives the probe set of a
            seed-``s`` run); default: the run's. The run's own settings give its own probe set,
            so the last recorded epoch is reproduced.
        layers : list of str, optional
            Layers to record (default: the run's).
        device : str

        Returns
        -------
        xr.Dataset
            The activation dataset of one epoch (DESIGN.md section 3; ``epoch`` dim of length 1).
        """
        import torch

        from decisionnets.config import config_from_json
        from decisionnets.io import run_identity
        from decisionnets.recording import Recorder
        from decisionnets.training import dataset_attrs, setup_run

        cfg = self._require_config("rerecord()")
        raw = json.loads(cfg.to_json())
        if n_per_condition is not None:
            raw["record"]["n_per_condition"] = int(n_per_condition)
        if probe_seed is not None:
            raw["record"]["probe_seed"] = int(probe_seed)
        if layers is not None:
            raw["record"]["layers"] = list(layers)
        new = config_from_json(json.dumps(raw))
        r = setup_run(new, torch.device(device))  # the run's task and architecture, the new probe set
        r.model.load_state_dict(self.model(epoch).state_dict())
        if epoch is None:
            _, ckpt = self._checkpoint()
            epoch, step = int(ckpt.get("epoch", 0)), int(ckpt.get("step", 0))
        else:
            step = self._step_of(int(epoch)) or 0
        rec = Recorder(r.probe, r.task, r.layers, new.record.time_stride, new.record.dtype,
                       dataset_attrs(new, r.task, run_identity(new.to_json())))
        with torch.no_grad():
            return rec.dataset(r.model, int(epoch), step, device)

    def _step_of(self, epoch: int) -> int | None:
        try:
            with xr.open_dataset(self.path / "activations" / f"epoch_{epoch:05d}.nc") as ds:
                return int(ds["step"].values[0])
        except (OSError, KeyError, ValueError, IndexError):
            return None


def open_run(run_dir) -> Run:
    """Open a run directory: its config now, the rest on demand (see :class:`Run`).

    Raises
    ------
    DataFileError
        No such folder, or no (valid) ``config.json`` in it.
    """
    return Run(run_dir)


def open_information(path) -> xr.Dataset:
    """``information.nc`` of a run (a run directory, a :class:`Run`, or the file itself), loaded.

    Dims as written by :func:`decisionnets.analyze_run`: ``information`` (layer, variable,
    epoch[, time]) in bits, ``period_information``, ``error_information``, ``cross_temporal``...

    Raises
    ------
    DataFileError
        When there is no ``information.nc`` (run ``decisionnets analyze RUN_DIR`` first).
    """
    from decisionnets.report import load_information

    return load_information(path.path if isinstance(path, Run) else path)


def rerecord(run, **kwargs) -> xr.Dataset:
    """:meth:`Run.rerecord` of ``run`` (a :class:`Run` or a run directory)."""
    return (run if isinstance(run, Run) else open_run(run)).rerecord(**kwargs)
