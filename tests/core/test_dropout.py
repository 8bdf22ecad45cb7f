import math

import pytest
import torch
from torch import nn

from mmrefine.core.dropout import FastDropout, composed_attention, fast_dropout, multihead_attention, relu_dropout


@pytest.mark.parametrize("p", [0.1, 0.25, 0.5])
def test_fast_dropout_drops_a_fraction_p_and_keeps_the_mean(p) -> None:
    torch.manual_seed(0)
    x = torch.full((400, 1000), 2.0)
    out = fast_dropout(x, p)
    dropped = (out == 0).float().mean().item()
    assert abs(dropped - p) < 4 * math.sqrt(p * (1 - p) / x.numel())  # binomial: 4 standard errors
    kept = out[out != 0]
    assert torch.allclose(kept, torch.full_like(kept, 2.0 / (1 - round(p * 65536) / 65536)))
    assert abs(out.mean().item() - 2.0) < 4 * 2.0 * math.sqrt(p / (1 - p) / x.numel())


def test_fast_dropout_masks_are_independent_across_positions() -> None:
    torch.manual_seed(1)
    keep = fast_dropout(torch.ones(200_000), 0.5) != 0  # pairs of neighbours (same 64-bit draw or not)
    a, b = keep[:-1].float(), keep[1:].float()
    corr = ((a - a.mean()) * (b - b.mean())).mean() / (a.std() * b.std())
    assert abs(corr.item()) < 0.01


def test_fast_dropout_gradient_is_the_same_mask_and_scale() -> None:
    torch.manual_seed(2)
    x = torch.randn(64, 33, requires_grad=True)
    out = fast_dropout(x, 0.3)
    g = torch.randn_like(out)
    out.backward(g)
    keep, scale = out.detach() != 0, 1 / (1 - round(0.3 * 65536) / 65536)
    assert torch.allclose(out.detach(), torch.where(keep, x.detach() * scale, 0.0))
    assert torch.allclose(x.grad, torch.where(keep, g * scale, 0.0))


def test_fast_dropout_is_repeatable_under_a_seed_and_off_in_eval() -> None:
    x = torch.randn(10, 50)
    torch.manual_seed(3)
    a = fast_dropout(x, 0.2)
    torch.manual_seed(3)
    assert torch.equal(a, fast_dropout(x, 0.2))
    layer = FastDropout(0.2).eval()
    assert layer(x) is x and fast_dropout(x, 0.0) is x
    with pytest.raises(ValueError, match="dropout probability"):
        fast_dropout(x, 1.0)


def test_relu_dropout_is_fast_dropout_of_relu_from_the_same_draws() -> None:
    x = torch.randn(7, 33, 40, requires_grad=True)
    g = torch.randn(7, 33, 40)
    results = []
    for f in (lambda x: fast_dropout(torch.relu(x), 0.3), lambda x: relu_dropout(x, 0.3)):
        torch.manual_seed(6)
        out = f(x)
        results.append((out, *torch.autograd.grad(out, x, g)))
    assert (results[0][0] == 0).float().mean() > 0.55  # both ReLU's zeros and dropped entries
    for want, got in zip(*results):
        assert torch.equal(got, want)
    assert torch.equal(relu_dropout(x, 0.3, training=False), torch.relu(x))
    assert torch.equal(relu_dropout(x, 0.0), torch.relu(x))
    with pytest.raises(ValueError, match="dropout probability"):
        relu_dropout(x, 1.0)


def reference_mha(heads: int = 2, d: int = 8, dropout: float = 0.0) -> nn.MultiheadAttention:
    torch.manual_seed(4)
    mha = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
    nn.init.normal_(mha.in_proj_bias)
    return mha


@pytest.mark.parametrize("cross", [False, True])
def test_multihead_attention_equals_torch_without_dropout(cross) -> None:
    mha = reference_mha(dropout=0.3).eval()
    x = torch.randn(3, 5, 8)
    y = torch.randn(3, 7, 8) if cross else x
    pad = torch.zeros(3, y.shape[1], dtype=torch.bool)
    pad[1, -2:] = True
    causal = torch.triu(torch.full((5, y.shape[1]), float("-inf")), 1)
    float_pad = torch.zeros(pad.shape).masked_fill(pad, float("-inf"))
    for mask, padding in [(None, None), (None, pad), (causal, float_pad)]:
        want, _ = mha(x, y, y, attn_mask=mask, key_padding_mask=padding, need_weights=False)
        assert torch.allclose(multihead_attention(mha, x, y, mask, padding), want, atol=1e-5)


