"""decisionnets: what does my network know, and when did it learn it?

The public API, imported on first use so that ``import decisionnets`` stays
light (the analysis side never needs torch or neurogym)::

    import decisionnets as dn
    ds = dn.open_activations(run_dir)                 # xr.Dataset (epoch, trial, time, unit)
    info = dn.usable_information(ds.hidden, ds.color) # bits
    run = dn.open_run(run_dir)                        # config, activations(), information(), model()
    ds = dn.record(my_model, inputs, layers=["rnn"], labels={"color": color})   # any torch.nn.Module

Every public name is listed in ``__all__``; docs/guide/api_overview.rst gives one line for each.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {
    "open_activations": "decisionnets.io",
    "load_config": "decisionnets.config",
    "train": "decisionnets.training",
    "usable_information": "decisionnets.decoding",
    "decoding_scores": "decisionnets.decoding",
    "cross_temporal_information": "decisionnets.decoding",
    "UsableInformation": "decisionnets.decoding",
    "analyze_run": "decisionnets.report",
    "AnalysisConfig": "decisionnets.analysis_config",
    "run_representation": "decisionnets.representation",
    # a run directory: its config, activations, information, model; re-recording
    "open_run": "decisionnets.runs",
    "Run": "decisionnets.runs",
    "open_information": "decisionnets.runs",
    "rerecord": "decisionnets.runs",
    "config_from_json": "decisionnets.config",
    "build_task": "decisionnets.build",
    "build_model": "decisionnets.build",
    "atomic_path": "decisionnets.io",
    # bringing your own model, training loop and env
    "record": "decisionnets.hooks",
    "RunRecorder": "decisionnets.hooks",
    "probe_trials": "decisionnets.envtrials",
    # analyses
    "choice_vs_stimulus": "decisionnets.analyses",
    "ceiling_for_env": "decisionnets.envs.color_direction_ideal",
    "color_direction_ceiling": "decisionnets.envs.color_direction_ideal",
    # figures (each takes an ``ax`` and returns it; run_figures/demo_figure build whole figures)
    "run_title": "decisionnets.plots",
    "plot_information_vs_epoch": "decisionnets.plots",
    "plot_information_vs_time": "decisionnets.plots",
    "plot_learning_curve": "decisionnets.plots",
    "plot_psychometric": "decisionnets.plots",
    "plot_cross_temporal": "decisionnets.plots",
    "plot_area_information": "decisionnets.plots",
    "run_figures": "decisionnets.plots",
    "demo_figure": "decisionnets.plots",
    # recorded neurons
    "from_arrays": "decisionnets.neurons",
    "from_nwb": "decisionnets.neurons",
    "to_nwb": "decisionnets.neurons",
    "save_recording": "decisionnets.neurons",
    # one decoding problem, scikit-learn style; decoder families
    "UsableInformationEstimator": "decisionnets.estimator",
    "get_decoder": "decisionnets.decoding",
    "decoder_names": "decisionnets.decoding",
    # continuous labels into classes
    "bin_label": "decisionnets.analyses",
}

__all__ = ["__version__", *_API]

# Register the envs with Gymnasium (ids "decisionnets/...-v0"); cheap: no torch, no env module.
from decisionnets.registration import register_envs as _register_envs  # noqa: E402

_register_envs()


def __dir__():
    return sorted(set(globals()) | set(__all__))


def __getattr__(name):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'decisionnets' has no attribute {name!r}")
