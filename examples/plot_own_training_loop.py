"""
Record your own training loop
=============================

A plain PyTorch training loop — your model, your optimizer, your loss — on the checkerboard
task (``decisionnets/ColorDirection-v0``), recorded once per epoch by
:class:`decisionnets.RunRecorder`. The recorder fills a run directory like the ones
``decisionnets train`` writes, so ``decisionnets analyze RUN_DIR`` measures the usable
information about color, direction and target configuration at every recorded epoch, and
:func:`decisionnets.open_run` reads it back.

Set ``DECISIONNETS_EXAMPLE_QUICK=1`` for a run of a few seconds (tiny network, few trials).
"""

import os
import tempfile
from pathlib import Path

import gymnasium
import matplotlib.pyplot as plt
import torch
from torch import nn

import decisionnets as dn

QUICK = os.environ.get("DECISIONNETS_EXAMPLE_QUICK") == "1"
N_TRAIN, N_PROBE, EPOCHS, HIDDEN = (256, 120, 3, 16) if QUICK else (2048, 400, 10, 48)
LABELS = ["color", "direction", "target_config"]
torch.manual_seed(0)

# %%
# Trials from the env
# -------------------
# :func:`decisionnets.probe_trials` plays whole trials of any Gymnasium env and returns inputs
# (time, trial, feature), the correct action at each step and the per-trial labels. A fixed,
# short timing keeps every trial the same length.
env = gymnasium.make("decisionnets/ColorDirection-v0",
                     timing={"fixation": 40, "targets": 100, "stimulus": 200, "decision": 60})
train = dn.probe_trials(env, N_TRAIN, seed=1, label_keys=LABELS)
probe = dn.probe_trials(env, N_PROBE, seed=2, label_keys=LABELS)  # fixed: the same trials every epoch
print(f"train {train.inputs.shape}, probe {probe.inputs.shape} (time, trial, feature)")

# %%
# The model and the loop, recorded every epoch
# --------------------------------------------
class Net(nn.Module):
    def __init__(self, n_in, n_hidden, n_out):
        super().__init__()
        self.rnn = nn.GRU(n_in, n_hidden)
        self.readout = nn.Linear(n_hidden, n_out)

    def forward(self, x):  # x: (time, trial, feature)
        h, _ = self.rnn(x)
        return self.readout(h)


model = Net(train.inputs.shape[2], HIDDEN, 3)
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
run_dir = Path(tempfile.mkdtemp()) / "own-loop"
rec = dn.RunRecorder(run_dir, model, probe.inputs, layers=["rnn"], labels=probe.labels, time_dim=0, dt=probe.dt,
                     config={"train": {"lr": 1e-2, "batch_size": 32, "optimizer": "adam"}},
                     attrs={"task": "own training loop"})
x, y = torch.from_numpy(train.inputs), torch.from_numpy(train.targets[-1])  # the reach at the last step
x_probe, y_probe = torch.from_numpy(probe.inputs), torch.from_numpy(probe.targets[-1])
order = torch.Generator().manual_seed(0)


def probe_metrics():
    with torch.no_grad():
        logits = model(x_probe)[-1]
    return {"loss": float(nn.functional.cross_entropy(logits, y_probe)),
            "accuracy": float((logits.argmax(1) == y_probe).float().mean())}


rec.record(0, **probe_metrics())  # the untrained network
step = 0
for epoch in range(1, EPOCHS + 1):
    for idx in torch.randperm(N_TRAIN, generator=order).split(32):
        loss = nn.functional.cross_entropy(model(x[:, idx])[-1], y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
    rec.record(epoch, step=step, **probe_metrics())
rec.finish()

# %%
# Analyze the run like any other
# ------------------------------
# :func:`decisionnets.analyze_run` is ``decisionnets analyze RUN_DIR --folds 3 --time-stride 4`` in a
# shell: ``information.nc`` and (unless ``figures=False``) the standard figures in ``RUN_DIR/figures``.
dn.analyze_run(run_dir, folds=3, time_stride=4, progress=False, figures=not QUICK)
run = dn.open_run(run_dir)
info = run.information()
print(run, "epochs:", run.recorded_epochs())

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
dn.plot_information_vs_epoch(ax1, info["information"].sel(layer="rnn").isel(time=-1),
                             title="GRU units, last step of the trial")
dn.plot_learning_curve(ax2, info["probe_loss"], info["probe_accuracy"], title="probe trials")
plt.show()
