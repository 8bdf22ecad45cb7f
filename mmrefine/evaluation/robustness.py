"""Robustness to absent modalities."""

from __future__ import annotations

from typing import Iterable, Sequence

import lightning as L

from mmrefine.data.datamodule import MultimodalDataModule


def missing_modality_metrics(
    trainer: L.Trainer,
    module: L.LightningModule,
    dm: MultimodalDataModule,
    drops: Iterable[Sequence[str]],
    split: str = "test",
) -> dict[str, dict[str, float]]:
    """Test metrics with each group of modalities in ``drops`` absent
    (zeros, mask False), keyed by ``"-" + "+".join(group)``."""
    out: dict[str, dict[str, float]] = {}
    base = dm.splits[split]
    for group in drops:
        loader = dm.loader(base.with_missing(group))
        res = trainer.test(module, dataloaders=loader, verbose=False)[0]
        out["-" + "+".join(group)] = {k: float(v) for k, v in res.items()}
    return out
