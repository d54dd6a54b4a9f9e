"""
Images: trained on coarse labels, probed for fine ones
======================================================

The image analogue of the checkerboard task: a small CNN is trained on scikit-learn's 8x8 digits
to report a *coarse* label (digits 0-4 vs 5-9); the *fine* label (which digit) is never trained
on. How much information about the digit does the penultimate layer keep, over training? Each probe
image is a ``trial`` with coordinates ``fine_label`` and ``coarse_label``; the recorded layers are
variables with their own unit dims (conv layers as per-channel spatial means).

Tiny settings: 4 epochs, 200 probe images. The preset ``digits-coarse`` is the full version
(60 epochs, 500 probe images); CIFAR-10/100 presets read a local copy of the data.
"""

# %%
import tempfile
import warnings

import matplotlib.pyplot as plt

import decisionnets as dn
import decisionnets.plots as dnp

warnings.simplefilter("ignore", RuntimeWarning)
run = tempfile.mkdtemp() + "/digits"
cfg = dn.load_config("digits-coarse", seed=0, overrides=["epochs=4", 'schedule="all"', "env.n_probe=200"])
dn.train(cfg, run, progress=False)
ds = dn.open_activations(run)
print(ds.penultimate.dims, "probe accuracy:", ds.accuracy.values.round(2))

# %%
# Decode the fine and the coarse label from each recorded layer at every epoch. The fine label has
# log2(10) = 3.3 bits, the coarse one 1 bit.
fig, axes = plt.subplots(1, 3, figsize=(10, 3.2), sharey=True, layout="constrained")
for ax, layer in zip(axes, ("conv1", "conv2", "penultimate")):
    act = ds[layer]
    info = dn.usable_information(act, {"fine_label": ds.fine_label, "coarse_label": ds.coarse_label},
                                 feature_dim=act.dims[-1], folds=4)
    dnp.plot_information_vs_epoch(ax, info, title=layer, min_top=3.4)
fig
