import torch

from mmrefine.data import TensorMultimodalDataset
from mmrefine.encoders import MLPEncoder
from mmrefine.evaluation.probes import collect, linear_probe, probe_steps
from mmrefine.fusion import GMUFusion
from mmrefine.models import FusionModel, MLPHead
from mmrefine.refine import ProgressiveFusion


def test_linear_probe_separates_separable_data_and_not_noise() -> None:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (300,), generator=g)
    x = torch.randn(300, 5, generator=g) + 4 * torch.nn.functional.one_hot(y, 5).float()
    assert linear_probe(x[:200], y[:200], x[200:], y[200:]) > 0.95
    noise = torch.randn(300, 5, generator=g)
    assert linear_probe(noise[:200], y[:200], noise[200:], y[200:]) < 0.6


def test_collect_and_probe_every_progressive_step() -> None:
    torch.manual_seed(0)
    shapes = {"a": (6,), "b": (4,)}
    enc = {m: MLPEncoder(s, out_dim=5) for m, s in shapes.items()}
    pf = ProgressiveFusion(FusionModel(enc, GMUFusion({"a": 5, "b": 5}, out_dim=6), MLPHead(6, 3)), shapes, steps=3)
    g = torch.Generator().manual_seed(1)
    ds = TensorMultimodalDataset({m: torch.randn(90, *s, generator=g) for m, s in shapes.items()}, torch.arange(90) % 3)
    batches = [ds.__getitems__(list(range(i, i + 30))) for i in (0, 30, 60)]
    col = collect(pf, batches)
    assert col.fused.shape == (90, 6) and col.gates.shape == (90, 2, 6) and len(col.step_features) == 3
    assert col.step_features[-1]["a"].shape == (90, 5) and torch.equal(col.step_features[-1]["a"], col.features["a"])
    res = probe_steps(collect(pf, batches[:2]), collect(pf, batches[2:]))
    assert set(res) == {1, 2, 3} and set(res[1]) == {"a", "b"} and all(0 <= v <= 1 for s in res.values() for v in s.values())
