"""CNNs: shapes, recordable layers, errors, and a one-epoch ResNet-18 on fake CIFAR-10."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from decisionnets.errors import ConfigError
from decisionnets.models.cnn import AllCNNC, ResNet18, SmallCNN

torch.set_num_threads(1)

TINY = {
    "resnet18": (ResNet18, {"width": 4}, (3, 32, 32)),
    "allcnnc": (AllCNNC, {"width": 4}, (3, 16, 16)),
    "smallcnn": (SmallCNN, {"channels": 4, "hidden": 8}, (1, 8, 8)),
}
UNITS = {
    "resnet18": {"stem": 4, "layer1": 4, "layer2": 8, "layer3": 16, "penultimate": 32},
    "allcnnc": {"block1": 4, "block2": 8, "penultimate": 8},
    "smallcnn": {"conv1": 4, "conv2": 8, "penultimate": 8},
}


def make(name, n_outputs=3):
    cls, kw, shape = TINY[name]
    torch.manual_seed(0)
    return cls(int(np.prod(shape)), n_outputs, input_shape=shape, **kw).eval(), shape


@pytest.mark.parametrize("name", list(TINY))
def test_forward_shapes_and_layers(name):
    model, shape = make(name)
    assert model.default_layers == ("penultimate",)
    assert set(model.layer_names) == set(UNITS[name])
    x = torch.randn(1, 5, int(np.prod(shape)))
    logits, act = model(x)
    assert logits.shape == (1, 5, 3) and list(act) == ["penultimate"]
    logits_all, act = model(x, layers=model.layer_names)
    torch.testing.assert_close(logits_all, logits)
    assert {k: tuple(v.shape) for k, v in act.items()} == {k: (1, 5, u) for k, u in UNITS[name].items()}
    _, none = model(x, layers=())
    assert none == {}


@pytest.mark.parametrize("name", list(TINY))
def test_logits_are_the_readout_of_penultimate(name):
    model, shape = make(name)
    logits, act = model(torch.randn(1, 4, int(np.prod(shape))))
    torch.testing.assert_close(logits, model.fc(act["penultimate"]))


@pytest.mark.parametrize("name", list(TINY))
def test_time_and_batch_are_independent_in_eval_mode(name):
    model, shape = make(name)
    x = torch.randn(2, 3, int(np.prod(shape)))
    logits, act = model(x)
    assert logits.shape == (2, 3, 3)
    one, _ = model(x[1:, 2:])
    torch.testing.assert_close(one[0, 0], logits[1, 2], atol=1e-5, rtol=1e-5)


def test_conv_activity_is_per_channel_spatial_mean():
    model, shape = make("smallcnn")
    x = torch.randn(1, 2, 64)
    _, act = model(x, layers=["conv1"])
    expected = F.relu(model.conv1(x.reshape(2, *shape))).mean(dim=(2, 3))
    torch.testing.assert_close(act["conv1"][0], expected)


@pytest.mark.parametrize("name", list(TINY))
def test_unknown_layer_names_valid_ones(name):
    model, shape = make(name)
    with pytest.raises(ConfigError, match="valid: " + ", ".join(model.layer_names)):
        model(torch.randn(1, 2, int(np.prod(shape))), layers=["layer9"])


def test_wrong_input_size_is_rejected():
    model, _ = make("smallcnn")
    with pytest.raises(ValueError, match=r"\(time, batch, 64\)"):
        model(torch.randn(1, 2, 65))


@pytest.mark.parametrize("n_inputs, shape", [(3072, (3, 32, 32)), (64, (1, 8, 8)), (768, (3, 16, 16))])
def test_input_shape_is_inferred_from_square_images(n_inputs, shape):
    assert SmallCNN(n_inputs, 2).input_shape == shape


@pytest.mark.parametrize("kwargs, match", [
    ({"n_inputs": 101, "input_shape": None}, "cannot infer an image shape"),
    ({"n_inputs": 64, "input_shape": (3, 8, 8)}, "has 192 values"),
    ({"n_inputs": 64, "input_shape": (1, 8)}, "3 positive integers"),
    ({"n_inputs": 64, "width": 0}, "model.width must be an integer >= 1"),
])
def test_bad_model_config(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ResNet18(n_outputs=2, **kwargs)


def test_allcnnc_refuses_8x8_images():
    with pytest.raises(ConfigError, match="at least 9x9"):
        AllCNNC(64, 2, width=4)


def test_full_size_parameter_counts():
    """The standard widths give the published sizes (11.2M and 1.4M parameters)."""
    n = sum(p.numel() for p in ResNet18(3072, 10).parameters())
    assert n == pytest.approx(11.17e6, rel=0.01)
    assert sum(p.numel() for p in AllCNNC(3072, 10).parameters()) == pytest.approx(1.37e6, rel=0.01)


def test_registered_in_build_model():
    from decisionnets.models import build_model

    model = build_model("resnet18", 3072, 2, width=4)
    assert isinstance(model, ResNet18) and model.input_shape == (3, 32, 32)


def test_one_epoch_resnet18_on_fake_cifar10_cpu(tmp_path):
    """Forward/backward of a narrow ResNet-18 over a tiny fake CIFAR-10, with augmentation."""
    from fake_images import write_fake_cifar

    from decisionnets.images import ImageTask

    write_fake_cifar(tmp_path, "cifar10", n_train=20, n_test=10)
    task = ImageTask("cifar10", root=str(tmp_path), augment=True)
    train = task.train_set(None, None)
    torch.manual_seed(0)
    model = ResNet18(task.n_inputs, task.n_outputs, input_shape=task.input_shape, width=4)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    x_all, y_all = torch.from_numpy(train.inputs), torch.from_numpy(train.targets)
    model.train()
    for start in range(0, 20, 10):
        x = task.augment(x_all[:, start:start + 10], gen)
        logits, act = model(x)
        loss = F.cross_entropy(logits.reshape(-1, task.n_outputs), y_all[:, start:start + 10].reshape(-1))
        opt.zero_grad()
        loss.backward()
        assert torch.isfinite(loss)
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
        opt.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    model.eval()
    with torch.no_grad():
        logits, act = model(torch.from_numpy(task.probe_set(np.random.default_rng(0)).inputs))
    assert logits.shape == (1, 10, 2) and act["penultimate"].shape == (1, 10, 32)


def test_small_cnn_learns_digits_coarse_in_three_epochs():
    from decisionnets.images import ImageTask

    task = ImageTask("digits")
    train, probe = task.train_set(None, None), task.probe_set(None)
    torch.manual_seed(0)
    model = SmallCNN(task.n_inputs, task.n_outputs, input_shape=task.input_shape)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.from_numpy(train.inputs), torch.from_numpy(train.targets)
    rng = np.random.default_rng(0)
    for _ in range(3):
        order = rng.permutation(x.shape[1])
        for start in range(0, len(order), 16):
            i = torch.from_numpy(order[start:start + 16])
            logits, _ = model(x[:, i], layers=())
            loss = F.cross_entropy(logits.reshape(-1, 2), y[:, i].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        logits, _ = model(torch.from_numpy(probe.inputs))
    assert (logits[0].argmax(-1).numpy() == probe.targets[0]).mean() > 0.85
