"""Draw one trial of an env from its own periods (used by the ``.. plot::`` figures of the guide).

The figure is computed from the env, not drawn by hand: one trial is generated with a fixed seed,
its observation channels (named by the env's ``observation_space.name``) are plotted against time,
the periods (``env.start_ind`` / ``env.end_ind``) are shaded and named, and the target action per
step (``env.gt``) is drawn under them.
"""

from __future__ import annotations

import gymnasium as gym
import matplotlib.pyplot as plt
import numpy as np

import decisionnets.envs  # noqa: F401  (registers the decisionnets/... Gymnasium ids)

_SHADES = ("#f2f2f2", "#dde8f3", "#fbe5d6", "#e2f0d9", "#ede2f3", "#fff2cc")


def _channel_names(env, n: int) -> list[str]:
    names = [f"channel {i}" for i in range(n)]
    spec = getattr(env.observation_space, "name", None) or {}
    for key, idx in spec.items():
        for j, i in enumerate(np.atleast_1d(idx)):
            names[int(i)] = key if np.ndim(idx) == 0 else f"{key} {j + 1}"
    return names


def plot_trial(env_id: str, *, seed: int = 0, kwargs: dict | None = None, trial: dict | None = None,
               title: str | None = None):
    """One trial of ``env_id``: inputs per channel (offset), periods shaded, target action below.

    Returns the matplotlib Figure.
    """
    env = gym.make(env_id, **(kwargs or {})).unwrapped
    env.reset(seed=seed)
    if hasattr(env, "seed"):
        env.seed(seed)
    info = env.new_trial(**(trial or {}))
    ob, gt, dt = np.asarray(env.ob, float), np.asarray(env.gt), float(env.dt)
    t = np.arange(len(ob)) * dt
    names = _channel_names(env, ob.shape[1])

    fig, (ax, ax_gt) = plt.subplots(2, 1, sharex=True, figsize=(7.5, 3.6),
                                    gridspec_kw={"height_ratios": [4, 1]}, layout="constrained")
    periods = sorted(env.start_ind, key=env.start_ind.get)
    for i, p in enumerate(periods):
        a, b = env.start_ind[p] * dt, env.end_ind[p] * dt
        for x in (ax, ax_gt):
            x.axvspan(a - dt / 2, b - dt / 2, color=_SHADES[i % len(_SHADES)], lw=0)
        ax.text((a + b) / 2 - dt / 2, 1.0, p, transform=ax.get_xaxis_transform(), ha="center",
                va="bottom", fontsize=8)
    span = max(np.ptp(ob, axis=0).max(), 1e-9)
    for c in range(ob.shape[1]):
        y = c * 1.2 * span
        ax.step(t, ob[:, c] + y, where="mid", lw=1.2)
        ax.text(t[0] - dt, y, names[c], ha="right", va="center", fontsize=8)
    ax.set_yticks([])
    ax.spines[["left", "top", "right"]].set_visible(False)
    ax_gt.step(t, gt, where="mid", color="k", lw=1.2)
    ax_gt.set_yticks(sorted(set(np.asarray(gt).ravel().tolist())))
    ax_gt.set_ylabel("target\naction", fontsize=8)
    ax_gt.set_xlabel("time in trial (ms)")
    ax_gt.spines[["top", "right"]].set_visible(False)
    shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in (info or {}).items()
             if np.isscalar(v)}
    fig.suptitle(title or f"{env_id}: {shown}", fontsize=9)
    return fig
