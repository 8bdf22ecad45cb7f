"""Batches, datasets and LightningDataModules."""

from mmrefine.data.avmnist import AVMNISTDataModule, AVMNISTNpyDataModule
from mmrefine.data.batch import BatchSchema, ModalitySpec, MultimodalBatch, collate_samples, full_mask
from mmrefine.data.datamodule import MultimodalDataModule
from mmrefine.data.dataset import EpochShuffleSampler, TensorMultimodalDataset, collate
from mmrefine.data.mfeat import MFeatDataModule
from mmrefine.data.mosi import MOSIDataModule
from mmrefine.data.stocks import StocksDataModule
from mmrefine.data.synthetic import GenerativeTask, LatticeTask, latent_graph_problem
from mmrefine.data.registry import DATASETS

__all__ = [
    "AVMNISTDataModule", "AVMNISTNpyDataModule", "DATASETS", "BatchSchema", "EpochShuffleSampler", "GenerativeTask", "LatticeTask", "latent_graph_problem", "MFeatDataModule", "MOSIDataModule", "ModalitySpec",
    "MultimodalBatch", "StocksDataModule", "MultimodalDataModule", "TensorMultimodalDataset", "collate", "collate_samples", "full_mask",
]
