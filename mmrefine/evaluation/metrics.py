"""Metrics the papers report, as functions of predictions and targets.

Built on torchmetrics where it has the metric; written here where it does not:

* classification: :func:`accuracy` (multiclass logits/probabilities or labels);
* multi-label (threshold 0.5 by default): :func:`f1` micro / macro,
  :func:`roc_auc` micro / macro, :func:`average_precision` micro / macro /
  samples (``samples``: the mean over samples of each sample's AP over labels,
  as scikit-learn defines it; torchmetrics has no such average);
* regression: :func:`mae`, :func:`mse`, :func:`pearson`;
* sentiment in [-3, 3] (CMU-MOSI/MOSEI): :func:`acc2` (binary accuracy of
  sign; ``exclude_zero=True`` drops neutral targets and compares ``> 0``, the
  "non-0" convention; ``False`` compares ``>= 0``) and :func:`acc7` (accuracy of
  ``round(clip(., -3, 3))``).
"""

from __future__ import annotations

import torch
import torchmetrics.functional as tmf
from torch import Tensor
from torchmetrics.functional.retrieval import retrieval_average_precision


def accuracy(pred: Tensor, target: Tensor) -> float:
    """``pred``: ``(B, C)`` scores or ``(B,)`` labels."""
    labels = pred.argmax(-1) if pred.dim() == 2 else pred
    return float((labels == target).float().mean())


def f1(scores: Tensor, target: Tensor, average: str = "macro", threshold: float = 0.5) -> float:
    """Multi-label F1 of ``scores`` (probabilities) thresholded at ``threshold``."""
    return float(tmf.classification.multilabel_f1_score(scores, target.long(), target.shape[1], threshold=threshold, average=average))


def roc_auc(scores: Tensor, target: Tensor, average: str = "macro") -> float:
    """ROC-AUC: binary for ``(B,)`` scores, multi-label (``micro``/``macro``) for ``(B, C)``."""
    if scores.dim() == 1:
        return float(tmf.classification.binary_auroc(scores, target.long()))
    return float(tmf.classification.multilabel_auroc(scores, target.long(), target.shape[1], average=average))


def average_precision(scores: Tensor, target: Tensor, average: str = "macro") -> float:
    """Multi-label average precision: ``micro``, ``macro`` or ``samples``."""
    if average != "samples":
        return float(tmf.classification.multilabel_average_precision(scores, target.long(), target.shape[1], average=average))
    aps = [float(retrieval_average_precision(s, t.bool())) for s, t in zip(scores, target) if t.any()]
    return sum(aps) / len(aps) if aps else 0.0


def mae(pred: Tensor, target: Tensor) -> float:
    return float(tmf.mean_absolute_error(pred.flatten(), target.flatten().to(pred.dtype)))


def mse(pred: Tensor, target: Tensor) -> float:
    return float(tmf.mean_squared_error(pred.flatten(), target.flatten().to(pred.dtype)))


def pearson(pred: Tensor, target: Tensor) -> float:
    return float(tmf.pearson_corrcoef(pred.flatten().double(), target.flatten().double()))


def acc2(pred: Tensor, target: Tensor, exclude_zero: bool = True) -> float:
    pred, target = pred.flatten(), target.flatten()
    if exclude_zero:
        keep = target != 0
        return float(((pred[keep] > 0) == (target[keep] > 0)).float().mean())
    return float(((pred >= 0) == (target >= 0)).float().mean())


def acc7(pred: Tensor, target: Tensor) -> float:
    bucket = lambda x: torch.round(torch.clamp(x.flatten(), -3.0, 3.0))  # noqa: E731
    return float((bucket(pred) == bucket(target)).float().mean())
