"""Evaluation: pure functions over predictions, embeddings and datasets.

Metrics, statistics over seeds, corruptions and robustness scores, retrieval,
linear probes, latent-graph recovery and figures. Nothing here trains a model:
what runs experiments lives in :mod:`mmrefine.experiments`.

The names below are imported on first use: ``mmrefine.evaluation.statistics``
(what a sweep's summary needs) then costs scipy, not torch and Lightning."""

from mmrefine.core.lazy import lazy_names as _lazy_names

_HOMES = {
    "recovery_curve": "latent_graph", "recovery_error": "latent_graph",
    "topk_retrieval": "retrieval",
    "corrupt": "robustness", "nonempty_subsets": "robustness", "percentage_drop": "robustness",
    "relative_robustness": "robustness", "scale_unit": "robustness",
    "compare": "statistics", "confidence_interval": "statistics", "mean_std": "statistics", "welch_t_test": "statistics",
}

__all__ = sorted(_HOMES)
__getattr__ = _lazy_names(__name__, _HOMES)