def test_a_padding_mask_that_masks_nothing_is_left_out() -> None:
    from mmrefine.core.dropout import _score_mask

    none = torch.zeros(3, 7, dtype=torch.bool)
    assert _score_mask(None, none, torch.float32) is None
    assert _score_mask(torch.zeros(5, 7), torch.zeros(3, 7), torch.float32) is None
    learned = torch.zeros(5, 7, requires_grad=True)  # its gradient needs it in the graph
    assert _score_mask(learned, none, torch.float32) is not None
    some = none.clone()
    some[1, -2:] = True
    assert torch.isneginf(_score_mask(None, some, torch.float32)).sum() == 2
    mha = reference_mha(dropout=0.3).train()
    x = torch.randn(3, 7, 8)
    torch.manual_seed(8)
    want = multihead_attention(mha, x, x)
    torch.manual_seed(8)
    assert torch.equal(multihead_attention(mha, x, x, None, none), want)  # the same draws, the same numbers


def test_multihead_attention_with_dropout_is_unbiased() -> None:
    # the mean over many training-mode draws converges to the output without dropout
    mha = reference_mha(dropout=0.5)
    x = torch.randn(2, 4, 8)
    pad = torch.tensor([[False] * 4, [False, False, True, True]])
    with torch.no_grad():
        want = multihead_attention(mha.eval(), x, x, None, pad)
        mha.train()
        draws = torch.stack([multihead_attention(mha, x, x, None, pad) for _ in range(4000)])
    assert not torch.equal(draws[0], draws[1])
    assert torch.allclose(draws.mean(0), want, atol=0.05)
    assert (draws.std(0) > 0.01).all()


def test_multihead_attention_gives_zero_weight_to_fully_masked_queries_in_training() -> None:
    mha = reference_mha(dropout=0.2).train()
    x = torch.randn(2, 3, 8, requires_grad=True)
    pad = torch.tensor([[True] * 3, [False] * 3])
    out = multihead_attention(mha, x, x, None, pad)
    assert torch.allclose(out[0], mha.out_proj.bias.expand(3, -1))  # no value reaches a fully masked row
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("masked", [False, True])
def test_dropped_attention_equals_the_composed_form_from_the_same_draws(masked) -> None:
    from mmrefine.core.dropout import _DroppedAttention

    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(3, 2, 6 if i == 0 else 7, 4, generator=g, requires_grad=True) for i in range(3))
    mask = torch.zeros(3, 1, 1, 7).masked_fill(torch.rand(3, 1, 1, 7, generator=g) < 0.3, float("-inf")) if masked else None
    weights = torch.randn(3, 2, 6, 4, generator=g)
    results = []
    for attend in (composed_attention, _DroppedAttention.apply):
        torch.manual_seed(7)
        out = attend(q, k, v, mask, 0.3)
        grads = torch.autograd.grad((out * weights).sum(), (q, k, v))
        results.append((out, *grads))
    assert not torch.allclose(results[0][0], composed_attention(q, k, v, mask, 0.0), atol=1e-3)  # weights were dropped
    for want, got in zip(*results):
        assert torch.allclose(got, want, atol=1e-5)


def test_dropped_attention_gradient_is_exact() -> None:
    from mmrefine.core.dropout import _DroppedAttention

    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, 2, 5, 3, dtype=torch.float64, generator=g, requires_grad=True) for _ in range(3))
    mask = torch.zeros(2, 1, 1, 5, dtype=torch.float64)
    mask[1, ..., -2:] = float("-inf")

    def attend(q, k, v):  # noqa: ANN001, ANN202
        torch.manual_seed(3)  # the same dropout mask at every evaluation
        return _DroppedAttention.apply(q, k, v, mask, 0.4)

    assert torch.autograd.gradcheck(attend, (q, k, v))


def test_attention_inside_twice_differentiable_has_a_second_derivative() -> None:
    from mmrefine.core.dropout import twice_differentiable

    mha = reference_mha(dropout=0.3).train()
    x = torch.randn(2, 5, 8, requires_grad=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):  # the one-function form: first derivatives only
        (g,) = torch.autograd.grad(multihead_attention(mha, x, x).square().sum(), x, create_graph=True)
        g.sum().backward()
    with twice_differentiable():
        out = multihead_attention(mha, x, x)
    (g,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
    g.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
