import copy

import pytest
import torch

from mmrefine.core import inference_model
from mmrefine.core.errors import ConfigError
from mmrefine.encoders import MLPEncoder
from mmrefine.fusion import GMUFusion
from mmrefine.models import FusionModel, MLPHead
from mmrefine.refine import Refiner

SHAPES = {"a": (6,), "b": (4,)}


def base_model() -> FusionModel:
    torch.manual_seed(0)
    enc = {m: MLPEncoder(s, out_dim=5, hidden=[8]) for m, s in SHAPES.items()}
    fusion = GMUFusion({m: 5 for m in SHAPES}, out_dim=7)
    return FusionModel(enc, fusion, MLPHead(7, 3))


def batch(b: int = 8):
    g = torch.Generator().manual_seed(1)
    return {m: torch.randn(b, *s, generator=g) for m, s in SHAPES.items()}


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_inference_model_equals_base_model() -> None:
    base = base_model()
    ref = Refiner(copy.deepcopy(base), ms={"weight": 0.1})
    assert n_params(ref) > n_params(base)
    inf = inference_model(ref)
    assert n_params(inf) == n_params(base)
    assert list(inf.state_dict()) == list(base.state_dict())
    x = batch()
    assert torch.equal(ref(x).logits, base(x).logits)
    assert torch.equal(inf(x).logits, base(x).logits)


def test_decoders_and_base_receive_gradients() -> None:
    ref = Refiner(base_model(), loss="cosine", gamma=0.1)
    out = ref(batch())
    terms = ref.auxiliary_losses(out)
    assert set(terms) == {"refiner_a", "refiner_b"}
    sum(terms.values()).backward()
    for name, p in ref.decoders.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    for name, p in ref.model.encoders.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in ref.model.head.parameters())  # the head takes no part


def test_loss_terms_are_gamma_times_formula() -> None:
    ref = Refiner(base_model(), loss="mse", gamma={"a": 0.3, "b": 0.0})
    out = ref(batch())
    terms = ref.auxiliary_losses(out)
    assert set(terms) == {"refiner_a"}  # gamma 0 -> no term
    recon = ref.reconstructions(out)["a"]
    assert terms["refiner_a"].item() == pytest.approx(0.3 * torch.mean((recon - out.features["a"]) ** 2).item())


def test_absent_samples_are_left_out_of_the_refiner_loss() -> None:
    ref = Refiner(base_model(), loss="mse", gamma=1.0)
    x = batch()
    mask = {m: torch.ones(8, dtype=torch.bool) for m in SHAPES}
    mask["b"][:5] = False
    out = ref(x, mask)
    recon = ref.reconstructions(out)["b"]
    expected = torch.mean((recon[5:] - out.features["b"][5:]) ** 2)
    assert ref.auxiliary_losses(out, mask)["refiner_b"].item() == pytest.approx(expected.item())


def test_ms_term_needs_labels_and_projection_changes_target_width() -> None:
    ref = Refiner(base_model(), projection={"dim": 3, "learn": False}, ms={"weight": 0.5})
    out = ref(batch())
    assert ref.targets(out)["a"].shape == (8, 3)
    assert not ref.projections["a"].weight.requires_grad
    assert "ms" not in ref.auxiliary_losses(out)
    assert "ms" in ref.auxiliary_losses(out, labels=torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))


def test_unknown_modality_in_gamma_and_unknown_loss() -> None:
    with pytest.raises(ConfigError, match="unknown modality \\['c'\\]"):
        Refiner(base_model(), gamma={"c": 0.1})
    with pytest.raises(ConfigError, match="unknown refiner loss 'cosin'"):
        Refiner(base_model(), loss="cosin")
