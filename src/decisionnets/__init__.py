"""decisionnets: what does my network know, and when did it learn it?

The public API, imported on first use so that ``import decisionnets`` stays
light (the analysis side never needs torch or neurogym)::

    import decisionnets as dn
    ds = dn.open_activations(run_dir)                 # xr.Dataset (epoch, trial, time, unit)
    info = dn.usable_information(ds.hidden, ds.color) # bits
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
    "bin_label": "decisionnets.analyses",
}

__all__ = ["__version__", *_API]


def __getattr__(name):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'decisionnets' has no attribute {name!r}")
