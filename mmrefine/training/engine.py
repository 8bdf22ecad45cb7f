"""Run experiments: fit (optional self-supervised pretraining, then supervised
training), evaluate, predict and export, all on Lightning.

Run directory layout::

    RUN_DIR/config.yaml                the resolved config
    RUN_DIR/pretrain/                  checkpoints + CSV logs of the pretraining stage
    RUN_DIR/pretrain/model.safetensors weights of the best pretraining epoch by validation
                                   refiner loss (marks the stage done)
    RUN_DIR/train/checkpoints/         best-*.ckpt and last.ckpt
    RUN_DIR/train/logs/metrics.csv     CSV logs (a resumed run keeps the earlier
                                       segments as metrics.part0.csv, ...; see mmrefine.training.logs.read_logs)
    RUN_DIR/model.safetensors          the inference model (Refiner decoders removed)
    RUN_DIR/metrics.json               validation and test metrics of the best checkpoint
    RUN_DIR/tracking.json              the MLflow run a resumed fit appends to (trainer.loggers: [mlflow])
    RUN_DIR/*/tensorboard/             TensorBoard event files (trainer.loggers: [tensorboard])

``resume=True`` continues from the newest ``last.ckpt`` of the unfinished stage;
the result equals an uninterrupted run's (epoch-seeded shuffling, RNG state
stored in checkpoints). A fresh fit refuses a run directory that already holds
checkpoints unless ``overwrite=True``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import Callback, EarlyStopping
from lightning.pytorch.loggers import CSVLogger
from safetensors.torch import load_file, save_file

from mmrefine.config import ExperimentConfig, OptimConfig, to_dict
from mmrefine.core.errors import CheckpointMismatchError, ConfigError, DataError, RunError
from mmrefine.core.protocols import inference_model
from mmrefine.data.datamodule import MultimodalDataModule
from mmrefine.refine.distill import ModalityDistiller
from mmrefine.training.allocator import keep_freed_memory
from mmrefine.training.builders import build_datamodule, build_model, build_task, data_signature, load_exported
from mmrefine.training.loggers import check_loggers, log_artifacts, make_loggers
from mmrefine.training.logs import keep_previous_logs
from mmrefine.training.module import MultimodalModule, check_architecture, check_data
from mmrefine.training.pretrained import check_pretrained, load_pretrained
from mmrefine.training.rundir import AtomicCheckpoint, LastCheckpoint, RunLock, check_writable
from mmrefine.training.tasks import Task

log = logging.getLogger("mmrefine")


@dataclass
class FitResult:
    run_dir: Path
    best_checkpoint: str
    val: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)
    module: MultimodalModule | None = None
    datamodule: MultimodalDataModule | None = None
    trainer: L.Trainer | None = None


class LeaveSpawnedProcessGroup(Callback):
    """In a worker process that ``strategy="ddp_spawn"`` started, ends the collective group when
    the stage ends (after a barrier, so no rank leaves while another still reduces): the worker
    exits next, and the collective backend's threads still running at interpreter exit abort it
    (SIGABRT, "terminate called without an active exception"; seen in CI). Other strategies keep
    their group: the same processes run the next stage."""

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        from lightning.pytorch.strategies.launchers.multiprocessing import _MultiProcessingLauncher

        if isinstance(trainer.strategy.launcher, _MultiProcessingLauncher):
            trainer.strategy.barrier("mmrefine-leave")
            leave_process_group()


def make_trainer(
    cfg: ExperimentConfig,
    stage_dir: Path,
    monitor: str,
    mode: str,
    max_epochs: int,
    callbacks: Sequence[Callback] = (),
    stage: str | None = None,
) -> tuple[L.Trainer, AtomicCheckpoint]:
    """A trainer writing into ``stage_dir``; a training ``stage`` (``pretrain``, ``train``) also
    logs to the trackers of ``trainer.loggers``, evaluation to the CSV logger only."""
    t = cfg.trainer
    if is_primary_process():
        keep_previous_logs(stage_dir / "logs")
    ckpt = AtomicCheckpoint(
        dirpath=stage_dir / "checkpoints",
        filename="best-{epoch:03d}",
        monitor=monitor,
        mode=mode,
        save_top_k=t.save_top_k,
        auto_insert_metric_name=False,
    )
    # last.ckpt (where --resume restarts) is rewritten atomically when due (see LastCheckpoint)
    last = LastCheckpoint(stage_dir / "checkpoints", best=ckpt, every_s=t.last_checkpoint_every_s)
    cbs: list[Callback] = [ckpt, last, LeaveSpawnedProcessGroup()]
    if t.patience is not None:
        cbs.append(EarlyStopping(monitor=monitor, mode=mode, patience=t.patience))
    cbs.extend(callbacks)
    trainer = L.Trainer(
        max_epochs=max_epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=t.precision,
        deterministic=t.deterministic,
        callbacks=cbs,
        logger=make_loggers(cfg, stage_dir, stage) if stage else CSVLogger(stage_dir, name="logs", version=""),
        log_every_n_steps=t.log_every_n_steps,
        enable_progress_bar=t.progress_bar,
        enable_model_summary=False,
        gradient_clip_val=t.gradient_clip_val,
        num_sanity_val_steps=t.num_sanity_val_steps,
        check_val_every_n_epoch=t.check_val_every_n_epoch,
        default_root_dir=stage_dir,
    )
    return trainer, ckpt


def is_primary_process() -> bool:
    """Whether this process is global rank 0 as the launchers set it before a trainer exists:
    a plain run, a ``ddp_spawn`` parent, or the first process of the first machine of a
    ``ddp`` run (``NODE_RANK``, ``LOCAL_RANK``, torchrun's ``RANK``, SLURM's ``SLURM_PROCID``).
    Only it locks and writes the run directory; the other processes of a distributed run
    train beside it."""
    return all(int(os.environ.get(k, "0") or 0) == 0 for k in RANK_VARIABLES)


RANK_VARIABLES = ("RANK", "NODE_RANK", "LOCAL_RANK", "SLURM_PROCID")


def _check_distributed(cfg: ExperimentConfig) -> None:
    """A process told by its environment that it is not rank 0 must belong to a multi-process
    run: otherwise it would train and write nothing (a stray ``LOCAL_RANK``, say)."""
    t = cfg.trainer
    if t.num_nodes == 1 and str(t.devices) == "1":  # ("auto" may mean several accelerators: not checked)
        ranks = {k: os.environ[k] for k in RANK_VARIABLES if os.environ.get(k, "0") not in ("", "0")}
        raise ConfigError(f"the environment gives this process rank {ranks}, but the config describes one process "
                          "(trainer.num_nodes=1, one device): unset those variables, or set trainer.num_nodes / "
                          "trainer.devices for a distributed run")
    log.info("rank %s of a distributed run: rank 0 writes %s", {k: os.environ.get(k) for k in RANK_VARIABLES if k in os.environ},
             cfg.run_dir)


def _last(stage_dir: Path) -> str | None:
    """The stage's last.ckpt, verified readable (a truncated file is a DataError), or None."""
    p = stage_dir / "checkpoints" / "last.ckpt"
    if not p.is_file():
        return None
    read_checkpoint(p)
    return str(p)


