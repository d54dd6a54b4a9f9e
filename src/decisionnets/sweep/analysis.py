"""Each run of a sweep is analysed as ``decisionnets analyze`` does: :func:`report.analyze_run`.

``[sweep.analysis]`` (:data:`decisionnets.sweep.spec.ANALYSIS_DEFAULTS`) becomes analyze_run's
arguments (:func:`analyze_kwargs`), so a sweep's ``RUN_DIR/information.nc`` has the layout of
``decisionnets analyze`` (``information`` (layer, [decoder,] variable, epoch[, time]),
``information_sd``, ``decoding_accuracy``, ``converged``, ``error_information``, ...).
:func:`is_analyzed` says whether a run's information.nc already answers the options, so a rerun
with new options (another decoder list, more variables) decodes again only the runs that lack
them, and never retrains.

``analyses = ["selectivity", "geometry", ...]`` adds representation analyses
(:mod:`decisionnets.representation`) to each run's analysis: the decoding always runs (the
sweep's summary reads ``information.nc``), then each named one writes ``RUN_DIR/analyses/NAME.nc``.
"""

from __future__ import annotations

from pathlib import Path


def _decoders(analysis: dict) -> list[str]:
    d = analysis["decoder"]
    return list(d) if isinstance(d, (list, tuple)) else [d]


def analysis_epochs(recorded, analysis: dict) -> list[int] | None:
    """The recorded epochs to decode: ``epochs`` (or all), then every ``epoch_stride``-th (first and last kept).

    Returns None when that is every recorded epoch.
    """
    from decisionnets.errors import ConfigError

    recorded = sorted(int(e) for e in recorded)
    want = recorded
    if analysis.get("epochs"):
        missing = [e for e in analysis["epochs"] if int(e) not in set(recorded)]
        if missing:
            raise ConfigError(f"sweep.analysis.epochs: epochs {missing} were not recorded; recorded: {recorded}")
        want = [int(e) for e in analysis["epochs"]]
    k = analysis.get("epoch_stride", 1)
    if k > 1 and want:
        want = [want[i] for i in sorted({*range(0, len(want), k), len(want) - 1})]
    return None if want == recorded else want


def _recorded_epochs(run_dir) -> list[int]:
    """The run's recorded epochs, from its activation files' names (``activations/epoch_00012.nc``)."""
    from decisionnets.io import epoch_path

    folder = epoch_path(run_dir, 0).parent
    return sorted(int(f.stem.partition("_")[2]) for f in folder.glob("epoch_*.nc") if f.stem.partition("_")[2].isdigit())


def analyze_kwargs(run_dir, analysis: dict) -> dict:
    """Keyword arguments of :func:`decisionnets.report.analyze_run` for ``analysis`` on ``run_dir``."""
    decs = _decoders(analysis)
    return {"variables": list(analysis["variables"]) or None, "decoder": decs if len(decs) > 1 else decs[0],
            "folds": analysis["folds"], "epochs": analysis_epochs(_recorded_epochs(run_dir), analysis),
            "layers": [analysis["layer"]] if analysis["layer"] else None,
            "periods": [analysis["period"]] if analysis["period"] else None,
            "time_stride": analysis["time_stride"], "dtype": analysis["dtype"],
            "figures": analysis["figures"], "progress": False,
            "analyses": _analyses(analysis)}


def _analyses(analysis: dict) -> list[str] | None:
    """analyze_run's ``analyses``: None (the decoding alone), or the decoding then the named representation analyses."""
    from decisionnets.representation import DECODING_NAME

    extra = [n for n in analysis.get("analyses", []) if n != DECODING_NAME]
    return [DECODING_NAME, *extra] if extra else None


def analyze(run_dir, analysis: dict) -> list[Path]:
    """Run ``decisionnets analyze``'s analysis on one run with the sweep's options; returns analyze_run's paths."""
    from decisionnets.report import analyze_run

    return analyze_run(run_dir, **analyze_kwargs(run_dir, analysis))


def is_analyzed(run_dir, analysis: dict) -> bool:
    """Whether ``RUN_DIR/information.nc`` already holds what ``analysis`` asks for.

    True when it was written by analyze_run (it has a ``layer`` dim) with the same decoder list,
    folds and precision, and holds the asked layer, variables, epochs and period (time-resolved
    runs); per-run figures are required only when asked for. ``time_stride`` is not checked.
    """
    import xarray as xr

    run_dir = Path(run_dir)
    path = run_dir / "information.nc"
    if not path.is_file():
        return False
    try:
        with xr.open_dataset(path, engine="netcdf4") as info:
            attrs = dict(info.attrs)
            if "layer" not in info.dims or "information" not in info:
                return False  # the layout of the sweep's former lean analysis: decode again
            layers = {str(x) for x in info["layer"].values}
            variables = {str(x) for x in info["variable"].values}
            epochs = {int(e) for e in info["epoch"].values}
            periods = ({str(x) for x in info["time_period"].values} if "time_period" in info.coords else None)
    except (OSError, ValueError, RuntimeError):
        return False
    if str(attrs.get("analysis_decoder", "")).split(",") != _decoders(analysis):
        return False
    if int(attrs.get("analysis_folds", -1)) != analysis["folds"] or attrs.get("analysis_dtype") != analysis["dtype"]:
        return False
    if analysis["layer"] and analysis["layer"] not in layers:
        return False
    if not set(analysis["variables"]) <= variables:
        return False
    try:
        recorded = _recorded_epochs(run_dir)
        want = analysis_epochs(recorded, analysis)
    except Exception:  # noqa: BLE001 - unreadable activations: analyzing again will say why
        return False
    if not set(recorded if want is None else want) <= epochs:
        return False
    if periods is not None and analysis["period"] and periods != {analysis["period"]}:
        return False
    if any(not (run_dir / "analyses" / f"{n}.nc").is_file() for n in (_analyses(analysis) or [])[1:]):
        return False
    return not (analysis["figures"] and not (run_dir / "figures").is_dir())
