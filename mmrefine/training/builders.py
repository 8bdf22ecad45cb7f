"""Build data, task and model from an :class:`~mmrefine.config.ExperimentConfig`."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

from torch import nn

import mmrefine.data  # noqa: F401  (registers datasets)
import mmrefine.encoders  # noqa: F401  (registers encoders)
import mmrefine.fusion  # noqa: F401  (registers fusions)
import mmrefine.models  # noqa: F401  (registers architectures)
from mmrefine.config import ExperimentConfig, from_dict
from mmrefine.core.errors import ConfigError
from mmrefine.core.registry import build_checked
from mmrefine.data.batch import BatchSchema
from mmrefine.data.datamodule import MultimodalDataModule
from mmrefine.data.registry import DATASETS
from mmrefine.data.settings import DataSettings
from mmrefine.encoders.registry import ENCODERS
from mmrefine.fusion.base import FUSIONS
from mmrefine.models.fusion_model import FusionModel, MLPHead
from mmrefine.models.registry import ARCHITECTURES
from mmrefine.refine.distill import ModalityDistiller
from mmrefine.refine.progressive import ProgressiveFusion
from mmrefine.refine.progressive_any import InputProgressiveFusion
from mmrefine.refine.refiner import Refiner
from mmrefine.training.tasks import TASKS, Task


def build_datamodule(cfg: ExperimentConfig) -> MultimodalDataModule:
    """The dataset named by ``data.name``: its loader keys (see
    :class:`DataSettings`) are gathered into one settings object, type-checked,
    over the dataset's own defaults; the other keys go to its constructor."""
    spec = dict(cfg.data)
    if "name" not in spec:
        raise ConfigError(f"data: missing key 'name' (datasets: {', '.join(DATASETS.names())})")
    cls = DATASETS.get(spec["name"], "data.name")
    given = {k: spec.pop(k) for k in DataSettings.keys() if k in spec}
    checked = dataclasses.asdict(from_dict(DataSettings, given, "data"))
    settings = dataclasses.replace(cls.default_settings, **{k: checked[k] for k in given})
    name = spec.pop("name")
    dm = build_checked(cls, spec, "data", {"settings": settings}, f"dataset '{name}'")
    dm.shuffle_seed = cfg.seed
    return dm


INPUT_NEUTRAL = ("batch_size", "eval_batch_size", "num_workers", "labelled_fraction", "root")


def data_signature(cfg: ExperimentConfig) -> dict[str, Any]:
    """The data settings that change what a model sees at test time: the
    dataset's name and every constructor setting (defaults filled in), plus
    ``split_seed``; loader settings and the data folder are left out."""
    spec = dict(cfg.data)
    cls = DATASETS.get(spec.get("name", ""), "data.name")
    params = inspect.signature(cls.__init__).parameters
    out: dict[str, Any] = {"name": spec["name"]}
    for k, p in params.items():
        if k in ("self", "settings") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out[k] = spec.get(k, None if p.default is inspect.Parameter.empty else p.default)
    out["split_seed"] = spec.get("split_seed", cls.default_settings.split_seed)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.items() if k not in INPUT_NEUTRAL}


def build_task(cfg: ExperimentConfig, dm: MultimodalDataModule) -> Task:
    """``task`` (default: the task the data provide), checked against the data."""
    spec = cfg.task if cfg.task is not None else {"name": dm.task}
    if spec.get("name") not in (None, dm.task):
        raise ConfigError(
            f"task.name is '{spec['name']}' but dataset '{cfg.data.get('name')}' provides {dm.task} labels; "
            f"set task: {{name: {dm.task}}} (or leave task out)"
        )
    task = TASKS.build(spec, where="task", provided={"num_outputs": dm.num_outputs})
    if spec.get("class_weight") == "balanced":
        labels = dm.labelled_train().labels
        if labels is None:
            raise ConfigError("task.class_weight: balanced needs a labelled training split")
        task.fit_class_weights(labels)
    return task


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
        where = f"model.encoders.{m}" if m in cfg.model.encoders else "model.default_encoder"
        shape = tuple(schema.modalities[m].shape)
        if extra_input:
            if len(shape) != 1 or shape[0] is None:
                raise ConfigError(f"model.progressive: mode 'concat' needs flat inputs; '{m}' has shape {shape}")
            shape = (shape[0] + extra_input,)
        encoders[m] = ENCODERS.build(spec, where=where, provided={"input_shape": shape})
    fusion = FUSIONS.build(cfg.model.fusion, where="model.fusion", provided={"in_dims": {m: int(e.out_dim) for m, e in encoders.items()}})
    head = MLPHead(fusion.out_dim, out_dim, cfg.model.head_hidden, cfg.model.head_dropout)
    return FusionModel(encoders, fusion, head)