def _started(stage_dir: Path) -> bool:
    """A stage has started once it saved a checkpoint (logs alone mean an unstarted run)."""
    return (stage_dir / "checkpoints" / "last.ckpt").is_file() or (stage_dir / "model.safetensors").is_file()


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if torch.is_tensor(v) and v.numel() == 1 or isinstance(v, (int, float))}


def prepare(cfg: ExperimentConfig, datamodule: MultimodalDataModule | None = None) -> tuple[MultimodalDataModule, Any, torch.nn.Module]:
    """Seed, then build the datamodule (unless given), task and model of ``cfg``.
    Encoders a datamodule requires for its modalities (``encoder_defaults()``,
    e.g. a table's category counts) fill the config where it names none. Freed memory
    is kept for reuse from here on (:func:`~mmrefine.training.allocator.keep_freed_memory`)."""
    keep_freed_memory()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = datamodule if datamodule is not None else build_datamodule(cfg)
    dm.joint_unlabelled = (cfg.model.refiner or {}).get("unlabelled") == "joint"
    dm.setup()
    for m, spec in dm.encoder_defaults().items():
        given = cfg.model.encoders.get(m)
        cfg.model.encoders[m] = {**spec, **given} if given and given.get("name") == spec["name"] else (given or spec)
    if dm.joint_unlabelled and len(dm.unlabelled_train()) == 0:
        raise ConfigError("model.refiner.unlabelled: joint needs unlabelled training samples "
                          "(data.labelled_fraction < 1, or rows without a label)")
    task = build_task(cfg, dm)
    model = build_model(cfg, dm.schema, task)
    if isinstance(model, ModalityDistiller) and model.weighting == "meta":  # its look-ahead reads held-out batches
        model.set_held_out(dm.loader(dm.splits["val"], train=True))
    return dm, task, model


