"""The LightningModule that trains any mmrefine model.

The total loss is the sum of named terms, each logged as ``{stage}/{name}``:

* ``task``: the task loss (supervised stage only);
* every term of ``model.auxiliary_losses(out, mask, labels)`` when the model
  has one (a :class:`~mmrefine.refine.Refiner`: ``refiner_<m>``, ``ms``).

In the ``pretrain`` stage there are no labels: only auxiliary terms are used
(refiner losses; the metric loss needs labels and is skipped).

Under mixed precision (``trainer.precision: bf16-mixed``) the model's forward runs under
autocast, and its output is taken back to fp32 before every loss term and metric, which are
computed with autocast off (:mod:`mmrefine.core.precision`).
"""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from mmrefine.config import OptimConfig
from mmrefine.core.errors import BatchError, CheckpointMismatchError, ConfigError
from mmrefine.core.precision import autocast_off, full_precision
from mmrefine.core.protocols import HasAuxiliaryLosses, check_model
from mmrefine.data.batch import BatchSchema, MultimodalBatch
from mmrefine.training.schedule import WarmupDecay
from mmrefine.training.tasks import Task

STAGES = ("supervised", "pretrain")


class MultimodalModule(L.LightningModule):
    """See module docstring.

    Args:
        model: a :class:`~mmrefine.core.MultimodalModel`.
        task: the task (loss, metrics, predictions).
        optim: optimiser and schedule settings.
        stage: ``supervised`` or ``pretrain`` (auxiliary losses only, no labels).
        schema: the data's batch schema; batches are validated against it.
        config: the experiment config as a plain dict, stored in checkpoints.
        validate_batches: validate every batch against ``schema``.
        data_signature: the data settings that change the inputs (see
            :func:`~mmrefine.training.builders.data_signature`), stored in
            checkpoints and compared when one is loaded.
    """

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        optim: OptimConfig | None = None,
        stage: str = "supervised",
        schema: BatchSchema | None = None,
        config: dict[str, Any] | None = None,
        validate_batches: bool = True,
        data_signature: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if stage not in STAGES:
            raise ConfigError(f"stage must be one of {STAGES}, got '{stage}'")
        check_model(model, "MultimodalModule")
        if stage == "pretrain" and not isinstance(model, HasAuxiliaryLosses):
            raise ConfigError("self-supervised pretraining needs a model with self-supervised terms: set model.refiner "
                              "(e.g. model.refiner: {}), or use an architecture that has them (mmae)")
        self.model = model
        self.task = task
        self.optim = optim or OptimConfig()
        self.stage = stage
        self.schema = schema
        self.config = config or {}
        self.validate_batches = validate_batches
        self.data_signature = data_signature
        self.sums: dict[str, dict[str, Tensor]] = {}  # "train" / "val": this epoch's batch-size-weighted sums of the terms
        self.counts: dict[str, int] = {}  # and the samples they summed
        self.val_metrics = task.metrics().clone(prefix="val/")
        self.test_metrics = task.metrics().clone(prefix="test/")

    def forward(self, inputs: dict[str, Tensor], mask: dict[str, Tensor] | None = None) -> Any:
        return self.model(inputs, mask)

    # ------------------------------------------------------------------ steps
    def _check(self, batch: MultimodalBatch) -> MultimodalBatch:
        if not isinstance(batch, MultimodalBatch):
            raise BatchError(f"expected a MultimodalBatch, got {type(batch).__name__}")
        if self.validate_batches and self.schema is not None:
            self.schema.validate(batch)
        return batch

    def output(self, batch: MultimodalBatch) -> Any:
        """The model's output on ``batch``, in fp32 whatever the trainer's precision (under
        autocast its low-precision tensors are cast; otherwise it is returned as it is)."""
        out = self.model(batch.inputs, batch.mask)
        return full_precision(out) if torch.is_autocast_enabled(self.device.type) else out

    def loss_terms(self, batch: MultimodalBatch) -> tuple[dict[str, Tensor], Any]:
        out = self.output(batch)
        terms: dict[str, Tensor] = {}
        labels = batch.labels if self.stage == "supervised" else None
        with autocast_off(self.device.type):
            if labels is not None:
                terms["task"] = self.task.loss(out.logits, labels)
            elif self.stage == "supervised":
                raise BatchError("supervised training needs labels; this batch has none")
            if isinstance(self.model, HasAuxiliaryLosses):
                ms_labels = labels if self.task.supports_metric_loss else None
                terms.update(self.model.auxiliary_losses(out, batch.mask, ms_labels))
        return terms, out

    def _log_terms(self, prefix: str, terms: dict[str, Tensor], total: Tensor, n: int) -> None:
        """Sum each term, weighted by the batch size ``n``, into this epoch's running totals
        (``sums[prefix]``); :meth:`_log_means` logs their means once per epoch (``train/{k}_epoch``,
        ``val/{k}``): the same arithmetic, in the same order, as Lightning's ``on_epoch``
        accumulation, without a ``self.log`` call per step, which costs about as much as a
        small model's forward pass. Training step values (``train/{k}_step``) are logged only on
        the steps the logger writes (every ``log_every_n_steps``) or when a progress bar shows them."""
        values = {**terms, "loss": total}
        sums = self.sums.setdefault(prefix, {})
        for k, v in values.items():
            v = v.detach() * n
            sums[k] = sums[k] + v if k in sums else v
        self.counts[prefix] = self.counts.get(prefix, 0) + n
        trainer = self._trainer
        if prefix == "train" and trainer is not None and (
                trainer.progress_bar_callback is not None or (trainer.global_step + 1) % trainer.log_every_n_steps == 0):
            for k, v in values.items():
                self.log(f"train/{k}_step", v.detach(), on_step=True, on_epoch=False, prog_bar=k == "loss", batch_size=n)

    def _log_means(self, prefix: str, suffix: str = "") -> None:
        """Log the epoch means of :meth:`_log_terms`' totals, summed over the processes of a
        distributed run first (so the mean is over every sample, as Lightning's ``sync_dist``)."""
        sums, count = self.sums.pop(prefix, {}), self.counts.pop(prefix, 0)
        if not sums:
            return
        reduce = self.trainer.world_size > 1
        total = self.trainer.strategy.reduce(torch.tensor(count), reduce_op="sum") if reduce else count
        for k, v in sums.items():
            v = self.trainer.strategy.reduce(v, reduce_op="sum") if reduce else v
            self.log(f"{prefix}/{k}{suffix}", v / total, on_step=False, on_epoch=True, prog_bar=k == "loss")

    def _log_metrics(self, metrics: Any) -> None:
        """Log a metric collection's epoch values (torchmetrics synchronises them across
        processes in ``compute``) and reset it; nothing if it saw no batch."""
        if any(m.update_count for m in metrics.values()):
            self.log_dict(metrics.compute(), on_step=False, on_epoch=True, prog_bar=metrics.prefix == "val/")
        metrics.reset()

    def on_train_epoch_start(self) -> None:
        self.sums.pop("train", None)
        self.counts.pop("train", None)

    def on_train_epoch_end(self) -> None:
        self._log_means("train", "_epoch")

    def on_validation_epoch_start(self) -> None:
        self.sums.pop("val", None)
        self.counts.pop("val", None)

    def on_validation_epoch_end(self) -> None:
        self._log_means("val")
        self._log_metrics(self.val_metrics)

    def on_test_epoch_start(self) -> None:
        self.test_metrics.reset()

    def on_test_epoch_end(self) -> None:
        self._log_metrics(self.test_metrics)

    def training_step(self, batch: MultimodalBatch | dict[str, MultimodalBatch], batch_idx: int) -> Tensor:
        if isinstance(batch, dict):  # joint semi-supervised: labelled and unlabelled batches together
            return self._joint_step(batch)
        batch = self._check(batch)
        terms, _ = self.loss_terms(batch)
        total = torch.stack(list(terms.values())).sum()
        self._log_terms("train", terms, total, batch.size)
        return total

    def _joint_step(self, batches: dict[str, MultimodalBatch]) -> Tensor:
        """Labelled batch: every term. Unlabelled batch: the auxiliary (refiner) terms only."""
        labelled, unlabelled = self._check(batches["labelled"]), self._check(batches["unlabelled"])
        terms, _ = self.loss_terms(labelled)
        if not isinstance(self.model, HasAuxiliaryLosses):
            raise ConfigError("joint semi-supervised training needs a Refiner (model.refiner)")
        out = self.output(unlabelled)
        with autocast_off(self.device.type):
            terms.update({f"unlabelled_{k}": v for k, v in self.model.auxiliary_losses(out, unlabelled.mask, None).items()})
        total = torch.stack(list(terms.values())).sum()
        self._log_terms("train", terms, total, labelled.size)
        return total

    def validation_step(self, batch: MultimodalBatch, batch_idx: int) -> None:
        batch = self._check(batch)
        terms, out = self.loss_terms(batch)
        if terms:
            self._log_terms("val", terms, torch.stack(list(terms.values())).sum(), batch.size)
        if self.stage == "supervised":
            with autocast_off(self.device.type):
                self.val_metrics.update(*self.task.metric_inputs(out.logits, batch.labels))

    def test_step(self, batch: MultimodalBatch, batch_idx: int) -> None:
        batch = self._check(batch)
        if batch.labels is None:
            raise BatchError("testing needs labels; this batch has none")
        out = self.output(batch)
        with autocast_off(self.device.type):
            self.test_metrics.update(*self.task.metric_inputs(out.logits, batch.labels))

    def predict_step(self, batch: MultimodalBatch, batch_idx: int) -> dict[str, Tensor]:
        batch = self._check(batch)
        out = self.output(batch)
        with autocast_off(self.device.type):
            pred = {"prediction": self.task.predict(out.logits)}
        if batch.labels is not None:
            pred["label"] = batch.labels
        return pred

    # ------------------------------------------------------------- optimiser
    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(param_groups(self.model, self.optim.lr, self.optim.lr_multipliers), lr=self.optim.lr,
                                weight_decay=self.optim.weight_decay, betas=tuple(self.optim.betas),
                                **adamw_implementation(self.optim.fused))
        total = int(self.trainer.estimated_stepping_batches)
        warm = self.optim.warmup_steps or int(round(self.optim.warmup_fraction * total))
        fn = WarmupDecay(total, warm, self.optim.schedule, self.optim.min_lr_ratio)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, fn)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["mmrefine"] = {
            "config": self.config,
            "stage": self.stage,
            "architecture": architecture_signature(self.model),
            "data": self.data_signature,
            "rng": {"torch": torch.get_rng_state(), "python": random.getstate()},
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        meta = checkpoint.get("mmrefine")
        if meta is None:
            raise ConfigError("not an mmrefine checkpoint (no 'mmrefine' section)")
        check_architecture(meta.get("architecture", {}), self.model)
        check_data(meta.get("data"), self.data_signature, "checkpoint")
        rng = meta.get("rng")
        if rng is not None:
            torch.set_rng_state(rng["torch"])
            random.setstate(rng["python"])


def adamw_implementation(fused: bool) -> dict[str, bool]:
    """AdamW's implementation: ``foreach`` (one call per operation over every tensor of a
    group; the same arithmetic in the same order as the one-tensor-at-a-time loop torch
    picks by default on the CPU, so the same weights bit for bit, at about half the step's
    cost) or, with ``fused``, torch's fused kernel (one pass per tensor, about 5x cheaper
    again on the CPU, but its rounding differs in the last bits, so a run does not repeat
    one trained with the loop exactly)."""
    return {"fused": True} if fused else {"foreach": True}


def param_groups(model: nn.Module, lr: float, multipliers: dict[str, float]) -> list[dict[str, Any]]:
    """AdamW parameter groups: trainable parameters whose name matches a pattern of
    ``multipliers`` (shell-style, the first that matches) train at ``m * lr``, the rest at ``lr``."""
    import fnmatch

    groups: dict[float, list[nn.Parameter]] = {}
    used = set()
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        m = 1.0
        for pattern, mult in multipliers.items():
            if fnmatch.fnmatchcase(name, pattern):
                m = float(mult)
                used.add(pattern)
                break
        groups.setdefault(m, []).append(p)
    unused = [p for p in multipliers if p not in used]
    if unused:
        raise ConfigError(f"optim.lr_multipliers: pattern(s) {unused} match no trainable parameter "
                          f"(names look like {next((n for n, _ in model.named_parameters()), '?')!r})")
    return [{"params": ps, "lr": m * lr} for m, ps in groups.items()]


def architecture_signature(model: nn.Module) -> dict[str, list[int]]:
    """Parameter and buffer names with their shapes."""
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def check_architecture(saved: dict[str, list[int]], model: nn.Module) -> None:
    """Raise :class:`CheckpointMismatchError` listing how ``saved`` differs from ``model``."""
    current = architecture_signature(model)
    missing = sorted(set(current) - set(saved))
    unexpected = sorted(set(saved) - set(current))
    shapes = sorted(k for k in set(saved) & set(current) if list(saved[k]) != list(current[k]))
    if missing or unexpected or shapes:
        def few(xs: list[str]) -> str:
            return ", ".join(xs[:5]) + (f" and {len(xs) - 5} more" if len(xs) > 5 else "")

        parts = []
        if missing:
            parts.append(f"missing from checkpoint: {few(missing)}")
        if unexpected:
            parts.append(f"not in this model: {few(unexpected)}")
        if shapes:
            parts.append("shape differs: " + few([f"{k} {saved[k]} vs {current[k]}" for k in shapes]))
        raise CheckpointMismatchError("checkpoint is from another architecture; " + "; ".join(parts))


def check_data(saved: dict[str, Any] | None, current: dict[str, Any] | None, source: Any) -> None:
    """Raise a :class:`ConfigError` naming every data setting that changes the
    model's inputs and differs from the one the model was trained with
    (nothing to compare when either side is unknown)."""
    if saved is None or current is None:
        return
    diff = [k for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)]
    if diff:
        parts = [f"data.{k}: trained with {saved.get(k)!r}, now {current.get(k)!r}" for k in diff]
        raise ConfigError(f"{source} was trained on differently prepared data; " + "; ".join(parts)
                          + ". Use the training run's config (its config.yaml) or set these back")
