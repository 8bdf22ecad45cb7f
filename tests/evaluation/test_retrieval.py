"""Unimodal-query retrieval: queries really unimodal, multi-label hits, and
queries placed in their own slot of a concatenation."""

from __future__ import annotations

import pytest
import torch

from mmrefine.core.errors import ConfigError
from mmrefine.data import MultimodalBatch
from mmrefine.encoders import MLPEncoder
from mmrefine.evaluation.retrieval import fit_linear_map, placement, topk_retrieval, unimodal_features
from mmrefine.fusion import ConcatFusion, GMUFusion
from mmrefine.models import ARCHITECTURES, FusionModel, MLPHead
from mmrefine.refine import ProgressiveFusion, Refiner


def batch(inputs: dict[str, torch.Tensor], labels: torch.Tensor | None = None) -> MultimodalBatch:
    b = next(iter(inputs.values())).shape[0]
    return MultimodalBatch(dict(inputs), {m: torch.ones(b, dtype=torch.bool) for m in inputs}, labels)


def test_queries_do_not_depend_on_the_other_modalities() -> None:
    """For MulT, the text feature of a full forward pass moves when only the audio changes; the query must not."""
    torch.manual_seed(0)
    shapes = {"text": (5, 6), "audio": (4, 3)}
    model = ARCHITECTURES.build({"name": "mult", "d": 8, "heads": 2, "layers": 1}, provided={"input_shapes": shapes, "out_dim": 2}).eval()
    x = {m: torch.randn(6, *s) for m, s in shapes.items()}
    y = {**x, "audio": x["audio"] + 3.0}
    full_x, full_y = model(x).features["text"], model(y).features["text"]
    assert not torch.allclose(full_x, full_y)  # the leak the old protocol had
    qx, _ = unimodal_features(model, [batch(x)], "text")
    qy, _ = unimodal_features(model, [batch(y)], "text")
    assert torch.equal(qx, qy)


def test_progressive_fusion_queries_are_the_first_steps_features() -> None:
    torch.manual_seed(0)
    base = FusionModel({"a": MLPEncoder((6,), out_dim=4), "b": MLPEncoder((5,), out_dim=4)}, GMUFusion({"a": 4, "b": 4}, out_dim=6),
                       MLPHead(6, 3))
    pf = Refiner(ProgressiveFusion(base, {"a": (6,), "b": (5,)}, steps=3))
    x = {"a": torch.randn(7, 6), "b": torch.randn(7, 5)}
    q, _ = unimodal_features(pf, [batch(x)], "a")
    assert torch.equal(q, base.encoders["a"](x["a"]))  # c_0 = 0: the base encoder itself


def test_absent_query_samples_are_left_out() -> None:
    torch.manual_seed(0)
    model = FusionModel({"a": MLPEncoder((3,), out_dim=2), "b": MLPEncoder((3,), out_dim=2)}, ConcatFusion({"a": 2, "b": 2}), MLPHead(4, 2))
    b = batch({"a": torch.randn(5, 3), "b": torch.randn(5, 3)}, torch.arange(5))
    b.mask["a"][1] = False
    q, labels = unimodal_features(model, [b], "a")
    assert len(q) == 4 and labels.tolist() == [0, 2, 3, 4]


def test_multilabel_hits_share_a_label_or_match_exactly() -> None:
    """Random embeddings on sparse 23-label data: element-wise comparison of label
    vectors counted shared zeros as agreement (top-1 about 0.8)."""
    g = torch.Generator().manual_seed(0)
    labels = (torch.rand(400, 23, generator=g) < 0.04).long()
    bank, queries = torch.randn(400, 16, generator=g), torch.randn(300, 16, generator=g)
    q_labels = (torch.rand(300, 23, generator=g) < 0.04).long()
    share = topk_retrieval(bank, labels, queries, q_labels, [1], hit="share")[1]
    exact = topk_retrieval(bank, labels, queries, q_labels, [1], hit="exact")[1]
    chance_share = float(((q_labels.float() @ labels.float().T) > 0).float().mean())
    chance_exact = float((q_labels[:, None, :] == labels[None]).all(-1).float().mean())
    assert share == pytest.approx(chance_share, abs=0.05) and share < 0.1
    assert exact == pytest.approx(chance_exact, abs=0.06)
    old = float((labels[(queries @ bank.T).argmax(1)] == q_labels).float().mean())  # the old element-wise rule
    assert old > 0.9
    # hand-made: shared label vs exact
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    bl = torch.tensor([[1, 1, 0], [0, 0, 1]])
    q, ql = torch.tensor([[1.0, 0.1]]), torch.tensor([[1, 0, 0]])
    assert topk_retrieval(bank, bl, q, ql, [1], hit="share")[1] == 1.0
    assert topk_retrieval(bank, bl, q, ql, [1], hit="exact")[1] == 0.0
    with pytest.raises(ConfigError, match="hit must be one of"):
        topk_retrieval(bank, bl, q, ql, [1], hit="any")


def test_queries_go_in_their_own_slot_of_a_concatenation() -> None:
    """Fused = [F_a; F_b]: a b-query zero-padded at offset 0 lands in a's slot."""
    torch.manual_seed(0)
    model = FusionModel({"a": MLPEncoder((4,), out_dim=3), "b": MLPEncoder((4,), out_dim=3)}, ConcatFusion({"a": 3, "b": 3}), MLPHead(6, 2))
    assert model.fused_slots == {"a": (0, 3), "b": (3, 6)}
    assert Refiner(model).fused_slots == model.fused_slots
    assert placement(model, "b", 3, 6) == "slot"
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(300) % 10
    centroids = torch.randn(10, 3, generator=g)
    fa = torch.randn(300, 3, generator=g)  # carries no class information
    fb = centroids[labels] + 0.1 * torch.randn(300, 3, generator=g)
    bank = torch.cat([fa, fb], 1)
    own = topk_retrieval(bank, labels, fb, labels, [1], offset=3)[1]
    wrong = topk_retrieval(bank, labels, fb, labels, [1], offset=0)[1]
    assert own > 0.6 and wrong < 0.25
    linear = fit_linear_map(fb, bank)
    assert topk_retrieval(bank, labels, fb, labels, [1], projection=linear)[1] > 0.6
    gmu = FusionModel({"a": MLPEncoder((4,), out_dim=3), "b": MLPEncoder((4,), out_dim=3)}, GMUFusion({"a": 3, "b": 3}, out_dim=2), MLPHead(2, 2))
    assert placement(gmu, "a", 3, 2) == "linear" and placement(gmu, "a", 2, 2) == "pad"
    with pytest.raises(ConfigError, match="no slot"):
        placement(gmu, "a", 3, 2, "slot")
