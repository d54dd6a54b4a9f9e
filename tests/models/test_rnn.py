import pytest
import torch

from decisionnets.errors import ConfigError
from decisionnets.models import build_model
from decisionnets.models.rnn import GRU, LSTM, LeakyRNN


@pytest.mark.parametrize("cls", [LeakyRNN, GRU, LSTM])
def test_forward_shapes(cls):
    m = cls(5, 3, hidden_size=7)
    x = torch.randn(11, 4, 5)
    logits, act = m(x)
    assert logits.shape == (11, 4, 3)
    assert act["hidden"].shape == (11, 4, 7)
    logits2, none = m(x, layers=())
    assert none == {}
    torch.testing.assert_close(logits, logits2)


def test_leaky_rnn_is_causal_and_leaky():
    m = LeakyRNN(2, 2, hidden_size=5, tau=100, dt=20).eval()
    x = torch.randn(10, 1, 2)
    y = x.clone()
    y[6:] += 1.0  # change the future only
    a = m(x)[1]["hidden"]
    b = m(y)[1]["hidden"]
    torch.testing.assert_close(a[:6], b[:6])
    assert not torch.allclose(a[6:], b[6:])
    assert m.alpha == pytest.approx(0.2)


def test_recurrent_noise_only_in_training_and_seeded():
    m = LeakyRNN(2, 2, hidden_size=5, noise=0.5)
    x = torch.zeros(4, 3, 2)
    m.noise_generator = torch.Generator().manual_seed(1)
    a = m(x)[0]
    m.noise_generator = torch.Generator().manual_seed(1)
    torch.testing.assert_close(a, m(x)[0])
    m.eval()
    torch.testing.assert_close(m(x)[0], m(x)[0])
    assert not torch.allclose(a, m(x)[0])


def test_unknown_layer_and_bad_parameters():
    m = LeakyRNN(2, 2, hidden_size=3)
    with pytest.raises(ConfigError, match="no layer"):
        m(torch.zeros(2, 1, 2), layers=("conv1",))
    with pytest.raises(ConfigError, match="activation"):
        LeakyRNN(2, 2, activation="sigmoidal")
    with pytest.raises(ConfigError, match="dt <= tau"):
        LeakyRNN(2, 2, tau=10, dt=20)
    with pytest.raises(ConfigError, match="unknown model kind 'transformer'"):
        build_model("transformer", 2, 2)
    with pytest.raises(ConfigError, match="no parameter 'width'"):
        build_model("gru", 2, 2, width=3)
