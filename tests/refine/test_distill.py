"""Modality-specific distillation: its defining equalities on hand-made models, the weightings,
the teacher staying frozen and out of checkpoints, and the CLI end to end on real data."""

import json
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mmrefine.cli import main
from mmrefine.core.errors import ConfigError
from mmrefine.encoders import MLPEncoder
from mmrefine.fusion import ConcatFusion
from mmrefine.models import FusionModel, MLPHead
from mmrefine.refine import ModalityDistiller
from mmrefine.refine.distill import kl_per_sample
from tests.conftest import tiny_config


def model(seed: int) -> FusionModel:
    torch.manual_seed(seed)
    enc = {"a": MLPEncoder((4,), out_dim=6, hidden=[8]), "b": MLPEncoder((3,), out_dim=6, hidden=[8])}
    return FusionModel(enc, ConcatFusion({"a": 6, "b": 6}), MLPHead(12, 3))


def batch() -> tuple[dict, dict, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = {"a": torch.randn(8, 4, generator=g), "b": torch.randn(8, 3, generator=g)}
    mask = {"a": torch.ones(8, dtype=torch.bool), "b": torch.tensor([1, 1, 1, 1, 0, 0, 1, 1]).bool()}
    return x, mask, torch.randint(0, 3, (8,), generator=g)


def test_constant_weights_equal_plain_kd_on_each_input() -> None:
    student, teacher = model(0), model(1)
    d = ModalityDistiller(student, teacher, "population", temperature=2.0, lam=0.5).train()
    x, mask, y = batch()
    out = d(x, mask)
    got = d.auxiliary_losses(out, mask, y)["distill"]
    expected = kl_per_sample(teacher(x, mask).logits, student(x, mask).logits, 2.0).mean()
    for m in ("a", "b"):
        only = {k: v if k == m else torch.zeros_like(v) for k, v in mask.items()}
        kl = kl_per_sample(teacher(x, only).logits, student(x, only).logits, 2.0)
        expected = expected + kl[mask[m]].mean()  # rows without modality m are left out of its term
    assert torch.allclose(got, expected)  # (1 - 0.5) / 0.5 = 1
    plain = ModalityDistiller(student, teacher, "population", temperature=2.0, lam=0.5, single=False).train()
    assert torch.allclose(plain.auxiliary_losses(plain(x, mask), mask, y)["distill"],
                          kl_per_sample(teacher(x, mask).logits, student(x, mask).logits, 2.0).mean())


def test_a_student_equal_to_its_teacher_has_zero_distillation_loss_and_gradients_reach_only_the_student() -> None:
    teacher = model(1)
    student = model(1)
    for w in ("population", "importance", "correctness"):
        d = ModalityDistiller(student, teacher, w).train()
        x, mask, y = batch()
        loss = d.auxiliary_losses(d(x, mask), mask, y)["distill"]
        assert loss.abs() < 1e-6, w
    d = ModalityDistiller(model(0), teacher, "importance").train()
    x, mask, y = batch()
    d.auxiliary_losses(d(x, mask), mask, y)["distill"].backward()
    assert all(p.grad is not None for p in d.model.parameters()) and all(p.grad is None for p in teacher.parameters())
    assert not any(k.startswith("teacher") for k in d.state_dict())  # never saved
    assert not teacher.training and d.inference_model() is d.model


def test_weightings_follow_their_formulas() -> None:
    teacher = model(1)
    d = ModalityDistiller(model(0), teacher, "importance").train()
    x, mask, y = batch()
    out = d(x, mask)
    w = d.sample_weights(out.fusion, y)
    only_a = {"a": mask["a"], "b": torch.zeros_like(mask["b"])}
    assert torch.allclose(w["a"], torch.tanh(kl_per_sample(teacher(x, mask).logits, teacher(x, only_a).logits, 1.0)))
    assert torch.all(w["all"] == 1)
    d = ModalityDistiller(model(0), teacher, "correctness").train()
    w = d.sample_weights(d(x, mask).fusion, y)
    total = w["all"] + w["a"] + w["b"]
    assert torch.allclose(total, torch.full_like(total, 3.0))
    ce = torch.nn.functional.cross_entropy(teacher(x, mask).logits, y, reduction="none")
    ce_a = torch.nn.functional.cross_entropy(teacher(x, only_a).logits, y, reduction="none")
    assert torch.allclose(w["all"] / w["a"], ce_a / ce)  # inversely proportional to the teacher's error
    with pytest.raises(ConfigError, match="needs num_outputs"):
        ModalityDistiller(model(0), teacher, "meta")
    with pytest.raises(ConfigError, match="unknown input kind"):
        ModalityDistiller(model(0), teacher, weights={"c": 1.0})


def test_distill_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import yaml

    from mmrefine.config import to_dict

    cfg = to_dict(tiny_config(tmp_path, trainer={"max_epochs": 3, "progress_bar": False}))
    teacher_cfg = {**cfg, "run_dir": str(tmp_path / "teacher"),
                   "model": {**cfg["model"], "default_encoder": {"name": "mlp", "hidden": [64], "out_dim": 32}}}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(teacher_cfg))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({**cfg, "run_dir": str(tmp_path / "student"),
                                                     "model": {**cfg["model"], "distill": {"weighting": "meta", "lam": 0.5}}}))
    assert main(["fit", "-c", str(tmp_path / "t.yaml")]) == 0
    capsys.readouterr()
    assert main(["distill", "-c", str(tmp_path / "s.yaml"), "--teacher", str(tmp_path / "teacher")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["test"]["test/acc"] > 0.5
    exported = load_file(tmp_path / "student" / "model.safetensors")
    assert exported["head.net.0.weight"].shape[1] == 32  # the student's own (narrower) model, not the teacher's
    assert main(["distill", "-c", str(tmp_path / "s.yaml"), "--teacher", str(tmp_path / "nowhere"), "--run-dir", str(tmp_path / "x")]) == 2
    assert "holds no finished run" in capsys.readouterr().err


def test_meta_weights_take_a_lookahead_step_on_held_out_data() -> None:
    from mmrefine.data.batch import MultimodalBatch

    teacher = model(1)
    d = ModalityDistiller(model(0), teacher, "meta", num_outputs=3, meta_lr=1.0).train()
    x, mask, y = batch()
    out = d(x, mask)
    w0 = d.sample_weights(out.fusion, y)
    assert all(torch.allclose(w, torch.ones(8)) for w in w0.values())  # the network starts at equal weights
    with pytest.raises(ConfigError, match="held-out batches"):
        d.auxiliary_losses(out, mask, y)
    d.set_held_out([MultimodalBatch(x, mask, y)])
    before = [p.clone() for p in d.weight_net.parameters()]
    loss = d.auxiliary_losses(d(x, mask), mask, y)["distill"]
    assert any(not torch.equal(a, b) for a, b in zip(before, d.weight_net.parameters()))  # phi moved
    loss.backward()  # the student still trains on the (now detached) weights
    assert all(p.grad is not None for p in d.model.parameters())
    assert all(p.grad is None for p in d.weight_net.parameters())
    w1 = d.sample_weights(d(x, mask).fusion, y)
    assert torch.allclose(w1["all"] + w1["a"] + w1["b"], torch.full((8,), 3.0))


def test_meta_weights_look_ahead_through_a_transformer_with_fast_dropout(monkeypatch: pytest.MonkeyPatch) -> None:
    # the look-ahead differentiates the student's gradients, so its dropped attention must be twice
    # differentiable: the meta update equals the one with autograd's composed attention everywhere
    from mmrefine.core import dropout
    from mmrefine.data.batch import MultimodalBatch
    from mmrefine.models.early_fusion import EarlyFusionTransformer

    def transformer(seed: int) -> EarlyFusionTransformer:
        torch.manual_seed(seed)
        return EarlyFusionTransformer({"a": (4,), "b": (3,)}, out_dim=3, d=8, heads=2, layers=1, dropout=0.2,
                                      fast_dropout=True)

    def meta_update() -> list[torch.Tensor]:
        d = ModalityDistiller(transformer(0), transformer(1), "meta", num_outputs=3, meta_lr=1.0).train()
        x, mask, y = batch()
        d.set_held_out([MultimodalBatch(x, mask, y)])
        torch.manual_seed(5)  # the same dropout masks in both
        d.auxiliary_losses(d(x, mask), mask, y)["distill"].backward()
        return [p.detach().clone() for p in d.weight_net.parameters()]

    got = meta_update()
    with monkeypatch.context() as m:
        m.setattr(dropout, "_DroppedAttention", types.SimpleNamespace(apply=dropout.composed_attention))
        want = meta_update()
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got, want))

