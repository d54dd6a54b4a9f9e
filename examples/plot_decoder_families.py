"""
Decoder families compared: is it present, or is it usable?
==========================================================

Usable information is defined relative to a family of decoders, and the family is part of the
question:

- ``linear``: logistic regression on fold-standardized units, L2 chosen by nested CV.
  *Is the variable linearly present at all?* (scale-invariant: counts units shrunk to tiny activity)
- ``linear-raw``: the same on raw units. *Is it usable by a linear read-out of bounded weight?*
- ``mlp``: one hidden layer on standardized units. *Is it present, nonlinearly?*
- ``sgd-linear`` / ``sgd-mlp``: the authors' decoders, trained from zero by full-batch SGD for a
  fixed budget on raw units. *Is it usable by this decoder within this training budget?*

We decode color and direction from the last hidden layer of a small FC net trained with weight
decay, at the start, middle and end of training, with every family. Tiny settings; the SGD
families run 300 iterations (their default is 3,000) to keep this example fast.
"""

# %%
import tempfile
import warnings

import matplotlib.pyplot as plt
import numpy as np

import decisionnets as dn

warnings.simplefilter("ignore", RuntimeWarning)
run = tempfile.mkdtemp() + "/fc"
cfg = dn.load_config("color-direction-static", seed=0, overrides=[
    "hidden_sizes=[32, 32]", "n_trials=2000", "epochs=16", "lr=0.2", "weight_decay=0.05",
    "n_per_condition=8", "schedule=[0, 8, 16]"])
dn.train(cfg, run, progress=False)
ds = dn.open_activations(run)
labels = {"color": ds.color, "direction": ds.direction}

# %%
families = {
    "linear": "linear",
    "linear-raw": "linear-raw",
    "mlp": "mlp",
    "sgd-linear": dn.get_decoder("sgd-linear", iterations=300),
    "sgd-mlp": dn.get_decoder("sgd-mlp", iterations=300),
}
info = {name: dn.usable_information(ds.hidden, labels, decoder=dec, folds=4)
        for name, dec in families.items()}

# %%
# Bars: bits per family at each recorded epoch (the dotted line is the Bayes ceiling, 0.676 bits).
# Direction, which the network reports, is usable under every family. Color, discarded under
# weight decay, disappears first for the scale-sensitive families (raw units, SGD budget): it
# becomes unusable before it is gone. The budget matters too: with 300 iterations the SGD families
# read nothing from the untrained network, whose raw activity is too small for them to reach in
# that budget; with their default 3,000 they do.
fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4), sharey=True, layout="constrained")
epochs = ds.epoch.values
width = 0.8 / len(families)
for ax, var in zip(axes, ("color", "direction")):
    for k, (name, da) in enumerate(info.items()):
        ax.bar(np.arange(len(epochs)) + (k - 2) * width, da.sel(variable=var).values, width, label=name)
    ax.axhline(0.676, color="k", ls=":", lw=1)
    ax.set(xticks=np.arange(len(epochs)), xticklabels=[f"epoch {e}" for e in epochs], title=var)
axes[0].set_ylabel("usable information (bits)")
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center", fontsize=8, frameon=False)
fig
