"""Batches, datasets and LightningDataModules."""

from mmrefine.data.batch import BatchSchema, ModalitySpec, MultimodalBatch, collate_samples, full_mask
from mmrefine.data.datamodule import MultimodalDataModule
from mmrefine.data.dataset import EpochShuffleSampler, TensorMultimodalDataset, collate
from mmrefine.data.mfeat import MFeatDataModule
from mmrefine.data.mosi import MOSIDataModule
from mmrefine.data.registry import DATASETS

__all__ = [
    "DATASETS", "BatchSchema", "EpochShuffleSampler", "MFeatDataModule", "MOSIDataModule", "ModalitySpec",
    "MultimodalBatch", "MultimodalDataModule", "TensorMultimodalDataset", "collate", "collate_samples", "full_mask",
]
