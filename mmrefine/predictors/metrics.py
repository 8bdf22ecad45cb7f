"""The metrics a table predictor is judged by (``eval_metric``), and the decision rule.

A metric is scored on a task's outputs: class probabilities ``(n, C)`` for
classification, values ``(n,)`` for regression. *Threshold-dependent* metrics
(``accuracy``, ``f1``, ``f1_macro``, ``balanced_accuracy``, ``mcc``, ...) score
predicted labels: the argmax for several classes; for two classes the positive
(second) class is predicted when ``p_1 >= t``, where ``t`` is chosen on held-out
predictions to maximise the metric (:func:`best_threshold`); for several classes the
predicted class is ``argmax_k w_k p_k``, the per-class weights ``w`` chosen the same way
(:func:`best_class_weights`: coordinate ascent, each ``w_k`` over a log grid from 1/16
to 16, three rounds). Both are the *decision*: a float (binary), a list of ``C`` floats
(several classes) or None (argmax). Ranking metrics (``roc_auc``, ``pr_auc``,
``log_loss``) score the probabilities themselves.

Binary metrics from the confusion counts at threshold ``t``
(``tp, fp, fn, tn``), computed for every threshold at once by sorting::

    f1          = 2 tp / (2 tp + fp + fn)                     (of the positive class)
    f1_macro    = (f1_pos + f1_neg) / 2,  f1_neg = 2 tn / (2 tn + fn + fp)
    accuracy    = (tp + tn) / n
    balanced_accuracy = (tp / (tp + fn) + tn / (tn + fp)) / 2
    mcc         = (tp tn - fp fn) / sqrt((tp + fp)(tp + fn)(tn + fp)(tn + fn))

Every other metric is scikit-learn's (tested against it).

What a network member early-stops on (``monitor``): a ranking metric's own validation
value (``roc_auc``, ``pr_auc``), the validation error for regression (``rmse`` and ``r2``
through the MSE, ``mae``), and the validation loss otherwise. A threshold-dependent metric
is judged at the decision threshold chosen *after* training; at the fixed cut of 0.5 it
stays flat while a model still predicts the majority class, so with few labels the
checkpoint it picks is an untrained one (measured on the clothing reviews with 5% of the
labels: test ROC-AUC 0.61 when early-stopping on validation F1, see ``docs/tables.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

import numpy as np

from mmrefine.core.errors import ConfigError

THRESHOLDS = np.round(np.arange(0.01, 1.0, 0.01), 2)


@dataclass(frozen=True)
class EvalMetric:
    """A metric: ``fn(y, out)`` with ``out`` the task's outputs (probabilities, labels or values)."""

    name: str
    tasks: tuple[str, ...]
    needs: str  # "label" (threshold-dependent), "proba" or "value"
    greater_is_better: bool
    fn: Callable[[np.ndarray, np.ndarray], float]
    monitor: str = "val/task"  # the validation metric a network member early-stops on (default: its loss)

    @property
    def threshold_dependent(self) -> bool:
        return self.needs == "label"


def _sk() -> object:
    from sklearn import metrics

    return metrics


def _f1(average: str) -> Callable[[np.ndarray, np.ndarray], float]:
    """F1 of the positive class (``binary``, scikit-learn's), or averaged over the classes in
    ``y`` or the predictions from the confusion counts (``f1_k = 2 tp_k / (2 tp_k + fp_k + fn_k)``,
    0 for an empty class; macro: the mean, weighted: by support in ``y``, micro: of the summed
    counts), equal to scikit-learn's ``f1_score(..., zero_division=0)`` and cheap enough for the
    per-class weight search to call thousands of times."""

    def fn(y: np.ndarray, pred: np.ndarray) -> float:
        if average == "binary":
            return float(_sk().f1_score(y, pred, pos_label=1, zero_division=0.0))  # type: ignore[attr-defined]
        y, pred = np.asarray(y), np.asarray(pred)
        labels = np.union1d(y, pred)
        n = len(labels)
        cm = np.bincount(np.searchsorted(labels, y) * n + np.searchsorted(labels, pred), minlength=n * n).reshape(n, n)
        tp = np.diag(cm).astype(float)
        fp, fn_ = cm.sum(0) - tp, cm.sum(1) - tp
        if average == "micro":
            d = 2 * tp.sum() + fp.sum() + fn_.sum()
            return float(2 * tp.sum() / d) if d > 0 else 0.0
        f1 = np.divide(2 * tp, 2 * tp + fp + fn_, out=np.zeros(n), where=(2 * tp + fp + fn_) > 0)
        if average == "weighted":
            support = cm.sum(1)
            return float((f1 * support).sum() / support.sum()) if support.sum() > 0 else 0.0
        return float(f1.mean())

    return fn


