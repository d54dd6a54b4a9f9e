"""Per-epoch weights in the run directory: atomic, byte-stable files, and clear errors."""

import pytest
import torch

from decisionnets.errors import DataFileError
from decisionnets.weights import load_weights, save_weights, weight_epochs, weights_path


def test_save_and_load_round_trip_and_same_weights_same_bytes(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    p = save_weights(tmp_path, 7, model)
    assert p == tmp_path / "weights" / "epoch_0007.pt" == weights_path(tmp_path, 7)
    state = load_weights(tmp_path, 7)
    assert state.keys() == model.state_dict().keys()
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    first = p.read_bytes()
    save_weights(tmp_path, 7, model)  # again (a resumed run re-recording the epoch): the same file
    assert p.read_bytes() == first
    save_weights(tmp_path, 0, model)
    assert weight_epochs(tmp_path) == [0, 7] and list((tmp_path / "weights").glob(".*.tmp")) == []
    with torch.no_grad():
        model.weight.add_(1.0)
    assert save_weights(tmp_path, 7, model).read_bytes() != first


def test_missing_or_corrupt_weights_are_named(tmp_path):
    with pytest.raises(DataFileError, match="no weights for epoch 3.*holds no weights"):
        load_weights(tmp_path, 3)
    save_weights(tmp_path, 1, torch.nn.Linear(2, 2))
    with pytest.raises(DataFileError, match=r"no weights for epoch 3.*epochs \[1\]"):
        load_weights(tmp_path, 3)
    weights_path(tmp_path, 1).write_bytes(b"partial")
    with pytest.raises(DataFileError, match="cannot read weights"):
        load_weights(tmp_path, 1)
