"""Write ``trained_layers_information.json``: the ``linear`` estimates on the stored trained layers.

``tests/decoding/test_nested.py`` checks that the solver (its L2 path search, warm starts, stopping rules)
keeps every estimate within 0.005 bits of these. They were written by the solver *before* the
pair fits went along the L2 path (commit ac572b2: one L-BFGS batch over all penalties, cold
starts), with ``PYTHONPATH=<checkout of that commit>/src OMP_NUM_THREADS=1 python
tests/data/make_trained_layers_information.py``. Rerun it only to pin a deliberate change, and say so.
"""

from __future__ import annotations

import json
import pathlib
import warnings

import numpy as np
import torch

HERE = pathlib.Path(__file__).parent


def estimates() -> dict:
    """{layer: {variable: bits}} of ``UsableInformation(seed=0)`` (5 folds, linear) on every stored layer."""
    from decisionnets.decoding import UsableInformation

    data = np.load(HERE / "trained_layers.npz")
    out = {}
    for layer in [k for k in data.files if "__" not in k]:
        X = data[layer].astype(np.float32) * data[f"{layer}__scale"]
        y = np.stack([data[f"{layer}__{v}"].astype(np.int64) for v in ("color", "direction")])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = UsableInformation(seed=0).fit(X, y[None])
        out[layer] = {v: float(est.information_[0, i]) for i, v in enumerate(("color", "direction"))}
    return out


if __name__ == "__main__":
    torch.set_num_threads(1)
    (HERE / "trained_layers_information.json").write_text(json.dumps(estimates(), indent=1) + "\n")