def _roc_auc(y: np.ndarray, proba: np.ndarray) -> float:
    skm = _sk()
    if proba.shape[1] == 2:
        return float(skm.roc_auc_score(y, proba[:, 1]))  # type: ignore[attr-defined]
    return float(skm.roc_auc_score(y, proba, multi_class="ovr", labels=np.arange(proba.shape[1])))  # type: ignore[attr-defined]


def _pr_auc(y: np.ndarray, proba: np.ndarray) -> float:
    skm = _sk()
    if proba.shape[1] == 2:
        return float(skm.average_precision_score(y, proba[:, 1]))  # type: ignore[attr-defined]
    onehot = np.eye(proba.shape[1])[y]
    present = onehot.sum(0) > 0  # a class absent from y has no precision-recall curve
    return float(skm.average_precision_score(onehot[:, present], proba[:, present], average="macro"))  # type: ignore[attr-defined]


def _log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    p = np.clip(proba, 1e-15, 1.0)
    return float(_sk().log_loss(y, p / p.sum(1, keepdims=True), labels=np.arange(proba.shape[1])))  # type: ignore[attr-defined]


def _rmse(y: np.ndarray, v: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y, float) - v) ** 2)))


def _mae(y: np.ndarray, v: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y, float) - v)))


def _r2(y: np.ndarray, v: np.ndarray) -> float:
    return float(_sk().r2_score(y, v))  # type: ignore[attr-defined]


CLS = ("binary", "multiclass")
EVAL_METRICS: dict[str, EvalMetric] = {m.name: m for m in (
    EvalMetric("accuracy", CLS, "label", True, lambda y, p: float(np.mean(y == p))),
    EvalMetric("balanced_accuracy", CLS, "label", True, lambda y, p: float(_sk().balanced_accuracy_score(y, p))),  # type: ignore[attr-defined]
    EvalMetric("f1", ("binary",), "label", True, _f1("binary")),
    EvalMetric("f1_macro", CLS, "label", True, _f1("macro")),
    EvalMetric("f1_weighted", ("multiclass",), "label", True, _f1("weighted")),
    EvalMetric("f1_micro", ("multiclass",), "label", True, _f1("micro")),
    EvalMetric("mcc", CLS, "label", True, lambda y, p: float(_sk().matthews_corrcoef(y, p))),  # type: ignore[attr-defined]
    EvalMetric("roc_auc", CLS, "proba", True, _roc_auc, "val/roc_auc"),
    EvalMetric("pr_auc", CLS, "proba", True, _pr_auc, "val/pr_auc"),
    EvalMetric("log_loss", CLS, "proba", False, _log_loss, "val/task"),
    EvalMetric("rmse", ("regression",), "value", False, _rmse, "val/mse"),
    EvalMetric("mae", ("regression",), "value", False, _mae, "val/mae"),
    EvalMetric("r2", ("regression",), "value", True, _r2, "val/mse"),
)}

DEFAULT_METRIC = {"binary": "log_loss", "multiclass": "log_loss", "regression": "rmse"}
REPORTED = {  # what evaluate() returns, per task
    "binary": ("accuracy", "balanced_accuracy", "f1", "f1_macro", "mcc", "roc_auc", "pr_auc", "log_loss"),
    "multiclass": ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "f1_micro", "mcc", "roc_auc", "pr_auc", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}


def get_metric(name: str | None, task: str) -> EvalMetric:
    """The metric ``name`` for ``task`` (None: the task's default), or a ConfigError naming the choices."""
    name = name or DEFAULT_METRIC[task]
    choices = [m for m, spec in EVAL_METRICS.items() if task in spec.tasks]
    if name not in EVAL_METRICS or task not in EVAL_METRICS[name].tasks:
        raise ConfigError(f"eval_metric '{name}' does not apply to a {task} task; choose one of {', '.join(choices)}")
    return EVAL_METRICS[name]


Decision = Union[float, list[float], None]  # a binary threshold, per-class weights, or argmax


def labels_of(proba: np.ndarray, threshold: Decision = None) -> np.ndarray:
    """Predicted class indices: argmax; for two classes ``p_1 >= threshold`` when a threshold
    is given; ``argmax_k w_k p_k`` when per-class weights ``w`` are given."""
    if isinstance(threshold, (list, tuple, np.ndarray)):
        return (proba * np.asarray(threshold, dtype=float)).argmax(1)
    if proba.shape[1] == 2 and threshold is not None:
        return (proba[:, 1] >= threshold).astype(np.int64)
    return proba.argmax(1)


def score(metric: EvalMetric, y: np.ndarray, out: np.ndarray, threshold: Decision = None) -> float:
    """``metric`` of the outputs ``out`` against ``y`` (labels by the decision ``threshold`` for label metrics)."""
    if metric.needs == "label":
        return metric.fn(y, labels_of(out, threshold))
    return metric.fn(y, out)


