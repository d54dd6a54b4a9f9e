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
