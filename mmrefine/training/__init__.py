"""Lightning training engine: tasks, the LightningModule, fit/evaluate/predict.

The names below are imported on first use, so that a submodule that needs no Lightning
(``mmrefine.training.loggers`` for a sweep's tracking settings, ``mmrefine.training.machine``)
does not load it: the process that schedules a sweep's runs never does."""

from mmrefine.core.lazy import lazy_names as _lazy_names

_HOMES = {
    "MultimodalModule": "module",
    "TASKS": "tasks", "Classification": "tasks", "MultiLabel": "tasks", "Regression": "tasks", "Task": "tasks",
}

__all__ = sorted(_HOMES)
__getattr__ = _lazy_names(__name__, _HOMES)
