"""The step API of the recurrent models gives the whole-sequence forward pass."""

import pytest
import torch

from decisionnets.models import build_model


@pytest.mark.parametrize("kind,kw", [
    ("leaky_rnn", {"hidden_size": 7, "activation": "tanh"}),
    ("leaky_rnn", {"hidden_size": 7, "activation": "softplus", "noise": 0.3}),  # f(0) != 0; noise off in eval
    ("gru", {"hidden_size": 6}),
    ("lstm", {"hidden_size": 5}),
])
def test_step_equals_forward(kind, kw):
    g = torch.Generator().manual_seed(3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(kind, 4, 3, **kw).eval()
    x = torch.randn(11, 9, 4, generator=g)
    with torch.no_grad():
        logits, act = model(x)
        state = model.initial_state(9)
        steps, hid = [], []
        for t in range(x.shape[0]):
            lt, state, a = model.step(x[t], state)
            steps.append(lt)
            hid.append(a["hidden"])
    torch.testing.assert_close(torch.stack(steps), logits, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.stack(hid), act["hidden"], rtol=1e-5, atol=1e-6)


def test_step_gradients_match_forward():
    torch.manual_seed(0)
    model = build_model("leaky_rnn", 4, 3, hidden_size=6)
    x = torch.randn(8, 5, 4)
    model(x)[0].square().sum().backward()
    g_fwd = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    state, out = model.initial_state(5), []
    for t in range(8):
        lt, state, _ = model.step(x[t], state)
        out.append(lt)
    torch.stack(out).square().sum().backward()
    for a, b in zip(g_fwd, [p.grad for p in model.parameters()]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_leaky_step_noise_uses_the_model_generator():
    model = build_model("leaky_rnn", 2, 3, hidden_size=4, noise=0.5).train()
    x = torch.zeros(3, 2)
    outs = []
    for _ in range(2):
        model.noise_generator = torch.Generator().manual_seed(7)
        outs.append(model.step(x, model.initial_state(3))[1])
    torch.testing.assert_close(outs[0], outs[1])
    model.noise_generator = torch.Generator().manual_seed(8)
    assert not torch.equal(outs[0], model.step(x, model.initial_state(3))[1])