def signed(metric: EvalMetric, value: float) -> float:
    """``value`` oriented so that greater is better."""
    return value if metric.greater_is_better else -value


# -- binary metrics at every threshold at once -----------------------------------------------


def _counts(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(tp, fp, fn, tn)`` of predicting positive when ``p >= t``, for each ``t`` in ``thresholds``."""
    order = np.sort(p)
    pos = np.sort(p[y == 1])
    n_pos, n = len(pos), len(p)
    predicted = n - np.searchsorted(order, thresholds, side="left")  # rows with p >= t
    tp = n_pos - np.searchsorted(pos, thresholds, side="left")
    fp = predicted - tp
    fn = n_pos - tp
    tn = n - n_pos - fp
    return tp.astype(float), fp.astype(float), fn.astype(float), tn.astype(float)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a), where=b > 0)


BINARY_FROM_COUNTS: dict[str, Callable[..., np.ndarray]] = {
    "f1": lambda tp, fp, fn, tn: _ratio(2 * tp, 2 * tp + fp + fn),
    "f1_macro": lambda tp, fp, fn, tn: (_ratio(2 * tp, 2 * tp + fp + fn) + _ratio(2 * tn, 2 * tn + fn + fp)) / 2,
    "accuracy": lambda tp, fp, fn, tn: (tp + tn) / (tp + fp + fn + tn),
    "balanced_accuracy": lambda tp, fp, fn, tn: (_ratio(tp, tp + fn) + _ratio(tn, tn + fp)) / 2,
    "mcc": lambda tp, fp, fn, tn: _ratio(tp * tn - fp * fn, np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))),
}


def threshold_scores(metric: EvalMetric, y: np.ndarray, p1: np.ndarray, thresholds: np.ndarray = THRESHOLDS) -> np.ndarray:
    """``metric`` of predicting the positive class when ``p1 >= t``, for every ``t``."""
    if metric.name not in BINARY_FROM_COUNTS:
        raise ConfigError(f"eval_metric '{metric.name}' has no binary threshold form")
    return BINARY_FROM_COUNTS[metric.name](*_counts(np.asarray(y), np.asarray(p1, float), np.asarray(thresholds, float)))


def best_threshold(metric: EvalMetric, y: np.ndarray, p1: np.ndarray) -> tuple[float, float]:
    """``(t, metric at t)``: the threshold on ``p1`` maximising a threshold-dependent binary
    metric over ``0.01, 0.02, ..., 0.99`` (ties: the one closest to 0.5)."""
    s = threshold_scores(metric, y, p1)
    best = np.flatnonzero(s >= s.max() - 1e-12)
    i = best[np.argmin(np.abs(THRESHOLDS[best] - 0.5))]
    return float(THRESHOLDS[i]), float(s[i])


CLASS_WEIGHT_GRID = np.exp(np.linspace(np.log(1 / 16), np.log(16), 33))


def best_class_weights(metric: EvalMetric, y: np.ndarray, proba: np.ndarray, rounds: int = 3) -> tuple[list[float], float]:
    """``(w, metric at w)``: per-class weights for ``argmax_k w_k p_k`` maximising a
    threshold-dependent metric on held-out probabilities, by coordinate ascent from
    ``w = 1`` (each ``w_k`` in turn over :data:`CLASS_WEIGHT_GRID`, ``rounds`` passes; a
    change is kept only when it raises the metric, so ties keep the plain argmax). The
    weights are scaled to a largest weight of 1."""
    y = np.asarray(y)
    w = np.ones(proba.shape[1])
    best = metric.fn(y, labels_of(proba, w))
    for _ in range(rounds):
        changed = False
        for k in range(proba.shape[1]):
            keep = w[k]
            for g in CLASS_WEIGHT_GRID:
                w[k] = g
                s = metric.fn(y, labels_of(proba, w))
                if s > best + 1e-12:
                    best, keep, changed = s, g, True
            w[k] = keep
        if not changed:
            break
    return [float(v) for v in w / w.max()], float(best)


def best_decision(metric: EvalMetric, task: str, y: np.ndarray, out: np.ndarray) -> Decision:
    """The decision for a threshold-dependent metric: a threshold (two classes), per-class
    weights (several classes); None otherwise (argmax, or a regression)."""
    if not metric.threshold_dependent or task == "regression":
        return None
    if task == "binary":
        return best_threshold(metric, y, out[:, 1])[0]
    return best_class_weights(metric, y, out)[0]


def selection_score(metric: EvalMetric, task: str, y: np.ndarray, out: np.ndarray) -> float:
    """What held-out predictions are ranked by (greater is better): the metric itself, at the
    best threshold for a threshold-dependent binary metric (the threshold predict will use)."""
    if task == "binary" and metric.threshold_dependent:
        return best_threshold(metric, y, out[:, 1])[1]
    return signed(metric, score(metric, y, out))
