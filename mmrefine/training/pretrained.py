"""Start fine-tuning from a pretraining stage another run already computed (``pretrain.weights``).

Self-supervised pretraining reads no labels, so runs that differ only in the labels they
fine-tune on (``data.labelled_fraction``), in the fine-tuning budget or in a loss term that
needs labels (``model.refiner.ms``: ReFNetMS pretrains what ReFNet does) compute the same
pretraining: with the same seed the weights are bit for bit equal (measured on MMBT,
docs/reproduction.md; tested). A label curve needs it once per seed::

    pretrain: {epochs: 5, weights: runs/curve/runs/refnet/seed{seed}}   # {seed}: this run's seed

``weights`` is a run directory (its ``pretrain/model.safetensors``) or that file. The source
run's ``config.yaml``, when there is one, must describe the same pretraining: the same seed,
model, optimiser, pretraining stage, data (apart from the labelled fraction and the data
root) and trainer settings that act on a training step; any difference is an error naming
the keys. The weights must fit this config's model (names and shapes).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from mmrefine.config import ExperimentConfig, to_dict
from mmrefine.core.errors import CheckpointMismatchError, ConfigError, DataError
from mmrefine.training.module import check_architecture

# Settings that do not act on the pretraining stage (fine-tuning only, or presentation), as
# dotted paths. model.refiner.ms: the Multi-Similarity term needs labels, so a ReFNetMS run
# pretrains the same weights as a ReFNet run (tested bit for bit).
FINE_TUNING_ONLY = (
    "data.labelled_fraction", "data.root", "pretrain.weights", "model.refiner.ms",
    *(f"trainer.{k}" for k in ("max_epochs", "patience", "monitor", "mode", "save_top_k", "progress_bar", "log_every_n_steps",
                               "loggers", "tracking_uri", "experiment_name", "run_name", "num_sanity_val_steps",
                               "last_checkpoint_every_s")),
)
COMPARED = ("seed", "model", "optim", "pretrain", "data", "trainer")


def source_files(cfg: ExperimentConfig) -> tuple[Path, Path | None]:
    """``(weights file, source config or None)`` of ``cfg.pretrain.weights`` with ``{seed}`` filled."""
    given = str(cfg.pretrain.weights).replace("{seed}", str(cfg.seed))
    path = Path(given)
    if path.is_dir():
        weights, config = path / "pretrain" / "model.safetensors", path / "config.yaml"
        if not weights.is_file():
            raise ConfigError(f"pretrain.weights: {path} holds no finished pretraining stage (no pretrain/model.safetensors)")
    elif path.is_file():
        weights, config = path, path.parent.parent / "config.yaml"
    else:
        raise ConfigError(f"pretrain.weights: {given} does not exist (a run directory or its pretrain/model.safetensors)")
    return weights, config if config.is_file() else None


def _without(config: Any, path: tuple[str, ...]) -> Any:
    """``config`` with the nested key ``path`` left out (a copy wherever something changed)."""
    if not isinstance(config, dict) or path[0] not in config:
        return config
    if len(path) == 1:
        return {k: v for k, v in config.items() if k != path[0]}
    return {**config, path[0]: _without(config[path[0]], path[1:])}


def differences(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """Dotted keys among the pretraining settings whose values differ."""
    for path in (tuple(p.split(".")) for p in FINE_TUNING_ONLY):
        ours, theirs = _without(ours, path), _without(theirs, path)
    out = []
    for section in COMPARED:
        a, b = ours.get(section), theirs.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{section}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            out.append(section)
    return out


def check_pretrained(cfg: ExperimentConfig, model: torch.nn.Module) -> Path:
    """The weights file ``cfg.pretrain.weights`` names, checked as the module docstring says
    (before anything is written: :func:`~mmrefine.training.engine.fit` calls it first)."""
    weights, config = source_files(cfg)
    if config is not None:
        try:
            theirs = yaml.safe_load(config.read_text())
        except yaml.YAMLError as exc:
            raise DataError(f"pretrain.weights: cannot read {config}: {str(exc).splitlines()[0]}") from exc
        diff = differences(to_dict(cfg), theirs if isinstance(theirs, dict) else {})
        if diff:
            raise ConfigError(f"pretrain.weights: {weights} was pretrained under other settings ({', '.join(diff)} differ); "
                              "pretraining would not give these weights here")
    try:
        with safe_open(str(weights), framework="pt") as f:
            shapes = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError) as exc:
        raise DataError(f"pretrain.weights: cannot read {weights}: {exc}") from exc
    try:
        check_architecture(shapes, model)
    except CheckpointMismatchError as exc:
        raise CheckpointMismatchError(f"pretrain.weights: {weights}: {exc}") from exc
    return weights


def load_pretrained(cfg: ExperimentConfig, model: torch.nn.Module, dest: Path | None) -> Path:
    """Load the pretraining weights :func:`check_pretrained` accepted into ``model`` and copy the
    file to ``dest`` (this run's ``pretrain/model.safetensors``, so the run directory holds what
    it started from). Returns the source file."""
    weights, _ = source_files(cfg)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise DataError(f"pretrain.weights: cannot read {weights}: {exc}") from exc
    model.load_state_dict(state, strict=True)
    if dest is not None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        shutil.copyfile(weights, tmp)
        tmp.replace(dest)
    return weights
