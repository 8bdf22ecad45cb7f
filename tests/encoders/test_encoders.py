import pytest
import torch

from mmrefine.core.errors import ConfigError
from mmrefine.encoders import ENCODERS, LeNetEncoder


def _all_params_get_grad(module: torch.nn.Module, out: torch.Tensor) -> None:
    out.square().sum().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "spec, input_shape, out_dim",
    [
        ({"name": "mlp", "hidden": [16, 8], "out_dim": 5}, (3, 4), 5),
        ({"name": "identity"}, (3, 4), 12),
        ({"name": "lenet", "kernels": [5, 3], "width": 4, "out_dim": 7}, (16, 16), 7),
        ({"name": "conv1d", "channels": [8, 6], "kernels": [3, 5], "pooling": "mean"}, (10, 4), 6),
        ({"name": "gru", "hidden": 6, "bidirectional": True, "pooling": "last"}, (10, 4), 12),
        ({"name": "transformer", "d_model": 8, "heads": 2, "layers": 1, "pooling": "last", "dropout": 0.0}, (10, 4), 8),
    ],
)
def test_encoder_shapes_and_gradients(spec, input_shape, out_dim) -> None:
    enc = ENCODERS.build(spec, provided={"input_shape": input_shape})
    out = enc(torch.randn(3, *input_shape))
    assert out.shape == (3, out_dim) and enc.out_dim == out_dim
    if list(enc.parameters()):
        _all_params_get_grad(enc, out)


def test_lenet_expresses_progressive_fusion_avmnist_encoders() -> None:
    # image: 4 conv layers, kernels 5,3,3,3, max-pool 2 each, channels doubling
    img = LeNetEncoder((784,), kernels=[5, 3, 3, 3], width=6)
    assert [m.kernel_size[0] for m in img.conv if isinstance(m, torch.nn.Conv2d)] == [5, 3, 3, 3]
    assert [m.out_channels for m in img.conv if isinstance(m, torch.nn.Conv2d)] == [6, 12, 24, 48]
    assert img(torch.randn(2, 784)).shape == (2, 48)  # 28 -> 14 -> 7 -> 3 -> 1
    # audio: 6 conv layers on 112x112 spectrograms, kernels 5,3,3,3,3,3
    aud = LeNetEncoder((112, 112), kernels=[5, 3, 3, 3, 3, 3], width=6)
    assert aud(torch.randn(2, 112, 112)).shape == (2, 192)  # 112 -> ... -> 1, 6 * 2^5 channels


def test_lenet_rejects_impossible_configs() -> None:
    with pytest.raises(ConfigError, match="shrink"):
        LeNetEncoder((4, 4), kernels=[3, 3, 3, 3])
    with pytest.raises(ConfigError, match="channels for"):
        LeNetEncoder((16, 16), kernels=[3, 3], channels=[4])


def test_sequence_pooling_choice_matters() -> None:
    torch.manual_seed(0)
    last = ENCODERS.build({"name": "gru", "hidden": 4, "pooling": "last"}, provided={"input_shape": (6, 3)})
    mean = ENCODERS.build({"name": "gru", "hidden": 4, "pooling": "mean"}, provided={"input_shape": (6, 3)})
    mean.load_state_dict(last.state_dict())
    x = torch.randn(2, 6, 3)
    h, _ = last.gru(x)
    assert torch.allclose(last(x), h[:, -1]) and torch.allclose(mean(x), h.mean(1))
    with pytest.raises(ConfigError, match="pooling must be one of"):
        ENCODERS.build({"name": "gru", "pooling": "max"}, provided={"input_shape": (6, 3)})


def test_lenet_channels_last_is_the_same_function() -> None:
    from mmrefine.encoders.conv import LeNetEncoder

    torch.manual_seed(0)
    eager = LeNetEncoder((1, 112, 112), kernels=[5, 3, 3, 3, 3], width=6, out_dim=16)
    fast = LeNetEncoder((1, 112, 112), kernels=[5, 3, 3, 3, 3], width=6, out_dim=16, channels_last=True)
    fast.load_state_dict(eager.state_dict())
    assert fast.conv[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(4, 1, 112, 112)
    assert torch.allclose(fast(x), eager(x), atol=1e-5)
    fast(x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fast.parameters())


def test_lenet_batch_norm_blocks_are_multibench_lenet() -> None:
    torch.manual_seed(0)
    enc = LeNetEncoder((1, 28, 28), kernels=[5, 3, 3, 3], width=6, batch_norm=True)
    convs = [m for m in enc.conv if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in enc.conv if isinstance(m, torch.nn.BatchNorm2d)]
    assert [c.bias for c in convs] == [None] * 4 and [n.num_features for n in norms] == [6, 12, 24, 48]
    assert enc.training and enc.out_dim == 48
    # block = conv -> BN (batch statistics in training) -> ReLU -> max-pool, by hand
    x = torch.randn(8, 1, 28, 28)
    h = x
    for c in convs:
        h = torch.nn.functional.conv2d(h, c.weight, padding=c.padding)
        h = (h - h.mean((0, 2, 3), keepdim=True)) / torch.sqrt(h.var((0, 2, 3), unbiased=False, keepdim=True) + 1e-5)
        h = torch.nn.functional.max_pool2d(torch.relu(h), 2)
    assert torch.allclose(enc(x), h.flatten(1), atol=1e-4)
    fast = LeNetEncoder((1, 28, 28), kernels=[5, 3, 3, 3], width=6, batch_norm=True, channels_last=True)
    fast.load_state_dict(enc.state_dict())
    assert torch.allclose(fast(x), enc(x), atol=1e-4)
    enc(x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())


def test_lenet_pools_before_relu_with_the_same_values_and_gradients() -> None:
    torch.manual_seed(0)
    enc = LeNetEncoder((1, 28, 28), kernels=[5, 3], width=4)
    x = torch.randn(3, 1, 28, 28, requires_grad=True)
    h = x
    for conv in [m for m in enc.conv if isinstance(m, torch.nn.Conv2d)]:
        h = torch.nn.functional.max_pool2d(torch.relu(conv(h)), 2)  # the textbook order
    ref = torch.autograd.grad(h.pow(2).sum(), [x, *enc.parameters()])
    got = torch.autograd.grad(enc(x).pow(2).sum(), [x, *enc.parameters()])
    assert torch.equal(enc(x), h.flatten(1))
    assert all(torch.equal(a, b) for a, b in zip(ref, got))
