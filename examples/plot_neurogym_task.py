"""
A neurogym task by name
=======================

Any neurogym environment trains and is analysed through the same path as the package's own tasks:
give its id to the ``neurogym`` preset. Its trial dict's scalars become the labels of the
activation dataset, and ``ground_truth`` is the index of the correct choice. Here: delayed
match-to-sample, where the network must hold the sample in memory over a delay and report whether
the test stimulus matches it.

This is the command line ``decisionnets train --task neurogym --set env.name=...`` called from
Python; ``decisionnets.cli.main`` returns the exit code. Tiny settings: 32 units, 3 epochs.
"""

# %%
import tempfile
import warnings

import matplotlib.pyplot as plt

import decisionnets as dn
import decisionnets.plots as dnp
from decisionnets.cli import main

warnings.simplefilter("ignore")   # neurogym's and the tiny probe set's warnings
run = tempfile.mkdtemp() + "/dms"
code = main(["train", "--task", "neurogym", "--set", "env.name=neurogym:DelayMatchSample-v0",
             "--set", "hidden_size=32", "--set", "epochs=3", "--set", "n_trials=1500",
             "--set", "n_per_condition=8", "--run-dir", run, "--no-progress"])
assert code == 0

# %%
# The labels come from the env's trial dict; ``label_variables`` are what ``analyze`` decodes.
ds = dn.open_activations(run)
labels = [c for c in ds.coords if ds[c].dims == ("trial",) and c != "trial"]
print("trial labels:", labels)
print("periods:", list(dict.fromkeys(ds.period.values.tolist())))

# %%
# Is the correct answer usable before the test stimulus arrives? Decode ``ground_truth`` over the
# trial, at every recorded epoch.
info = dn.usable_information(ds.hidden, ds.ground_truth, folds=4).assign_coords(period=ds.period)
fig, ax = plt.subplots(figsize=(6, 3.4), layout="constrained")
dnp.plot_information_vs_time(ax, info, title="DelayMatchSample-v0: ground_truth")
fig
