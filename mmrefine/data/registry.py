"""Registry of datasets (LightningDataModules) buildable from a config."""

from mmrefine.core.registry import Registry

DATASETS: Registry = Registry("dataset")
