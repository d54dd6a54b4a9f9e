"""The sweep spec: read and validate a sweep's TOML (a file or a preset with a ``[sweep]`` table).

The layout is in :mod:`decisionnets.sweep`'s docstring. :func:`load_spec` reads a spec,
:func:`parse_spec` validates its raw dict into a :class:`SweepSpec`; every rule broken raises a
one-line :class:`~decisionnets.errors.ConfigError`. Nothing here trains or reads run directories.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from decisionnets.errors import ConfigError

SPEC_KEYS = ("base", "seeds", "set", "grid", "axes", "analysis", "name")
POINT_KEYS = ("value", "base", "set", "phases", "init_from", "pretrain")
#: ``[sweep.analysis]`` options: the arguments of ``decisionnets analyze`` (report.analyze_run) for
#: every run, and which layer and period the summary reads ("" / []: analyze's defaults)
ANALYSIS_DEFAULTS = {
    "variables": [],          # labels decoded ([]: the run's default label variables, as `analyze`)
    "layer": "",              # recorded layer decoded and summarized ("": every layer; the summary keeps a layer dim)
    "decoder": "linear",      # a decoder family or a list of them (a `decoder` dim)
    "folds": 5,
    "epochs": [],             # decode only these recorded epochs ([]: all)
    "epoch_stride": 1,        # decode every k-th recorded epoch (always the first and the last)
    "period": "decision",     # time-resolved runs: decode only this period's steps, summary = their mean ("": all)
    "time_stride": 1,         # decode every k-th recorded time step (counted back from the last)
    "dtype": "float64",       # precision of the decoders' matmuls
    "figures": False,         # also draw each run's figures (RUN_DIR/figures), as `decisionnets analyze`
    "analyses": [],           # representation analyses run after the decoding (RUN_DIR/analyses/NAME.nc), e.g. ["selectivity"]
}


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep spec (see :mod:`decisionnets.sweep` for the TOML layout)."""

    name: str
    description: str
    base: str
    seeds: tuple
    common: dict  #: dotted key -> value, applied to every run
    grid: dict  #: dotted key -> tuple of values
    axes: dict  #: dim name -> tuple of point dicts
    analysis: dict  #: ``[sweep.analysis]`` merged over :data:`ANALYSIS_DEFAULTS`
    root: Path | None  #: folder of the spec file (relative paths in it are relative to this)

    @property
    def dims(self) -> list[str]:
        """Parameter dims of the grid (without seed), in order."""
        return [dim_name(k, self.grid) for k in self.grid] + list(self.axes)


def dim_name(key: str, grid: dict) -> str:
    """The summary dim of grid key ``key``: its last part, unless two keys share it (or it is 'seed')."""
    short = key.rpartition(".")[2]
    clash = sum(k.rpartition(".")[2] == short for k in grid) > 1
    return key.replace(".", "_") if clash or short == "seed" else short


