"""The plan of a sweep: one :class:`RunPoint` per (grid point, seed), and units of work.

:func:`plan` expands a :class:`~decisionnets.sweep.spec.SweepSpec` (grid x axes x seeds) into
runs with their run ids, run directories and resolved, validated configs (through the config
module's public API: :func:`~decisionnets.config.raw_config`, :func:`~decisionnets.config.set_value`,
:func:`~decisionnets.config.from_dict`). :func:`ensemble_units` groups compatible fresh runs into
ensembles (:mod:`decisionnets.ensemble`). Nothing here trains or writes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
from pathlib import Path

from decisionnets.sweep.spec import SweepSpec, dim_name, flatten_set

MAX_ENSEMBLE = 32  #: most members in one ensemble


@dataclasses.dataclass(frozen=True)
class RunPoint:
    """One run of a sweep: where it lives, its coordinates and its resolved config (JSON)."""

    run_id: str
    run_dir: str
    coords: dict  #: dim -> value, including "seed"
    config_json: str
    pretrain: RunPoint | None = None


def coord_value(v):
    """A netCDF/xarray-friendly coordinate for a grid value (lists become '100x100')."""
    if isinstance(v, (list, tuple)):
        return "x".join(str(x) for x in v)
    return v


def _slug(v) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]", "-", str(coord_value(v)))


def resolve(base: str, root, overrides: dict, phases, init_from: str, seed: int):
    """The :class:`~decisionnets.config.Config` of one run: ``base`` (preset or .toml), overrides, phases, seed."""
    from decisionnets.config import from_dict, raw_config, set_value

    raw, task = raw_config(base, root)
    raw.pop("sweep", None)
    for k, v in overrides.items():
        if k in ("train.phases", "phases"):
            phases = v
            continue
        raw = set_value(raw, k, v)
    if phases is not None:
        raw = set_value(raw, "train.phases", [dict(p) for p in phases])
    if init_from:
        raw = set_value(raw, "train.init_from", init_from)
    raw = set_value(raw, "seed", seed)
    return dataclasses.replace(from_dict(raw, task=task), task=task)


def plan(spec: SweepSpec, sweep_dir) -> list[RunPoint]:
    """Every run of ``spec`` (grid x axes x seeds), configs resolved and validated.

    Returns
    -------
    list of RunPoint
        In grid order (the last grid key and axis vary fastest, seed fastest of all); a point with
        ``pretrain`` carries the :class:`RunPoint` of its pretraining run (shared by points with
        the same pretraining config), whose final weights initialize it.
    """
    sweep_dir = Path(sweep_dir).resolve()
    grid_items = [[(k, v) for v in vals] for k, vals in spec.grid.items()]
    axis_items = [[(dim, p) for p in pts] for dim, pts in spec.axes.items()]
    points, pretrains = [], {}
    for combo in itertools.product(*grid_items, *axis_items, [("seed", s) for s in spec.seeds]):
        coords, overrides, base, phases, init_from, pre = {}, dict(spec.common), spec.base, None, "", None
        seed = combo[-1][1]
        for key, v in combo[:-1]:
            if key in spec.axes:
                coords[key] = v["value"]
                base = v.get("base", base)
                overrides.update(flatten_set(v.get("set", {}), f"sweep.axes.{key}.set"))
                phases = v.get("phases", phases)
                init_from = v.get("init_from", init_from)
                pre = v.get("pretrain", pre)
            else:
                coords[dim_name(key, spec.grid)] = coord_value(v)
                overrides[key] = v
        coords["seed"] = seed
        if init_from and spec.root is not None and not Path(init_from).is_absolute():
            init_from = str(spec.root / init_from)
        pre_point = None
        if pre:
            pover = {**overrides, **flatten_set(pre.get("set", {}), "pretrain.set")}
            if "epochs" in pre:
                pover["train.epochs"] = pre["epochs"]
            pcfg = resolve(pre.get("base", base), spec.root, pover, pre.get("phases"), "", seed)
            key = pcfg.to_json()
            if key not in pretrains:
                pid = f"pretrain-{hashlib.sha1(key.encode()).hexdigest()[:8]}_seed-{seed}"
                pretrains[key] = RunPoint(pid, str(sweep_dir / "pretrain" / pid), {"seed": seed}, key)
            pre_point = pretrains[key]
            init_from = pre_point.run_dir
        cfg = resolve(base, spec.root, overrides, phases, init_from, seed)
        run_id = "_".join(f"{d}-{_slug(v)}" for d, v in coords.items())
        points.append(RunPoint(run_id, str(sweep_dir / "runs" / run_id), coords, cfg.to_json(), pre_point))
    return points


def point_config(point: RunPoint):
    """The :class:`~decisionnets.config.Config` of ``point`` (from its JSON; phases included)."""
    from decisionnets.config import config_from_json

    return config_from_json(point.config_json)


def ensemble_units(points, n_workers: int = 1) -> list[list[RunPoint]]:
    """``points`` as units of work: ensembles of compatible fresh runs, and single runs.

    Runs with a pretraining dependency or an existing checkpoint (resumed) stay single. A group
    of compatible runs (:func:`decisionnets.ensemble.ensemble_key`) is split into ensembles of at
    most ``ceil(n / n_workers)`` members (and :data:`MAX_ENSEMBLE`), so that the ensembles still
    spread over the Dask workers.
    """
    from decisionnets.ensemble import ensemble_key

    keyed, singles = {}, []
    for p in points:
        key = None
        if p.pretrain is None and not (Path(p.run_dir) / "checkpoints" / "last.pt").is_file():
            key = ensemble_key(point_config(p))
        if key is None:
            singles.append([p])
        else:
            keyed.setdefault(key, []).append(p)
    n_grouped = sum(len(g) for g in keyed.values())
    size = max(2, min(MAX_ENSEMBLE, -(-n_grouped // max(1, n_workers)))) if n_grouped else MAX_ENSEMBLE
    units = []
    for g in keyed.values():
        n_chunks = -(-len(g) // size)
        units += [g[i::n_chunks] for i in range(n_chunks)]  # balanced chunks
    return units + singles
