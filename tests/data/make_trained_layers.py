"""Build tests/data/trained_layers.npz: real trained layers for the estimator regression tests.

Provenance (run with the package at the commit that added this file, OMP_NUM_THREADS=1):

    decisionnets train --task color-direction-static --set train.lr=0.005 --set train.batch_size=512 \
        --set train.epochs=60 --set record.schedule='"all"' --seed 1          # "nowd": no weight decay
    decisionnets train --task color-direction-static --set train.weight_decay=0.01 --set train.epochs=60 \
        --set record.schedule='"all"' --seed 0                                # "wd": lr 0.05, batch 32, wd 1e-2
    decisionnets train --task color-direction --seed 0                      # "rnn": the demo RNN

    python tests/data/make_trained_layers.py NOWD_RUN WD_RUN RNN_RUN

Each layer keeps its non-constant units (dead ReLU units are dropped: the estimator drops them
anyway). To keep the file small, each unit is stored as float16 values divided by its largest
absolute value plus that float32 scale (exact zeros of ReLU units stay zero; 1e-3 relative
precision): load with :func:`load_layer` in tests/test_decoding_fixtures.py, ``X = q * scale``. ``nowd_e60`` keeps all 1008 probe trials: with fold seed 0 the estimator once returned
0.34 bits of direction on it (now ~0.71). The others keep a fixed random 400 trials (seed 0) to
stay small. Stored float32 (the weight-decayed units have s.d. down to ~1e-7).
"""

import sys

import numpy as np

import decisionnets as dn

LAYERS = {"nowd": [1, 30, 60], "wd": [20, 45, 60], "rnn": [12]}


def main(nowd, wd, rnn):
    out = {}
    rng = np.random.default_rng(0)
    for tag, run in (("nowd", nowd), ("wd", wd), ("rnn", rnn)):
        ds = dn.open_activations(run)
        sub = np.sort(rng.choice(ds.sizes["trial"], 400, replace=False))
        for ep in LAYERS[tag]:
            h = ds.hidden.sel(epoch=ep)
            if "time" in h.dims:  # the RNN: last step of the stimulus period
                t = int(np.flatnonzero(ds["period"].values == "stimulus")[-1])
                h = h.isel(time=t)
            X = np.asarray(h.values, np.float32)
            keep_trials = slice(None) if (tag, ep) == ("nowd", 60) else sub
            X = X[keep_trials]
            live = X.std(0) > 0
            key = f"{tag}_e{ep}"
            X = X[:, live]
            scale = np.abs(X).max(0)
            out[key] = (X / scale).astype(np.float16)
            out[f"{key}__scale"] = scale.astype(np.float32)
            X = out[key].astype(np.float32) * out[f"{key}__scale"]
            for lab in ("color", "direction"):
                out[f"{key}__{lab}"] = np.asarray(ds[lab].values, np.int8)[keep_trials]
            print(key, X.shape, "unit s.d. range", X.std(0).min(), X.std(0).max())
    np.savez_compressed(__file__.replace("make_trained_layers.py", "trained_layers.npz"), **out)


if __name__ == "__main__":
    main(*sys.argv[1:4])
