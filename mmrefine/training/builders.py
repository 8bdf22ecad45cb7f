"""Build data, task and model from an :class:`~mmrefine.config.ExperimentConfig`."""

from __future__ import annotations

import dataclasses

from torch import nn

from mmrefine.config import ExperimentConfig
from mmrefine.data.batch import BatchSchema
from mmrefine.data.datamodule import MultimodalDataModule
from mmrefine.data.registry import DATASETS
from mmrefine.encoders.registry import ENCODERS
from mmrefine.errors import ConfigError
from mmrefine.fusion.base import FUSIONS
from mmrefine.models.fusion_model import FusionModel, MLPHead
from mmrefine.models.registry import ARCHITECTURES
from mmrefine.refine.progressive import ProgressiveFusion
from mmrefine.refine.refiner import Refiner
from mmrefine.registry import build_checked
from mmrefine.training.tasks import TASKS, Task

import mmrefine.data  # noqa: F401  (registers datasets)
import mmrefine.encoders  # noqa: F401  (registers encoders)
import mmrefine.fusion  # noqa: F401  (registers fusions)
import mmrefine.models  # noqa: F401  (registers architectures)


def build_datamodule(cfg: ExperimentConfig) -> MultimodalDataModule:
    dm = DATASETS.build(cfg.data, where="data")
    dm.shuffle_seed = cfg.seed
    return dm


def build_task(cfg: ExperimentConfig, num_outputs: int) -> Task:
    return TASKS.build(cfg.task, where="task", provided={"num_outputs": num_outputs})


def build_base_model(
    cfg: ExperimentConfig, schema: BatchSchema, out_dim: int, extra_input: int = 0
) -> FusionModel:
    """Encoders, fusion and head; ``extra_input`` widens flat encoder inputs
    (Progressive Fusion's ``concat`` injection)."""
    unknown = sorted(set(cfg.model.encoders) - set(schema.names))
    if unknown:
        raise ConfigError(f"model.encoders: unknown modality {unknown}; the data provides {schema.names}")
    encoders = {}
    for m in schema.names:
        spec = cfg.model.encoders.get(m, cfg.model.default_encoder)
        shape = tuple(schema.modalities[m].shape)
        if extra_input:
            if len(shape) != 1 or shape[0] is None:
                raise ConfigError(f"model.progressive: mode 'concat' needs flat inputs; '{m}' has shape {shape}")
            shape = (shape[0] + extra_input,)
        encoders[m] = ENCODERS.build(spec, where=f"model.encoders.{m}", provided={"input_shape": shape})
    fusion = FUSIONS.build(cfg.model.fusion, where="model.fusion", provided={"in_dims": {m: int(e.out_dim) for m, e in encoders.items()}})
    head = MLPHead(fusion.out_dim, out_dim, cfg.model.head_hidden, cfg.model.head_dropout)
    return FusionModel(encoders, fusion, head)


def build_model(cfg: ExperimentConfig, schema: BatchSchema, task: Task) -> nn.Module:
    """The base model, wrapped in :class:`ProgressiveFusion` when
    ``model.progressive`` is set, then in a :class:`Refiner` when ``refiner.enabled``."""
    prog = cfg.model.progressive
    shapes = {m: spec.shape for m, spec in schema.modalities.items()}
    model: nn.Module
    if cfg.model.architecture is not None:
        if prog is not None:
            raise ConfigError("model.progressive wraps encoders + fusion; it cannot wrap model.architecture")
        model = ARCHITECTURES.build(cfg.model.architecture, "model.architecture", {"input_shapes": shapes, "out_dim": task.out_dim})
    else:
        extra = int(prog.get("concat_dim", 16)) if prog and prog.get("mode") == "concat" else 0
        model = build_base_model(cfg, schema, task.out_dim, extra)
    if prog is not None:
        model = build_checked(ProgressiveFusion, prog, "model.progressive", {"model": model, "input_shapes": shapes})
    r = cfg.refiner
    if r.ms_weight > 0 and not task.supports_metric_loss:
        raise ConfigError("refiner.ms_weight > 0 needs class labels; this task has none")
    if r.enabled:
        kwargs = {k: v for k, v in dataclasses.asdict(r).items() if k != "enabled"}
        model = Refiner(model, **kwargs)
    elif r.ms_weight > 0:
        raise ConfigError("refiner.ms_weight is set but refiner.enabled is false: it would do nothing")
    return model


def inference_model(model: nn.Module) -> nn.Module:
    """Strip training-only wrappers (a Refiner's decoders) down to what predicts."""
    while hasattr(model, "inference_model"):
        inner = model.inference_model()
        if inner is model:
            break
        model = inner
    return model