def fit(
    cfg: ExperimentConfig,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    test: bool = True,
    overwrite: bool = False,
    datamodule: MultimodalDataModule | None = None,
) -> FitResult:
    """Train ``cfg`` (see module docstring) and test its best checkpoint.

    Data and model are built before anything is written, so an invalid config
    leaves no trace. The run directory is then checked writable and locked
    against a second fit. A stage without a checkpoint counts as not started:
    it is cleared and run from its beginning, so a run killed before its first
    checkpoint resumes as a fresh one. ``resume`` on a finished run trains
    nothing: it says so and returns the recorded metrics with the best model
    loaded. ``datamodule`` replaces the one ``cfg.data`` describes (the
    :class:`~mmrefine.TablePredictor` passes its DataFrames this way).
    """
    run_dir = Path(cfg.run_dir)
    check_loggers(cfg.trainer.loggers)  # a tracker that is not installed fails before anything is built or written
    dm, task, model = prepare(cfg, datamodule)
    if cfg.pretrain.weights is not None:
        check_pretrained(cfg, model)  # another run's pretraining: found, same settings, same architecture
    if not is_primary_process():  # another process of a multi-process run: rank 0 owns the run directory
        _check_distributed(cfg)
        return _fit_stages(cfg, run_dir, dm, task, model, resume, callbacks, test)
    check_writable(run_dir)
    with RunLock(run_dir):
        stages = [run_dir / "pretrain", run_dir / "train"]
        finished = (run_dir / "metrics.json").is_file()
        if resume and finished:
            log.warning("run %s already finished; nothing to resume (metrics from %s)", run_dir, run_dir / "metrics.json")
            return _finished(cfg, run_dir, dm, task, model)
        if not resume:
            used = [s.name for s in stages if _started(s)] + (["metrics.json"] if finished else [])
            if used and not overwrite:
                raise RunError(
                    f"run directory {run_dir} already holds a run ({', '.join(used)}); "
                    "resume it (--resume), overwrite it (--overwrite) or choose another run_dir"
                )
            for f in ("metrics.json", "model.safetensors", "tracking.json"):  # a fresh fit is a new MLflow run
                (run_dir / f).unlink(missing_ok=True)
        for s in stages:
            if s.exists() and (not resume or not _started(s)):
                shutil.rmtree(s)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        return _fit_stages(cfg, run_dir, dm, task, model, resume, callbacks, test)


