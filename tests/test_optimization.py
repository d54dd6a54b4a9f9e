"""The optimizer and its schedule (decisionnets.optimization): phases, settings, clipping, divergence."""

import math

import pytest
import torch

from decisionnets.config import load_config
from decisionnets.errors import ConfigError
from decisionnets.optimization import (DIVERGENCE_FACTOR, apply_settings, clip_grad_norm, divergence_bound,
                                       make_optimizer, phase_settings)


def _train_cfg(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('base = "color-direction-static"\n[train]\nepochs = 6\nlr = 0.05\nbatch_size = 32\n'
                 'momentum = 0.9\nweight_decay = 0.001\n'
                 '[[train.phases]]\nepochs = 2\nlr = 0.005\n'
                 '[[train.phases]]\nepochs = 1\nbatch_size = 512\nweight_decay = 0.0\n')
    return load_config(config_file=f).train


def test_phase_settings_follow_the_phases_then_the_base(tmp_path):
    tc = _train_cfg(tmp_path)
    base = {"lr": 0.05, "batch_size": 32, "momentum": 0.9, "weight_decay": 0.001}
    assert phase_settings(tc, 1) == {**base, "lr": 0.005}
    assert phase_settings(tc, 2) == {**base, "lr": 0.005}
    assert phase_settings(tc, 3) == {**base, "batch_size": 512, "weight_decay": 0.0}  # unset keys: the base
    assert phase_settings(tc, 4) == base and phase_settings(tc, 6) == base


def test_apply_settings_reaches_every_param_group():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.SGD([{"params": [a]}, {"params": [b]}], lr=1.0, momentum=0.0, weight_decay=0.0)
    apply_settings(opt, {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.01, "batch_size": 8})
    assert [(g["lr"], g["momentum"], g["weight_decay"]) for g in opt.param_groups] == [(0.1, 0.5, 0.01)] * 2
    adam = torch.optim.Adam([a], lr=1.0)
    apply_settings(adam, {"lr": 0.2, "momentum": 0.5, "weight_decay": 0.0})
    assert adam.param_groups[0]["lr"] == 0.2 and "momentum" not in adam.param_groups[0]


def test_make_optimizer_kinds_and_a_bad_kind():
    p = [torch.nn.Parameter(torch.zeros(1))]
    s = {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0}
    assert isinstance(make_optimizer("sgd", p, s), torch.optim.SGD)
    assert isinstance(make_optimizer("adam", p, s), torch.optim.Adam)
    with pytest.raises(ConfigError, match="train.optimizer must be sgd or adam; got 'rmsprop'"):
        make_optimizer("rmsprop", p, s)


def test_clip_grad_norm_per_member_scales_each_member_by_its_own_norm():
    w = torch.nn.Parameter(torch.zeros(2, 2))  # (member, 2)
    w.grad = torch.tensor([[3.0, 4.0], [0.3, 0.4]])  # norms 5 and 0.5
    clip_grad_norm([w], 1.0, per_member=True)
    torch.testing.assert_close(w.grad, torch.tensor([[0.6, 0.8], [0.3, 0.4]]), rtol=1e-5, atol=1e-6)
    v = torch.nn.Parameter(torch.zeros(2, 2))
    v.grad = torch.tensor([[3.0, 4.0], [0.3, 0.4]])
    clip_grad_norm([v], 1.0)  # one norm over everything: both rows scaled alike
    assert torch.allclose(v.grad[1] / v.grad[0], torch.tensor([0.1, 0.1]))


def test_divergence_bound_is_the_factor_times_the_uniform_guess_loss():
    assert divergence_bound(3) == pytest.approx(DIVERGENCE_FACTOR * math.log(3))
    assert divergence_bound(1) == divergence_bound(2) == pytest.approx(DIVERGENCE_FACTOR * math.log(2))
