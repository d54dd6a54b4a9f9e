"""decisionnets.seeding: one run seed split into independent, deterministic, documented streams."""

import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from decisionnets.seeding import STREAMS, probe_stream, seed_streams, torch_generator, torch_seed


def _state(ss):
    return ss.generate_state(4).tolist()


def test_streams_are_the_documented_spawn_of_the_seed_in_order():
    """Stream k is child k of SeedSequence(seed).spawn(len(STREAMS)): the frozen derivation."""
    streams = seed_streams(7)
    assert tuple(streams) == STREAMS == ("data", "probe", "init", "order", "noise")
    children = np.random.SeedSequence(7).spawn(5)
    for k, name in enumerate(STREAMS):
        assert _state(streams[name]) == _state(children[k])


def test_streams_are_deterministic_and_distinct_across_streams_and_seeds():
    a, b = seed_streams(3), seed_streams(3)
    assert all(_state(a[s]) == _state(b[s]) for s in STREAMS)
    states = {tuple(_state(a[s])) for s in STREAMS} | {tuple(_state(seed_streams(4)[s])) for s in STREAMS}
    assert len(states) == 2 * len(STREAMS)  # no stream repeats another, nor another seed's


def test_draws_of_two_streams_are_uncorrelated():
    s = seed_streams(0)
    x = np.random.default_rng(s["data"]).standard_normal(20000)
    y = np.random.default_rng(s["probe"]).standard_normal(20000)
    assert abs(np.corrcoef(x, y)[0, 1]) < 0.03  # |r| of independent draws: about 1/sqrt(20000) = 0.007


def test_seeding_leaves_the_global_states_alone():
    np_state, py_state, torch_state = np.random.get_state()[1].copy(), random.getstate(), torch.get_rng_state()
    torch_generator(seed_streams(1)["order"]).manual_seed(5)
    torch_seed(seed_streams(2)["init"])
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)
    assert random.getstate() == py_state and torch.equal(torch.get_rng_state(), torch_state)


def test_probe_stream_is_the_run_seeds_or_the_shared_probe_seeds():
    def config(seed, probe_seed):
        return SimpleNamespace(seed=seed, record=SimpleNamespace(probe_seed=probe_seed))

    shared = _state(seed_streams(0)["probe"])
    assert _state(probe_stream(config(5, 0))) == shared == _state(probe_stream(config(9, 0)))
    assert _state(probe_stream(config(5, -1))) == _state(seed_streams(5)["probe"]) != shared


class _Words:
    """A stand-in SeedSequence whose first 64-bit word is planted."""

    def __init__(self, word):
        self.word = word

    def generate_state(self, n, dtype=np.uint32):
        return np.array([self.word] * n, dtype=dtype)


@pytest.mark.parametrize("word, expected", [(0, 0), (12345, 12345), (2**63 - 2, 2**63 - 2), (2**63 - 1, 0),
                                            (2**64 - 1, 1)])
def test_torch_seed_is_the_first_word_modulo_2_63_minus_1(word, expected):
    assert torch_seed(_Words(word)) == expected


def test_torch_seed_is_in_range_and_the_generator_uses_it():
    seeds = [torch_seed(seed_streams(s)["init"]) for s in range(200)]
    assert all(0 <= t < 2**63 - 1 for t in seeds) and len(set(seeds)) == 200
    ss = seed_streams(11)["order"]
    g1, g2 = torch_generator(ss), torch_generator(ss)
    assert g1.initial_seed() == torch_seed(ss)
    assert torch.equal(torch.rand(5, generator=g1), torch.rand(5, generator=g2))
    assert not torch.equal(torch.rand(5, generator=torch_generator(seed_streams(12)["order"])),
                           torch.rand(5, generator=torch_generator(ss)))
