"""Closed loop vs open loop for supervised runs of the fixed-duration checkerboard task.

    python analysis/closed_loop_gap.py RUN [RUN ...] [--fresh 10000] [--seed 1] [--json out.json]

For each run (e.g. the demo ``color-direction`` at several seeds) prints:

- on the run's own probe set (the trials the recorder reads every epoch): the recorder's open-loop
  accuracy (choice read at the last decision step), the open-loop accuracy read at the first decision
  step (the go cue), and the closed-loop accuracy (greedy policy, stepped one observation at a time)
  under the env's two response rules, ``response="first"`` (default: the first reach ends the trial)
  and ``response="last"`` (the target held when the 100 ms response window closes is the choice),
  with reach rate and mean reaction time;
- on ``--fresh`` new trials (random target period as in training, seed ``--seed``), the same network
  in both modes on the *same* trials: open-loop accuracy at each of the 5 decision steps (16 ... 20
  board samples), closed-loop accuracy under both rules, and the paired differences with their
  standard errors; next to it the ideal observer's accuracy after the same numbers of board samples.

Nothing is tuned here: the networks are the runs' final weights; the rules are the env's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch


def fresh_trials(run: Path, n: int, seed: int) -> dict:
    """Open-loop accuracy per decision step and closed-loop accuracy under both rules on ``n`` new trials."""
    import decisionnets as dn
    from decisionnets.agents import choice_actions, load_run_model, play_trials, start_aligned

    model, env_first, _, _, _ = load_run_model(run)
    _, env_last, _, _, _ = load_run_model(run, response="last")
    trials = env_first.sample(n, np.random.default_rng(np.random.SeedSequence(seed)))
    # open loop on the trials each started at step 0 (as the closed loop plays them): the batch's own
    # alignment pads shorter trials at the start with zero input, which a network with biases does not
    # ignore, so it would compare two slightly different inputs
    a = start_aligned(trials)
    model.eval()
    with torch.no_grad():
        logits, _ = model(torch.from_numpy(a["inputs"]))
    logits = logits.numpy()
    ch = np.asarray(choice_actions(env_first))
    period = np.asarray(trials.period)
    n_dec = (period == "decision").sum(0)
    assert (n_dec == n_dec[0]).all(), "every trial has the same decision period"
    k = int(n_dec[0])
    n_stim = (period == "stimulus").sum(0)
    assert (n_stim == n_stim[0]).all()
    target = trials.targets[-1]
    per_step = []  # (k, n) correct at each decision step, open loop
    for j in range(k):
        step = a["length"] - k + j  # (n,) index of decision step j of each trial
        lg = logits[step, np.arange(n)]
        choice = ch[np.argmax(lg[:, ch], axis=1)]
        per_step.append(choice == target)
    per_step = np.array(per_step)
    ep_first = play_trials(model, env_first, trials, policy="greedy")
    ep_last = play_trials(model, env_last, trials, policy="greedy")
    sig = env_first.sigma / np.sqrt(env_first.dt)
    samples = [int(n_stim[0]) + j + 1 for j in range(k)]
    ideal = [dn.color_direction_ceiling(env_first.coherences, sig, s)["accuracy"] for s in samples]

    def paired(a, b):
        d = a.astype(float) - b.astype(float)
        return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))

    first_rt = (ep_first.response_step - ep_first.onset_step + 1)[ep_first.responded] * float(env_first.dt)
    return {
        "n_trials": n, "board_samples": samples, "ideal_observer": ideal,
        "open_loop_by_decision_step": per_step.mean(1).tolist(),
        "closed_loop_first": float(ep_first.correct.mean()), "reach_rate_first": float(ep_first.responded.mean()),
        "mean_rt_first_ms": float(first_rt.mean()) if first_rt.size else float("nan"),
        "closed_loop_last": float(ep_last.correct.mean()), "reach_rate_last": float(ep_last.responded.mean()),
        "last_minus_first_open_loop": paired(per_step[-1], per_step[0]),
        "closed_first_minus_open_first_step": paired(ep_first.correct, per_step[0]),
        "closed_last_minus_open_last_step": paired(ep_last.correct, per_step[-1]),
    }


def main(argv=None) -> int:
    from decisionnets.agents import open_vs_closed_loop

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--fresh", type=int, default=10_000, help="new trials for the paired comparison (0: none)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    out = {}
    for run in args.runs:
        first = open_vs_closed_loop(run)
        last = open_vs_closed_loop(run, response="last")
        r = {"probe": {"n_trials": first["n_trials"], "open_loop": first["open_loop"],
                       "open_loop_first_decision_step": first["open_loop_first_decision_step"],
                       "closed_loop_first": first["closed_loop"], "reach_rate_first": first["reach_rate"],
                       "mean_rt_first_ms": first["mean_reaction_time_ms"],
                       "closed_loop_last": last["closed_loop"], "reach_rate_last": last["reach_rate"]}}
        p = r["probe"]
        print(f"{run}: probe set ({p['n_trials']} trials): open loop (last step) {p['open_loop']:.3f}, "
              f"open loop at the go cue {p['open_loop_first_decision_step']:.3f}; closed loop, response=first "
              f"{p['closed_loop_first']:.3f} (reach rate {p['reach_rate_first']:.3f}, mean RT "
              f"{p['mean_rt_first_ms']:.0f} ms), response=last {p['closed_loop_last']:.3f} "
              f"(reach rate {p['reach_rate_last']:.3f}); gap open - closed(first) "
              f"{p['open_loop'] - p['closed_loop_first']:+.3f}, open - closed(last) "
              f"{p['open_loop'] - p['closed_loop_last']:+.3f}", flush=True)
        if args.fresh:
            f = fresh_trials(run, args.fresh, args.seed)
            r["fresh"] = f
            print(f"  {f['n_trials']} fresh trials: open loop by decision step ("
                  + ", ".join(f"{s} samples: {a:.3f}" for s, a in zip(f["board_samples"], f["open_loop_by_decision_step"]))
                  + "); ideal observer " + ", ".join(f"{a:.3f}" for a in f["ideal_observer"]))
            print(f"  closed loop first {f['closed_loop_first']:.3f} (reach {f['reach_rate_first']:.3f}, RT "
                  f"{f['mean_rt_first_ms']:.0f} ms), last {f['closed_loop_last']:.3f} (reach {f['reach_rate_last']:.3f}); "
                  "paired differences (mean, s.e.): open last - open first step {:+.4f} ({:.4f}), closed first - "
                  "open first step {:+.4f} ({:.4f}), closed last - open last step {:+.4f} ({:.4f})".format(
                      *f["last_minus_first_open_loop"], *f["closed_first_minus_open_first_step"],
                      *f["closed_last_minus_open_last_step"]), flush=True)
        out[str(run)] = r
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
