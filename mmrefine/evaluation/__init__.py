"""Evaluation: metrics, statistics over seeds, robustness, retrieval, latent-graph recovery."""

from mmrefine.evaluation.latent_graph import recovery_curve, recovery_error
from mmrefine.evaluation.retrieval import topk_retrieval
from mmrefine.evaluation.robustness import (
    corrupt, missing_modality_metrics, nonempty_subsets, percentage_drop, relative_robustness, scale_unit,
)
from mmrefine.evaluation.statistics import compare, mean_std, welch_t_test

__all__ = [
    "compare", "corrupt", "mean_std", "missing_modality_metrics", "nonempty_subsets", "percentage_drop",
    "recovery_curve", "recovery_error", "relative_robustness", "scale_unit", "topk_retrieval", "welch_t_test",
]
