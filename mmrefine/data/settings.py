"""Loader settings shared by every dataset.

In a config they sit beside the dataset's own keys (``data: {name: mfeat,
views: [...], batch_size: 64, labelled_fraction: 0.1}``); the builder gathers
them into one :class:`DataSettings` (type-checked) and passes it to the
DataModule, whose class may set different defaults (``default_settings``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from mmrefine.core.errors import ConfigError


@dataclass(frozen=True)
class DataSettings:
    """How a DataModule loads and splits its data.

    Args:
        batch_size: training batch size.
        eval_batch_size: batch size for validation, test and prediction (None: ``max(batch_size, 256)``).
        num_workers: DataLoader worker processes (0: load in the main process).
        labelled_fraction: keep a class-stratified fraction of the training
            labels for supervised training (the few-label protocol); the whole
            training split still feeds self-supervised pretraining.
        split_seed: seed of the labelled-fraction draw and of any random split,
            independent of the training seed.
        root: the data folder (None: ``$MMREFINE_DATA`` or ``../shared/data``;
            datasets that are generated or bundled may ignore it, and say so).
    """

    batch_size: int = 64
    eval_batch_size: int | None = None
    num_workers: int = 0
    labelled_fraction: float = 1.0
    split_seed: int = 0
    root: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.labelled_fraction <= 1.0:
            raise ConfigError(f"data.labelled_fraction must be in (0, 1], got {self.labelled_fraction}")
        if self.batch_size < 1:
            raise ConfigError(f"data.batch_size must be positive, got {self.batch_size}")
        if self.eval_batch_size is not None and self.eval_batch_size < 1:
            raise ConfigError(f"data.eval_batch_size must be positive, got {self.eval_batch_size}")
        if self.num_workers < 0:
            raise ConfigError(f"data.num_workers must be >= 0, got {self.num_workers}")

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]
