"""Evaluation: robustness to absent modalities (more in later releases)."""

from mmrefine.evaluation.robustness import missing_modality_metrics

__all__ = ["missing_modality_metrics"]
