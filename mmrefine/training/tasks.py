"""Prediction tasks: loss, metrics and the default monitored metric.

* ``classification``: cross-entropy on ``(B,)`` class indices; accuracy, macro F1.
* ``multilabel``: binary cross-entropy on ``(B, C)`` multi-hot labels;
  micro / macro F1 at ``threshold``, macro ROC-AUC.
* ``regression``: MSE or L1 on ``(B, D)`` (or ``(B,)``) targets; MAE, MSE.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchmetrics as tm
from torch import Tensor

from mmrefine.core.errors import BatchError, ConfigError
from mmrefine.core.registry import Registry

TASKS: Registry = Registry("task")


class Task:
    """What a task owns: its loss, its metrics and their direction, how logits
    become metric inputs and predictions.

    ``monitor`` is the metric checkpoints and early stopping follow and
    ``mode`` its direction (``max`` or ``min``); ``METRIC_MODES`` gives the
    direction of every metric the task logs (loss terms are ``min``).
    """

    out_dim: int
    monitor: str
    mode: str
    METRIC_MODES: dict[str, str] = {}
    supports_metric_loss: bool = True

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        raise NotImplementedError

    def metrics(self) -> tm.MetricCollection:
        raise NotImplementedError

    def metric_inputs(self, logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """``(predictions, targets)`` as the task's metrics take them."""
        return logits, labels

    def predict(self, logits: Tensor) -> Tensor:
        raise NotImplementedError

    def fit_class_weights(self, labels: Tensor) -> None:
        """Set loss weights from the labelled training set's labels (tasks with class weights)."""
        raise ConfigError(f"task.class_weight applies to classification, not {type(self).__name__.lower()}")

    @classmethod
    def metric_mode(cls, metric: str) -> str:
        """``max`` or ``min`` for a logged metric such as ``test/acc`` or ``val/loss``."""
        return cls.METRIC_MODES.get(metric.rsplit("/", 1)[-1], "min")


class PositiveClass(tm.Metric):
    """A binary metric fed the softmax probability of class 1 from ``(B, 2)`` logits."""

    full_state_update = False

    def __init__(self, metric: tm.Metric) -> None:
        super().__init__()
        self.metric = metric

    def update(self, logits: Tensor, labels: Tensor) -> None:  # type: ignore[override]
        self.metric.update(logits.softmax(-1)[:, 1], labels)

    def compute(self) -> Tensor:
        return self.metric.compute()

    def reset(self) -> None:
        super().reset()
        self.metric.reset()


@TASKS.register("classification")
class Classification(Task):
    """Single-label classification over ``num_outputs`` classes.

    Args:
        num_outputs: number of classes (set by the builder from the data).
        label_smoothing: cross-entropy label smoothing.
        class_weight: ``balanced`` weighs class c by ``n / (C n_c)`` (counts of the
            labelled training set), or a list of one weight per class; None: unweighted.
    """

    monitor, mode = "val/acc", "max"
    METRIC_MODES = {"acc": "max", "f1_macro": "max", "f1": "max", "roc_auc": "max", "pr_auc": "max"}

    def __init__(self, num_outputs: int, label_smoothing: float = 0.0, class_weight: str | list[float] | None = None) -> None:
        self.out_dim = num_outputs
        self.label_smoothing = label_smoothing
        self.class_weight = class_weight
        self.weights: Tensor | None = None
        if isinstance(class_weight, str) and class_weight != "balanced":
            raise ConfigError(f"task.class_weight: 'balanced', a list of {num_outputs} weights or null, got '{class_weight}'")
        if isinstance(class_weight, list):
            if len(class_weight) != num_outputs or any(w < 0 for w in class_weight):
                raise ConfigError(f"task.class_weight: expected {num_outputs} non-negative weights, got {class_weight}")
            self.weights = torch.tensor(class_weight, dtype=torch.float32)

    def fit_class_weights(self, labels: Tensor) -> None:
        """Set ``balanced`` weights from the labelled training set's ``(N,)`` class indices."""
        if self.class_weight != "balanced":
            return
        counts = torch.bincount(labels.long(), minlength=self.out_dim).float()
        if (counts == 0).any():
            raise ConfigError(f"task.class_weight: balanced: class(es) {torch.nonzero(counts == 0).flatten().tolist()} have no training label")
        self.weights = counts.sum() / (self.out_dim * counts)

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        if labels.dim() != 1 or labels.is_floating_point():
            raise BatchError(f"classification labels must be integer class indices (B,), got {labels.dtype} {tuple(labels.shape)}")
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.out_dim):
            raise BatchError(f"classification labels must lie in [0, {self.out_dim}), got [{int(labels.min())}, {int(labels.max())}]")
        weight = None if self.weights is None else self.weights.to(logits.device, logits.dtype)
        return F.cross_entropy(logits, labels, weight=weight, label_smoothing=self.label_smoothing)

    def metrics(self) -> tm.MetricCollection:
        n = self.out_dim
        metrics: dict[str, tm.Metric] = {
            "acc": tm.classification.MulticlassAccuracy(n, average="micro"),
            "f1_macro": tm.classification.MulticlassF1Score(n, average="macro"),
        }
        if n == 2:  # binary: F1 of class 1, ROC-AUC and PR-AUC (average precision) of its probability
            metrics["f1"] = PositiveClass(tm.classification.BinaryF1Score())
            metrics["roc_auc"] = PositiveClass(tm.classification.BinaryAUROC())
            metrics["pr_auc"] = PositiveClass(tm.classification.BinaryAveragePrecision())
        return tm.MetricCollection(metrics)

    def predict(self, logits: Tensor) -> Tensor:
        return logits.softmax(-1)


