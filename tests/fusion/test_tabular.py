"""The Multimodal-Toolkit combiners: shapes, gradients, their formulas on hand-made inputs, roles."""

import pytest
import torch

from mmrefine.core.errors import ConfigError
from mmrefine.fusion import FUSIONS
from mmrefine.fusion.tabular import GatingCombiner, TabularAttention, WeightedFeatureSum
from tests.conftest import random_features

DIMS = {"title": 6, "review": 10, "categorical": 4, "numerical": 3}
SHORT = ["text_only", "mlp_cat_concat", "mlps_concat", "concat_mlp", "tabular_attention", "gating", "weighted_feature_sum"]
LONG = ["text_only_combiner", "mlp_on_categorical_then_concat", "individual_mlps_on_cat_and_numerical_feats_then_concat",
        "mlp_on_concatenated_cat_and_numerical_feats_then_concat", "attention_on_cat_and_numerical_feats",
        "gating_on_cat_and_num_feats_then_sum", "weighted_feature_sum_on_transformer_cat_and_numerical_feats"]
WIDTH = {"text_only": 16, "mlp_cat_concat": 16 + 64 + 3, "mlps_concat": 16 + 128, "concat_mlp": 16 + 64,
         "tabular_attention": 64, "gating": 16, "weighted_feature_sum": 16}


@pytest.mark.parametrize("short, long", zip(SHORT, LONG))
def test_each_combiner_by_both_names_has_its_width_and_trains_every_parameter(short: str, long: str) -> None:
    assert FUSIONS.get(short) is FUSIONS.get(long)
    fusion = FUSIONS.build({"name": short}, provided={"in_dims": DIMS})
    feats = {m: f.requires_grad_() for m, f in random_features(DIMS, b=8).items()}
    z = fusion(feats).fused
    assert z.shape == (8, WIDTH[short]) == (8, fusion.out_dim)
    z.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fusion.parameters())
    if short == "text_only":
        assert torch.equal(z, torch.cat([feats["title"], feats["review"]], 1))


def test_gating_scale_keeps_the_shift_within_beta_of_the_text_norm() -> None:
    g = GatingCombiner(DIMS, beta=0.2, dropout=0.0).eval()
    feats = random_features(DIMS, b=64, seed=1)
    out = g(feats)
    x = torch.cat([feats["title"], feats["review"]], 1)
    shift = (out.fused - x).norm(dim=1)
    assert torch.all(shift <= 0.2 * x.norm(dim=1) + 1e-5)
    with torch.no_grad():  # huge projections: alpha is the clip ||x||/||h|| * beta < 1, the shift exactly beta ||x||
        for lin in g.proj.values():
            lin.weight.mul_(1e3)
    out = g(feats)
    assert torch.all(out.scale < 1)
    assert torch.allclose((out.fused - x).norm(dim=1), 0.2 * x.norm(dim=1), rtol=1e-4)


def test_weighted_feature_sum_is_x_plus_projected_tabular_parts() -> None:
    dims = {"text": 3, "categorical": 3, "numerical": 3}
    w = WeightedFeatureSum(dims)
    with torch.no_grad():
        for lin in w.proj.values():
            lin.weight.copy_(torch.eye(3))
        w.weight["numerical"].fill_(2.0)
    f = {"text": torch.tensor([[1.0, 2, 3]]), "categorical": torch.tensor([[1.0, 0, 0]]), "numerical": torch.tensor([[0.0, 1, 0]])}
    assert torch.allclose(w(f).fused, torch.tensor([[2.0, 4, 3]]))


def test_attention_weights_sum_to_one_and_skip_absent_roles() -> None:
    a = TabularAttention(DIMS, out_dim=8)
    feats = random_features(DIMS, b=4)
    mask = {m: torch.ones(4, dtype=torch.bool) for m in DIMS}
    mask["numerical"] = torch.tensor([True, False, True, False])
    out = a(feats, mask)
    assert out.weights.shape == (4, 3) and torch.allclose(out.weights.sum(1), torch.ones(4))
    assert torch.all(out.weights[[1, 3], 2] == 0) and torch.all(out.weights[[0, 2], 2] > 0)


def test_roles_are_modality_names_so_any_model_can_use_the_combiners() -> None:
    dims = {"image": 5, "audio": 4}
    g = FUSIONS.build({"name": "gating", "numerical": ["audio"]}, provided={"in_dims": dims})
    assert g.roles == {"categorical": [], "numerical": ["audio"], "text": ["image"]} and g.out_dim == 5
    with pytest.raises(ConfigError, match="unknown modality"):
        FUSIONS.build({"name": "gating", "numerical": ["video"]}, provided={"in_dims": dims})
    with pytest.raises(ConfigError, match="needs a categorical"):
        FUSIONS.build({"name": "mlp_cat_concat"}, provided={"in_dims": dims})
    with pytest.raises(ConfigError, match="both categorical and numerical"):
        FUSIONS.build({"name": "concat_mlp", "categorical": ["audio"], "numerical": ["audio"]}, provided={"in_dims": dims})