def flatten_set(d: dict, where: str) -> dict:
    """``{"train": {"lr": 1}}`` or ``{"train.lr": 1}`` -> ``{"train.lr": 1}`` (one level only)."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where} must be a table of overrides; got {d!r}")
    out = {}
    for k, v in d.items():
        if k in ("env", "model", "train", "record") and isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


def load_spec(spec) -> SweepSpec:
    """Read a sweep spec from a TOML path or a sweep preset name.

    Raises
    ------
    ConfigError
        For a missing file, an unknown preset or a spec that breaks a rule.
    """
    from decisionnets.config import preset_names, read_preset, read_toml

    path = Path(str(spec))
    if path.suffix == ".toml" or path.is_file():
        if not path.is_file():
            raise ConfigError(f"sweep spec not found: {path}")
        raw = read_toml(path.read_text(), f"sweep spec {path}")
        name, root = path.stem, path.resolve().parent
    else:
        names = preset_names("sweep")
        if str(spec) not in names:
            raise ConfigError(f"unknown sweep {spec!r}; give a .toml file or one of: {', '.join(names) or '(none)'}")
        raw, name, root = read_preset(str(spec)), str(spec), None
    if "sweep" not in raw or not isinstance(raw["sweep"], dict):
        raise ConfigError(f"sweep spec {spec} needs a [sweep] table")
    return parse_spec(raw, name=name, root=root)


def _int_at_least(value, lo: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= lo


def parse_analysis(table: dict | None) -> dict:
    """``[sweep.analysis]`` validated and merged over :data:`ANALYSIS_DEFAULTS`."""
    from decisionnets.decoding import decoder_names

    table = table or {}
    if not isinstance(table, dict):
        raise ConfigError(f"sweep.analysis must be a table; got {table!r}")
    if "method" in table:
        raise ConfigError("sweep.analysis.method was removed: every sweep runs the analysis of `decisionnets analyze` "
                          f"(report.analyze_run); delete the key (got method = {table['method']!r})")
    a = {**ANALYSIS_DEFAULTS, **table}
    bad = sorted(set(a) - set(ANALYSIS_DEFAULTS))
    if bad:
        raise ConfigError(f"unknown key sweep.analysis.{bad[0]}; valid: {', '.join(ANALYSIS_DEFAULTS)}")
    for key in ("epoch_stride", "time_stride"):
        if not _int_at_least(a[key], 1):
            raise ConfigError(f"sweep.analysis.{key} must be an integer >= 1; got {a[key]!r}")
    if not _int_at_least(a["folds"], 3):
        raise ConfigError(f"sweep.analysis.folds must be an integer >= 3; got {a['folds']!r}")
    decs = a["decoder"] if isinstance(a["decoder"], list) else [a["decoder"]]
    if not decs or [d for d in decs if d not in decoder_names()]:
        raise ConfigError(f"sweep.analysis.decoder must be a decoder family or a list of them "
                          f"({', '.join(decoder_names())}); got {a['decoder']!r}")
    if not (isinstance(a["epochs"], list) and all(_int_at_least(e, 0) for e in a["epochs"])):
        raise ConfigError(f"sweep.analysis.epochs must be a list of integers >= 0 ([] = all); got {a['epochs']!r}")
    if not (isinstance(a["variables"], list) and all(isinstance(v, str) and v for v in a["variables"])):
        raise ConfigError(f"sweep.analysis.variables must be a list of label names ([] = analyze's defaults); "
                          f"got {a['variables']!r}")
    for key in ("layer", "period"):
        if not isinstance(a[key], str):
            raise ConfigError(f"sweep.analysis.{key} must be a string (\"\" = all); got {a[key]!r}")
    if a["dtype"] not in ("float32", "float64"):
        raise ConfigError(f"sweep.analysis.dtype must be float32 or float64; got {a['dtype']!r}")
    if not isinstance(a["figures"], bool):
        raise ConfigError(f"sweep.analysis.figures must be true or false; got {a['figures']!r}")
    from decisionnets.representation import DECODING_NAME, REPRESENTATION_ANALYSES

    known = [DECODING_NAME, *REPRESENTATION_ANALYSES]
    if not (isinstance(a["analyses"], list) and all(isinstance(n, str) and n in known for n in a["analyses"])):
        raise ConfigError(f"sweep.analysis.analyses must be a list of analysis names ({', '.join(known)}); "
                          f"got {a['analyses']!r}")
    return a


def parse_spec(raw: dict, name: str = "sweep", root: Path | None = None) -> SweepSpec:
    """Validate the raw TOML dict of a sweep spec into a :class:`SweepSpec`."""
    sw = raw["sweep"]
    bad = sorted(set(sw) - set(SPEC_KEYS))
    if bad:
        raise ConfigError(f"unknown key sweep.{bad[0]}; valid: {', '.join(SPEC_KEYS)}")
    base = sw.get("base")
    if not isinstance(base, str) or not base:
        raise ConfigError(f"sweep.base must name a preset or a config .toml file; got {base!r}")
    seeds = sw.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if not (isinstance(seeds, list) and seeds and all(_int_at_least(s, 0) for s in seeds)) \
            or len(set(seeds)) != len(seeds):
        raise ConfigError(f"sweep.seeds must be a non-empty list of distinct integers >= 0; got {seeds!r}")
    common = flatten_set(sw.get("set", {}), "sweep.set")
    grid = {}
    for k, v in flatten_set(sw.get("grid", {}), "sweep.grid").items():
        if not isinstance(v, list) or not v:
            raise ConfigError(f"sweep.grid.{k} must be a non-empty list of values; got {v!r}")
        grid[k] = tuple(v)
    axes = {}
    raw_axes = sw.get("axes", {})
    if not isinstance(raw_axes, dict):
        raise ConfigError(f"sweep.axes must be a table of arrays of tables ([[sweep.axes.NAME]]); got {raw_axes!r}")
    for dim, points in raw_axes.items():
        if not isinstance(points, list) or not points or not all(isinstance(p, dict) for p in points):
            raise ConfigError(f"sweep.axes.{dim} must be an array of tables ([[sweep.axes.{dim}]]); got {points!r}")
        for i, p in enumerate(points):
            badp = sorted(set(p) - set(POINT_KEYS))
            if badp:
                raise ConfigError(f"unknown key sweep.axes.{dim}[{i}].{badp[0]}; valid: {', '.join(POINT_KEYS)}")
            if "value" not in p or isinstance(p["value"], (dict, list)):
                raise ConfigError(f"sweep.axes.{dim}[{i}] needs a scalar value (its coordinate); got {p.get('value')!r}")
            if "pretrain" in p and not isinstance(p["pretrain"], dict):
                raise ConfigError(f"sweep.axes.{dim}[{i}].pretrain must be a table {{set = ..., epochs = ...}}")
        values = [p["value"] for p in points]
        if len(set(values)) != len(values):
            raise ConfigError(f"sweep.axes.{dim} has repeated values {values!r}")
        axes[dim] = tuple(points)
    analysis = parse_analysis(sw.get("analysis", {}))
    name = str(sw.get("name", name))
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise ConfigError(f"sweep.name may use letters, digits, '.', '_' and '-' only; got {name!r}")
    spec = SweepSpec(name=name, description=str(raw.get("description", "")), base=base, seeds=tuple(seeds),
                     common=common, grid=grid, axes=axes, analysis=analysis, root=root)
    dims = spec.dims
    if len(set(dims)) != len(dims) or "seed" in dims:
        raise ConfigError(f"sweep dims must be distinct and not 'seed'; got {dims}")
    return spec
