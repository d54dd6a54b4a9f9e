"""Run configuration: TOML presets in ``tasks/``, overrides, validation.

A config is an immutable :class:`Config` with five parts that mirror the
TOML sections of a preset::

    description = "one line shown by `decisionnets tasks`"
    seed = 0
    [env]       name = "ColorDirection", then the env's own parameters (dt, sigma, timing, ...)
    [model]     kind = "leaky_rnn", then the model's own parameters (hidden_size, tau, ...)
    [train]     epochs, lr, batch_size, momentum, weight_decay, grad_clip, n_trials,
                val_fraction, fresh_trials, optimizer ("sgd"/"adam"), [[train.phases]]
    [record]    schedule, n_per_condition, time_stride, layers, dtype, probe_seed
    [agent]     (optional) algorithm = "a2c" | "reinforce" trains by reward instead of supervision
                (decisionnets.agents.a2c), with gamma, gae_lambda, entropy, value_coef, optimizer
    [analysis]  (optional) options of ``decisionnets analyze`` for this task's runs (the keys of
                :class:`~decisionnets.analysis_config.AnalysisConfig`), checked when the config
                loads; flags and keyword arguments of an analysis override them

Overrides (``--set key=value``) take a dotted key (``train.lr``,
``env.sigma``) or a bare one when it is unambiguous (``lr``, ``batch_size``,
``seed``; a bare env or model parameter also works when only one of them has
it). Values are parsed as TOML (``0.1``, ``true``, ``[100, 100]``, ``"relu"``;
an unquoted word is taken as a string). Every rule broken raises
:class:`~decisionnets.errors.ConfigError` with the key, the rule and the value.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import types
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from decisionnets.errors import ConfigError


def _freeze(obj):
    """Deep-frozen copy: dicts become read-only mappings, lists tuples."""
    if isinstance(obj, dict):
        return types.MappingProxyType({k: _freeze(v) for k, v in obj.items()})
    if isinstance(obj, (list, tuple)):
        return tuple(_freeze(v) for v in obj)
    return obj


def _thaw(obj):
    """Plain JSON/TOML-able copy of a frozen value."""
    if isinstance(obj, (dict, types.MappingProxyType)):
        return {k: _thaw(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_thaw(v) for v in obj]
    return obj


@dataclass(frozen=True)
class Phase:
    """A stretch of training with its own optimizer settings (None: the base value).

    Phases run first, in order; the remaining epochs use the base ``[train]`` settings.
    """

    epochs: int
    lr: float | None = None
    batch_size: int | None = None
    momentum: float | None = None
    weight_decay: float | None = None


@dataclass(frozen=True)
class TrainConfig:
    """Optimizer settings. An epoch is one pass over the fixed training set.

    ``optimizer`` is "sgd" (the package's default: plain or momentum SGD) or "adam"
    (``torch.optim.Adam`` with ``lr``, ``weight_decay`` as L2 and default betas; ``momentum``
    must then be 0).
    """

    epochs: int = 30
    lr: float = 0.05
    batch_size: int = 32
    momentum: float = 0.0
    weight_decay: float = 0.0
    grad_clip: float = 0.0  #: max gradient norm; 0 = no clipping
    n_trials: int = 10000  #: trials generated for training + validation
    val_fraction: float = 0.1
    fresh_trials: bool = False  #: draw a new training set every epoch
    phases: tuple = ()  #: tuple of Phase
    init_from: str = ""  #: checkpoint (.pt) or run directory whose final weights initialize the model
    optimizer: str = "sgd"  #: "sgd" or "adam"


@dataclass(frozen=True)
class RecordConfig:
    """What the recorder stores. ``schedule``: "log" (0,1,2,3,4,6,8,11,16,23,...), "all", or a list of epochs."""

    schedule: object = "log"
    n_per_condition: int = 36
    time_stride: int = 1  #: keep every k-th time step (always keeping the last)
    layers: tuple = ()  #: layers to record; () = the model's default
    dtype: str = "float32"
    #: seed of the probe set, independent of the run seed so that every seed of a sweep is
    #: probed on the same trials (the spread across seeds is then the networks'); the probe set
    #: of probe_seed s is the one a run with seed s drew before this option existed.
    #: -1 = derive it from the run seed (each seed its own probe set).
    probe_seed: int = 0


ALGORITHMS = ("supervised", "a2c", "reinforce")


@dataclass(frozen=True)
class AgentConfig:
    """How a recurrent policy learns from reward (``[agent]``); ``supervised`` = not an agent run.

    With ``a2c`` or ``reinforce``, ``[train]`` means: ``epochs``, ``n_trials`` trials played per
    epoch, ``batch_size`` trials (envs) per update, ``lr``, ``weight_decay``, ``grad_clip``, phases.
    """

    algorithm: str = "supervised"  #: "a2c" (actor-critic, GAE) or "reinforce" (return - batch mean baseline)
    gamma: float = 1.0  #: discount per time step
    gae_lambda: float = 0.95  #: GAE lambda of the advantages (a2c)
    entropy: float = 0.01  #: entropy bonus coefficient
    value_coef: float = 0.5  #: weight of the value (critic) loss
    optimizer: str = "adam"  #: "adam" or "sgd" (with train.momentum)
    normalize_advantage: bool = True  #: standardize advantages over each batch


@dataclass(frozen=True)
class Config:
    """A whole run: task name, seed, device and the four sections."""

    task: str
    env: types.MappingProxyType
    model: types.MappingProxyType
    train: TrainConfig
    record: RecordConfig
    seed: int = 0
    device: str = "cpu"
    description: str = ""
    agent: AgentConfig = AgentConfig()
    #: the preset's ``[analysis]`` table (checked; {} = none): the analysis options of its runs
    analysis: types.MappingProxyType = dataclasses.field(default_factory=lambda: types.MappingProxyType({}))

    def to_dict(self) -> dict:
        """Plain nested dict (JSON/TOML-able)."""
        d = {"task": self.task, "description": self.description, "seed": self.seed, "device": self.device,
             "env": _thaw(self.env), "model": _thaw(self.model)}
        d["train"] = {f.name: _thaw(getattr(self.train, f.name)) for f in dataclasses.fields(TrainConfig)}
        d["train"]["phases"] = [{k: v for k, v in dataclasses.asdict(p).items() if v is not None}
                                for p in self.train.phases]  # unset = the base value, as in TOML
        d["record"] = {f.name: _thaw(getattr(self.record, f.name)) for f in dataclasses.fields(RecordConfig)}
        if self.agent.algorithm != "supervised":  # supervised configs stay as they were
            d["agent"] = dataclasses.asdict(self.agent)
        if self.analysis:  # only when given: configs without [analysis] (and their hashes) stay as they were
            d["analysis"] = _thaw(self.analysis)
        return d

    @property
    def analysis_config(self):
        """The ``[analysis]`` table over the defaults, an :class:`~decisionnets.analysis_config.AnalysisConfig`."""
        from decisionnets.analysis_config import AnalysisConfig

        return AnalysisConfig.from_table(_thaw(self.analysis), where="analysis")

    def to_json(self) -> str:
        """The resolved config as one JSON string (stored in run dirs and dataset attrs)."""
        return json.dumps(self.to_dict(), sort_keys=True)


OPTIMIZERS = ("sgd", "adam")
TOP_KEYS = ("task", "description", "seed", "device", "base")
#: The largest seed: seeds are stored as 64-bit integers (dataset attrs, sweep tables).
MAX_SEED = 2**63 - 1


def _read_text(path: Path, what: str) -> str:
    """A text file's content; :class:`ConfigError` for one that is not UTF-8 text (e.g. a binary) or unreadable."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{what} {path} cannot be read: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte {e.start}: {data[e.start:e.start + 1]!r}); "
                          "give a TOML file") from None
    if "\x00" in text:
        raise ConfigError(f"{what} {path} holds NUL bytes: it is a binary file, not TOML")
    return text
