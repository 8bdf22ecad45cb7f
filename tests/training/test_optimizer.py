"""The AdamW implementations the engine picks (``optim.fused``)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch import nn

from mmrefine.training.engine import fit
from mmrefine.training.module import adamw_implementation
from tests.conftest import tiny_config


def _train(make_opt, steps: int = 30) -> list[torch.Tensor]:  # noqa: ANN001
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 16), nn.LayerNorm(16), nn.ReLU(), nn.Linear(16, 3))
    groups = [{"params": list(model[0].parameters()), "lr": 3e-3}, {"params": [*model[1].parameters(), *model[3].parameters()]}]
    opt = make_opt(groups)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x, y = torch.randn(8, 12, generator=g), torch.randint(0, 3, (8,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


def test_default_adamw_is_bit_for_bit_torchs_loop_and_fused_is_close() -> None:
    kw = {"lr": 1e-3, "weight_decay": 0.01, "betas": (0.9, 0.999)}
    loop = _train(lambda g: torch.optim.AdamW(g, **kw, foreach=False))
    default = _train(lambda g: torch.optim.AdamW(g, **kw, **adamw_implementation(False)))
    fused = _train(lambda g: torch.optim.AdamW(g, **kw, **adamw_implementation(True)))
    assert all(torch.equal(a, b) for a, b in zip(loop, default))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(loop, fused))


class RecordOptimizer(L.Callback):
    def __init__(self) -> None:
        self.defaults: dict = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.defaults = dict(trainer.optimizers[0].defaults)


def test_the_engine_uses_foreach_by_default_and_fused_on_request(tmp_path: Path) -> None:
    for fused in (False, True):
        cfg = tiny_config(tmp_path / str(fused), optim={"lr": 0.003, "warmup_steps": 5, "fused": fused}, trainer={"max_epochs": 1})
        rec = RecordOptimizer()
        fit(cfg, callbacks=[rec])
        assert bool(rec.defaults["fused"]) is fused and bool(rec.defaults["foreach"]) is (not fused)
