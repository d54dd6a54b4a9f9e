"""The sweep spec: read and validate a sweep's TOML (a file or a preset with a ``[sweep]`` table).

The layout is in :mod:`decisionnets.sweep`'s docstring. :func:`load_spec` reads a spec,
:func:`parse_spec` validates its raw dict into a :class:`SweepSpec`; every rule broken raises a
one-line :class:`~decisionnets.errors.ConfigError`. Nothing here trains or reads run directories.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from decisionnets.analysis_config import AnalysisConfig
from decisionnets.errors import ConfigError

SPEC_KEYS = ("base", "seeds", "set", "grid", "axes", "analysis", "name")
POINT_KEYS = ("value", "base", "set", "phases", "init_from", "pretrain")
#: The analysis of every run of a sweep when ``[sweep.analysis]`` says nothing: the defaults of
#: ``decisionnets analyze`` (:class:`~decisionnets.analysis_config.AnalysisConfig`) but for two
#: options: time-resolved runs decode only the ``decision`` period (the summary is its mean; the
#: other steps would cost the most and are not summarized), and no per-run figures (a sweep draws
#: its own). Every other option, its check and its default are AnalysisConfig's.
SWEEP_ANALYSIS = AnalysisConfig(periods=("decision",), figures=False)

#: :data:`SWEEP_ANALYSIS` as a table (the keys ``[sweep.analysis]`` takes, with their defaults); derived, not declared.
ANALYSIS_DEFAULTS = SWEEP_ANALYSIS.to_table()


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
    analysis: AnalysisConfig  #: ``[sweep.analysis]`` over the base's ``[analysis]`` over :data:`SWEEP_ANALYSIS`
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
        if k == "analysis" or k.startswith("analysis."):  # a run's [analysis] table would be ignored
            raise ConfigError(f"{where}.{k}: a sweep analyses all its runs alike, as [sweep.analysis] says; "
                              "analysis options cannot be set per run")
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


def parse_analysis(table: dict | None, base: AnalysisConfig | None = None) -> AnalysisConfig:
    """``[sweep.analysis]`` read over ``base`` (default :data:`SWEEP_ANALYSIS`) into an
    :class:`~decisionnets.analysis_config.AnalysisConfig`; a rule broken is a ConfigError that
    names ``sweep.analysis.KEY``."""
    return AnalysisConfig.from_table(table, where="sweep.analysis", base=base or SWEEP_ANALYSIS)


def base_analysis(base: str, root: Path | None = None) -> AnalysisConfig:
    """The analysis a sweep's ``[sweep.analysis]`` is read over: the ``[analysis]`` table of its base
    (``sweep.base``: a preset or a config ``.toml`` file) over :data:`SWEEP_ANALYSIS`.

    So a sweep's analysis is, lowest first: :data:`SWEEP_ANALYSIS`, the base preset's
    ``[analysis]``, ``[sweep.analysis]``, then ``decisionnets sweep --analysis``. The bases of
    single axis points (``[[sweep.axes.NAME]] base = ...``) are not read: every run of a sweep is
    analysed alike.

    Raises
    ------
    ConfigError
        An unknown base preset, a missing base file, or a base table that breaks a rule.
    """
    from decisionnets.config import raw_config

    raw, _ = raw_config(base, root)
    table = raw.get("analysis", {})
    return AnalysisConfig.from_table(table, where=f"{base} analysis", base=SWEEP_ANALYSIS) if table \
        else SWEEP_ANALYSIS


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
    analysis = parse_analysis(sw.get("analysis", {}), base=base_analysis(base, root))
    name = str(sw.get("name", name))
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise ConfigError(f"sweep.name may use letters, digits, '.', '_' and '-' only; got {name!r}")
    spec = SweepSpec(name=name, description=str(raw.get("description", "")), base=base, seeds=tuple(seeds),
                     common=common, grid=grid, axes=axes, analysis=analysis, root=root)
    dims = spec.dims
    if len(set(dims)) != len(dims) or "seed" in dims:
        raise ConfigError(f"sweep dims must be distinct and not 'seed'; got {dims}")
    return spec
