"""MMAE: shapes, gradients, absence, its reconstruction improving under pretraining, detach_code."""

from pathlib import Path

import pytest
import torch

from mmrefine.core.errors import ConfigError
from mmrefine.models.mmae import MMAE
from mmrefine.training.engine import fit, prepare
from tests.conftest import tiny_config

SHAPES = {"image": (1, 4, 4), "audio": (10,)}


def batch(b: int = 6) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"image": torch.randn(b, 1, 4, 4, generator=g), "audio": torch.randn(b, 10, generator=g)}


def test_shapes_gradients_and_every_modality_decoded_from_the_joint_code() -> None:
    m = MMAE(SHAPES, 3, hidden=16, code=4, d=8)
    out = m(batch())
    assert out.logits.shape == (6, 3) and out.fused.shape == (6, m.fused_dim) == (6, 2 * (8 + 4))
    assert out.fusion.reconstructions["image"].shape == (6, 16) and torch.allclose(out.fusion.weights.sum(1), torch.ones(6))
    loss = out.logits.square().mean() + m.auxiliary_losses(out)["reconstruction"]
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


def test_an_absent_modality_has_zero_code_and_zero_attention_and_no_reconstruction_error() -> None:
    m = MMAE(SHAPES, 3, hidden=16, code=4, d=8).eval()
    x = batch()
    mask = {"image": torch.tensor([True, False, True, True, True, True]), "audio": torch.ones(6, dtype=torch.bool)}
    out = m(x, mask)
    assert torch.all(out.fusion.code[1, :4] == 0) and out.fusion.weights[1, 0] == 0 and out.fusion.weights[1, 1] == 1
    x2 = {**x, "image": x["image"].clone()}
    x2["image"][1] += 100.0  # what an absent sample holds cannot matter
    assert torch.equal(m(x2, mask).logits, out.logits)
    assert torch.equal(m.auxiliary_losses(m(x2, mask), mask)["reconstruction"], m.auxiliary_losses(out, mask)["reconstruction"])


def test_detach_code_keeps_the_classifier_out_of_the_autoencoder() -> None:
    m = MMAE(SHAPES, 3, hidden=16, code=4, d=8, ae_weight=0.0, detach_code=True)
    out = m(batch())
    assert m.auxiliary_losses(out) == {}
    out.logits.sum().backward()
    assert all(p.grad is None for p in m.encoders.parameters()) and m.mu.grad is not None
    with pytest.raises(ConfigError, match="unknown modality"):
        MMAE(SHAPES, 3, modality_weights={"video": 1.0})


def test_pretraining_lowers_the_reconstruction_error_on_real_data(tmp_path: Path) -> None:
    over = {"model": {"architecture": {"name": "mmae", "hidden": 64, "code": 16, "d": 16}}, "pretrain": {"epochs": 4},
            "trainer": {"max_epochs": 1, "progress_bar": False, "num_sanity_val_steps": 0}}
    cfg = tiny_config(tmp_path, **over)
    dm, _, model = prepare(cfg)
    val = next(iter(dm.loader(dm.splits["val"])))

    def rec(mdl: torch.nn.Module) -> float:
        mdl.eval()
        with torch.no_grad():
            return float(mdl.auxiliary_losses(mdl(val.inputs, val.mask), val.mask)["reconstruction"])

    before = rec(model)
    res = fit(cfg)
    after = rec(res.module.model)
    assert after < 0.85 * before, (before, after)
    assert res.test["test/acc"] > 0.5  # mfeat fou + kar, 10 classes: the classifier learns too


@pytest.mark.parametrize("name, shapes", [("mmae_mosi", {"text": (100,), "audio": (73,), "video": (100,)}),
                                          ("mmae_avmnist", {"image": (1, 28, 28), "audio": (1, 112, 112)})])
def test_shipped_mmae_configs_build(name: str, shapes: dict) -> None:
    from mmrefine.config import load_config
    from mmrefine.data.batch import BatchSchema
    from mmrefine.training.builders import build_model
    from mmrefine.training.tasks import Classification

    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / f"{name}.yaml")
    model = build_model(cfg, BatchSchema.from_shapes(shapes), Classification(2))
    assert isinstance(model, MMAE) and cfg.pretrain.epochs > 0