@TASKS.register("multilabel")
class MultiLabel(Task):
    """Multi-label classification; labels are multi-hot ``(B, num_outputs)``.

    Args:
        num_outputs: number of labels (set by the builder from the data).
        threshold: probability above which a label is predicted (F1).
    """

    monitor, mode = "val/f1_macro", "max"
    METRIC_MODES = {"f1_micro": "max", "f1_macro": "max", "auroc": "max"}

    def __init__(self, num_outputs: int, threshold: float = 0.5) -> None:
        self.out_dim = num_outputs
        self.threshold = threshold

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        if labels.shape != logits.shape:
            raise BatchError(f"multilabel labels must be multi-hot {tuple(logits.shape)}, got {tuple(labels.shape)}")
        return F.binary_cross_entropy_with_logits(logits, labels.float())

    def metrics(self) -> tm.MetricCollection:
        n, t = self.out_dim, self.threshold
        return tm.MetricCollection(
            {
                "f1_micro": tm.classification.MultilabelF1Score(n, threshold=t, average="micro"),
                "f1_macro": tm.classification.MultilabelF1Score(n, threshold=t, average="macro"),
                "auroc": tm.classification.MultilabelAUROC(n, average="macro"),
            }
        )

    def metric_inputs(self, logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        return logits.sigmoid(), labels.long()

    def predict(self, logits: Tensor) -> Tensor:
        return logits.sigmoid()


@TASKS.register("regression")
class Regression(Task):
    """Real-valued targets; ``loss`` is ``mse`` or ``l1``.

    Args:
        num_outputs: number of targets (set by the builder from the data).
        loss: ``mse`` or ``l1``.
    """

    monitor, mode = "val/mae", "min"
    METRIC_MODES = {"mae": "min", "mse": "min"}
    supports_metric_loss = False

    def __init__(self, num_outputs: int = 1, loss: str = "mse") -> None:
        if loss not in ("mse", "l1"):
            raise ConfigError(f"task.loss: 'mse' or 'l1', got '{loss}'")
        self.out_dim = num_outputs
        self.loss_name = loss

    def _shape(self, logits: Tensor, labels: Tensor) -> Tensor:
        labels = labels.float()
        return labels[:, None] if labels.dim() == 1 else labels

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        labels = self._shape(logits, labels)
        if labels.shape != logits.shape:
            raise BatchError(f"regression targets {tuple(labels.shape)} do not match outputs {tuple(logits.shape)}")
        return F.mse_loss(logits, labels) if self.loss_name == "mse" else F.l1_loss(logits, labels)

    def metrics(self) -> tm.MetricCollection:
        return tm.MetricCollection({"mae": tm.MeanAbsoluteError(), "mse": tm.MeanSquaredError()})

    def predict(self, logits: Tensor) -> Tensor:
        return logits

    def metric_inputs(self, logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        return logits, self._shape(logits, labels)

