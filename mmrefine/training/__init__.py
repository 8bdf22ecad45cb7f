"""Lightning training engine: tasks, the LightningModule, fit/evaluate/predict."""

from mmrefine.training.module import MultimodalModule
from mmrefine.training.tasks import TASKS, Classification, MultiLabel, Regression, Task

__all__ = ["TASKS", "Classification", "MultiLabel", "MultimodalModule", "Regression", "Task"]
