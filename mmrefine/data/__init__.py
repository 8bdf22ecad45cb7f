"""Batches, datasets and LightningDataModules."""

from mmrefine.data.avmnist import AVMNISTDataModule, AVMNISTNpyDataModule
from mmrefine.data.batch import BatchSchema, ModalitySpec, MultimodalBatch, collate_samples, full_mask
from mmrefine.data.datamodule import MultimodalDataModule
from mmrefine.data.dataset import EpochShuffleSampler, TensorMultimodalDataset, collate
from mmrefine.data.mfeat import MFeatDataModule
from mmrefine.data.mosi import MOSIDataModule
from mmrefine.data.registry import DATASETS
from mmrefine.data.settings import DataSettings
from mmrefine.data.stocks import StocksDataModule
from mmrefine.data.synthetic import GenerativeTask, LatticeTask, latent_graph_problem
from mmrefine.data.table import TableDataModule, TablePreprocessor

__all__ = [
    "DATASETS", "AVMNISTDataModule", "AVMNISTNpyDataModule", "BatchSchema", "DataSettings", "EpochShuffleSampler",
    "GenerativeTask", "LatticeTask", "MFeatDataModule", "MOSIDataModule", "ModalitySpec", "MultimodalBatch",
    "MultimodalDataModule", "StocksDataModule", "TableDataModule", "TablePreprocessor", "TensorMultimodalDataset", "collate", "collate_samples", "full_mask",
    "latent_graph_problem",
]
