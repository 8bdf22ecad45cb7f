"""Multi-label and regression heads trained end to end through Lightning, and
early stopping, on small synthetic in-memory data."""

from __future__ import annotations

from pathlib import Path

import torch

from mmrefine.data import DataSettings, MultimodalDataModule, TensorMultimodalDataset
from mmrefine.encoders import MLPEncoder
from mmrefine.fusion import GMUFusion
from mmrefine.models import FusionModel, MLPHead
from mmrefine.refine import Refiner
from mmrefine.training import MultiLabel, MultimodalModule, Regression
from mmrefine.training.engine import make_trainer
from tests.conftest import tiny_config


class Synthetic(MultimodalDataModule):
    """y depends on both modalities: a = z W_a + noise, b = z W_b + noise."""

    def __init__(self, kind: str, n: int = 600) -> None:
        super().__init__(DataSettings(batch_size=32))
        g = torch.Generator().manual_seed(0)
        z = torch.randn(n, 4, generator=g)
        self.x = {"a": z @ torch.randn(4, 6, generator=g) + 0.1 * torch.randn(n, 6, generator=g),
                  "b": z @ torch.randn(4, 5, generator=g) + 0.1 * torch.randn(n, 5, generator=g)}
        self.y = (z[:, :3] > 0).float() if kind == "multilabel" else z[:, :1] * 2 - z[:, 1:2]
        self.kind = kind

    @property
    def num_outputs(self) -> int:
        return 3 if self.kind == "multilabel" else 1

    def load(self) -> dict[str, TensorMultimodalDataset]:
        ds = TensorMultimodalDataset(self.x, self.y)
        return {"train": ds.subset(range(400)), "val": ds.subset(range(400, 500)), "test": ds.subset(range(500, 600))}


def model(out_dim: int) -> FusionModel:
    torch.manual_seed(0)
    enc = {"a": MLPEncoder((6,), out_dim=16, hidden=[32]), "b": MLPEncoder((5,), out_dim=16, hidden=[32])}
    return FusionModel(enc, GMUFusion({"a": 16, "b": 16}, out_dim=16), MLPHead(16, out_dim))


def test_multilabel_with_ms_loss_learns(tmp_path: Path) -> None:
    dm = Synthetic("multilabel")
    cfg = tiny_config(tmp_path, trainer={"max_epochs": 8})
    task = MultiLabel(3)
    module = MultimodalModule(Refiner(model(3), ms={"weight": 0.1}), task, cfg.optim, schema=dm.schema)
    trainer, _ = make_trainer(cfg, tmp_path / "ml", task.monitor, task.mode, 8)
    trainer.fit(module, datamodule=dm)
    val = trainer.validate(module, datamodule=dm, verbose=False)[0]
    assert val["val/ms"] > 0 and val["val/f1_macro"] > 0.8 and val["val/auroc"] > 0.9


def test_regression_learns(tmp_path: Path) -> None:
    dm = Synthetic("regression")
    cfg = tiny_config(tmp_path, trainer={"max_epochs": 8})
    task = Regression(1)
    module = MultimodalModule(model(1), task, cfg.optim, schema=dm.schema)
    trainer, _ = make_trainer(cfg, tmp_path / "reg", task.monitor, task.mode, 8)
    trainer.fit(module, datamodule=dm)
    res = trainer.test(module, datamodule=dm, verbose=False)[0]
    assert res["test/mae"] < 0.5 * dm.y[500:].abs().mean().item()  # half the error of predicting zero


def test_early_stopping_on_the_chosen_metric(tmp_path: Path) -> None:
    from mmrefine.training.engine import fit

    cfg = tiny_config(tmp_path, optim={"lr": 0.0, "warmup_steps": 0}, trainer={"max_epochs": 10, "patience": 1, "monitor": "val/loss", "mode": "min"})
    res = fit(cfg, test=False)
    assert res.trainer.current_epoch == 2  # no improvement after epoch 0, patience 1