def _fit_stages(
    cfg: ExperimentConfig, run_dir: Path, dm: MultimodalDataModule, task: Task, model: torch.nn.Module,
    resume: bool, callbacks: Sequence[Callback], test: bool,
) -> FitResult:
    cfg_dict = to_dict(cfg)
    signature = data_signature(cfg)
    primary = is_primary_process()  # only rank 0 writes the run directory
    if cfg.pretrain.epochs > 0:
        pdir = run_dir / "pretrain"
        done = pdir / "model.safetensors"
        if resume and done.is_file():
            model.load_state_dict(load_file(done))
        elif cfg.pretrain.weights is not None:
            source = load_pretrained(cfg, model, done if primary else None)
            log.info("pretraining: weights from %s (not recomputed)", source)
        else:
            optim = OptimConfig(**{**to_dict(cfg.optim), "lr": cfg.pretrain.lr or cfg.optim.lr})
            pmod = MultimodalModule(model, task, optim, "pretrain", dm.schema, cfg_dict, cfg.trainer.validate_batches, signature)
            trainer, pbest = make_trainer(cfg, pdir, "val/loss", "min", cfg.pretrain.epochs, callbacks, stage="pretrain")
            trainer.fit(pmod, train_dataloaders=dm.pretrain_dataloader(), val_dataloaders=dm.val_dataloader(),
                        ckpt_path=_last(pdir) if resume else None, weights_only=True)
            if trainer.interrupted:
                raise KeyboardInterrupt("pretraining interrupted")
            if pbest.best_model_path:  # keep the best epoch by validation refiner loss, as fine-tuning does
                load_weights(pmod, pbest.best_model_path)
            if primary:
                save_file({k: v.contiguous() for k, v in model.state_dict().items()}, done)

    tdir = run_dir / "train"
    module = MultimodalModule(model, task, cfg.optim, "supervised", dm.schema, cfg_dict, cfg.trainer.validate_batches, signature)
    monitor = cfg.trainer.monitor or task.monitor
    mode = cfg.trainer.mode or task.mode
    trainer, ckpt = make_trainer(cfg, tdir, monitor, mode, cfg.trainer.max_epochs, callbacks, stage="train")
    trainer.fit(module, datamodule=dm, ckpt_path=_last(tdir) if resume else None, weights_only=True)
    if trainer.interrupted:
        raise KeyboardInterrupt("training interrupted")
    best = ckpt.best_model_path or _last(tdir) or ""
    result = FitResult(run_dir, best, module=module, datamodule=dm, trainer=trainer)
    if best:
        load_weights(module, best)
    result.val = _scalars(trainer.validate(module, datamodule=dm, verbose=False)[0])
    if test:
        result.test = _scalars(trainer.test(module, datamodule=dm, verbose=False)[0])
    if primary:
        export(module.model, run_dir / "model.safetensors")
        _write_atomic(run_dir / "metrics.json", json.dumps({"best_checkpoint": best, "val": result.val, "test": result.test}, indent=2))
        log_artifacts(trainer.loggers, [run_dir / "model.safetensors", run_dir / "metrics.json"])
    return result


def leave_process_group() -> None:
    """End this process's part in a distributed run (one process per machine, launched by the
    user): without it the collective backend's threads can abort the interpreter at exit
    ("terminate called without an active exception") after a successful fit."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """A finished run's ``metrics.json``, checked: ``best_checkpoint`` (a path or ""), ``val``
    and ``test`` (metric name -> number). A damaged file is a :class:`DataError` naming it and the field."""
    path = Path(run_dir) / "metrics.json"
    try:
        recorded = json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); the file is damaged or truncated") from exc
    if not isinstance(recorded, dict):
        raise DataError(f"{path}: expected a JSON object")
    for key in ("val", "test"):
        value = recorded.get(key)
        if not isinstance(value, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values()):
            raise DataError(f"{path}: field '{key}' must map metric names to numbers")
    best = recorded.get("best_checkpoint", "")
    if not isinstance(best, str):
        raise DataError(f"{path}: field 'best_checkpoint' must be a path")
    if best:  # a run directory moved or copied elsewhere: its own checkpoint, not the one at the old place
        local = Path(run_dir) / "train" / "checkpoints" / Path(best).name
        recorded["best_checkpoint"] = str(local) if local.is_file() else best
    return recorded


def _finished(cfg: ExperimentConfig, run_dir: Path, dm: MultimodalDataModule, task: Task, model: torch.nn.Module) -> FitResult:
    """The result of a finished run, from its metrics.json and best checkpoint."""
    recorded = read_metrics(run_dir)
    module = MultimodalModule(model, task, cfg.optim, "supervised", dm.schema, to_dict(cfg), data_signature=data_signature(cfg))
    best = recorded.get("best_checkpoint") or ""
    if best:
        load_weights(module, best)
    trainer, _ = make_trainer(cfg, run_dir / "eval", task.monitor, task.mode, 1)
    return FitResult(run_dir, best, recorded.get("val", {}), recorded.get("test", {}), module, dm, trainer)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"checkpoint is empty: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read checkpoint {path}: {first}") from exc


def load_weights(module: MultimodalModule, path: str | Path) -> None:
    """Load a Lightning checkpoint's weights, checking the architecture first."""
    ckpt = read_checkpoint(path)
    meta = ckpt.get("mmrefine") if isinstance(ckpt, dict) else None
    if not isinstance(meta, dict) or "state_dict" not in ckpt or not isinstance(meta.get("architecture"), dict):
        raise DataError(f"{path} is not an mmrefine checkpoint (no 'mmrefine' section with its architecture)")
    try:
        check_architecture(meta["architecture"], module.model)
    except CheckpointMismatchError as exc:
        raise CheckpointMismatchError(f"{path}: {exc} (is it the checkpoint of this config's model?)") from exc
    check_data(meta.get("data"), module.data_signature, path)
    try:
        module.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as exc:
        raise CheckpointMismatchError(f"{path}: its weights do not match the model ({str(exc).splitlines()[0]})") from exc


