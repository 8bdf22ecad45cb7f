"""The experiment config of a table predictor's fused network, and rebuilding it for loading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mmrefine.config import ExperimentConfig, from_dict, to_dict
from mmrefine.core.errors import ConfigError
from mmrefine.data.batch import BatchSchema
from mmrefine.data.table import TablePreprocessor
from mmrefine.predictors.metrics import EvalMetric
from mmrefine.training.builders import build_model, build_task, load_exported

MIN_MONITORS = ("val/mae", "val/mse", "val/loss", "val/task")
REFINER_DEFAULT = {"loss": "cosine", "gamma": 0.1}


def monitor_of(metric: EvalMetric, task: str, override: str | None = None) -> tuple[str, str]:
    """``(monitor, mode)`` the network early-stops on: the evaluation metric's validation
    counterpart (:mod:`mmrefine.predictors.metrics` says which), or ``override``."""
    monitor = override or metric.monitor
    if task == "multiclass" and monitor in ("val/f1", "val/roc_auc", "val/pr_auc"):
        monitor = "val/task"  # logged for two classes only
    return monitor, ("min" if monitor in MIN_MONITORS else "max")


def refiner_spec(refiner: Any, unlabelled: bool, finetuned: bool = False) -> dict[str, Any] | None:
    """The ``model.refiner`` spec: ``"auto"`` turns the Refiner on (cosine, gamma 0.1) when
    there are unlabelled rows to pretrain on and the text encoder is frozen; True always;
    False never; a dict as given. ``"auto"`` leaves it off with a fine-tuned text encoder:
    pretraining a fine-tuned transformer on the refiner losses collapses its targets, and
    fine-tuning undid that only with enough labelled steps (MMBT on MOSI,
    docs/reproduction.md: 20% of the labels 73.8% -> 76.4%; 10%, one seed of five left
    predicting one class; 5%, 67.2% -> 46.0%), and not at all on the clothing table
    (MMBT over the whole row: F1 0.948 -> 0.900 with 10% of the labels, 0.947 -> 0.924
    with 20%)."""
    if refiner == "auto":
        return dict(REFINER_DEFAULT) if unlabelled and not finetuned else None
    if refiner is True:
        return dict(REFINER_DEFAULT)
    if refiner is False or refiner is None:
        return None
    if isinstance(refiner, dict):
        return dict(refiner)
    raise ConfigError(f"refiner must be 'auto', True, False or a model.refiner spec, got {refiner!r}")


def network_refiner(s: dict[str, Any], unlabelled: bool) -> dict[str, Any] | None:
    """:func:`refiner_spec` for the network settings ``s`` (fine-tuned when it reads MiniLM's token states)."""
    return refiner_spec(s["refiner"], unlabelled, finetuned=s.get("tokens_from_layer") is not None)


def network_config(pre: TablePreprocessor, s: dict[str, Any], metric: EvalMetric, seed: int, run_dir: str, unlabelled: bool,
                   class_weight: str | None = None) -> ExperimentConfig:
    """The experiment config of one fold's network. ``s``: the predictor's network settings
    (``fusion``, ``refiner``, ``epochs``, ``patience``, ``monitor``, ``pretrain_epochs``,
    ``batch_size``, ``lr``, ``text_dim``, ``progress_bar``, ``accelerator``, ``tokens_from_layer``,
    ``finetune_lr``)."""
    task: dict[str, Any] = {"name": "regression" if pre.task == "regression" else "classification"}
    if class_weight is not None:
        if pre.task == "regression":
            raise ConfigError("class_weight applies to classification; this label is a regression target")
        task["class_weight"] = class_weight
    model: dict[str, Any] = {"default_encoder": {"name": "mlp", "hidden": [], "out_dim": s["text_dim"], "dropout": 0.1},
                             "fusion": s["fusion"], "head_hidden": [64], "head_dropout": 0.1}
    optim: dict[str, Any] = {"lr": s["lr"], "weight_decay": 0.01, "warmup_fraction": 0.05}
    if s.get("tokens_from_layer") is not None:
        model["encoders"] = {m: {"name": "minilm_top", "from_layer": s["tokens_from_layer"], "out_dim": s["text_dim"]}
                             for m in pre.text_columns}
        optim["lr_multipliers"] = {"*encoders.*.blocks.*": s["finetune_lr"] / s["lr"]}  # the pretrained layers move slowly
    spec = network_refiner(s, unlabelled)
    pretrain = 0
    if spec is not None:
        model["refiner"] = spec
        pretrain = s["pretrain_epochs"] if unlabelled and spec.get("unlabelled") != "joint" else 0
    monitor, mode = monitor_of(metric, pre.task, s.get("monitor"))
    data = {"name": "table", "label": pre.label, "column_types": pre.kinds, "task_kind": pre.task, "batch_size": s["batch_size"]}
    trainer = {"max_epochs": s["epochs"], "accelerator": s["accelerator"], "devices": 1, "patience": s["patience"],
               "monitor": monitor, "mode": mode, "progress_bar": s["progress_bar"], "num_sanity_val_steps": 0}
    raw = {"seed": seed, "run_dir": run_dir, "task": task, "data": data, "model": model,
           "optim": optim, "trainer": trainer, "pretrain": {"epochs": pretrain}}
    return from_dict(ExperimentConfig, raw)


def network_schema(pre: TablePreprocessor, tokens: bool) -> BatchSchema:
    """The modalities and per-row shapes a table's network reads."""
    shapes: dict[str, tuple[int, ...]] = {}
    for m, col in pre.text_columns.items():
        if tokens and col not in pre.token_length:
            raise ConfigError(f"the saved preprocessing has no token length for text column '{col}'")
        shapes[m] = (pre.token_length[col], 385) if tokens else (384,)
    if pre.columns("categorical"):
        shapes["categorical"] = (len(pre.columns("categorical")),)
    if pre.columns("numerical"):
        shapes["numerical"] = (2 * len(pre.columns("numerical")),)
    return BatchSchema.from_shapes(shapes)


def load_network(cfg: ExperimentConfig, pre: TablePreprocessor, weights: Path) -> torch.nn.Module:
    """A fold's inference network from its config and exported safetensors (architecture
    checked); the fine-tuned text encoder is built without reading the pretrained MiniLM."""
    return load_exported(build_network(cfg, pre), weights)


def build_network(cfg: ExperimentConfig, pre: TablePreprocessor) -> torch.nn.Module:
    """The network a fold's config describes, with fresh weights."""

    class _Data:  # what build_task reads from a datamodule
        task = "regression" if pre.task == "regression" else "classification"
        num_outputs = pre.num_outputs

    raw = to_dict(cfg)
    raw["task"] = {k: v for k, v in (raw["task"] or {}).items() if k != "class_weight"}  # inference needs no loss weights
    tokens = False
    for m, spec in list(raw["model"]["encoders"].items()):
        if spec.get("name") == "minilm_top":
            raw["model"]["encoders"][m] = {**spec, "pretrained": False}
            tokens = True
    for m, spec in _table_encoders(pre).items():  # the encoders a table datamodule would fill in
        raw["model"]["encoders"].setdefault(m, spec)
    cfg2 = from_dict(ExperimentConfig, raw)
    task = build_task(cfg2, _Data())  # type: ignore[arg-type]
    return build_model(cfg2, network_schema(pre, tokens), task)


def _table_encoders(pre: TablePreprocessor) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if pre.columns("categorical"):
        out["categorical"] = {"name": "categorical", "cardinalities": pre.cardinalities}
    if pre.columns("numerical"):
        out["numerical"] = {"name": "identity"}
    return out
