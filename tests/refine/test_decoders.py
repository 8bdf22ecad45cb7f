import pytest
import torch

from mmrefine.losses import REFINER_LOSSES
from mmrefine.refine.decoders import GroupedDecoders

DIMS = {"a": 3, "b": 5, "c": 2}


def test_each_decoder_is_its_own_two_layer_mlp() -> None:
    dec = GroupedDecoders(4, 6, DIMS)
    z = torch.randn(7, 4)
    out = dec.split(dec(z))
    for i, (m, d) in enumerate(DIMS.items()):
        w1 = dec.first.weight[i * 6 : (i + 1) * 6]
        b1 = dec.first.bias[i * 6 : (i + 1) * 6]
        expected = torch.relu(z @ w1.T + b1) @ dec.weight[i, :, :d] + dec.bias[i, 0, :d]
        assert out[m].shape == (7, d) and torch.allclose(out[m], expected, atol=1e-6)


def test_padding_columns_stay_zero_under_training() -> None:
    dec = GroupedDecoders(4, 6, DIMS)
    opt = torch.optim.AdamW(dec.parameters(), lr=0.1, weight_decay=0.1)
    for _ in range(3):
        opt.zero_grad()
        dec(torch.randn(5, 4)).square().sum().backward()
        opt.step()
    assert (dec.weight[0, :, 3:] == 0).all() and (dec.weight[2, :, 2:] == 0).all()
    assert (dec.bias[0, :, 3:] == 0).all() and (dec.weight[1] != 0).all()


@pytest.mark.parametrize("name", ["cosine", "mse", "contrastive"])
def test_batched_masked_loss_equals_per_modality_loss_on_present_samples(name) -> None:
    spec = {"name": name, **({"margin": 0.2} if name == "contrastive" else {})}
    loss = REFINER_LOSSES.build(spec)
    g = torch.Generator().manual_seed(0)
    r = {m: torch.randn(6, d, generator=g) for m, d in DIMS.items()}
    t = {m: torch.randn(6, d, generator=g) for m, d in DIMS.items()}
    mask = {m: torch.tensor([1, 1, 0, 1, 0, 1], dtype=torch.bool).roll(i) for i, m in enumerate(DIMS)}
    pad = lambda x: torch.nn.functional.pad(x, (0, 5 - x.shape[1]))  # noqa: E731
    batched = loss(
        torch.stack([pad(r[m]) for m in DIMS]),
        torch.stack([pad(t[m]) for m in DIMS]),
        torch.stack([mask[m] for m in DIMS]),
        torch.tensor(list(DIMS.values())),
    )
    for i, m in enumerate(DIMS):
        single = loss(r[m][mask[m]], t[m][mask[m]])
        assert batched[i].item() == pytest.approx(single.item(), rel=1e-5, abs=1e-7)
    assert loss(r["a"], t["a"], torch.zeros(6, dtype=torch.bool)).item() == 0.0