SECTIONS = ("env", "model", "train", "record", "agent")
_FIELDS = {
    "train": {f.name: f for f in dataclasses.fields(TrainConfig)},
    "record": {f.name: f for f in dataclasses.fields(RecordConfig)},
    "agent": {f.name: f for f in dataclasses.fields(AgentConfig)},
}
_NUMERIC = {
    "train": {"epochs": int, "lr": float, "batch_size": int, "momentum": float, "weight_decay": float,
              "grad_clip": float, "n_trials": int, "val_fraction": float, "fresh_trials": bool, "init_from": str,
              "optimizer": str},
    "record": {"n_per_condition": int, "time_stride": int, "dtype": str, "probe_seed": int},
    "agent": {"algorithm": str, "gamma": float, "gae_lambda": float, "entropy": float, "value_coef": float,
              "optimizer": str, "normalize_advantage": bool},
}


# --- presets -----------------------------------------------------------------
def _preset_files() -> dict:
    root = resources.files("decisionnets.presets")
    return {p.name[:-5]: p for p in root.iterdir() if p.name.endswith(".toml")}


def read_toml(text: str, where: str) -> dict:
    """Parse TOML ``text``; ``where`` names its source in the :class:`ConfigError` for invalid TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where} is not valid TOML: {e}") from None


def preset_names(kind: str = "task") -> list[str]:
    """Names of the installed presets; ``kind="sweep"`` lists sweep specs instead."""
    out = []
    for name, p in sorted(_preset_files().items()):
        is_sweep = "sweep" in read_toml(p.read_text(), f"preset {name}")
        if is_sweep == (kind == "sweep"):
            out.append(name)
    return out


def read_preset(name: str, _seen: tuple = ()) -> dict:
    """The raw TOML dict of preset ``name``; a preset with ``base = "other"`` is merged over that preset."""
    files = _preset_files()
    if name not in files:
        raise ConfigError(f"unknown task {name!r}; valid: {', '.join(preset_names())}")
    raw = read_toml(files[name].read_text(), f"preset {name}")
    base = raw.pop("base", None) if "sweep" not in raw else None
    if base:
        if base in _seen or base == name:
            raise ConfigError(f"preset {name}: base presets form a loop ({' -> '.join((*_seen, name, base))})")
        raw = merge(read_preset(base, (*_seen, name)), raw)
    return raw


def preset_path(name: str):
    """The installed path (Traversable) of preset ``name``."""
    files = _preset_files()
    if name not in files:
        raise ConfigError(f"unknown task {name!r}; valid: {', '.join(preset_names())}")
    return files[name]


# --- merging and overrides -------------------------------------------------
def merge(base: dict, over: dict) -> dict:
    """Raw config ``over`` laid over ``base`` (a new dict): tables merge key by key, other values
    (and an env's ``timing`` table, which is replaced whole) are replaced."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "timing":
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


_merge = merge  # the name used before merge was public


def raw_config(source: str, root=None) -> tuple[dict, str]:
    """The raw (TOML-shaped) config of a preset name or a config ``.toml`` file, and its task name.

    A file's ``base = "preset"`` is merged under it (and removed); relative file paths are taken
    relative to ``root`` when given. The task name is the preset's name or the file's stem.

    Raises
    ------
    ConfigError
        For an unknown preset, a missing file or invalid TOML.
    """
    if str(source).endswith(".toml"):
        p = Path(source)
        p = p if p.is_absolute() or root is None else Path(root) / p
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        raw = read_toml(_read_text(p, "config file"), f"config file {p}")
        parent = raw.pop("base", None)
        return (merge(read_preset(parent), raw) if parent else raw), p.stem
    raw = read_preset(str(source))
    raw.pop("base", None)
    return raw, str(source)


def parse_value(text: str):
    """Parse an override value as TOML; an unquoted word is a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _param_names(section: str, raw: dict) -> list[str]:
    """Constructor parameters of the env or model named in ``raw``."""
    import inspect

    try:
        if section == "model":
            from decisionnets.models import model_class

            cls = model_class(raw.get("model", {}).get("kind", ""))
            skip = ("self", "n_inputs", "n_outputs")
        else:
            from decisionnets.build import env_class

            cls = env_class(raw.get("env", {}).get("name", ""))
            skip = ("self",)
    except ConfigError:
        return []
    init = cls.__init__ if inspect.isclass(cls) else cls  # a neurogym collection's factory function
    return [p for p in inspect.signature(init).parameters if p not in skip]


def apply_override(raw: dict, assignment: str) -> dict:
    """Apply one ``key=value`` (``--set`` syntax, the value as TOML) to a raw config dict; returns the new dict."""
    if "=" not in assignment:
        raise ConfigError(f"--set takes key=value; got {assignment!r}")
    key, _, text = assignment.partition("=")
    key = key.strip()
    if key in ("train.phases", "phases"):
        raise ConfigError("train.phases cannot be set with --set; put [[train.phases]] in a --config file")
    return set_value(raw, key, parse_value(text.strip()))


def set_value(raw: dict, key: str, value) -> dict:
    """Set one config value (a Python value, not TOML text) in a raw config dict; returns the new dict.

    ``key`` is dotted (``train.lr``, ``env.timing``, ``train.phases`` with a list of tables,
    ``analysis.folds``: one option of the ``[analysis]`` table) or a
    bare name when unambiguous (``lr``, ``seed``; an env or model parameter when only one of them
    has it), as for ``--set``. Values are validated later, by :func:`from_dict`.
    """
    if "." in key:
        section, _, name = key.partition(".")
        if section not in SECTIONS and section != "analysis":  # [analysis]: checked by from_dict
            raise ConfigError(f"unknown config section {section!r} in {key!r}; valid: {', '.join(SECTIONS)}, analysis")
    elif key in ("seed", "device", "description"):
        return {**raw, key: value}
    else:
        owners = [s for s in ("train", "record", "agent") if key in _FIELDS[s]]
        owners += [s for s in ("env", "model") if key in _param_names(s, raw)]
        if len(owners) != 1:
            valid = sorted({*_FIELDS["train"], *_FIELDS["record"], *_FIELDS["agent"], "seed", "device"})
            if owners:
                raise ConfigError(f"config key {key!r} is ambiguous ({', '.join(owners)}); write it as "
                                  + " or ".join(f"{s}.{key}" for s in owners))
            raise ConfigError(f"unknown config key {key!r}; valid: {', '.join(valid)}, or env.<param> / model.<param>")
        section, name = owners[0], key
    new = copy.deepcopy(raw)
    new.setdefault(section, {})
    new[section][name] = copy.deepcopy(value)
    return new


# --- validation -------------------------------------------------------------
def _check_type(section: str, name: str, value, kind):
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ConfigError(f"{section}.{name} must be {kind.__name__}; got {value!r} ({type(value).__name__})")
    return float(value) if kind is float else value


def _build_section(section: str, d: dict):
    fields = _FIELDS[section]
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ConfigError(f"unknown config key {section}.{unknown[0]}; valid in [{section}]: {', '.join(fields)}")
    values = {}
    for name, value in d.items():
        kind = _NUMERIC[section].get(name)
        values[name] = _check_type(section, name, value, kind) if kind else value
    if section == "train":
        phases = []
        for i, p in enumerate(values.pop("phases", [])):
            if not isinstance(p, dict):
                raise ConfigError(f"train.phases[{i}] must be a table; got {p!r}")
            pf = {f.name for f in dataclasses.fields(Phase)}
            bad = sorted(set(p) - pf)
            if bad:
                raise ConfigError(f"unknown key train.phases[{i}].{bad[0]}; valid: {', '.join(sorted(pf))}")
            if "epochs" not in p:
                raise ConfigError(f"train.phases[{i}] needs epochs")
            kinds = {"epochs": int, "lr": float, "batch_size": int, "momentum": float, "weight_decay": float}
            phases.append(Phase(**{k: _check_type(f"train.phases[{i}]", k, v, kinds[k]) for k, v in p.items()}))
        values["phases"] = tuple(phases)
        cfg = TrainConfig(**values)
        _validate_train(cfg)
        return cfg
    if section == "agent":
        cfg = AgentConfig(**values)
        _validate_agent(cfg)
        return cfg
    if "layers" in values:
        layers = values["layers"]
        if isinstance(layers, str):
            layers = [layers]
        if not isinstance(layers, (list, tuple)) or not all(isinstance(x, str) for x in layers):
            raise ConfigError(f"record.layers must be a list of layer names; got {layers!r}")
        values["layers"] = tuple(layers)
    if isinstance(values.get("schedule"), list):
        values["schedule"] = tuple(values["schedule"])
    cfg = RecordConfig(**values)
    _validate_record(cfg)
    return cfg


def _positive(name, value, strict=True):
    if not math.isfinite(value):  # nan passes every comparison; inf is no learning rate or bound
        raise ConfigError(f"{name} must be a finite number {'>' if strict else '>='} 0; got {value!r}")
    if (value <= 0) if strict else (value < 0):
        raise ConfigError(f"{name} must be {'>' if strict else '>='} 0; got {value!r}")


def _validate_train(t: TrainConfig):
    if t.epochs < 0:
        raise ConfigError(f"train.epochs must be >= 0; got {t.epochs!r}")
    _positive("train.lr", t.lr)
    if t.optimizer not in OPTIMIZERS:
        raise ConfigError(f"train.optimizer must be one of {', '.join(OPTIMIZERS)}; got {t.optimizer!r}")
    if t.optimizer == "adam" and (t.momentum or any(p.momentum for p in t.phases)):
        raise ConfigError(f"train.momentum applies to sgd only; with optimizer adam it must be 0; got {t.momentum!r}"
                          + "".join(f", phases[{i}].momentum={p.momentum!r}" for i, p in enumerate(t.phases) if p.momentum))
    if t.batch_size < 1:
        raise ConfigError(f"train.batch_size must be >= 1; got {t.batch_size!r}")
    if not 0 <= t.momentum < 1:
        raise ConfigError(f"train.momentum must be in [0, 1); got {t.momentum!r}")
    _positive("train.weight_decay", t.weight_decay, strict=False)
    _positive("train.grad_clip", t.grad_clip, strict=False)
    if not 0 <= t.val_fraction < 1:
        raise ConfigError(f"train.val_fraction must be in [0, 1); got {t.val_fraction!r}")
    n_train = t.n_trials - round(t.n_trials * t.val_fraction)
    if n_train < 1:
        raise ConfigError(f"train.n_trials must leave >= 1 training trial after the validation split; got {t.n_trials!r}")
    for i, p in enumerate(t.phases):
        if p.epochs < 1:
            raise ConfigError(f"train.phases[{i}].epochs must be >= 1; got {p.epochs!r}")
        if p.lr is not None:
            _positive(f"train.phases[{i}].lr", p.lr)
        if p.batch_size is not None and p.batch_size < 1:
            raise ConfigError(f"train.phases[{i}].batch_size must be >= 1; got {p.batch_size!r}")
        if p.momentum is not None and not 0 <= p.momentum < 1:
            raise ConfigError(f"train.phases[{i}].momentum must be in [0, 1); got {p.momentum!r}")
        if p.weight_decay is not None:
            _positive(f"train.phases[{i}].weight_decay", p.weight_decay, strict=False)
    if sum(p.epochs for p in t.phases) > t.epochs:
        raise ConfigError(f"train.phases cover {sum(p.epochs for p in t.phases)} epochs, more than train.epochs={t.epochs}")


def _validate_agent(a: AgentConfig):
    if a.algorithm not in ALGORITHMS:
        raise ConfigError(f"agent.algorithm must be one of {', '.join(ALGORITHMS)}; got {a.algorithm!r}")
    if not 0 < a.gamma <= 1:
        raise ConfigError(f"agent.gamma must be in (0, 1]; got {a.gamma!r}")
    if not 0 <= a.gae_lambda <= 1:
        raise ConfigError(f"agent.gae_lambda must be in [0, 1]; got {a.gae_lambda!r}")
    _positive("agent.entropy", a.entropy, strict=False)
    _positive("agent.value_coef", a.value_coef, strict=False)
    if a.optimizer not in ("adam", "sgd"):
        raise ConfigError(f"agent.optimizer must be adam or sgd; got {a.optimizer!r}")


def _validate_record(r: RecordConfig):
    s = r.schedule
    if isinstance(s, str):
        if s not in ("log", "all"):
            raise ConfigError(f"record.schedule must be 'log', 'all' or a list of epochs; got {s!r}")
    elif not (isinstance(s, tuple) and all(isinstance(e, int) and not isinstance(e, bool) and e >= 0 for e in s)):
        raise ConfigError(f"record.schedule must be 'log', 'all' or a list of epochs >= 0; got {s!r}")
    if r.n_per_condition < 1:
        raise ConfigError(f"record.n_per_condition must be >= 1; got {r.n_per_condition!r}")
    if r.time_stride < 1:
        raise ConfigError(f"record.time_stride must be >= 1; got {r.time_stride!r}")
    if r.dtype not in ("float32", "float64", "float16"):
        raise ConfigError(f"record.dtype must be float16, float32 or float64; got {r.dtype!r}")
    if r.probe_seed < -1:
        raise ConfigError(f"record.probe_seed must be >= 0 (or -1: from the run seed); got {r.probe_seed!r}")


def from_dict(raw: dict, task: str = "custom") -> Config:
    """Validate a raw (TOML-shaped) dict into a :class:`Config`."""
    unknown = sorted(set(raw) - set(TOP_KEYS) - set(SECTIONS) - {"sweep", "analysis"})
    if unknown:
        raise ConfigError(f"unknown config key {unknown[0]!r}; valid top-level keys: "
                          f"{', '.join(TOP_KEYS)}, and sections [{'], ['.join((*SECTIONS, 'analysis'))}]")
    for s in SECTIONS:
        if s in raw and not isinstance(raw[s], dict):
            raise ConfigError(f"[{s}] must be a table; got {raw[s]!r}")
    env = dict(raw.get("env", {}))
    model = dict(raw.get("model", {}))
    if "name" not in env:
        raise ConfigError("[env] needs name (e.g. ColorDirection)")
    if "kind" not in model:
        raise ConfigError("[model] needs kind (e.g. leaky_rnn)")
    seed = raw.get("seed", 0)
    if not (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= MAX_SEED):
        raise ConfigError(f"seed must be an integer in [0, 2**63 - 1] (it is stored as a 64-bit integer); got {seed!r}")
    device = raw.get("device", "cpu")
    if device not in ("cpu", "cuda") and not (isinstance(device, str) and device.startswith("cuda:")):
        raise ConfigError(f"device must be cpu or cuda; got {device!r}")
    return Config(
        task=str(raw.get("task", task)), env=_freeze(env), model=_freeze(model),
        train=_build_section("train", raw.get("train", {})),
        record=_build_section("record", raw.get("record", {})),
        seed=seed, device=device, description=str(raw.get("description", "")),
        agent=_build_section("agent", raw.get("agent", {})),
        analysis=_analysis_table(raw.get("analysis", {})),
    )


def _analysis_table(table) -> types.MappingProxyType:
    """The ``[analysis]`` table, checked by :meth:`AnalysisConfig.from_table
    <decisionnets.analysis_config.AnalysisConfig.from_table>` (a ConfigError names ``analysis.KEY``
    and the value) and kept as written (frozen)."""
    from decisionnets.analysis_config import AnalysisConfig

    AnalysisConfig.from_table(table, where="analysis")
    return _freeze(dict(table))


def load_config(task: str | None = None, config_file=None, overrides=(), seed=None, device=None) -> Config:
    """Resolve a run's config: preset, then ``--config`` file, then ``--set`` overrides, seed, device.

    Parameters
    ----------
    task : str, optional
        Preset name (``decisionnets tasks`` lists them).
    config_file : path, optional
        A TOML file of the same schema; ``base = "preset"`` in it (or ``task``)
        names the preset it modifies.
    overrides : sequence of str
        ``key=value`` assignments.
    seed : int, optional
    device : str, optional

    Returns
    -------
    Config
    """
    raw: dict = {}
    name = task
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        file_raw = read_toml(_read_text(path, "config file"), f"config file {path}")
        base = file_raw.pop("base", None)
        name = name or base or file_raw.get("task")
        raw = merge(read_preset(name), file_raw) if (task or base) else file_raw
        name = name or path.stem
    elif task is not None:
        raw = read_preset(task)
    else:
        raise ConfigError("give --task NAME or --config FILE; tasks: " + ", ".join(preset_names()))
    raw.pop("base", None)
    for a in overrides:
        raw = apply_override(raw, a)
    if seed is not None:
        raw["seed"] = seed
    if device is not None:
        raw["device"] = device
    cfg = from_dict(raw, task=name)
    return dataclasses.replace(cfg, task=name)


def config_from_json(text: str) -> Config:
    """Rebuild a :class:`Config` from :meth:`Config.to_json` output."""
    d = json.loads(text)
    if isinstance(d.get("record"), dict) and "probe_seed" not in d["record"]:
        d["record"]["probe_seed"] = -1  # written before probe_seed existed: the probe came from the run seed
    return from_dict(d, task=d.get("task", "custom"))
