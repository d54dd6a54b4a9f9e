"""Each run of a sweep is analysed as ``decisionnets analyze`` does: :func:`report.analyze_run`.

``[sweep.analysis]`` is read into an :class:`~decisionnets.analysis_config.AnalysisConfig` (over
:data:`decisionnets.sweep.spec.SWEEP_ANALYSIS`), the very object ``decisionnets analyze`` builds
from its flags, so a sweep's ``RUN_DIR/information.nc`` has the layout of ``decisionnets analyze``
(``information`` (layer, [decoder,] variable, epoch[, time]), ``information_sd``,
``decoding_accuracy``, ``converged``, ``error_information``, ...). :func:`is_analyzed` says whether
a run's information.nc already answers the options, so a rerun with new options (another decoder
list, more variables) decodes again only the runs that lack them, and never retrains.

``analyses = ["selectivity", "geometry", ...]`` adds representation analyses
(:mod:`decisionnets.representation`) to each run's analysis: the decoding always runs (the
sweep's summary reads ``information.nc``), then each named one writes ``RUN_DIR/analyses/NAME.nc``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from decisionnets.analysis_config import AnalysisConfig


def as_config(analysis) -> AnalysisConfig:
    """An :class:`AnalysisConfig` as is; a ``[sweep.analysis]`` table read over the sweep's defaults."""
    if isinstance(analysis, AnalysisConfig):
        return analysis
    from decisionnets.sweep.spec import parse_analysis

    return parse_analysis(analysis)


def analysis_epochs(recorded, analysis) -> list[int] | None:
    """The recorded epochs to decode (:meth:`AnalysisConfig.select_epochs`); None when that is every one."""
    return as_config(analysis).select_epochs(recorded)


def _recorded_epochs(run_dir) -> list[int]:
    """The run's recorded epochs, from its activation files' names (``activations/epoch_00012.nc``)."""
    from decisionnets.io import epoch_path

    folder = epoch_path(run_dir, 0).parent
    return sorted(int(f.stem.partition("_")[2]) for f in folder.glob("epoch_*.nc") if f.stem.partition("_")[2].isdigit())


def run_config(analysis) -> AnalysisConfig:
    """The options a sweep analyses each run with: ``analysis`` with the decoding always first in ``analyses``."""
    from decisionnets.representation import DECODING_NAME

    cfg = as_config(analysis)
    extra = [n for n in (cfg.analyses or ()) if n != DECODING_NAME]
    return cfg.replace(analyses=[DECODING_NAME, *extra] if extra else None)


def analyze_kwargs(run_dir, analysis) -> dict:
    """The arguments of :func:`decisionnets.report.analyze_run` for ``analysis`` on ``run_dir``:
    ``config`` (:func:`run_config`) and ``progress=False``."""
    return {"config": run_config(analysis), "progress": False}


def analyze(run_dir, analysis) -> list[Path]:
    """Run ``decisionnets analyze``'s analysis on one run with the sweep's options; returns analyze_run's paths."""
    from decisionnets.report import analyze_run

    return analyze_run(run_dir, **analyze_kwargs(run_dir, analysis))


def summary_reduction(table: Mapping) -> tuple[str, str]:
    """(period, layer) a sweep's summary reduces each run to, from its analysis table (sweep.json's
    ``analysis``): the one period decoded ("" when several or all: the mean over every decoded
    step) and the one layer decoded ("" when several or all). Tables written before ``periods``
    and ``layers`` were lists (keys ``period``, ``layer``) are read too."""
    def one(key):
        v = table.get(key + "s")
        return v[0] if isinstance(v, (list, tuple)) and len(v) == 1 else ""

    if "period" not in table and "periods" not in table:  # the oldest tables: the sweep's default then
        return "decision", str(table.get("layer", "") or "")
    period = table["period"] if "period" in table else one("period")
    layer = table["layer"] if "layer" in table else one("layer")
    return str(period or ""), str(layer or "")


def is_analyzed(run_dir, analysis) -> bool:
    """Whether ``RUN_DIR/information.nc`` already holds what ``analysis`` asks for.

    True when it was written by analyze_run (it has a ``layer`` dim) with the same decoder list
    and folds, in the asked precision or a higher one, and holds the asked layers, variables,
    epochs and periods (time-resolved runs); per-run figures are required only when asked for.
    ``time_stride`` is not checked.
    """
    import xarray as xr

    cfg = as_config(analysis)
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
    if str(attrs.get("analysis_decoder", "")).split(",") != cfg.decoder_names:
        return False
    precise = {"float32": ("float32", "float64"), "float64": ("float64",)}[cfg.dtype]
    if int(attrs.get("analysis_folds", -1)) != cfg.folds or attrs.get("analysis_dtype") not in precise:
        return False
    if not set(cfg.layers or ()) <= layers or not set(cfg.variables or ()) <= variables:
        return False
    try:
        recorded = _recorded_epochs(run_dir)
        want = cfg.select_epochs(recorded)
    except Exception:  # noqa: BLE001 - unreadable activations: analyzing again will say why
        return False
    if not set(recorded if want is None else want) <= epochs:
        return False
    if periods is not None and cfg.periods and periods != set(cfg.periods):
        return False
    if any(not (run_dir / "analyses" / f"{n}.nc").is_file() for n in (run_config(cfg).analyses or ())[1:]):
        return False
    return not (cfg.figures and not (run_dir / "figures").is_dir())
