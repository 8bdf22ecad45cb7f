"""Base LightningDataModule for in-memory multimodal datasets.

Subclasses implement :meth:`load`, returning train/validation/test
:class:`TensorMultimodalDataset` objects. The base class adds:

* the labelled-fraction protocol: ``labelled_fraction=p`` keeps a stratified
  p-fraction of the training labels for supervised training; the whole training
  set (labels dropped) feeds the self-supervised pretraining stage;
* deterministic, resumable shuffling (:class:`EpochShuffleSampler`) and, under
  distributed training, a seeded ``DistributedSampler``;
* DataLoaders whose worker seeding uses their own generator, so loading never
  advances the global RNG (dropout masks stay identical on resume).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader, DistributedSampler

from mmrefine.core.errors import ConfigError, DataError
from mmrefine.data.batch import BatchSchema
from mmrefine.data.dataset import EpochShuffleSampler, TensorMultimodalDataset, collate
from mmrefine.data.settings import DataSettings


def stratified_fraction(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices of a class-stratified ``fraction`` of ``labels`` (at least one per class)."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = max(1, int(round(fraction * len(idx))))
        keep.append(rng.permutation(idx)[:k])
    return np.sort(np.concatenate(keep))


class MultimodalDataModule(L.LightningDataModule):
    """See module docstring.

    ``task`` names the task the labels are for (``classification``,
    ``multilabel``, ``regression``; the experiment's task is checked against
    it) and ``num_outputs`` their width; ``default_settings`` are the loader
    settings used when a config gives none.

    Args:
        settings: loader settings (:class:`~mmrefine.data.settings.DataSettings`);
            None: the class's ``default_settings``.
    """

    task: str = "classification"
    default_settings: DataSettings = DataSettings()

    def __init__(self, settings: DataSettings | None = None) -> None:
        super().__init__()
        self.settings = settings if settings is not None else type(self).default_settings
        s = self.settings
        self.batch_size = s.batch_size
        self.eval_batch_size = s.eval_batch_size or max(s.batch_size, 256)
        self.num_workers = s.num_workers
        self.labelled_fraction = s.labelled_fraction
        self.split_seed = s.split_seed
        self.root = s.root
        self.shuffle_seed = 0
        self.joint_unlabelled = False
        self._splits: dict[str, TensorMultimodalDataset] | None = None

    # -- to implement -------------------------------------------------------
    def load(self) -> dict[str, TensorMultimodalDataset]:
        """Return ``{"train": ..., "val": ..., "test": ...}``."""
        raise NotImplementedError

    @property
    def num_outputs(self) -> int:
        raise NotImplementedError

    # -- shared --------------------------------------------------------------
    @property
    def splits(self) -> dict[str, TensorMultimodalDataset]:
        if self._splits is None:
            self._splits = self.load()
            missing = {"train", "val", "test"} - set(self._splits)
            if missing:
                raise DataError(f"{type(self).__name__}.load() returned no {sorted(missing)} split")
        return self._splits

    def setup(self, stage: str | None = None) -> None:
        _ = self.splits

    def encoder_defaults(self) -> dict[str, dict[str, Any]]:
        """Encoder specs some modalities need (e.g. a table's category counts),
        used where the config names no encoder for that modality."""
        return {}

    @property
    def schema(self) -> BatchSchema:
        train = self.splits["train"]
        return BatchSchema.from_shapes({m: tuple(x.shape[1:]) for m, x in train.inputs.items()})

    @property
    def modalities(self) -> list[str]:
        return self.schema.names

    def labelled_indices(self) -> np.ndarray:
        """Training samples whose labels are kept (all when ``labelled_fraction`` is 1)."""
        train = self.splits["train"]
        if self.labelled_fraction >= 1.0:
            return np.arange(len(train))
        if train.labels is None:
            raise DataError("labelled_fraction < 1 needs a labelled training split")
        labels = train.labels.numpy()
        if labels.ndim != 1:
            rng = np.random.default_rng(self.split_seed)
            k = max(1, int(round(self.labelled_fraction * len(labels))))
            return np.sort(rng.permutation(len(labels))[:k])
        return stratified_fraction(labels, self.labelled_fraction, self.split_seed)

    def labelled_train(self) -> TensorMultimodalDataset:
        train = self.splits["train"]
        return train if self.labelled_fraction >= 1.0 else train.subset(self.labelled_indices())

    def unlabelled_train(self) -> TensorMultimodalDataset:
        """The training samples whose labels are held out, without labels."""
        keep = np.ones(len(self.splits["train"]), dtype=bool)
        keep[self.labelled_indices()] = False
        return self.splits["train"].subset(np.flatnonzero(keep)).without_labels()

    def pretrain_dataset(self) -> TensorMultimodalDataset:
        """The whole training split without labels (for self-supervised pretraining)."""
        return self.splits["train"].without_labels()

    def _loader(self, ds: TensorMultimodalDataset, shuffle: bool, batch_size: int) -> DataLoader:
        sampler: Any
        world = self.trainer.world_size if self.trainer is not None else 1
        if shuffle and world > 1:
            sampler = DistributedSampler(ds, shuffle=True, seed=self.shuffle_seed)
        elif shuffle:
            sampler = EpochShuffleSampler(len(ds), seed=self.shuffle_seed)
        else:
            sampler = None
        return DataLoader(
            ds,
            batch_size=batch_size,
            sampler=sampler,
            shuffle=False,
            collate_fn=collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.shuffle_seed),
        )

    def loader(self, ds: TensorMultimodalDataset, train: bool = False) -> DataLoader:
        return self._loader(ds, train, self.batch_size if train else self.eval_batch_size)

    def train_dataloader(self) -> DataLoader | CombinedLoader:
        """Labelled batches; with ``joint_unlabelled`` set (the Refiner's joint
        semi-supervised mode), ``{"labelled", "unlabelled"}`` batch pairs. An
        epoch is still one pass over the labelled set (the same number of
        supervised steps as without the mode); each step pairs it with an
        unlabelled batch, drawn in a new random order every epoch."""
        labelled = self.loader(self.labelled_train(), train=True)
        if not self.joint_unlabelled:
            return labelled
        unlabelled = self.unlabelled_train()
        if len(unlabelled) == 0:
            raise ConfigError("model.refiner.unlabelled: joint needs data.labelled_fraction < 1 (no training label is held out)")
        return CombinedLoader({"labelled": labelled, "unlabelled": self.loader(unlabelled, train=True)}, mode="min_size")

    def pretrain_dataloader(self) -> DataLoader:
        return self.loader(self.pretrain_dataset(), train=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader(self.splits["val"])

    def test_dataloader(self) -> DataLoader:
        return self.loader(self.splits["test"])

    def predict_dataloader(self) -> DataLoader:
        return self.loader(self.splits["test"])