def build_model(cfg: ExperimentConfig, schema: BatchSchema, task: Task) -> nn.Module:
    """The base model, wrapped in :class:`ProgressiveFusion` when
    ``model.progressive`` is set, then in a :class:`Refiner` when ``model.refiner`` is set."""
    prog = cfg.model.progressive
    shapes = {m: spec.shape for m, spec in schema.modalities.items()}
    model: nn.Module
    if cfg.model.architecture is not None:
        codes = {m: spec["cardinalities"] for m, spec in cfg.model.encoders.items()  # category codes (a table's columns)
                 if spec.get("name") == "categorical" and "cardinalities" in spec}
        model = ARCHITECTURES.build(cfg.model.architecture, "model.architecture",
                                    {"input_shapes": shapes, "out_dim": task.out_dim, "categorical": codes})
    else:
        extra = int(prog.get("concat_dim", 16)) if prog and prog.get("mode") == "concat" else 0
        model = build_base_model(cfg, schema, task.out_dim, extra)
    if prog is not None:  # encoders + fusion: injection inside the encoders; an architecture: at its inputs
        kind = ProgressiveFusion if cfg.model.architecture is None else InputProgressiveFusion
        model = build_checked(kind, prog, "model.progressive", {"model": model, "input_shapes": shapes})
    spec = cfg.model.refiner
    if spec is not None:
        model = build_checked(Refiner, spec, "model.refiner", {"model": model})
        if model.ms_weight > 0 and not task.supports_metric_loss:
            raise ConfigError("model.refiner.ms needs class labels; this task has none")
    if cfg.model.distill is not None:
        spec = dict(cfg.model.distill)
        if "teacher" not in spec:
            raise ConfigError("model.distill: missing key 'teacher' (a finished run directory)")
        teacher = load_teacher(spec.pop("teacher"), schema, task)
        model = build_checked(ModalityDistiller, spec, "model.distill", {"model": model, "teacher": teacher, "num_outputs": task.out_dim})
    return model


def load_teacher(run_dir: str, schema: BatchSchema, task: Task) -> nn.Module:
    """The inference model of the finished run in ``run_dir`` (its ``config.yaml`` and
    ``model.safetensors``), built for this data's modalities."""
    from mmrefine.config import load_config

    d = Path(run_dir)
    for f in ("config.yaml", "model.safetensors"):
        if not (d / f).is_file():
            raise ConfigError(f"model.distill.teacher: {d} holds no finished run ({f} missing)")
    from mmrefine.core.errors import CheckpointMismatchError

    cfg = load_config(d / "config.yaml")
    if cfg.model.distill is not None:
        raise ConfigError(f"model.distill.teacher: {d} was itself trained by distillation; use its teacher or another run")
    try:
        return load_exported(build_model(cfg, schema, task), d / "model.safetensors")
    except ConfigError as exc:
        raise ConfigError(f"model.distill.teacher: {d / 'config.yaml'}: {exc}") from exc
    except CheckpointMismatchError as exc:
        raise CheckpointMismatchError(f"model.distill.teacher: {d / 'config.yaml'} does not describe the model in {exc}") from exc


def load_exported(model: nn.Module, weights: str | Path) -> nn.Module:
    """``model``'s inference part (training wrappers stripped) with exported safetensors
    ``weights`` loaded, its architecture checked first; in eval mode."""
    from safetensors.torch import load_file

    from mmrefine.core.errors import CheckpointMismatchError, DataError
    from mmrefine.core.protocols import inference_model
    from mmrefine.training.module import check_architecture

    model = inference_model(model)
    try:
        state = load_file(str(weights))
    except Exception as exc:  # noqa: BLE001 - safetensors' own errors on a truncated or foreign file
        raise DataError(f"{weights}: cannot read these weights ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from exc
    try:
        check_architecture({k: list(v.shape) for k, v in state.items()}, model)
    except CheckpointMismatchError as exc:
        raise CheckpointMismatchError(f"{weights}: {exc}") from exc
    model.load_state_dict(state)
    return model.eval()
