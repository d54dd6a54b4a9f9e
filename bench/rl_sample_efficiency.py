"""Sample efficiency of decisionnets' A2C vs sb3-contrib's RecurrentPPO on the checkerboard task.

Both learn the fixed-duration ``ColorDirection`` task (the ``color-direction-rl`` preset's env:
dt 20 ms, sigma 4, Bayes accuracy 0.897) by reward, with the same budget of trials; both are
evaluated with the greedy policy on a fixed set of trials every ``--eval-every`` trials. Printed:
trials until the greedy accuracy first reaches 80 % of the Bayes accuracy (0.718) for each, and
their ratio (RecurrentPPO / ours; > 1: ours needs fewer trials); wall time per 1,000 trials for
each, measured in the same run (timings on a shared machine are noisy; the ratio is what counts),
and the wall time each needs to reach the threshold (trials to it x seconds per trial).

- **ours**: :func:`decisionnets.agents.a2c.train_agent` (preset ``color-direction-rl``: leaky RNN
  64 units, A2C, batches of 64 trials); its greedy probe accuracy is recorded every epoch
  (``--eval-every`` trials, 14 coherences x 2 configurations x 8 = 224 trials).
- **RecurrentPPO** (``MlpLstmPolicy``, LSTM of 64 units, 8 envs; defaults otherwise) steps
  ``gymnasium.make("decisionnets/ColorDirection-v0")`` as neurogym's examples do (one continuous
  stream of trials, the LSTM state carried across them); evaluated on 224 trials of a seeded env.

sb3-contrib is an optional benchmark dependency (``pip install -e .[bench]``); without it this
prints a message and exits 0.

Usage: ``python bench/rl_sample_efficiency.py [--trials 16384] [--eval-every 1024] [--seed 0]``
(about 12 minutes on one idle core, nearly all of it RecurrentPPO's).
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from decisionnets.config import load_config
from decisionnets.envs import ColorDirection
from decisionnets.envs.color_direction_ideal import ceiling_for_env
from decisionnets.training import train


def ours(budget: int, eval_every: int, seed: int) -> tuple[list, float]:
    """(trials, greedy probe accuracy) after every epoch of ``eval_every`` trials, and seconds."""
    epochs = max(1, budget // eval_every)
    cfg = load_config("color-direction-rl", seed=seed, overrides=[
        f"epochs={epochs}", f"n_trials={eval_every}", "record.schedule=all", "record.n_per_condition=8"])
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        train(cfg, Path(d) / "run", progress=False)
        secs = time.perf_counter() - t0
        rows = list(csv.DictReader(open(Path(d) / "run" / "log.csv")))
    return [(int(r["trials"]), float(r["probe_accuracy"])) for r in rows], secs


def _evaluate(model, n_trials: int, seed: int) -> float:
    """Greedy accuracy of a RecurrentPPO policy on ``n_trials`` trials of a seeded env (LSTM state carried)."""
    env = ColorDirection()
    obs, _ = env.reset(seed=seed)
    state, start = None, np.ones((1,), dtype=bool)
    done, correct = 0, 0
    while done < n_trials:
        action, state = model.predict(obs[None], state=state, episode_start=start, deterministic=True)
        obs, _, _, _, info = env.step(int(action[0]))
        start = np.zeros((1,), dtype=bool)
        if info.get("new_trial"):
            done += 1
            correct += int(info.get("performance", 0) == 1)
    return correct / n_trials


def recurrent_ppo(budget: int, eval_every: int, seed: int) -> tuple[list, float]:
    import gymnasium
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    import decisionnets.envs  # noqa: F401  (registers the envs)

    curve, eval_secs = [], [0.0]

    class Trials(BaseCallback):
        def __init__(self):
            super().__init__()
            self.trials, self.next_eval = 0, eval_every

        def _on_step(self) -> bool:
            self.trials += sum(bool(i.get("new_trial")) for i in self.locals["infos"])
            if self.trials >= self.next_eval:
                t = time.perf_counter()
                curve.append((self.trials, _evaluate(self.model, 224, seed=10_000 + seed)))
                eval_secs[0] += time.perf_counter() - t
                self.next_eval += eval_every
            return self.trials < budget

    venv = make_vec_env(lambda: gymnasium.make("decisionnets/ColorDirection-v0"), n_envs=8, seed=seed)
    model = RecurrentPPO("MlpLstmPolicy", venv, seed=seed, verbose=0, device="cpu",
                         policy_kwargs={"lstm_hidden_size": 64, "net_arch": []})
    t0 = time.perf_counter()
    model.learn(total_timesteps=10**9, callback=Trials())
    return curve, time.perf_counter() - t0 - eval_secs[0]


def first_reaching(curve, level):
    return next((t for t, acc in curve if acc >= level), None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=16_384, help="budget of training trials for each learner")
    ap.add_argument("--eval-every", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        import sb3_contrib  # noqa: F401
    except ImportError:
        print("bench/rl_sample_efficiency.py: skipped: sb3-contrib is not installed "
              "(an optional benchmark dependency: pip install -e '.[bench]')")
        return 0
    level = 0.8 * ceiling_for_env(ColorDirection())["accuracy"]
    print(f"threshold: 80% of the Bayes accuracy = {level:.3f}; budget {args.trials} trials each, seed {args.seed}")
    results = {}
    for name, fn in (("ours (A2C)", ours), ("RecurrentPPO", recurrent_ppo)):
        curve, secs = fn(args.trials, args.eval_every, args.seed)
        n = curve[-1][0] if curve else 0
        results[name] = (first_reaching(curve, level), secs / max(n, 1) * 1000)
        print(f"{name:13s} accuracy by trials: " + ", ".join(f"{t}: {a:.3f}" for t, a in curve))
        print(f"{name:13s} trials to {level:.3f}: {results[name][0]}   ({results[name][1]:.2f} s per 1000 trials)")
    a, b = results["ours (A2C)"][0], results["RecurrentPPO"][0]
    if a is not None and b is not None:
        print(f"sample-efficiency ratio (RecurrentPPO trials / ours): {b / a:.2f}x")
    elif a is not None:
        print(f"RecurrentPPO did not reach {level:.3f} within {args.trials} trials; ours did at {a}: ratio > {args.trials / a:.2f}x")
    else:
        print(f"ours did not reach {level:.3f} within {args.trials} trials")
    print(f"wall time per trial ratio (RecurrentPPO / ours): "
          f"{results['RecurrentPPO'][1] / results['ours (A2C)'][1]:.2f}x")
    if a is not None and b is not None:  # trials to the threshold x this run's seconds per trial
        ta, tb = a * results["ours (A2C)"][1] / 1000, b * results["RecurrentPPO"][1] / 1000
        print(f"wall time to the threshold: ours {ta:.1f} s, RecurrentPPO {tb:.1f} s, ratio (RecurrentPPO / ours) "
              f"{tb / ta:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
