"""Typed analysis options: one frozen :class:`AnalysisConfig` for every way of asking for an analysis.

``decisionnets analyze`` (its flags), :func:`decisionnets.report.analyze_run` (its keyword
arguments), a task preset (its ``[analysis]`` table, carried in the run's ``config.json``) and
sweeps (a spec's ``[sweep.analysis]`` table) all build the same object, with the same defaults and
the same checks:

* ``AnalysisConfig(folds=3, decoder=["linear", "mlp"])`` from keyword arguments;
* :meth:`AnalysisConfig.from_table` from a TOML / JSON table (a preset's ``[analysis]``,
  ``[sweep.analysis]``);
* :meth:`AnalysisConfig.from_cli` from the parsed flags that :func:`add_cli_arguments` declared
  (one flag per field, ``--time-stride`` for ``time_stride``).

Precedence, lowest first: the defaults here, the run's preset table
(:func:`decisionnets.report.run_analysis_config`), then the flags given or keyword arguments (an
absent flag is None, so only the flags a user typed override the table). A sweep reads its own
table over :data:`decisionnets.sweep.spec.SWEEP_ANALYSIS` and its base preset's table.

Every option is declared once, here: its type, default, check and help text (the help of the
command-line flag and the row of :func:`options_table`, the table of the documentation). A rule
broken raises :class:`~decisionnets.errors.ConfigError` (a :class:`~decisionnets.errors.UserError`,
CLI exit 2) naming the option, the rule and the value.

Defaults. ``dtype`` is ``float32``: the precision of ``decisionnets analyze`` and of the pinned
regression run; the estimator refits in float64 every problem whose float32 fit diverged. ``layers``
and ``periods`` are lists (several layers or periods may be decoded); a sweep's summary reads one
layer (when exactly one is named) and averages over the first period. Sweeps start from
:data:`decisionnets.sweep.spec.SWEEP_ANALYSIS`, which differs from these defaults in two options
only (``periods = ["decision"]``, ``figures = false``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from decisionnets.errors import ConfigError

__all__ = ["AnalysisConfig", "add_cli_arguments", "options_table", "RENAMED"]


def _opt(default, help: str, kind: str, *, choices=None, metavar=None):
    """A field of :class:`AnalysisConfig`: its default, help text and command-line ``kind``."""
    return field(default=default, metadata={"help": help, "kind": kind, "choices": choices, "metavar": metavar})


#: Former option names -> what to write instead (a table that uses one is refused with this advice).
RENAMED = {
    "layer": 'layers, a list (e.g. layers = ["area3"])',
    "period": 'periods, a list (e.g. periods = ["decision"])',
    "standardize": 'the decoder name: decoder = "linear-raw" is the linear decoder on raw (unstandardized) units',
    "method": "nothing: every analysis is that of `decisionnets analyze` (report.analyze_run); delete the key",
}


@dataclass(frozen=True)
class AnalysisConfig:
    """The options of one analysis of a run (:func:`decisionnets.report.analyze_run`).

    Frozen and validated on construction; list options are stored as tuples, None meaning "the
    run's default" (every layer, every epoch, ...). :meth:`replace` returns a changed copy.
    """

    variables: tuple[str, ...] | None = _opt(
        None, "labels to decode", "strs",
        metavar="VAR")
    decoder: tuple = _opt(
        ("linear",), "decoder families ({decoders}), several giving a `decoder` dim", "strs", metavar="NAME")
    folds: int = _opt(5, "stratified cross-validation folds (>= 3: the inner CV of the penalty uses K-1)", "int")
    seed: int = _opt(0, "seed of the folds and of the subsets of error trials", "int")
    device: str = _opt("cpu", "torch device of the decoders", "str", choices=("cpu", "cuda"))
    dtype: str = _opt("float32", "precision of the decoders' matmuls (diverged float32 fits are refitted in "
                      "float64)", "str", choices=("float32", "float64"))
    epochs: tuple[int, ...] | None = _opt(None, "decode only these recorded epochs", "ints",
                                         metavar="E")
    epoch_stride: int = _opt(1, "then every k-th of those epochs (the first and the last always)", "int")
    time_stride: int = _opt(1, "decode every k-th recorded time step, counted back from the last (kept)", "int")
    layers: tuple[str, ...] | None = _opt(None, "decode only these recorded layers", "strs",
                                         metavar="LAYER")
    periods: tuple[str, ...] | None = _opt(
        None, "time-resolved runs: decode only the time steps of these task periods", "strs",
        metavar="PERIOD")
    cross_temporal_epoch: int | None = _opt(None, "epoch of the cross-temporal matrix",
                                            "int")
    exclude_catch: bool = _opt(True, "leave catch trials (coord catch == 1) out of every decoding problem", "bool")
    bins: tuple[tuple[str, int], ...] = _opt(
        (), "continuous labels decoded through K equal-count bins, VAR=K (over the task's declared bins)", "bins",
        metavar="VAR=K")
    analyses: tuple[str, ...] | None = _opt(
        None, "run exactly these analyses: information (the decoding) and representation analyses ({representation})",
        "strs", metavar="NAME")
    figures: bool = _opt(True, "draw the figures (else only the .nc files)", "bool")

    # ------------------------------------------------------------------ construction and checks
    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _CHECKS[f.name](f.name, getattr(self, f.name)))
        if self.cross_temporal_epoch is not None and self.epochs is not None \
                and self.cross_temporal_epoch not in self.epochs:
            raise ConfigError(f"cross_temporal_epoch must be one of the decoded epochs {list(self.epochs)}; "
                              f"got {self.cross_temporal_epoch}")

    @classmethod
    def from_table(cls, table: Mapping[str, Any] | None, *, where: str = "analysis",
                   base: "AnalysisConfig | None" = None) -> "AnalysisConfig":
        """From a TOML / JSON table (e.g. a sweep's ``[sweep.analysis]``) over ``base`` (default: the defaults).

        Lists may be empty (``[]`` = the default, as None). ``where`` prefixes the messages
        (``sweep.analysis.folds must be ...``).

        Raises
        ------
        ConfigError
            An unknown or renamed key (:data:`RENAMED`), or a value that breaks its rule.
        """
        table = {} if table is None else table
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where} must be a table of analysis options; got {table!r}")
        for key in table:
            if key in RENAMED:
                raise ConfigError(f"{where}.{key} was replaced by {RENAMED[key]}; got {key} = {table[key]!r}")
        bad = sorted(set(table) - set(field_names()))
        if bad:
            raise ConfigError(f"unknown key {where}.{bad[0]}; valid: {', '.join(field_names())}")
        return (base or cls())._replace(dict(table), where)

    @classmethod
    def from_cli(cls, args, *, base: "AnalysisConfig | None" = None) -> "AnalysisConfig":
        """From the flags :func:`add_cli_arguments` declared (an ``argparse.Namespace``; absent flags keep ``base``'s)."""
        given = {name: getattr(args, name) for name in field_names() if getattr(args, name, None) is not None}
        if "bins" in given:
            given["bins"] = _parse_bins(given["bins"])
        return (base or cls())._replace(given, "--", flags=True)

    def replace(self, **options) -> "AnalysisConfig":
        """A copy with ``options`` changed (checked as on construction)."""
        return self._replace(options, "")

    def _replace(self, options: dict, where: str, flags: bool = False) -> "AnalysisConfig":
        bad = sorted(set(options) - set(field_names()))
        if bad and bad[0] in RENAMED:
            raise ConfigError(f"analysis option {bad[0]!r} was replaced by {RENAMED[bad[0]]}; got {bad[0]}={options[bad[0]]!r}")
        if bad:
            raise ConfigError(f"unknown analysis option {bad[0]!r}; valid: {', '.join(field_names())}")
        try:
            return dataclasses.replace(self, **options)
        except ConfigError as e:
            msg = str(e)
            if flags:  # name the flag: "--time-stride must be ..."
                name = msg.split(" ", 1)[0]
                msg = "--" + name.replace("_", "-") + msg[len(name):] if name in field_names() else msg
            elif where:
                msg = f"{where}.{msg}"
            raise ConfigError(msg) from None

    def to_table(self) -> dict:
        """The options as a JSON-able table (tuples as lists; :meth:`from_table` reads it back)."""
        out = {}
        for name in field_names():
            v = getattr(self, name)
            if name == "bins":
                v = {k: n for k, n in v}
            elif name == "decoder":
                v = [str(getattr(d, "name", d)) for d in v]
            elif isinstance(v, tuple):
                v = list(v)
            out[name] = v
        return out

    # ------------------------------------------------------------------ derived values
    @property
    def label_bins(self) -> dict[str, int]:
        """``bins`` as a dict ``{label: K}``."""
        return dict(self.bins)

    @property
    def decoder_names(self) -> list[str]:
        """The decoder families' names (a Decoder object's ``name``)."""
        return [str(getattr(d, "name", d)) for d in self.decoder]

    def select_epochs(self, recorded) -> list[int] | None:
        """The recorded epochs to decode: ``epochs`` (or every recorded one), then every
        ``epoch_stride``-th (the first and the last kept). None when that is every recorded epoch.

        Raises
        ------
        ConfigError
            Some of ``epochs`` were not recorded.
        """
        recorded = sorted(int(e) for e in recorded)
        want = recorded
        if self.epochs is not None:
            missing = [e for e in self.epochs if e not in set(recorded)]
            if missing:
                raise ConfigError(f"epochs {missing} were not recorded; recorded epochs: {recorded}")
            want = list(self.epochs)
        k = self.epoch_stride
        if k > 1 and want:
            want = [want[i] for i in sorted({*range(0, len(want), k), len(want) - 1})]
        return None if want == recorded else want


def field_names() -> tuple[str, ...]:
    """The option names, in declaration order."""
    return tuple(f.name for f in dataclasses.fields(AnalysisConfig))


# ---------------------------------------------------------------------------------- the checks
def _is_int(v) -> bool:
    import numpy as np

    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _int_at_least(lo: int):
    def check(name, v):
        if not (_is_int(v) and v >= lo):
            raise ConfigError(f"{name} must be an integer >= {lo}; got {v!r}")
        return int(v)
    return check


def _optional_int(name, v):
    return None if v is None else _int_at_least(0)(name, v)


def _choice(*allowed):
    def check(name, v):
        if v not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {v!r}")
        return v
    return check


def _bool(name, v):
    if not isinstance(v, bool):
        raise ConfigError(f"{name} must be true or false; got {v!r}")
    return v


def _names(name, v):
    """None, or a non-empty list of non-empty strings (a string alone: a list of one; [] = None)."""
    if v is None:
        return None
    if isinstance(v, str):
        v = [v]
    if not (isinstance(v, (list, tuple)) and all(isinstance(x, str) and x for x in v)):
        raise ConfigError(f"{name} must be a list of names ([] = not narrowed: the default); got {v!r}")
    if len(set(v)) != len(v):
        raise ConfigError(f"{name} must not repeat a name; got {list(v)!r}")
    return tuple(v) or None


def _epochs(name, v):
    if v is None:
        return None
    if not (isinstance(v, (list, tuple)) and all(_is_int(e) and e >= 0 for e in v)):
        raise ConfigError(f"{name} must be a list of integers >= 0 ([] = every recorded epoch); got {v!r}")
    return tuple(int(e) for e in v) or None


def _device(name, v):
    if not (isinstance(v, str) and re.fullmatch(r"cpu|cuda(:\d+)?", v)):
        raise ConfigError(f"{name} must be 'cpu', 'cuda' or 'cuda:N'; got {v!r}")
    return v


def _decoders(name, v):
    """One decoder family or a non-empty list of distinct ones: registered names or Decoder objects."""
    from decisionnets.decoding import Decoder, decoder_names

    items = [v] if isinstance(v, (str, Decoder)) else v
    if not isinstance(items, (list, tuple)) or not items:
        raise ConfigError(f"{name} must be a decoder family or a non-empty list of them "
                          f"({', '.join(decoder_names())}); got {v!r}")
    bad = [d for d in items if not isinstance(d, Decoder) and d not in decoder_names()]
    if bad:
        raise ConfigError(f"{name} must name decoder families ({', '.join(decoder_names())}); got {bad[0]!r}")
    names = [str(getattr(d, "name", d)) for d in items]
    if len(set(names)) != len(names):
        raise ConfigError(f"{name} must not repeat a family; got {names}")
    return tuple(items)


def _bins(name, v):
    """{label: K} (or pairs) with integers K >= 2, stored as sorted (label, K) pairs."""
    if v is None:
        return ()
    pairs = v.items() if isinstance(v, Mapping) else v
    try:
        pairs = [(k, n) for k, n in pairs]
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must map label names to integers >= 2 (e.g. {{sample_theta = 4}}); got {v!r}") \
            from None
    for k, n in pairs:
        if not (isinstance(k, str) and k and _is_int(n) and n >= 2):
            raise ConfigError(f"{name} must map label names to integers >= 2; got {k!r} = {n!r}")
    return tuple(sorted((k, int(n)) for k, n in pairs))


def _analysis_names(name, v):
    v = _names(name, v)
    if v is None:
        return None
    from decisionnets.representation import DECODING_NAME, REPRESENTATION_ANALYSES

    known = [DECODING_NAME, *REPRESENTATION_ANALYSES]
    bad = [n for n in v if n not in known]
    if bad:
        raise ConfigError(f"{name} must name analyses ({', '.join(known)}); got {bad[0]!r}")
    return v


_CHECKS = {
    "variables": _names, "decoder": _decoders, "folds": _int_at_least(3), "seed": _int_at_least(0),
    "device": _device, "dtype": _choice("float32", "float64"), "epochs": _epochs,
    "epoch_stride": _int_at_least(1), "time_stride": _int_at_least(1), "layers": _names, "periods": _names,
    "cross_temporal_epoch": _optional_int, "exclude_catch": _bool, "bins": _bins, "analyses": _analysis_names,
    "figures": _bool,
}


def _parse_bins(items) -> dict:
    """``["sample_theta=4", ...]`` (the ``--bins`` flag) -> ``{"sample_theta": 4}``."""
    out = {}
    for b in items:
        var, _, k = str(b).partition("=")
        if not var.strip() or not k.strip().isdigit() or int(k) < 2:
            raise ConfigError(f"--bins takes VAR=K with an integer K >= 2; got {b!r}")
        out[var.strip()] = int(k)
    return out


# ---------------------------------------------------------------------------------- the CLI and docs
def add_cli_arguments(parser) -> None:
    """Add one flag per option of :class:`AnalysisConfig` to an ``argparse`` parser.

    ``--NAME`` (underscores as dashes) for values and lists (``nargs="+"``), ``--no-NAME`` for the
    options that default to true, ``--bins VAR=K`` (repeatable). An absent flag is None in the
    namespace: :meth:`AnalysisConfig.from_cli` keeps ``base``'s value (the run's ``[analysis]``
    table, else the default).
    """
    for f in dataclasses.fields(AnalysisConfig):
        meta, flag = f.metadata, "--" + f.name.replace("_", "-")
        default = _shown_default(f.name)
        kind = meta["kind"]
        helptext = f"{_help(f)} (default: {default}{'; this flag turns it off' if kind == 'bool' else ''})"
        if kind == "bool":
            parser.add_argument(f"--no-{f.name.replace('_', '-')}" if f.default else flag, dest=f.name,
                                action="store_const", const=not f.default, default=None, help=helptext)
        elif kind == "bins":
            parser.add_argument(flag, dest=f.name, action="append", default=None, metavar=meta["metavar"],
                                help=helptext + "; repeatable")
        else:
            parser.add_argument(flag, dest=f.name, default=None, help=helptext, choices=meta["choices"],
                                metavar=meta["metavar"] or ("N" if kind == "int" else None), nargs="+" if kind in ("strs", "ints") else None,
                                type=int if kind in ("int", "ints") else str)


def _help(f) -> str:
    """The help text of field ``f``, with the registered decoder families and representation analyses."""
    from decisionnets.decoding import decoder_names
    from decisionnets.representation import REPRESENTATION_ANALYSES

    return f.metadata["help"].format(decoders=", ".join(decoder_names()),
                                     representation=", ".join(REPRESENTATION_ANALYSES))


def _shown_default(name: str) -> str:
    v = AnalysisConfig().to_table()[name]
    if v is None:
        return {"variables": "the task's declared labels, then choice", "analyses": "information",
                "cross_temporal_epoch": "the last decoded"}.get(name, "all")
    if isinstance(v, list):
        return " ".join(map(str, v))
    if isinstance(v, dict):
        return "none" if not v else " ".join(f"{k}={n}" for k, n in v.items())
    return str(v).lower() if isinstance(v, bool) else str(v)


def options_table() -> str:
    """The analysis options as a reStructuredText list-table: option (TOML key and flag), default,
    meaning. The documentation (``docs/guide/analysis_options.rst``) includes it; a test keeps it current."""
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 22 22 12 44", "",
             "   * - option (keyword, ``[analysis]`` key)", "     - flag of ``decisionnets analyze``",
             "     - default", "     - meaning"]
    for f in dataclasses.fields(AnalysisConfig):
        flag = ("--no-" if f.metadata["kind"] == "bool" and f.default else "--") + f.name.replace("_", "-")
        arg = {"strs": f" {f.metadata['metavar']} ...", "ints": f" {f.metadata['metavar']} ...",
               "bins": " VAR=K", "int": " N", "str": " " + "|".join(f.metadata["choices"] or ["X"])}.get(
                   f.metadata["kind"], "")
        lines += [f"   * - ``{f.name}``", f"     - ``{flag}{arg}``", f"     - ``{_shown_default(f.name)}``",
                  f"     - {_help(f)}"]
    return "\n".join(lines) + "\n"
