import pytest
import torch

from mmrefine.core.errors import BatchError
from mmrefine.fusion import FUSIONS, GMUFusion, LowRankTensorFusion, TensorFusion
from tests.conftest import random_features

DIMS = {"a": 4, "b": 3, "c": 5}
SPECS = [
    {"name": "concat"},
    {"name": "concat", "hidden": [8], "out_dim": 6},
    {"name": "linear_sum", "out_dim": 6},
    {"name": "gmu", "out_dim": 6},
    {"name": "tensor", "out_dim": 6},
    {"name": "low_rank_tensor", "out_dim": 6, "rank": 3},
    {"name": "attention", "out_dim": 6, "attn_dim": 5},
    {"name": "weighted_sum", "out_dim": 6},
]
IDS = [f"{s['name']}{'+mlp' if 'hidden' in s else ''}" for s in SPECS]


def build(spec):
    torch.manual_seed(0)
    return FUSIONS.build(spec, provided={"in_dims": DIMS})


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_shape_and_gradients_reach_every_parameter(spec) -> None:
    fusion = build(spec)
    out = fusion(random_features(DIMS, b=7))
    assert out.fused.shape == (7, fusion.out_dim)
    expected = 12 if spec == {"name": "concat"} else 6
    assert fusion.out_dim == expected
    params = list(fusion.named_parameters())
    if not params:  # plain concatenation has nothing to train
        return
    out.fused.square().sum().backward()
    for name, p in params:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_absent_modality_values_are_ignored(spec) -> None:
    """With 'b' absent, the output must not depend on what 'b' holds."""
    fusion = build(spec)
    x = random_features(DIMS, b=4)
    mask = {m: torch.ones(4, dtype=torch.bool) for m in DIMS}
    mask["b"][1:3] = False
    y = {**x, "b": x["b"] + 100 * torch.randn(4, 3)}
    o1, o2 = fusion(x, mask).fused, fusion(y, mask).fused
    assert torch.allclose(o1[1:3], o2[1:3], atol=1e-5)
    assert not torch.allclose(o1[0], o2[0])


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_all_modalities_absent_gives_finite_output(spec) -> None:
    fusion = build(spec)
    mask = {m: torch.zeros(2, dtype=torch.bool) for m in DIMS}
    assert torch.isfinite(fusion(random_features(DIMS, b=2), mask).fused).all()


def test_wrong_keys_and_shapes_are_named() -> None:
    fusion = build({"name": "gmu", "out_dim": 6})
    x = random_features(DIMS)
    with pytest.raises(BatchError, match="missing \\['c'\\]"):
        fusion({"a": x["a"], "b": x["b"]})
    with pytest.raises(BatchError, match="fusion input 'b': expected \\(B, 3\\)"):
        fusion({**x, "b": torch.randn(5, 4)})


def test_gmu_gates_in_unit_interval_and_zero_when_absent() -> None:
    gmu = GMUFusion(DIMS, out_dim=6)
    x = {m: 10 * v for m, v in random_features(DIMS, b=6).items()}
    mask = {m: torch.ones(6, dtype=torch.bool) for m in DIMS}
    mask["c"][0] = False
    out = gmu(x, mask)
    assert out.gates.shape == (6, 3, 6)
    assert (out.gates >= 0).all() and (out.gates <= 1).all()
    assert (out.gates[0, 2] == 0).all()
    # formula: z = sum_m g_m * tanh(W_m F_m)
    assert torch.allclose(out.fused, (out.gates * out.hidden).sum(1))


def test_low_rank_factors_are_registered_and_train() -> None:
    lrtf = LowRankTensorFusion(DIMS, out_dim=6, rank=3)
    names = {n for n, _ in lrtf.named_parameters()}
    assert {"factors.0", "factors.1", "factors.2", "fusion_weights", "bias"} <= names
    assert all(f"factors.{i}" in lrtf.state_dict() for i in range(3))
    before = [f.detach().clone() for f in lrtf.factors]
    opt = torch.optim.SGD(lrtf.parameters(), lr=0.1)
    lrtf(random_features(DIMS)).fused.sum().backward()
    opt.step()
    assert all(not torch.equal(b, f) for b, f in zip(before, lrtf.factors))


def test_low_rank_matches_its_formula() -> None:
    lrtf = LowRankTensorFusion({"a": 2, "b": 3}, out_dim=4, rank=2)
    x = random_features({"a": 2, "b": 3}, b=3)
    za = torch.cat([x["a"], torch.ones(3, 1)], 1)
    zb = torch.cat([x["b"], torch.ones(3, 1)], 1)
    expected = torch.zeros(3, 4)
    for r in range(2):
        expected += lrtf.fusion_weights[0, r] * (za @ lrtf.factors[0][r]) * (zb @ lrtf.factors[1][r])
    assert torch.allclose(lrtf(x).fused, expected + lrtf.bias, atol=1e-5)


def test_tensor_fusion_is_the_outer_product_with_ones() -> None:
    tf = TensorFusion({"a": 2, "b": 1}, out_dim=None)
    x = {"a": torch.tensor([[2.0, 3.0]]), "b": torch.tensor([[5.0]])}
    # [2, 3, 1] (x) [5, 1] = [10, 2, 15, 3, 5, 1]
    assert tf(x).fused.tolist() == [[10.0, 2.0, 15.0, 3.0, 5.0, 1.0]]
    absent = {"a": torch.ones(1, dtype=torch.bool), "b": torch.zeros(1, dtype=torch.bool)}
    assert tf(x, absent).fused.tolist() == [[0.0, 2.0, 0.0, 3.0, 0.0, 1.0]]  # only a's terms survive
    with pytest.raises(ValueError, match="max_size"):
        TensorFusion({"a": 2000, "b": 2000}, out_dim=4)


def test_attention_and_weighted_sum_weights_renormalise_over_present() -> None:
    for spec in ({"name": "attention", "out_dim": 6}, {"name": "weighted_sum", "out_dim": 6}):
        f = build(spec)
        mask = {m: torch.ones(3, dtype=torch.bool) for m in DIMS}
        mask["a"][0] = False
        w = f(random_features(DIMS, b=3), mask).weights
        assert torch.allclose(w.sum(1), torch.ones(3)) and w[0, 0] == 0