def export(model: torch.nn.Module, path: str | Path) -> Path:
    """Save the inference model's weights (no Refiner decoders) as safetensors."""
    inf = inference_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in inf.state_dict().items()}, str(tmp))
    os.replace(tmp, path)
    return path


def load_inference_model(cfg: ExperimentConfig, weights: str | Path) -> torch.nn.Module:
    """Rebuild ``cfg``'s inference model and load exported safetensors into it."""
    _, _, model = prepare(cfg)
    return load_exported(model, weights)


def load_module(cfg: ExperimentConfig, checkpoint: str | Path) -> tuple[MultimodalDataModule, MultimodalModule]:
    """Build ``cfg``'s datamodule and module and load ``checkpoint`` (architecture checked)."""
    dm, task, model = prepare(cfg)
    module = MultimodalModule(model, task, cfg.optim, "supervised", dm.schema, to_dict(cfg), data_signature=data_signature(cfg))
    load_weights(module, checkpoint)
    return dm, module


def evaluate(cfg: ExperimentConfig, checkpoint: str | Path, split: str = "test") -> dict[str, float]:
    """Metrics of ``checkpoint`` on ``split`` ("val" or "test")."""
    if split not in ("val", "test"):
        raise ConfigError(f"split must be 'val' or 'test', got '{split}'")
    dm, module = load_module(cfg, checkpoint)
    trainer, _ = make_trainer(cfg, Path(cfg.run_dir) / "eval", module.task.monitor, module.task.mode, 1)
    if split == "val":
        return _scalars(trainer.validate(module, datamodule=dm, verbose=False)[0])
    return _scalars(trainer.test(module, datamodule=dm, verbose=False)[0])


def predict(cfg: ExperimentConfig, checkpoint: str | Path, out: str | Path) -> Path:
    """Write test-split predictions of ``checkpoint`` as CSV (one column per output)."""
    import numpy as np

    dm, module = load_module(cfg, checkpoint)
    trainer, _ = make_trainer(cfg, Path(cfg.run_dir) / "predict", module.task.monitor, module.task.mode, 1)
    parts = trainer.predict(module, datamodule=dm)
    pred = torch.cat([p["prediction"] for p in parts]).numpy()
    cols = [f"p{i}" for i in range(pred.shape[1])]
    header = ",".join(cols)
    data = pred
    if "label" in parts[0] and parts[0]["label"].dim() == 1:
        data = np.column_stack([pred, torch.cat([p["label"] for p in parts]).numpy()])
        header += ",label"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(out, data, delimiter=",", header=header, comments="", fmt="%.6g")
    return out
