"""Seeding: every split of a run's one seed into independent streams, in one place.

A run has one integer seed. :func:`seed_streams` splits it with :class:`numpy.random.SeedSequence`
into one child per stream of :data:`STREAMS`:

==========  =====================================================================================
``data``    the training set (and, with ``fresh_trials``, every later epoch's set); the agents'
            training trials
``probe``   the probe set recorded at every epoch (:func:`probe_stream`: may be shared by runs)
``init``    the model's initialization (torch's global generator, forked, seeded by
            :func:`torch_seed`)
``order``   the batch order and augmentation (a :class:`torch.Generator`); the agents' sampled
            actions
``noise``   recurrent noise (a :class:`torch.Generator` on the run's device)
==========  =====================================================================================

Nothing here touches the global numpy or ``random`` state. The derivation is frozen: changing
the order of :data:`STREAMS` or :func:`torch_seed` would change every run's numbers.
"""

from __future__ import annotations

import numpy as np
import torch

#: the streams of one run, in the order they are spawned from its seed
STREAMS = ("data", "probe", "init", "order", "noise")


def seed_streams(seed: int) -> dict:
    """Independent child seeds of ``seed``, one :class:`numpy.random.SeedSequence` per stream of :data:`STREAMS`."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return dict(zip(STREAMS, children))


def probe_stream(config) -> np.random.SeedSequence:
    """The probe set's seed: ``record.probe_seed``'s probe stream (shared by every run seed), or the run's own.

    ``probe_seed = s`` gives the probe stream of run seed ``s``, so a seed-``s`` run with the
    default draws the same probe set as before the option existed.
    """
    ps = config.record.probe_seed
    return seed_streams(ps if ps >= 0 else config.seed)["probe"]


def torch_seed(ss: np.random.SeedSequence) -> int:
    """A seed for torch (an int in [0, 2**63 - 1)) from the first 64-bit word of ``ss``."""
    return int(ss.generate_state(1, dtype=np.uint64)[0] % (2**63 - 1))


def torch_generator(ss: np.random.SeedSequence, device=None) -> torch.Generator:
    """A :class:`torch.Generator` on ``device`` (default: the CPU) seeded by :func:`torch_seed` of ``ss``."""
    gen = torch.Generator() if device is None else torch.Generator(device=device)
    return gen.manual_seed(torch_seed(ss))
