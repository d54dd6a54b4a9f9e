import pytest
import torch

from decisionnets.errors import ConfigError
from decisionnets.models.mlp import MLP


def test_forward_shapes_and_layers():
    m = MLP(4, 2, hidden_sizes=[6, 5, 3])
    x = torch.randn(1, 8, 4)
    logits, act = m(x, layers=("hidden", "layer1", "layer3"))
    assert logits.shape == (1, 8, 2)
    assert act["layer1"].shape == (1, 8, 6)
    torch.testing.assert_close(act["hidden"], act["layer3"])
    assert (act["hidden"] >= 0).all()  # after the ReLU


def test_bad_config():
    with pytest.raises(ConfigError, match="hidden_sizes"):
        MLP(4, 2, hidden_sizes=[])
    with pytest.raises(ConfigError, match="no layer"):
        MLP(4, 2, hidden_sizes=[3])(torch.zeros(1, 1, 4), layers=("layer2",))


def test_init_gain_scales_weights_not_biases():
    torch.manual_seed(0)
    a = MLP(4, 2, hidden_sizes=[6, 5])
    torch.manual_seed(0)
    b = MLP(4, 2, hidden_sizes=[6, 5], init_gain=0.1)
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        factor = 0.1 if name.endswith("weight") else 1.0
        torch.testing.assert_close(pb, pa * factor)
    with pytest.raises(ConfigError, match="init_gain must be a number > 0; got 0"):
        MLP(4, 2, hidden_sizes=[3], init_gain=0)
