"""
Choice vs direction on error trials
===================================

Does the hidden layer encode the correct reach direction (the stimulus) or the reach the network
is about to make (its choice)? On correct trials the two are the same, so only error trials
separate them. For each epoch the analysis keeps every error trial plus as many randomly drawn
correct trials of each direction: in that subset choice and direction are independent, and both are
decoded.

Tiny settings: 24 units, 5 epochs, 224 probe trials (early in training there are many errors).
An epoch where some direction has fewer error trials than folds, or more errors than correct
trials, is NaN and not drawn.
"""

# %%
import tempfile
import warnings

import matplotlib.pyplot as plt
import xarray as xr

import decisionnets as dn
import decisionnets.plots as dnp

warnings.simplefilter("ignore", RuntimeWarning)
run = tempfile.mkdtemp() + "/rnn"
cfg = dn.load_config("color-direction", seed=0, overrides=[
    "hidden_size=24", "n_trials=1500", "epochs=5", 'schedule="all"', "n_per_condition=8"])
dn.train(cfg, run, progress=False)

# %%
# ``analyze_run`` is what ``decisionnets analyze RUN_DIR`` runs: it writes ``information.nc``,
# whose ``error_information`` holds choice and direction decoded on the balanced error subset.
dn.analyze_run(run, variables=["direction"], folds=3, time_stride=3, figures=False, progress=False)
info = xr.open_dataset(f"{run}/information.nc")
err = info["error_information"].sel(layer="hidden").rename(error_variable="variable")
print(err.dims)
ds = dn.open_activations(run)
print("error trials per epoch:", (1 - ds.correct).sum("trial").values)

# %%
# At the response step: the layer carries the choice more than the correct direction on error
# trials when the network's own decision, not the stimulus, is what is represented there.
fig, ax = plt.subplots(figsize=(5, 3.4), layout="constrained")
at_response = err.isel(error_time=-1) if "error_time" in err.dims else err
at_response = at_response.drop_vars([c for c in at_response.coords if c not in ("variable", "epoch")])
dnp.plot_information_vs_epoch(ax, at_response, title="error + matched correct trials")
fig
