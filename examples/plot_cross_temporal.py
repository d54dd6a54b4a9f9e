"""
Cross-temporal generalisation: is the code stable over the trial?
=================================================================

A decoder trained at one time step of the trial is tested at every other step, on held-out trials.
A bright block off the diagonal means one read-out works across that stretch of time (a stable
code); a bright diagonal alone means the code changes as the trial goes on.

Tiny settings: the time-resolved leaky RNN with 24 units, 4 epochs, 112 probe trials.
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
    "hidden_size=24", "n_trials=1500", "epochs=4", "schedule=[0, 4]", "n_per_condition=4"])
dn.train(cfg, run, progress=False)
ds = dn.open_activations(run)

# %%
# Select one epoch (here the last): the matrix needs activity with exactly the dims
# (time, trial, unit). Compare the untrained network (epoch 0) with the trained one.
fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), layout="constrained")
for ax, epoch in zip(axes, (0, int(ds.epoch[-1]))):
    act = ds.hidden.sel(epoch=epoch)
    matrix = dn.cross_temporal_information(act, ds.direction, folds=4)
    dnp.plot_cross_temporal(ax, matrix, title=f"direction, epoch {epoch}", vmax=0.7)
fig
