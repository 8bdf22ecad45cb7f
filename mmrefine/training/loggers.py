"""Experiment trackers a run logs to: ``trainer.loggers`` (``csv``, ``tensorboard``, ``mlflow``).

The CSV logger is always written (reports read it); the others are added by name:

* ``tensorboard``: event files in ``STAGE_DIR/tensorboard/`` (``tensorboard --logdir RUN_DIR``);
  a resumed stage adds an event file to the same folder: one TensorBoard run per stage;
* ``mlflow``: one MLflow run per fit, both stages in it (pretraining metrics prefixed
  ``pretrain-``). Its tracking store is ``trainer.tracking_uri``, by default an embedded
  SQLite store ``sqlite:///RUN_DIR/mlflow.db`` (no server; a sweep shares one,
  ``OUT/mlflow.db``) with artefacts under ``mlartifacts/`` beside it. The run's id is kept in
  ``RUN_DIR/tracking.json``, so a resumed fit appends to the same MLflow run: a run killed and
  resumed is one MLflow run, not two. The resolved config is logged as parameters
  (dotted keys), every metric the run logs as metrics, the exported weights and
  ``metrics.json`` as artefacts.

TensorBoard and MLflow are the optional ``track`` extra (``pip install 'mmrefine[track]'``);
asking for one that is not installed is a :class:`ConfigError` saying so.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any, Callable

from mmrefine.config import ExperimentConfig, to_dict
from mmrefine.core.errors import ConfigError, DataError
from mmrefine.core.registry import Registry

LOGGERS: Registry = Registry("logger", "LOGGERS")
EXTRA = {"tensorboard": "tensorboard", "mlflow": "mlflow"}  # the module each tracker needs


def check_loggers(names: list[str]) -> None:
    """Each name known and its package installed (before anything is trained or written)."""
    for name in names:
        LOGGERS.get(name, "trainer.loggers")
        module = EXTRA.get(name)
        if module and importlib.util.find_spec(module) is None:
            raise ConfigError(f"trainer.loggers: '{name}' needs the {module} package: pip install 'mmrefine[track]'")


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as ``{dotted.key: value}`` (lists as their JSON text)."""
    out: dict[str, Any] = {}
    if isinstance(node, dict):
        for k, v in node.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    else:
        out[prefix] = json.dumps(node) if isinstance(node, (list, tuple)) else node
    return out


def default_tracking_uri(run_dir: Path) -> str:
    return f"sqlite:///{Path(run_dir).resolve() / 'mlflow.db'}"


@LOGGERS.register("csv")
def csv_logger(cfg: ExperimentConfig, stage_dir: Path, stage: str) -> Any:
    from lightning.pytorch.loggers import CSVLogger

    return CSVLogger(stage_dir, name="logs", version="")


@LOGGERS.register("tensorboard")
def tensorboard_logger(cfg: ExperimentConfig, stage_dir: Path, stage: str) -> Any:
    from lightning.pytorch.loggers import TensorBoardLogger

    return TensorBoardLogger(stage_dir, name="tensorboard", version="", default_hp_metric=False)


@LOGGERS.register("mlflow")
def mlflow_logger(cfg: ExperimentConfig, stage_dir: Path, stage: str) -> Any:
    from lightning.pytorch.loggers import MLFlowLogger

    run_dir = Path(cfg.run_dir)
    t = cfg.trainer
    uri = t.tracking_uri or default_tracking_uri(run_dir)
    record = run_dir / "tracking.json"
    run_id = None
    if record.is_file():
        try:
            saved = json.loads(record.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{record}: not valid JSON ({exc}); delete it to start a new MLflow run") from exc
        if isinstance(saved, dict) and saved.get("tracking_uri") == uri:
            run_id = saved.get("run_id")
    store = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else None
    artifacts = str(Path(store).parent / "mlartifacts") if store else None
    logger = MLFlowLogger(experiment_name=t.experiment_name or run_dir.name, run_name=t.run_name or run_dir.name, tracking_uri=uri,
                          run_id=run_id, artifact_location=artifacts, prefix="pretrain" if stage == "pretrain" else "")
    from mmrefine.training.engine import is_primary_process

    if run_id is None and is_primary_process():  # the other processes of a distributed run do not log
        record.write_text(json.dumps({"tracking_uri": uri, "run_id": logger.run_id}))
    return logger


def make_loggers(cfg: ExperimentConfig, stage_dir: Path, stage: str) -> list[Any]:
    """The CSV logger, then the trackers ``trainer.loggers`` names, each with the resolved config as parameters."""
    names = ["csv", *[n for n in cfg.trainer.loggers if n != "csv"]]
    check_loggers(names)
    loggers = []
    for name in names:
        make: Callable[..., Any] = LOGGERS.get(name, "trainer.loggers")
        logger = make(cfg, stage_dir, stage)
        if name != "csv":
            logger.log_hyperparams(flatten(to_dict(cfg)))
        loggers.append(logger)
    return loggers


def log_artifacts(loggers: list[Any], paths: list[Path]) -> None:
    """Attach files (the exported weights, ``metrics.json``) to the MLflow run."""
    from lightning.pytorch.loggers import MLFlowLogger

    for logger in loggers:
        if isinstance(logger, MLFlowLogger):
            for p in paths:
                if p.is_file():
                    logger.experiment.log_artifact(logger.run_id, str(p))


def prepare_store(uri: str, experiment: str, artifacts: Path | None = None) -> None:
    """Create an MLflow store and experiment once, before several processes log to it
    (creating a SQLite store's tables from two processes at once races)."""
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    if client.get_experiment_by_name(experiment) is None:
        client.create_experiment(experiment, artifact_location=str(artifacts) if artifacts else None)
