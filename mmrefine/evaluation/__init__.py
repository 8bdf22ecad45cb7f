"""Evaluation: pure functions over predictions, embeddings and datasets.

Metrics, statistics over seeds, corruptions and robustness scores, retrieval,
linear probes, latent-graph recovery and figures. Nothing here trains a model:
what runs experiments lives in :mod:`mmrefine.experiments`."""

from mmrefine.evaluation.latent_graph import recovery_curve, recovery_error
from mmrefine.evaluation.retrieval import topk_retrieval
from mmrefine.evaluation.robustness import (
    corrupt,
    nonempty_subsets,
    percentage_drop,
    relative_robustness,
    scale_unit,
)
from mmrefine.evaluation.statistics import compare, confidence_interval, mean_std, welch_t_test

__all__ = [
    "compare", "confidence_interval", "corrupt", "mean_std", "nonempty_subsets", "percentage_drop",
    "recovery_curve", "recovery_error", "relative_robustness", "scale_unit", "topk_retrieval", "welch_t_test",
]
