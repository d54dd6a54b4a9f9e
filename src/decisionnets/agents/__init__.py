"""Agents: recurrent networks acting in envs (closed-loop rollouts) and trained by reward.

- :func:`rollout` runs a model step by step in an env and returns an activation-style dataset
  (hidden (trial, time, unit), action, reward, choice, correct, reaction_time, labels);
- :func:`decisionnets.agents.a2c.train_agent` trains a recurrent policy by advantage
  actor-critic (or REINFORCE with a baseline) in the run directory layout of
  :mod:`decisionnets.training`;
- :mod:`decisionnets.agents.behaviour`: psychometric and chronometric curves and their figures.
"""

from decisionnets.agents.rollout import (as_epoch, choice_actions, load_run_model, open_vs_closed_loop, play_trials,
                                         rollout, start_aligned)

__all__ = ["as_epoch", "play_trials", "rollout", "load_run_model", "open_vs_closed_loop", "choice_actions",
           "start_aligned"]
