import pytest
import torch

from mmrefine.core.errors import BatchError, ConfigError
from mmrefine.encoders import LeNetEncoder, MLPEncoder
from mmrefine.fusion import FUSIONS
from mmrefine.models import FusionModel, MLPHead
from mmrefine.refine import ProgressiveFusion, Refiner
from tests.fusion.test_fusion import IDS, SPECS

SHAPES = {"a": (6,), "b": (5,), "c": (4,)}


def base(fusion_spec: dict, seed: int = 0) -> FusionModel:
    torch.manual_seed(seed)
    enc = {m: MLPEncoder(s, out_dim=4, hidden=[8]) for m, s in SHAPES.items()}
    fusion = FUSIONS.build(fusion_spec, provided={"in_dims": {m: 4 for m in SHAPES}})
    return FusionModel(enc, fusion, MLPHead(fusion.out_dim, 3))


def inputs(b: int = 5) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {m: torch.randn(b, *s, generator=g) for m, s in SHAPES.items()}


@pytest.mark.parametrize("inject_at", [None, "net.2"])
@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_zero_back_projection_equals_base_exactly(spec, inject_at) -> None:
    model = base(spec)
    x = inputs()
    mask = {m: torch.tensor([1, 1, 0, 1, 1], dtype=torch.bool) for m in SHAPES}
    expected = model(x, mask)
    pf = ProgressiveFusion(model, SHAPES, steps=3, zero_init=True, inject_at=inject_at, backprojection="mlp", hidden=5)
    out = pf(x, mask)
    assert torch.equal(out.logits, expected.logits) and torch.equal(out.fused, expected.fused)
    assert len(out.steps) == 3 and all(torch.equal(s, expected.fused) for s in out.steps)


def test_context_changes_later_steps_and_gradients_reach_every_parameter() -> None:
    pf = ProgressiveFusion(base({"name": "gmu", "out_dim": 6}), SHAPES, steps=2, inject_at="net.2")
    out = pf(inputs())
    assert not torch.allclose(out.steps[0], out.steps[1])
    out.logits.square().sum().backward()
    for name, p in pf.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_first_step_is_the_base_model_even_after_training(kind: str) -> None:
    """c_0 = 0 and W(0) = 0 by construction: step 1 is the base model at
    initialisation and after training steps (a biased W would drift from 0)."""
    model = base({"name": "gmu", "out_dim": 6})
    pf = ProgressiveFusion(model, SHAPES, steps=2, backprojection=kind, hidden=5, inject_at="net.2")
    opt = torch.optim.SGD(pf.parameters(), lr=0.5)
    for _ in range(5):
        opt.zero_grad()
        pf(inputs()).logits.square().mean().backward()
        opt.step()
    x = inputs()
    out = pf(x)
    assert torch.equal(out.steps[0], model(x).fused)
    assert not torch.allclose(out.steps[1], out.steps[0])
    for bp in pf.backprojections.values():
        assert torch.equal(bp(torch.zeros(3, 6)), torch.zeros(3, bp[-1].out_features))


def test_iterative_ablation_uses_own_previous_features() -> None:
    pf = ProgressiveFusion(base({"name": "gmu", "out_dim": 6}), SHAPES, steps=2, iterative=True)
    assert pf.backprojections["a"][0].in_features == 4  # feature width, not fused width
    out = pf(inputs())
    out.logits.sum().backward()
    assert all(p.grad is not None for p in pf.backprojections.parameters())


def test_concat_injection_on_wider_encoders() -> None:
    torch.manual_seed(0)
    enc = {m: MLPEncoder((s[0] + 3,), out_dim=4) for m, s in SHAPES.items()}
    model = FusionModel(enc, FUSIONS.build({"name": "concat"}, provided={"in_dims": {m: 4 for m in SHAPES}}), MLPHead(12, 3))
    pf = ProgressiveFusion(model, SHAPES, steps=2, mode="concat", concat_dim=3)
    assert pf(inputs()).logits.shape == (5, 3)


def test_injection_into_a_conv_layer() -> None:
    torch.manual_seed(0)
    enc = {"img": LeNetEncoder((16, 16), kernels=[3, 3], width=2), "v": MLPEncoder((3,), out_dim=4)}
    fusion = FUSIONS.build({"name": "gmu", "out_dim": 5}, provided={"in_dims": {"img": enc["img"].out_dim, "v": 4}})
    pf = ProgressiveFusion(FusionModel(enc, fusion, MLPHead(5, 2)), {"img": (16, 16), "v": (3,)}, inject_at={"img": "conv.3"})
    assert pf.backprojections["img"][0].out_features == 2 * 8 * 8  # input of the second conv
    assert pf({"img": torch.randn(3, 16, 16), "v": torch.randn(3, 3)}).logits.shape == (3, 2)


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="has no submodule 'net.9'"):
        ProgressiveFusion(base({"name": "concat"}), SHAPES, inject_at="net.9")
    with pytest.raises(ConfigError, match="steps must be >= 1"):
        ProgressiveFusion(base({"name": "concat"}), SHAPES, steps=0)
    with pytest.raises(BatchError, match="missing \\['c'\\]"):
        ProgressiveFusion(base({"name": "concat"}), SHAPES)({"a": torch.randn(2, 6), "b": torch.randn(2, 5)})


def test_refiner_around_progressive_fusion() -> None:
    pf = ProgressiveFusion(base({"name": "gmu", "out_dim": 6}), SHAPES, steps=2)
    ref = Refiner(pf, ms={"weight": 0.1})
    out = ref(inputs(8))
    terms = ref.auxiliary_losses(out, labels=torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
    assert set(terms) == {"refiner_a", "refiner_b", "refiner_c", "ms"}
    sum(terms.values()).backward()
    assert all(p.grad is not None for p in pf.backprojections.parameters())
    assert ref.inference_model() is pf


def test_refiner_profusion_gmu_builds_from_yaml_and_fits(tmp_path) -> None:
    from pathlib import Path

    from mmrefine.config import load_config
    from mmrefine.training.engine import fit

    repo = Path(__file__).resolve().parents[2]
    cfg = load_config(
        repo / "configs" / "mfeat_refiner_profusion_gmu.yaml",
        [f"run_dir={tmp_path / 'run'}", "trainer.max_epochs=2", "trainer.progress_bar=false", "data.views=[fou, kar, mor]"],
    )
    res = fit(cfg)
    model = res.module.model
    assert type(model).__name__ == "Refiner" and type(model.model).__name__ == "ProgressiveFusion"
    assert type(model.model.model.fusion).__name__ == "GMUFusion"
    assert res.test["test/acc"] > 0.8 and "val/ms" in res.val


def test_progressive_config_keys_are_checked(tmp_path) -> None:
    from mmrefine.core.errors import ConfigError
    from mmrefine.training.builders import build_datamodule, build_model, build_task
    from tests.conftest import tiny_config

    cfg = tiny_config(tmp_path, model={"progressive": {"step": 2}})
    dm = build_datamodule(cfg)
    with pytest.raises(ConfigError, match="model.progressive.step: unknown key for ProgressiveFusion \\(did you mean 'steps'\\?\\)"):
        build_model(cfg, dm.schema, build_task(cfg, dm))
    cfg = tiny_config(tmp_path, model={"progressive": {"mode": "concat", "concat_dim": 4}})
    model = build_model(cfg, dm.schema, build_task(cfg, dm))
    assert model.model.encoders["fou"].net[0].in_features == 76 + 4
