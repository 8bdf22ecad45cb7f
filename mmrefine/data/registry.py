"""Registry of datasets (LightningDataModules) buildable from a config."""

from mmrefine.registry import Registry

DATASETS: Registry = Registry("dataset")
