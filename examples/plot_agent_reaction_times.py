"""
An agent's reaction times
=========================

A recurrent policy learns the reaction-time version of the checkerboard task by reward
(advantage actor-critic): after checkerboard onset it may reach whenever it has decided, and the
reach ends the trial. Played in closed loop, one observation at a time, it gives choices and
reaction times like a monkey's: the chronometric curve (reaction time against coherence).

Both steps are command-line calls from Python: ``decisionnets train --task color-direction-rt``
and ``decisionnets rollout RUN_DIR``, which writes ``rollout.nc``. Tiny settings: 32 units,
3 epochs of 4,096 trials at a higher learning rate (the preset trains 16 epochs), so this agent is still slow and
noisy; the full preset gives the monkeys' shape (see the agents results page).
"""

# %%
import tempfile
import warnings

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from decisionnets.cli import main

warnings.simplefilter("ignore")
run = tempfile.mkdtemp() + "/rt"
assert main(["train", "--task", "color-direction-rt", "--set", "hidden_size=32", "--set", "epochs=3",
             "--set", "n_trials=4096", "--set", "lr=0.01", "--set", "n_per_condition=2", "--run-dir", run, "--no-progress"]) == 0
assert main(["rollout", run, "--trials", "1120", "--seed", "1"]) == 0

# %%
# ``rollout.nc`` holds one row per trial: ``choice``, ``correct``, ``responded`` and
# ``reaction_time`` (ms from checkerboard onset to the reach), with the trial labels as coords.
ro = xr.open_dataset(f"{run}/rollout.nc")
if "epoch" in ro.dims:
    ro = ro.isel(epoch=0)
coh = np.abs(ro.coherence.values).round(2)
rt, correct, responded = ro.reaction_time.values, ro.correct.values.astype(bool), ro.responded.values.astype(bool)

fig, (ax_rt, ax_acc) = plt.subplots(1, 2, figsize=(8.5, 3.3), layout="constrained")
levels = np.unique(coh)
for sel, name, color in ((correct, "correct", "tab:blue"), (~correct & responded, "error", "tab:red")):
    mean_rt = [np.nanmean(rt[sel & (coh == c)]) if (sel & (coh == c)).sum() >= 5 else np.nan for c in levels]
    ax_rt.plot(levels, mean_rt, "o-", color=color, label=name)
ax_rt.set(xlabel="|coherence|", ylabel="mean reaction time (ms)", title="chronometric curve")
ax_rt.legend(frameon=False)
ax_acc.plot(levels, [correct[coh == c].mean() for c in levels], "o-", color="k")
ax_acc.set(xlabel="|coherence|", ylabel="fraction correct", ylim=(0.4, 1.02), title="accuracy")
fig
