"""
Analyze your own environment
============================

Any Gymnasium env that tells its per-trial variables (in ``reset``'s info, in
``env.unwrapped.trial`` as neurogym envs do, or in the last step's info) is a source of probe
trials: :func:`decisionnets.probe_trials` plays its trials, :func:`decisionnets.record` records
a network on them, and :func:`decisionnets.usable_information` measures what each layer knows
about each variable, step by step. The env below lives in this file; nothing is added to the
package.

The task: pulses arrive on a left and a right channel; at the last step the agent reports the
side with more pulses (``side``). Every pulse of a trial has the same loudness (``loud``: 1 or
2), which says nothing about the side: a network that needs only the side may discard it.

Set ``DECISIONNETS_EXAMPLE_QUICK=1`` for a run of a few seconds.
"""

import os

import gymnasium
import matplotlib.pyplot as plt
import numpy as np
import torch
import xarray as xr
from gymnasium import spaces
from torch import nn

import decisionnets as dn

QUICK = os.environ.get("DECISIONNETS_EXAMPLE_QUICK") == "1"
N_TRAIN, N_PROBE, EPOCHS = (300, 120, 4) if QUICK else (2000, 400, 15)
torch.manual_seed(0)


# %%
# A user-defined env
# ------------------
class Pulses(gymnasium.Env):
    """Left/right pulses for ``n_steps`` steps; report the side with more pulses at the last step.

    Observation: (left pulse, right pulse), each 0 or the trial's loudness. Actions: 0 wait,
    1 left, 2 right. ``reset`` returns the trial's variables in its info (``side``, ``loud``) and
    each info tells the correct action for the observation it comes with (``gt``).
    """

    observation_space = spaces.Box(0.0, 2.0, (2,), np.float32)
    action_space = spaces.Discrete(3)

    def __init__(self, n_steps=8, p_majority=0.7):
        self.n_steps, self.p = n_steps, p_majority

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.side = int(self.np_random.integers(2))
        self.loud = int(self.np_random.integers(2))
        p_right = self.p if self.side == 1 else 1 - self.p
        self.right = self.np_random.random(self.n_steps) < p_right  # the pulse of each step
        self.t = 0
        return self._obs(), {"side": self.side, "loud": self.loud, "gt": self._gt()}

    def _obs(self):
        amp = 1.0 + self.loud
        return np.array([amp * (not self.right[self.t]), amp * self.right[self.t]], np.float32)

    def _gt(self):
        return 1 + self.side if self.t == self.n_steps - 1 else 0

    def step(self, action):
        reward = float(self.t == self.n_steps - 1 and action == 1 + self.side)
        self.t += 1
        if self.t == self.n_steps:
            return np.zeros(2, np.float32), reward, True, False, {}
        return self._obs(), reward, False, False, {"gt": self._gt()}


env = Pulses()
train = dn.probe_trials(env, N_TRAIN, seed=1)
probe = dn.probe_trials(env, N_PROBE, seed=2, label_keys=["side", "loud"])
print("labels read from the env:", list(train.labels), "| probe inputs", probe.inputs.shape)

# %%
# A network, recorded before and after training
# ---------------------------------------------
model = nn.Sequential()
model.add_module("rnn", nn.RNN(2, 24, nonlinearity="tanh"))


class Readout(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(24, 3)

    def forward(self, out):
        return self.linear(out[0])  # nn.RNN returns (output, h_n)


model.add_module("readout", Readout())


def snapshot(epoch):
    ds = dn.record(model, probe.inputs, layers=["rnn"], labels=probe.labels, time_dim=0)
    return ds.expand_dims(epoch=[epoch])


before = snapshot(0)
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
x, y = torch.from_numpy(train.inputs), torch.from_numpy(train.targets[-1])
for epoch in range(EPOCHS):
    for idx in torch.randperm(N_TRAIN).split(32):
        loss = nn.functional.cross_entropy(model(x[:, idx])[-1], y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
after = snapshot(EPOCHS)
acc = float((model(torch.from_numpy(probe.inputs))[-1].argmax(1).numpy() == probe.targets[-1]).mean())
print(f"probe accuracy after {EPOCHS} epochs: {acc:.2f}")

# %%
# What the units know about each variable, step by step
# -----------------------------------------------------
ds = xr.concat([before, after], dim="epoch")
info = dn.usable_information(ds["rnn"], {"side": ds["side"], "loud": ds["loud"]}, feature_dim="rnn_unit", folds=3)
fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained", sharey=True)
for ax, var in zip(axes, ["side", "loud"]):
    dn.plot_information_vs_time(ax, info, variable=var, title=f"{var}: RNN units")
    ax.set_xlabel("step of the trial")  # the env has no dt: time is in steps
plt.show()
