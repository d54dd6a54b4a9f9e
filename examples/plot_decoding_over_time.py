"""
Decoding over time in the trial and over training epochs
========================================================

A leaky RNN is trained on the time-resolved checkerboard task. Its hidden activity is recorded on a
fixed probe set at every epoch, with dims (epoch, trial, time, unit). Decoding every (epoch, time)
pair separately asks two questions at once: *when in the trial* does color or direction become
usable, and *when in training*?

Tiny settings: 24 units, 1,500 training trials, 4 epochs, 112 probe trials. The preset
``color-direction`` (the demo) is the full version (64 units, 10,000 trials, 12 epochs).
"""

# %%
import tempfile
import warnings

import matplotlib.pyplot as plt

import decisionnets as dn
import decisionnets.plots as dnp

warnings.simplefilter("ignore", RuntimeWarning)
run = tempfile.mkdtemp() + "/rnn"
cfg = dn.load_config("color-direction", seed=0, overrides=[
    "hidden_size=24", "n_trials=1500", "epochs=4", 'schedule="all"', "n_per_condition=4"])
dn.train(cfg, run, progress=False)
ds = dn.open_activations(run)
print(ds.hidden.sizes, ds.accuracy.values.round(2))

# %%
# One decoding problem per (variable, epoch, time): the result keeps every dim that is not the
# trial or the unit dim.
info = dn.usable_information(ds.hidden, {"color": ds.color, "direction": ds.direction}, folds=4)
info = info.assign_coords(period=ds.period)
print(info.dims)

# %%
# Left: direction over time within the trial, one line per epoch, periods shaded. Right: the
# information averaged over the decision period, over training (the paper's main figure).
fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
dnp.plot_information_vs_time(axes[0], info, variable="direction", title="direction over the trial")
dnp.plot_information_vs_epoch(axes[1], info, period="decision", title="decision period")
fig
